"""Assemblers side by side: ``docker build`` + ``docker push`` vs registry-native assembly.

``nox -s bench -- assemble [--sizes=1,8] [--shards=1,8] [--no-docker] [--crane=PATH] [--compression=gzip]
[--no-oras] [--tools-max-gib=1] [--workers=N] [--no-limit] [--baseline-tree=PATH]``
(use the ``--opt=value`` form: the bench runner takes bare words for suite names)

The machine's limit on that registry, measured in the same run for every cold model: the same
compressed layer bytes ours uploaded, written to files first (not timed), then sent with ``curl -T``
as one monolithic ``PUT ?digest=`` per blob (POST, PUT: the registry receives, hashes and stores them;
one blob after another) into a fresh registry of its own (same binary, same disk), and the sha256
rate of this machine over the same files. Ours is reported as a ratio to the monolithic upload.
``--baseline-tree=PATH`` (e.g. ``git archive <commit> | tar -x -C PATH``) also assembles each cold
model with the code in PATH, into a fresh registry of its own, for a before/after in the same run.

CPU columns: core-seconds of the client and the registry process together during the step (what
the step costs whatever else the shared machine runs). Before each timed step ``os.sync()`` writes
back what earlier steps left dirty, and the baseline's and the limit's registries are removed after
their step, so that a later step is not throttled for an earlier one's writes.

For each model (default: 1 GiB in 1 file and 8 GiB in 8 shards, random bytes like safetensors),
four scenarios: cold (empty registry and caches), config-only (serving.properties changed), one
shard changed, nothing changed. Seconds and bytes uploaded (growth of the registry's blob store for
the docker path, from the result for ours). Optional columns for models up to ``--tools-max-gib``:
oras-py (when importable; never a package dependency) and crane (``--crane=PATH``). A Debian ``docker-registry`` on 127.0.0.1 with a fresh data
folder per model; temporary files are removed at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "assemble.json"
GIB = 1 << 30


def _registry(root: Path):
    from tests.support.registry_fixtures import LocalRegistry, free_port

    root.mkdir(parents=True, exist_ok=True)
    reg = LocalRegistry(root=root, port=free_port())
    reg.write_config()
    reg.start()
    return reg


def _write_random(path: Path, size: int) -> None:
    with open(path, "wb") as fh:
        left = size
        while left:
            n = min(left, 64 << 20)
            fh.write(os.urandom(n))
            left -= n


def _stored_bytes(root: Path) -> int:
    """Bytes of blob data in the registry's store. The store is content-addressed and shared by every
    repository, and no client here uploads a blob the registry already has (each HEADs first; a mount
    stores nothing), so the growth across one step is the bytes that step uploaded."""
    blobs = root / "data" / "docker" / "registry" / "v2" / "blobs"
    return sum(p.stat().st_size for p in blobs.rglob("data")) if blobs.exists() else 0


def _docker_base(host: str, workdir: Path) -> str:
    """A tiny base imported into the engine and pushed, shared by both assemblers."""
    from builder.engine import docker_client

    client = docker_client("bench", timeout=900)
    root = workdir / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "base-release").write_text("bench base\n")
    tar = workdir / "rootfs.tar"
    subprocess.run(["tar", "-C", str(root), "-cf", str(tar), "."], check=True)
    repo = f"{host}/bench/base"
    client.api.import_image_from_file(str(tar), repository=repo, tag="1",
                                      changes=["LABEL dev.lmi-builder.managed=true",
                                               "LABEL dev.lmi-builder.role=bench", 'CMD ["/bin/true"]'])
    digest = None
    for event in client.api.push(repo, tag="1", stream=True, decode=True):
        if "error" in event:
            raise RuntimeError(event["error"])
        digest = (event.get("aux") or {}).get("Digest") or digest
    return f"{repo}@{digest}"


def _docker_build_push(ctx: Path, model: Path, props: str, base: str, host: str, tag: str) -> tuple[float, int]:
    from builder.engine import docker_client

    start = time.monotonic()
    (ctx / "serving.properties").write_text(props)
    lines = [f"FROM {base}"]
    lines += [f"COPY model/{f.name} /opt/ml/model/{f.name}" for f in sorted(model.iterdir())]
    lines += ["COPY serving.properties /opt/ml/model/serving.properties",
              "LABEL dev.lmi-builder.managed=true dev.lmi-builder.role=bench"]
    (ctx / "Dockerfile").write_text("\n".join(lines) + "\n")
    ref = f"{host}/bench/docker:{tag}"
    subprocess.run(["docker", "build", "-q", "-t", ref, str(ctx)], check=True, capture_output=True,
                   env={**os.environ, "DOCKER_BUILDKIT": "0"})
    client = docker_client("bench", timeout=900)
    pushed = 0
    for event in client.api.push(f"{host}/bench/docker", tag=tag, stream=True, decode=True):
        if "error" in event:
            raise RuntimeError(event["error"])
        if event.get("status") == "Pushed":
            pushed += 1
    return time.monotonic() - start, pushed


def _layer_blob_files(model: Path, resolved, work: Path, compression: str) -> list[Path]:
    """Our layers' compressed bytes (exactly what ours uploads), each written to a file (not timed)."""
    from builder.assembly.files import config_files
    from builder.assembly.layers import plan_layers
    from builder.registry.layerblobs import LayerStream

    out = []
    layers = plan_layers(model, None, config_files(resolved, {}), split_threshold=256 << 20,
                         blob_dir=work / "limit-small", base_layers=1)
    for i, layer in enumerate(layers):
        path = work / f"limit-{i}.blob"
        with open(path, "wb") as fh:
            for chunk in LayerStream(layer, compression):  # type: ignore[arg-type]
                fh.write(chunk)
        out.append(path)
    return out


