"""``compile_artifacts``: cache lookup, host preflight, toolchain check, the partition tool, marker check,
atomic cache entry. Nothing is reported as compiled that was not (DESIGN.md principle 8)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from filelock import FileLock

from builder.artifacts.models import ModelArtifacts
from builder.artifacts.remote import compile_from_remote, compile_to_remote, remote_from
from builder.compile.executors import DockerExecutor, LocalExecutor, NoGpuRuntime
from builder.compile.markers import check_marker
from builder.compile.models import CompileResult, HostAccelerators
from builder.compile.preflight import detect_host, refusal
from builder.compile.settings import AOT_FAMILIES, compile_properties, runtime_overrides
from builder.console import info, step, warn
from builder.diagnostics import BuilderError
from builder.lmi.properties import dumps
from builder.lmi.resolve import Resolved
from builder.paths import cache_dir as default_cache_dir

STAGE = "compile"
KEY_VERSION = "1"  # bump when the way a compile is run changes its output
TOOLCHAIN_LIBRARY = {"tensorrt-llm": "tensorrt_llm", "neuronx": "neuronx_cc"}


def _pp(resolved: Resolved) -> int:
    v = resolved.properties.get("option.pipeline_parallel_degree", "1")
    return int(v) if v.isdigit() else 1


def compile_cache_key(resolved: Resolved, artifacts: ModelArtifacts, runtime_image: str) -> str:
    """sha256 over every input that changes the compiled output (DESIGN.md principle 5)."""
    aot = resolved.release.aot
    doc = {
        "v": KEY_VERSION, "model": artifacts.digest, "runtime_image": runtime_image,
        "family": resolved.release.family, "version": resolved.release.version,
        "arch": resolved.instance.arch, "tp": resolved.tensor_parallel_degree, "pp": _pp(resolved),
        "tool": aot.model_dump(mode="json") if aot else None,
        # the properties as the tool reads them (container paths are fixed, so host paths do not leak in)
        "properties": compile_properties(resolved, model_dir="<model>", output_dir="<output>"),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


@contextmanager
def _sigterm_as_interrupt():
    """SIGTERM (CI cancelling a job) unwinds like Ctrl-C, so ``finally`` blocks clean up."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def compile_artifacts(resolved: Resolved, artifacts: ModelArtifacts, runtime_image: str, *,
                      executor: Literal["docker", "local"] = "docker",
                      cache_dir: str | os.PathLike | None = None,
                      docker_client=None, preflight: bool = True,
                      accelerators: Literal["auto", "gpu", "neuron", "none"] = "auto",
                      host: HostAccelerators | None = None, local_partition_dir: str | None = None,
                      cache_remote: str | None = None) -> CompileResult:
    """Compile ``artifacts`` for ``resolved``'s target in ``runtime_image`` (the digest the final image uses).

    ``cache_dir``: None is the default cache (``builder.paths.cache_dir``), as for every other stage.
    ``accelerators``: "auto" passes the target's devices (all GPUs, or /dev/neuron*); "none" is for stand-in
    toolchains on hosts without them (tests). ``host``: injected accelerator inventory (tests).
    ``cache_remote``: ``s3://bucket/prefix/`` (None: ``LMI_BUILD_CACHE_REMOTE`` or none), looked up
    after a local miss and before compiling; a finished entry is uploaded there (builder/artifacts/remote.py).
    """
    recipe, release, instance = resolved.recipe, resolved.release, resolved.instance
    if not recipe.compile.enabled:
        return CompileResult(status="skipped", reason="compile.enabled is false")
    if release.family not in AOT_FAMILIES or release.aot is None:
        return CompileResult(status="skipped", reason=f"{release.family} {release.version} has no AOT compile")
    aot = release.aot
    tp, pp = resolved.tensor_parallel_degree, _pp(resolved)
    key = compile_cache_key(resolved, artifacts, runtime_image)
    root = default_cache_dir(cache_dir) / "compile"
    final = root / key
    overrides = runtime_overrides(resolved)
    remote = remote_from(cache_remote)
    (root / ".locks").mkdir(parents=True, exist_ok=True)

    with FileLock(str(root / ".locks" / f"{key}.lock")):
        hit, origin, unusable = _read_entry(final), "local", False
        if hit is None and remote is not None:
            fetched = compile_from_remote(remote, key, root / ".tmp" / f"{key[:16]}.remote-{uuid.uuid4().hex[:8]}",
                                          final)
            hit, origin = (_read_entry(final) if fetched else None), "remote"
            if fetched and hit is None:
                unusable = True  # replaced by this runner's entry below
                warn(f"remote compile entry {key[:12]} lacks the {aot.marker} marker; compiling")
                shutil.rmtree(final, ignore_errors=True)
        if hit is not None:
            os.utime(final)
            info(f"compile cache hit {key[:12]} ({origin}): {hit.get('family')} {hit.get('version')} for {hit.get('arch')}, "
                 f"built in {hit.get('seconds', 0):.0f}s; not compiling")
            return CompileResult(status="cached", reason=f"cache hit {key[:12]}", dir=final / "out", cache_key=key,
                                 toolchain=hit.get("toolchain", {}), seconds=hit.get("seconds"),
                                 properties_overrides=hit.get("properties_overrides", overrides),
                                 marker=aot.marker, origin=origin,
                                 remote=remote.stats.as_dict() | {"uri": remote.uri} if remote else {})

        host = host if host is not None else (detect_host() if preflight or accelerators == "auto" else
                                              HostAccelerators())
        if preflight:
            why = refusal(host, instance, ranks=tp * pp)
            if why:
                warn(f"compile SKIPPED: {why}")
                return CompileResult(status="skipped", reason=why, cache_key=key)
        mode = accelerators if accelerators != "auto" else ("gpu" if instance.kind == "gpu" else
                                                             "neuron" if instance.kind == "neuron" else "none")
        run_id = uuid.uuid4().hex[:12]
        if executor == "docker":
            if docker_client is None:
                from builder.engine import docker_client as _client

                docker_client = _client(STAGE)
            ex: DockerExecutor | LocalExecutor = DockerExecutor(docker_client, runtime_image, accelerators=mode,
                                                                neuron_devices=host.neuron_devices, run_id=run_id)
        else:
            ex = LocalExecutor(partition_dir=local_partition_dir)

        step(f"compiling {recipe.name} for {instance.arch} (tp={tp}, pp={pp}) with {aot.tool} via {ex.name}")
        toolchain = _toolchain(ex, aot.toolchain_version_cmd, release, executor)
        toolchain["arch"] = instance.arch

        tmp = root / ".tmp" / f"{key[:16]}.{run_id}"
        out_dir, props_dir = tmp / "out", tmp / "properties"
        out_dir.mkdir(parents=True)
        props_dir.mkdir()
        try:
            with _sigterm_as_interrupt():
                values = ex.paths(artifacts.dir, props_dir, out_dir)
                values.update(tensor_parallel_degree=str(tp), pipeline_parallel_degree=str(pp))
                props = compile_properties(resolved, model_dir=values["model_dir"], output_dir=values["output_dir"])
                (props_dir / "serving.properties").write_text(dumps(props))
                started = time.monotonic()
                try:
                    if isinstance(ex, DockerExecutor):
                        spec = ex.spec(list(aot.command), values, list(aot.args), model_dir=artifacts.dir,
                                       properties_dir=props_dir, output_dir=out_dir)
                        outcome = ex.run(spec, recipe.compile.timeout_s)
                    else:
                        outcome = ex.run(ex.argv(list(aot.command), list(aot.args), values), recipe.compile.timeout_s)
                except NoGpuRuntime as exc:
                    why = (f"Docker on this host has no GPU runtime ({exc}); install the NVIDIA container "
                           f"toolkit or compile with --compile-executor local")
                    warn(f"compile SKIPPED: {why}")
                    return CompileResult(status="skipped", reason=why, cache_key=key)
                seconds = round(time.monotonic() - started, 3)
                if outcome.exit_code != 0:
                    raise BuilderError(f"{aot.tool} exited {outcome.exit_code}:\n{outcome.log_tail}", stage=STAGE,
                                       hint="nothing was cached; fix the cause and run again")
                missing = check_marker(aot.marker, out_dir)
                if missing:
                    raise BuilderError(f"{aot.tool} finished but its output is not a compiled model the runtime "
                                       f"recognises: {missing}", stage=STAGE)
                meta = {"key": key, "family": release.family, "version": release.version, "arch": instance.arch,
                        "tensor_parallel_degree": tp, "pipeline_parallel_degree": pp, "runtime_image": runtime_image,
                        "model_digest": artifacts.digest, "toolchain": toolchain, "seconds": seconds,
                        "created": time.time(), "properties_overrides": overrides, "marker": aot.marker,
                        "executor": ex.name}
                (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
                shutil.rmtree(props_dir)
                shutil.rmtree(final, ignore_errors=True)
                os.replace(tmp, final)  # the entry appears whole or not at all
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        uploaded = compile_to_remote(remote, key, final, replace=unusable) if remote else None  # under the lock: entry is final
    info(f"compiled in {seconds:.1f}s -> cache entry {key[:12]} ({aot.marker} verified)"
         + (f"; remote {remote.uri}: {uploaded}" if remote else ""))
    return CompileResult(status="compiled", dir=final / "out", cache_key=key, toolchain=toolchain, seconds=seconds,
                         properties_overrides=overrides, marker=aot.marker, origin="built",
                         remote=remote.stats.as_dict() | {"uri": remote.uri, "upload": uploaded} if remote else {})


def _read_entry(final: Path) -> dict | None:
    try:
        meta = json.loads((final / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    if not (final / "out").is_dir() or check_marker(meta.get("marker", ""), final / "out"):
        return None  # damaged: recompile
    return meta


def _toolchain(ex, cmd: list[str], release, executor: str) -> dict[str, str]:
    lib = TOOLCHAIN_LIBRARY.get(release.family, "toolchain")
    if not cmd:
        return {}
    found = ex.toolchain(cmd)
    expected = release.libraries.get(lib)
    if expected and found != expected:
        text = (f"{lib} {found!r} on this {'host' if executor == 'local' else 'image'} differs from "
                f"{expected!r} of LMI {release.family} {release.version}; compiled artifacts are not portable "
                f"across {lib} versions (§17.5)")
        if executor == "local":
            raise BuilderError(text, stage=STAGE, hint="use --compile-executor docker (the runtime image's own "
                                                       "toolchain) or install the matching version")
        warn(text)
    return {lib: found}
