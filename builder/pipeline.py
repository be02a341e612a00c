"""The build pipeline: validate -> resolve -> fetch -> compile -> bake -> smoke -> publish.

Each stage is a function over typed inputs and results; this module only wires them, records
each stage in the ``BuildRecord`` (passed / cached / skipped with a reason / failed) and prints a
one-screen summary. A failure names its stage and stops the build.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from builder import console, labels
from builder.diagnostics import BuilderError, DiagnosticError, has_errors
from builder.record import BuildRecord

SmokeMode = Literal["auto", "always", "never"]


class BuildOptions(BaseModel):
    recipe: Path
    report: Path | None = None
    cache_dir: Path | None = None
    base_image: str | None = None
    allow_unpinned_base: bool = False
    no_cache: bool = False
    pull: bool = False
    tags: list[str] = Field(default_factory=list)
    smoke: SmokeMode = "auto"
    force_smoke: bool = False
    accelerators: Literal["auto", "none"] = "auto"
    push: bool = False
    registry: str | None = None
    assembler: Literal["docker", "registry"] = "docker"
    manifest_format: Literal["docker", "oci"] = "docker"  # registry assembler (builder/registry/manifest.py)
    compile_executor: Literal["docker", "local"] | None = None
    skip_smoke: bool = False
    allow_dev_runtime: bool = False
    lmi_check: bool = False
    cache_remote: str | None = None  # s3://bucket/prefix/ behind the caches (None: LMI_BUILD_CACHE_REMOTE)
    s3: str | None = None  # S3 artifacts for the stock image (builder/publish/s3_publish.py)
    s3_prune: bool = False


def run_build(opts: BuildOptions) -> BuildRecord:
    _check_options(opts)
    record = BuildRecord(recipe_file=str(opts.recipe))
    record_dir = _record_dir(opts)
    target = opts.report or (record_dir / "build-record.json")
    try:
        _run(opts, record, record_dir)
        record.ok = True
    except BaseException:
        record.ok = False
        try:
            record.write(target)
        except OSError as exc:  # the build's own error is the one to report; this one is said beside it
            console.warn(f"could not write the build record to {target}: {exc.strerror or exc}")
        raise
    try:  # a record that cannot be written fails the build: CI reads it (issue 15 item 8)
        record.write(target)
    except OSError as exc:
        from builder.atomic import os_error_message

        text, hint = os_error_message(exc)
        raise BuilderError(f"the build passed but its record could not be written: {text}", stage="record",
                           hint=hint) from None
    record.inputs.setdefault("record_path", str(target))
    return record


def _check_options(opts: BuildOptions) -> None:
    """Option combinations that cannot work are usage errors now, not after the fetch and the bake."""
    from builder.diagnostics import UsageError

    if opts.assembler == "registry" and not opts.registry:
        raise UsageError("--assembler registry needs --registry HOST[:PORT]/REPO")
    if opts.report is not None and opts.report.is_dir():
        raise UsageError(f"--report {opts.report} is a folder; give the file the build record is written to",
                         hint=f"e.g. --report {opts.report / 'build-record.json'}")
    if opts.manifest_format != "docker" and opts.assembler != "registry":
        raise UsageError(f"--manifest-format {opts.manifest_format} needs --assembler registry "
                         "(docker push writes Docker v2 schema 2 manifests)")
    if opts.registry:
        from builder.publish.models import split_registry

        try:
            split_registry(opts.registry)
        except ValueError as exc:
            raise UsageError(f"--registry: {exc}") from None
    if opts.s3:
        from builder.publish.s3_publish import check_uri

        check_uri(opts.s3)
    if opts.tags and opts.assembler == "docker":
        from builder.image.bake import check_tags

        try:
            check_tags(opts.tags)
        except BuilderError as exc:
            raise UsageError(str(exc), hint=exc.hint) from None


def _record_dir(opts: BuildOptions) -> Path:
    if opts.report:
        return opts.report.resolve().parent
    from builder.paths import cache_dir

    # the pid keeps two builds started in the same second from sharing (and overwriting) one record
    return cache_dir(opts.cache_dir) / "builds" / f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"


def _run(opts: BuildOptions, record: BuildRecord, record_dir: Path) -> None:
    # ---------------------------------------------------------------- validate
    with record.timed("validate") as st:
        console.step(f"validate {opts.recipe}")
        from builder.validation import validate_path

        loaded, diags = validate_path(opts.recipe, cache_dir=opts.cache_dir)
        for d in diags:
            if d.severity != "error":  # errors travel in the DiagnosticError; the CLI prints them once
                console.info(d.format())
        st.details["warnings"] = sum(1 for d in diags if d.severity == "warning")
        if has_errors(diags) or loaded.recipe is None:
            st.status = "failed"
            raise DiagnosticError([d for d in diags if d.severity == "error"])
    recipe = loaded.recipe
    if opts.push and not (recipe.publish.ecr or recipe.publish.registry or recipe.publish.s3 or opts.registry
                          or opts.s3):  # said now, not after the fetch and the bake (issue 15 item 11)
        from builder.diagnostics import UsageError

        raise UsageError(f"--push: {opts.recipe} has no publish target (publish.ecr, publish.registry or "
                         "publish.s3) and no --registry or --s3 was given",
                         hint="add a publish: section to the recipe, pass --registry HOST[:PORT]/REPO or --s3 "
                              "s3://bucket/prefix/, or build without --push")
    if opts.s3 or (opts.push and recipe.publish.s3):  # S3 artifacts need the fetched model: say so now
        from builder.publish.s3_publish import require_model

        require_model(recipe)
    if opts.assembler == "registry":  # a format the target refuses (SageMaker: OCI): now, before fetch or upload
        from builder.registry.assemble import check_target

        check_target(opts.manifest_format, "gzip", recipe.target.instance_type)

    # ----------------------------------------------------------------- resolve
    with record.timed("resolve") as st:
        from builder.lmi.resolve import resolve

        resolved = resolve(recipe)
        record.recipe_hash = resolved.recipe_hash
        record.resolved = resolved.to_json()
        record.inputs.update({"recipe_file": str(opts.recipe), "recipe_hash": resolved.recipe_hash,
                              "lmi": f"{resolved.release.family} {resolved.release.version}",
                              "instance_type": resolved.instance.name})
        # the image tag is the digest of every input (builder/image/identity.py): known at bake
        st.details["recipe_hash12"] = resolved.recipe_hash[:12]
        if opts.lmi_check:
            _lmi_check(resolved, st)

    # ------------------------------------------------------------------- fetch
    artifacts = None
    with record.timed("fetch") as st:
        if not recipe.model.bake:
            st.status, st.reason = "skipped", "model.bake is false: the image downloads option.model_id at start"
        else:
            from builder.artifacts.sources import fetch_model

            console.step(f"fetch model ({recipe.model.source_kind})")
            artifacts = fetch_model(recipe, loaded.base_dir, cache_dir=opts.cache_dir, cache_remote=opts.cache_remote)
            st.details.update({"cache_origin": artifacts.origin, "digest": artifacts.digest, "files": len(artifacts.files),
                               "bytes": sum(f.size for f in artifacts.files), "revision": artifacts.revision})
            if artifacts.cached:
                st.status = "cached"
            record.inputs["model_digest"] = artifacts.digest

    # ----------------------------------------------------------------- runtime
    base_image = opts.base_image
    with record.timed("runtime") as st:
        if resolved.release.family == "dev-cpu" and not base_image:
            if resolved.entry_point == "djl_python.huggingface":
                # LMI's HF accelerate handler needs torch + transformers: the runtime's hf variant
                from builder.runtime.hf import ensure_hf_runtime

                console.step("dev-cpu runtime (hf variant: torch + transformers)")
                runtime = ensure_hf_runtime(opts.cache_dir)
            else:
                from builder.runtime.devcpu import ensure_devcpu_runtime

                console.step("dev-cpu runtime")
                runtime = ensure_devcpu_runtime(opts.cache_dir)
            base_image = runtime.image_id
            st.details.update({"ref": runtime.ref, "image_id": runtime.image_id,
                               "djl_python": runtime.djl_python_version})
            st.status = "passed" if runtime.built else "cached"
            if opts.assembler == "registry" and opts.registry:
                base_image = _runtime_into_registry(runtime, opts.registry, opts.cache_dir)
                st.details["registry_base"] = base_image
        else:
            st.status, st.reason = "skipped", "the runtime is a published LMI image (pinned by digest at bake)"
        base_image = base_image or resolved.base_image

    # ----------------------------------------------------------------- compile
    compiled = None
    with record.timed("compile") as st:
        if not recipe.compile.enabled:
            st.status, st.reason = "skipped", "compile.enabled is false"
        elif artifacts is None:
            st.status, st.reason = "skipped", "no baked model to compile (model.bake is false)"
        else:
            from builder.compile.run import compile_artifacts

            executor = opts.compile_executor or recipe.compile.executor
            compiled = compile_artifacts(resolved, artifacts, base_image or "", executor=executor,
                                         cache_dir=opts.cache_dir, cache_remote=opts.cache_remote)
            st.details.update({"cache_origin": compiled.origin, "cache_remote": compiled.remote})
            st.status = {"compiled": "passed", "cached": "cached", "skipped": "skipped"}[compiled.status]
            st.reason = compiled.reason
            st.details.update({"cache_key": compiled.cache_key, "toolchain": compiled.toolchain})
            if compiled.status != "skipped" and compiled.properties_overrides:
                # the runtime must load the compiled artifacts instead of compiling again (§11.5)
                resolved.properties.update(compiled.properties_overrides)
            if compiled.status == "skipped":
                raise BuilderError(f"compile did not run: {compiled.reason}", stage="compile",
                                   hint="set compile.enabled: false to let LMI compile at start-up (JIT), or "
                                        "build on a runner with the target's accelerator")

    # -------------------------------------------------------------------- bake
    extra_files = _handler_files(recipe, loaded.base_dir)
    image_ref: str
    with record.timed("bake") as st:
        from builder.assembly import AssemblyRequest, assemble

        # a compiled repository holds what the runtime loads (engines/NEFFs + config + tokenizer): it is
        # baked in place of the raw weights
        model_dir = compiled.dir if compiled and compiled.dir else (artifacts.dir if artifacts else None)
        in_registry = opts.assembler == "registry"
        console.step(f"assemble in registry {opts.registry}" if in_registry else "bake image")
        request = AssemblyRequest(
            resolved=resolved, model_dir=model_dir, model_digest=artifacts.digest if artifacts else None,
            extra_files=extra_files, base_image=base_image,
            compile_labels=compiled.toolchain if compiled else None,
            compile_key=compiled.cache_key if compiled else None, recipe_file=opts.recipe, cache_dir=opts.cache_dir,
            tags=tuple(opts.tags), no_cache=opts.no_cache, pull=opts.pull,
            allow_unpinned_base=opts.allow_unpinned_base or resolved.release.family == "dev-cpu" and not opts.base_image,
            registry=opts.registry, manifest_format=opts.manifest_format,
            credentials=_registry_credentials(opts.registry) if in_registry else None,
            base_credentials=_registry_credentials(base_image or "") if in_registry else None)
        image = assemble(opts.assembler, request)
        image_ref = image.reference
        record.image = image.model_dump(mode="json")
        st.details.update({"reference": image.reference, "image_id": image.image_id, "bytes_sent": image.bytes_sent,
                           "reused": image.reused, "image_digest": image.identity.digest})
        if image.reused:
            st.status = "cached"
        # the tag digest and what it is made of (both assemblers)
        record.inputs.update({"base_digest": image.base.digest, "image_digest": image.identity.digest,
                              "image_inputs": image.identity.inputs.model_dump(mode="json")})

    # ------------------------------------------------------------------- smoke
    smoke_status = "skipped"
    with record.timed("smoke") as st:
        if opts.smoke == "never":
            st.status, st.reason = "skipped", "--smoke never"
        else:
            from builder import ledger
            from builder.smoke.run import smoke_test

            pulled = None
            image_id = image.image_id  # registry: the config digest, the engine's id of the pulled image
            previous = ledger.lookup(image_id, opts.cache_dir) if not opts.force_smoke else None
            if previous is not None and previous.status == "passed":
                st.status = "cached"
                st.reason = f"this exact image ({image_id[:19]}) passed at {previous.finished_at}; --force-smoke reruns"
                smoke_status = "passed"
            else:
                console.step("smoke test")
                accelerators = opts.accelerators
                if accelerators == "auto" and resolved.instance.kind == "cpu":
                    accelerators = "none"
                unavailable = _smoke_host_gap(resolved.instance.kind, accelerators) \
                    if opts.assembler == "registry" else None
                if unavailable:
                    # decided before pulling a multi-GB image only to find it cannot run here
                    if opts.smoke == "always":
                        raise BuilderError(f"smoke test cannot run: {unavailable}", stage="smoke",
                                           hint="--smoke auto reports this as SKIPPED; build on a runner with "
                                                "the target's accelerator")
                    ledger_skip = ledger.SmokeOutcome(image_id=image_id, status="skipped", reason=unavailable)
                    if previous is None:
                        ledger.record(ledger_skip, opts.cache_dir)
                    st.status, st.reason = "skipped", unavailable
                    smoke_status = "skipped"
                else:
                    if opts.assembler == "registry":
                        # the pinned digest is what gets tested and published; pulled into the engine only for this
                        from builder.registry import pull_for_smoke

                        pulled = pull_for_smoke(image_ref, credentials=_registry_credentials(image_ref))
                    result = _run_smoke(smoke_test, image_ref, opts, accelerators, record_dir, pulled)
                    st.details.update(result.model_dump(mode="json"))
                    st.status, st.reason = result.status, result.reason
                    smoke_status = result.status
                    if result.status == "failed":
                        raise BuilderError(f"smoke test failed: {result.reason}", stage="smoke")

    # ----------------------------------------------------------------- publish
    from builder.publish.s3_publish import s3_uri_for

    s3_uri = s3_uri_for(recipe, opts.s3, opts.push)
    with record.timed("publish") as st:
        if not opts.push and not s3_uri:
            st.status, st.reason = "skipped", "not requested (--push)"
        elif opts.push and (not s3_uri or opts.registry or opts.assembler == "registry"
                            or recipe.publish.ecr or recipe.publish.registry):
            if opts.assembler == "registry":
                record.published = _publish_in_place(image_ref, record, resolved, opts)
            else:
                from builder.publish.recipe import publish_from_recipe

                outcome = publish_from_recipe(image_ref, recipe, opts, smoke_status=smoke_status)
                record.published = [t.model_dump(mode="json") if hasattr(t, "model_dump") else t
                                    for t in outcome.targets]
            st.details["targets"] = record.published
        if s3_uri:
            from builder.publish.s3_publish import publish_stage

            record.published.append(publish_stage(resolved, s3_uri, artifacts=artifacts, compiled=compiled,
                                                  extra_files=extra_files, stand_in=base_image, smoke=opts.smoke,
                                                  prune=opts.s3_prune, log_dir=record_dir,
                                                  smoke_status=smoke_status, skip_smoke=opts.skip_smoke))
            st.details["targets"] = record.published

    _summary(record, resolved, image_ref)


def _run_smoke(smoke_test: Any, image_ref: str, opts: BuildOptions, accelerators: str, record_dir: Path,
               pulled: str | None):
    try:
        return smoke_test(image_ref, mode=opts.smoke, accelerators=accelerators, log_dir=record_dir,
                          cache_dir=opts.cache_dir)
    finally:
        if pulled:
            from builder.registry import remove_pulled

            remove_pulled(image_ref)


def _smoke_host_gap(kind: str, accelerators: str) -> str | None:
    """Why this host cannot run the image at all (no engine; no device of the target's kind), or None.

    Only a host-level look: whether Docker can hand the GPUs to a container is the smoke stage's own
    check (it reports "no GPU runtime" itself)."""
    import glob

    try:
        from builder.engine import docker_client

        docker_client("smoke", timeout=10)
    except BuilderError:
        return "no Docker engine on this host to run the image in"
    if accelerators == "none":
        return None
    if kind == "gpu" and not glob.glob("/dev/nvidia[0-9]*"):
        return "the target needs NVIDIA GPUs and this host has none (no /dev/nvidia*)"
    if kind == "neuron" and not glob.glob("/dev/neuron*"):
        return "the target needs Neuron devices and this host has none (no /dev/neuron*)"
    return None


def _runtime_into_registry(runtime: Any, registry: str, cache_dir: Path | None = None) -> str:
    """Registry assembly appends layers to a base that lives in a registry. The dev-cpu runtime is
    built locally, so it is pushed once to the target registry's host: under a lock per (registry,
    runtime image), and only when the registry does not already hold this image (HEAD first), so two
    builds at once neither push twice nor remove the local name the other is pushing (issue 15 item 9)."""
    import hashlib

    from filelock import FileLock

    from builder.engine import docker_client
    from builder.paths import cache_dir as _cache_dir
    from builder.publish.push import PushError, push_tag, pushed_name
    from builder.registry.client import RegistryClient

    host = registry.split("/", 1)[0]
    path = "lmi-build/dev-cpu"
    repo = f"{host}/{path}"
    tag = runtime.ref.rsplit(":", 1)[-1]
    creds = _registry_credentials(registry)
    api = RegistryClient(host, creds, stage="runtime")

    def present() -> str | None:  # the registry's digest of this very image at repo:tag, else None
        import json

        digest = api.manifest_digest(path, tag)
        if digest is None:
            return None
        body, _, _ = api.get_manifest(path, digest)
        try:
            config = (json.loads(body).get("config") or {}).get("digest")
        except ValueError:
            return None
        return digest if config == runtime.image_id else None

    locks = _cache_dir(cache_dir) / "runtime"
    locks.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(f"{host}|{runtime.image_id}".encode()).hexdigest()[:16]
    with FileLock(str(locks / f"push-{key}.lock")):
        digest = present()
        if digest is not None:
            console.info(f"  {repo}:{tag} already holds this runtime ({digest[:19]}): not pushed")
            return f"{repo}@{digest}"
        client = docker_client("runtime")
        auth = {"username": creds.username, "password": creds.password.get_secret_value()} if creds else None
        try:
            with pushed_name(client, runtime.image_id, repo, tag):  # only the local name made for the push
                outcome = push_tag(client, repo, tag, auth)
        except PushError:
            # a build with another cache folder (another lock) may have pushed it meanwhile
            digest = present()
            if digest is None:
                raise
            return f"{repo}@{digest}"
    if not outcome.digest:
        raise BuilderError(f"pushing the dev-cpu runtime to {repo} returned no digest", stage="runtime")
    return f"{repo}@{outcome.digest}"


def _registry_credentials(ref: str):
    """Credentials for a registry host from Docker's config (never from argv, never logged)."""
    host = ref.split("/", 1)[0] if "/" in ref else ""
    if not host or ("." not in host and ":" not in host and host != "localhost"):
        return None
    from builder.publish.credentials import from_docker_config

    return from_docker_config(host)