def _cpu(pid: int | None = None) -> float:
    """CPU seconds (user + system) of this process's threads, or of process ``pid`` (the registry)."""
    if pid is None:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _settle() -> None:
    """Before a timed step: write back what earlier steps left dirty, so that the kernel does not
    throttle this step's writes for them (several GiB of registry data per model)."""
    os.sync()


def _limit(files: list[Path], work: Path) -> dict:
    """One monolithic curl PUT per blob into a fresh registry, and the sha256 rate over the same files."""
    import requests

    reg = _registry(work / "limit-registry")
    try:
        total = sum(f.stat().st_size for f in files)
        digests = []
        start = time.monotonic()
        for f in files:
            h = hashlib.sha256()
            with open(f, "rb") as fh:
                while block := fh.read(1 << 20):
                    h.update(block)
            digests.append("sha256:" + h.hexdigest())
        hash_s = time.monotonic() - start
        _settle()
        cpu0, reg0 = _children_cpu(), _cpu(reg.proc.pid)
        start = time.monotonic()
        for f, digest in zip(files, digests, strict=True):
            r = requests.post(f"http://{reg.host}/v2/bench/limit/blobs/uploads/", timeout=30)
            loc = requests.compat.urljoin(f"http://{reg.host}/", r.headers["Location"])
            sep = "&" if "?" in loc else "?"
            subprocess.run(["curl", "-sS", "-f", "-o", "/dev/null", "-T", str(f), "-H",
                            "Content-Type: application/octet-stream", f"{loc}{sep}digest={digest}"], check=True)
        mono_s = time.monotonic() - start
        cpu = _children_cpu() - cpu0 + _cpu(reg.proc.pid) - reg0
    finally:
        reg.stop()
        shutil.rmtree(work / "limit-registry", ignore_errors=True)
    return {"limit_put_s": round(mono_s, 3), "limit_cpu_s": round(cpu, 2), "limit_bytes": total,
            "sha256_s": round(hash_s, 3), "sha256_MBps": round(total / hash_s / 1e6)}


_BASELINE = """
import json, resource, sys, time
from pathlib import Path
from tests.integration.test_assemble_registry import make_resolved, push_base
host, model, work, compression = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
base = push_base(host, "bench/base")
resolved = make_resolved(work, {"model_loading_timeout": 60},
                         instance_type="m5.xlarge" if compression == "none" else "ml.m5.xlarge")
r0 = resource.getrusage(resource.RUSAGE_SELF)
start = time.monotonic()
fmt = "oci" if compression == "none" else "docker"
try:
    from builder.assembly import AssemblyRequest, assemble
except ImportError:  # a tree from before the one assembler protocol (builder/assembly)
    from builder.registry import assemble_in_registry
    res = assemble_in_registry(resolved, registry=f"{host}/bench/registry", base_ref=base, model_dir=model,
                               compiled_dir=None, extra_files={}, credentials=None, cache_dir=work / "cache",
                               compression=compression, manifest_format=fmt)
    sent = res.bytes_uploaded
else:
    res = assemble("registry", AssemblyRequest(resolved=resolved, registry=f"{host}/bench/registry", base_image=base,
                                               model_dir=model, cache_dir=work / "cache", compression=compression,
                                               manifest_format=fmt))
    sent = res.bytes_sent
s = round(time.monotonic() - start, 3)
r1 = resource.getrusage(resource.RUSAGE_SELF)
cpu = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
print(json.dumps({"s": s, "bytes": sent, "cpu": cpu}))
"""


def _baseline(tree: Path, model: Path, work: Path, compression: str) -> dict:
    """Cold assembly of the same model with the code in ``tree``, into a fresh registry of its own."""
    reg = _registry(work / "baseline-registry")
    try:
        (work / "baseline").mkdir()
        _settle()
        reg0 = _cpu(reg.proc.pid)
        proc = subprocess.run([sys.executable, "-c", _BASELINE, reg.host, str(model), str(work / "baseline"),
                               compression], cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)},
                              capture_output=True, text=True, check=True)
        got = json.loads(proc.stdout.strip().splitlines()[-1])
        reg_cpu = _cpu(reg.proc.pid) - reg0
    finally:
        reg.stop()
        shutil.rmtree(work / "baseline", ignore_errors=True)
        shutil.rmtree(work / "baseline-registry", ignore_errors=True)
    return {"baseline_s": got["s"], "baseline_bytes": got["bytes"], "baseline_cpu_s": round(got["cpu"] + reg_cpu, 2)}