def _publish_in_place(pinned: str, record: BuildRecord, resolved: Any, opts: BuildOptions) -> list[dict]:
    """An image assembled in its target registry is published by moving tags onto its digest
    (verified by read-back in ``move_tag``), after the same gate as a pushed image."""
    from builder.publish import gate
    from builder.publish.tags import tags_for
    from builder.registry import move_tag

    recipe = resolved.recipe
    image_labels = {labels.DEV_RUNTIME: "true"} if resolved.release.family == "dev-cpu" else {}
    smoke, _ = gate.check(record.image.get("image_id") or pinned, image_labels, skip_smoke=opts.skip_smoke,
                          allow_dev_runtime=opts.allow_dev_runtime,
                          cache_dir=str(opts.cache_dir) if opts.cache_dir else None)
    digest = record.inputs.get("image_digest") or ""  # the assembled image's identity: the default tag
    variables = {"name": recipe.name, "image_digest": digest.removeprefix("sha256:") or None,
                 "image_digest12": digest.removeprefix("sha256:")[:12] or None, "recipe_hash": resolved.recipe_hash,
                 "recipe_hash12": resolved.recipe_hash[:12], "lmi_version": resolved.release.version,
                 "git_sha": None}
    moved = []
    creds = _registry_credentials(pinned)
    for tag in tags_for(recipe.name, digest, recipe.publish.tags, variables):
        move = move_tag(pinned, tag, credentials=creds)
        moved.append({"tag": tag, "moved": move.moved, "previous": move.previous})
    return [{"registry": opts.registry, "pinned": pinned, "tags": moved, "smoke": smoke, "verified": True}]