def run_model(size_gib: float, shards: int, args, work: Path) -> list[dict]:
    from builder.assembly import AssemblyRequest
    from builder.registry.assemble import assemble
    from tests.integration.test_assemble_registry import make_resolved

    rows: list[dict] = []
    reg = _registry(work / "registry")
    try:
        model = work / "model"
        model.mkdir()
        per = int(size_gib * GIB) // shards
        for k in range(shards):
            _write_random(model / f"model-{k + 1:05d}-of-{shards:05d}.safetensors", per)
        (model / "config.json").write_text('{"model_type": "bench"}\n')
        base = _docker_base(reg.host, work) if not args.no_docker else None
        if base is None:
            from tests.integration.test_assemble_registry import push_base

            base = push_base(reg.host, "bench/base")
        ctx = work / "ctx"
        ctx.mkdir()
        if not args.no_docker:
            shutil.rmtree(ctx)
            ctx.mkdir()
            (ctx / "model").mkdir()
            for f in model.iterdir():
                os.link(f, ctx / "model" / f.name)  # hard links: the context needs real files
        timeout = [60]

        def props() -> str:
            return f"engine=Python\noption.model_loading_timeout={timeout[0]}\n"

        tools = size_gib <= args.tools_max_gib  # oras / crane rows: the small model only, unless asked
        use_oras = tools and args.oras and _oras_available()
        if use_oras:
            oras = OrasAssembler(reg.host, "bench/oras", base, work / "oras")
        scenarios = ["cold", "config-only", "one-shard-changed", "nothing-changed"]
        for name in scenarios:
            if name == "config-only":
                timeout[0] += 1
            if name == "one-shard-changed":
                shard = sorted(model.glob("*.safetensors"))[0]
                with open(shard, "r+b") as fh:
                    fh.write(os.urandom(4096))
            row = {"model": f"{size_gib:g} GiB / {shards} shard(s)", "scenario": name}
            if not args.no_docker:
                before = _stored_bytes(work / "registry")
                secs, pushed = _docker_build_push(ctx, model, props(), base, reg.host, name)
                row["docker_s"] = round(secs, 3)
                row["docker_layers_pushed"] = pushed
                row["docker_bytes"] = _stored_bytes(work / "registry") - before
            # uncompressed layers need an OCI manifest, which SageMaker (ml.*) refuses: an EC2 target then
            resolved = make_resolved(work, {"model_loading_timeout": timeout[0]},
                                     instance_type="m5.xlarge" if args.compression == "none" else "ml.m5.xlarge")
            if name == "cold" and args.baseline_tree:
                row.update(_baseline(args.baseline_tree, model, work, args.compression))
            if name == "cold" and args.limit:
                files = _layer_blob_files(model, resolved, work, args.compression)
                row.update(_limit(files, work))
                for f in files:
                    f.unlink()
            _settle()
            load = os.getloadavg()[0]
            cpu0, reg0 = _cpu(), _cpu(reg.proc.pid)
            start = time.monotonic()
            res = assemble(AssemblyRequest(resolved=resolved, registry=f"{reg.host}/bench/registry", base_image=base,
                                           model_dir=model, cache_dir=work / "cache", compression=args.compression,
                                           manifest_format="oci" if args.compression == "none" else "docker",
                                           workers=args.workers))
            row["registry_s"] = round(time.monotonic() - start, 3)
            row["registry_cpu_s"] = round(_cpu() - cpu0 + _cpu(reg.proc.pid) - reg0, 2)
            row["registry_bytes"] = res.bytes_sent
            row["registry_layers_uploaded"] = sum(1 for x in res.layers if x.uploaded)
            row["load_1m"] = round(load, 2)
            if "limit_put_s" in row:
                row["ours_vs_limit"] = round(row["registry_s"] / row["limit_put_s"], 2)
            if "baseline_s" in row:
                row["baseline_vs_ours"] = round(row["baseline_s"] / row["registry_s"], 2)
            if use_oras:
                secs, sent = oras.assemble(resolved, model, f"oras-{name}")
                row["oras_s"], row["oras_bytes"] = round(secs, 3), sent
            rows.append(row)
            print(json.dumps(row), flush=True)
        if args.crane and tools:
            rows.append(_crane_cold(args.crane, model, reg.host, base, work))
            print(json.dumps(rows[-1]), flush=True)
    finally:
        reg.stop()
        _remove_images(reg.host)
    return rows


class OrasAssembler:
    """The same image made with oras-py's own calls for the registry side (``blob_exists``,
    ``upload_blob``, ``upload_manifest``; no cross-repo mount in oras-py, so base blobs are copied).
    Planning, tar bytes and the stat memo are ours (oras-py has neither), so the column measures the
    transport; ``upload_blob`` takes a path, so each new layer tar is first written to disk."""

    def __init__(self, host: str, repo: str, base: str, work: Path):
        import oras.provider

        from builder.registry import reference
        from builder.registry.assemble import read_base
        from builder.registry.client import RegistryClient

        self.reg = oras.provider.Registry(hostname=host, insecure=True)
        self.target = f"{host}/{repo}"
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self.memo: dict[str, object] = {}  # layer_key -> LayerBlob, like our LayerMemo
        self.base = read_base(RegistryClient(host, None, stage="bench"), reference.parse(base, what="base"))
        self.base_repo = reference.parse(base, what="base").repo

    def _upload_file(self, path: Path, desc: dict, container) -> int:
        if self.reg.blob_exists(desc, container):
            return 0
        r = self.reg.upload_blob(str(path), container, desc)
        if r.status_code not in (200, 201, 202):
            raise RuntimeError(f"oras upload_blob {desc['digest']}: {r.status_code} {r.text[:200]}")
        return int(desc["size"])

    def assemble(self, resolved, model: Path, tag: str) -> tuple[float, int]:
        from builder.assembly.files import config_files
        from builder.assembly.layers import plan_layers
        from builder.registry.imageconfig import build_config
        from builder.registry.layerblobs import LayerStream, canonical_json, layer_key
        from builder.registry.manifest import build_manifest

        start = time.monotonic()
        container = self.reg.get_container(f"{self.target}:{tag}")
        sent = 0
        for desc in self.base.layers:  # tiny base: download and re-upload (no mount in oras-py)
            if not self.reg.blob_exists(desc, container):
                path = self.work / "base.blob"
                self.reg.download_blob(f"{self.target.split('/')[0]}/{self.base_repo}", desc["digest"], str(path))
                sent += self._upload_file(path, desc, container)
        layers = plan_layers(model, None, config_files(resolved, {}), split_threshold=256 << 20,
                             blob_dir=self.work / "small")
        ours = []
        for layer in layers:
            key = layer_key(layer, "none")
            blob = self.memo.get(key)
            if blob is not None and self.reg.blob_exists({"digest": blob.digest, "size": blob.size}, container):
                ours.append((layer, blob))
                continue
            path = self.work / "layer.tar"
            stream = LayerStream(layer, "none")
            with open(path, "wb") as fh:
                for chunk in stream:
                    fh.write(chunk)
            blob = stream.result()
            sent += self._upload_file(path, {"digest": blob.digest, "size": blob.size}, container)
            path.unlink()
            self.memo[key] = blob
            ours.append((layer, blob))
        config = canonical_json(build_config(self.base.config, ours, labels={}, env={}))
        cfg_path = self.work / "config.json"
        cfg_path.write_bytes(config)
        cfg_digest = "sha256:" + hashlib.sha256(config).hexdigest()
        sent += self._upload_file(cfg_path, {"digest": cfg_digest, "size": len(config)}, container)
        manifest = json.loads(build_manifest(self.base.layers, config, cfg_digest, [b for _, b in ours],
                                             base_digest=self.base.digest, fmt="oci", compression="none"))
        r = self.reg.upload_manifest(manifest, container)  # oras-py always PUTs (no existence check)
        if r.status_code not in (200, 201):
            raise RuntimeError(f"oras upload_manifest: {r.status_code} {r.text[:200]}")
        sent += len(json.dumps(manifest))
        return time.monotonic() - start, sent


def _oras_available() -> bool:
    try:
        import oras.provider  # noqa: F401  (optional: never a dependency of the package)
    except ImportError:
        return False
    return True


def _remove_images(host: str) -> None:
    """Remove only the images this run tagged under its own registry host."""
    try:
        from builder.engine import docker_client

        client = docker_client("bench")
        for image in client.images.list():
            refs = list(image.tags) + list(image.attrs.get("RepoDigests") or [])
            if any(r.startswith(f"{host}/bench/") for r in refs):
                client.images.remove(image.id, force=True)
    except Exception:  # no engine (--no-docker) or already gone
        pass