def _lmi_check(resolved: Any, st: Any) -> None:
    """LMI's own djl_python validator as a second opinion (never a gate), fed what Java would pass."""
    from builder.lmi_check_compare import validator_input
    from builder.runtime.lmi_check import lmi_check

    li = validator_input(resolved)
    verdict = lmi_check(li.backend, li.options, env=li.env)
    st.details["lmi_check"] = verdict.model_dump(mode="json")
    console.info(f"LMI djl_python {verdict.djl_python_version or '?'} {verdict.validator or ''}: "
                 f"{'accepts' if verdict.ok else 'rejects' if verdict.ok is False else 'not run'}"
                 + (f": {verdict.message}" if verdict.message else ""))


def _handler_files(recipe: Any, base_dir: Path) -> dict[str, Path]:
    """Custom handler, its extra files and requirements.txt, baked beside serving.properties."""
    files: dict[str, Path] = {}
    if recipe.model.entry_point:
        src = (base_dir / recipe.model.entry_point).resolve()
        files[src.name] = src
        for extra in recipe.model.files:
            p = (base_dir / extra).resolve()
            files[Path(extra).name] = p
    if recipe.model.requirements:
        files["requirements.txt"] = (base_dir / recipe.model.requirements).resolve()
    return files


def _summary(record: BuildRecord, resolved: Any, image_ref: str) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"{resolved.recipe.name}  ({resolved.release.family} {resolved.release.version}, "
                        f"{resolved.instance.name})", show_lines=False)
    table.add_column("stage")
    table.add_column("status")
    table.add_column("seconds", justify="right")
    table.add_column("note")
    colours = {"passed": "green", "cached": "cyan", "skipped": "yellow", "failed": "red"}
    for s in record.stages:
        table.add_row(s.name, f"[{colours[s.status]}]{s.status.upper()}[/]", f"{s.seconds:.2f}", escape(s.reason[:90]))
    console.console().print(table)
    tags = record.image.get("tags") or []
    console.info(f"image: {image_ref}" + (f"  tags: {', '.join(tags)}" if tags else ""))
    for target in record.published:
        ref = target.get("pinned") or target.get("reference")
        if ref:
            console.info(f"published: {ref}")