def _crane_cold(crane: str, model: Path, host: str, base: str, work: Path) -> dict:
    """crane append of the same files (tar written first; crane gzips): cold, config-only, nothing changed
    (the cold append again: crane has no memo, so it gzips every layer again to learn its digest)."""
    out = {"model": "crane", "scenario": "cold+config-only"}
    start = time.monotonic()
    tars = []
    for f in sorted(model.glob("*.safetensors")):
        t = work / f"{f.name}.tar"
        subprocess.run(["tar", "--sort=name", "--mtime=@0", "--owner=0", "--group=0", "-C", str(model.parent),
                        "-cf", str(t), f"model/{f.name}"], check=True)
        tars.append(t)
    args = [crane, "append", "--insecure", "-b", base, "-t", f"{host}/bench/crane:1"]
    for t in tars:
        args += ["-f", str(t)]
    subprocess.run(args, check=True, capture_output=True)
    out["crane_cold_s"] = round(time.monotonic() - start, 3)
    cfg = work / "cfg.tar"
    (work / "serving.properties").write_text("engine=Python\n")
    subprocess.run(["tar", "-C", str(work), "-cf", str(cfg), "serving.properties"], check=True)
    start = time.monotonic()
    subprocess.run([crane, "append", "--insecure", "-b", f"{host}/bench/crane:1", "-t", f"{host}/bench/crane:2",
                    "-f", str(cfg)], check=True, capture_output=True)
    out["crane_config_only_s"] = round(time.monotonic() - start, 3)
    start = time.monotonic()  # nothing changed: crane re-tars nothing here but re-reads and gzips every layer
    subprocess.run(args[:-2 * len(tars)] + sum((["-f", str(t)] for t in tars), []), check=True, capture_output=True)
    out["crane_nothing_changed_s"] = round(time.monotonic() - start, 3)
    return out


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bench assemble")
    p.add_argument("--sizes", default="1,8", help="model sizes in GiB, comma separated (default 1,8)")
    p.add_argument("--shards", default="1,8", help="shards per model, same order as --sizes")
    p.add_argument("--no-docker", action="store_true", help="registry assembler only")
    p.add_argument("--compression", choices=["none", "gzip"], default="gzip",
                   help="gzip: stored-block gzip layers (default); none: uncompressed (OCI manifest only)")
    p.add_argument("--results", type=Path, default=RESULTS, help=f"JSON output (default {RESULTS})")
    p.add_argument("--no-oras", dest="oras", action="store_false",
                   help="skip the oras-py column (only measured when `import oras` works)")
    p.add_argument("--tools-max-gib", type=float, default=1.0,
                   help="oras / crane rows only for models up to this size (default 1)")
    p.add_argument("--crane", default=os.environ.get("LMI_BENCH_CRANE") or shutil.which("crane"),
                   help="crane binary for a comparison row (go install ...crane@v0.22.1)")
    p.add_argument("--workers", type=int, default=None,
                   help="layers uploaded at once (default: LMI_BUILD_UPLOAD_WORKERS, else the core count)")
    p.add_argument("--no-limit", dest="limit", action="store_false",
                   help="skip the machine's-limit columns (monolithic curl PUT of the same bytes, sha256 rate)")
    p.add_argument("--baseline-tree", type=Path, default=None,
                   help="also assemble each cold model with the code in this folder (before/after, same run)")
    args = p.parse_args(argv)
    sizes = [float(x) for x in args.sizes.split(",")]
    shards = [int(x) for x in args.shards.split(",")]
    if len(sizes) != len(shards):
        print("--sizes and --shards need the same number of entries", file=sys.stderr)
        return 2
    if args.baseline_tree and not (args.baseline_tree / "builder").is_dir():
        print(f"--baseline-tree={args.baseline_tree}: no builder/ package there", file=sys.stderr)
        return 2
    if args.workers is not None and args.workers < 1:
        print("--workers must be at least 1", file=sys.stderr)
        return 2
    rows: list[dict] = []
    for size, n in zip(sizes, shards, strict=True):
        with tempfile.TemporaryDirectory(prefix="lmi-bench-assemble-") as tmp:
            rows += run_model(size, n, args, Path(tmp))
    cols = [("docker_s", "docker s"), ("docker_bytes", "docker bytes"), ("baseline_s", "before s"),
            ("registry_s", "ours s"), ("registry_bytes", "ours bytes"), ("limit_put_s", "1 PUT s"),
            ("sha256_MBps", "sha256 MB/s"), ("ours_vs_limit", "ours/PUT"), ("baseline_cpu_s", "before cpu"),
            ("registry_cpu_s", "ours cpu"), ("limit_cpu_s", "PUT cpu"), ("load_1m", "load"),
            ("oras_s", "oras-py s"), ("oras_bytes", "oras-py bytes")]
    print(f"\n{'model':<22}{'scenario':<19}" + "".join(f"{h:>15}" for _, h in cols))
    for r in rows:
        if "registry_s" in r:
            print(f"{r['model']:<22}{r['scenario']:<19}" + "".join(f"{r.get(k, '-')!s:>15}" for k, _ in cols))
        else:
            print(json.dumps(r))
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows},
                                       indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