def image_for_recipe(path: str | os.PathLike, client: Any = None) -> str:
    """The local image a recipe was last built to, for smoke/serve/predict given a recipe file.

    The tag (``<name>:<image-digest-12>``) depends on the model and handler files and the base, not the
    recipe alone, so it is looked up: the engine's model images labelled with this recipe's name and
    hash, the most recently tagged first (a build that reuses an image tags it again)."""
    from builder.diagnostics import UsageError
    from builder.lmi.resolve import resolve
    from builder.recipe import load_or_raise

    loaded = load_or_raise(Path(path))
    resolved = resolve(loaded.recipe)
    if client is None:
        from builder.engine import docker_client

        client = docker_client("smoke")
    name = resolved.recipe.name
    found = client.api.images(filters={"label": [f"{labels.RECIPE_HASH}={resolved.recipe_hash}",
                                                 f"{labels.RECIPE_NAME}={name}", f"{labels.ROLE}=model"]})
    candidates = []
    for image in found:
        ours = sorted(t for t in image.get("RepoTags") or [] if t.startswith(f"{name}:"))
        if ours:
            attrs = client.api.inspect_image(image["Id"])
            when = (attrs.get("Metadata") or {}).get("LastTagTime") or attrs.get("Created") or ""
            candidates.append((_instant(when), ours[0]))
    if not candidates:
        raise UsageError(f"{path}: no local image built from this recipe (recipe hash {resolved.recipe_hash[:12]})",
                         hint=f"build it first: lmi-build build {path}")
    return max(candidates)[1]


def _instant(text: str) -> tuple[str, str]:
    """An engine timestamp (RFC 3339, UTC, 0-9 fraction digits) as a key that sorts by time."""
    import re

    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?", text)
    return (m.group(1), (m.group(2) or "").ljust(9, "0")) if m else ("", "")


__all__ = ["BuildOptions", "image_for_recipe", "run_build"]
