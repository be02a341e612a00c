"""runtime: which base image the bake builds FROM.

A published LMI image is pinned by digest at bake (SKIPPED here). The dev-cpu family's runtime is built
locally (builder/runtime/devcpu.py; the ``hf`` variant with torch + transformers for LMI's HF accelerate
handler) and, for registry assembly, pushed once to the target registry's host.
"""

from __future__ import annotations

from typing import Any

from builder.diagnostics import BuilderError
from builder.stages.base import Frozen, StageResult
from builder.stages.resolve import ResolvedBuild, ResolvedModels


class RuntimeImage(StageResult):
    base_image: str | None  # what the bake builds FROM: --base-image, the local runtime, or the release's image
    local_runtime: bool = False  # the dev-cpu runtime built here (not a published LMI image)


class Inputs(Frozen):
    build: ResolvedBuild


def runtime(ctx, inputs: Inputs) -> RuntimeImage:
    resolved = inputs.build.resolved
    return base_for(ctx, resolved.release.family, hf=resolved.entry_point == "djl_python.huggingface",
                    published=resolved.base_image)


def base_for(ctx, family: str, *, hf: bool, published: str | None) -> RuntimeImage:
    """The single- and multi-model builds' runtime rule: ``hf`` when a model runs LMI's HF handler."""
    opts = ctx.options
    if family != "dev-cpu" or opts.base_image:
        return RuntimeImage(base_image=opts.base_image or published, status="skipped",
                            reason="the runtime is a published LMI image (pinned by digest at bake)")
    if hf:
        from builder.runtime.hf import ensure_hf_runtime

        ctx.reporter.step("dev-cpu runtime (hf variant: torch + transformers)")
        made = ensure_hf_runtime(ctx.cache.dir, client=ctx.engine("runtime"))
    else:
        from builder.runtime.devcpu import ensure_devcpu_runtime

        ctx.reporter.step("dev-cpu runtime")
        made = ensure_devcpu_runtime(ctx.cache.dir, client=ctx.engine("runtime"))
    details: dict[str, Any] = {"ref": made.ref, "image_id": made.image_id, "djl_python": made.djl_python_version}
    base = made.image_id
    if opts.assembler == "registry" and opts.registry:
        base = details["registry_base"] = into_registry(ctx, made, opts.registry)
    return RuntimeImage(base_image=base, local_runtime=True, status="passed" if made.built else "cached",
                        details=details)


def into_registry(ctx, made: Any, registry: str) -> str:
    """Registry assembly appends layers to a base that lives in a registry. The dev-cpu runtime is
    built locally, so it is pushed once to the target registry's host: under a lock per (registry,
    runtime image), and only when the registry does not already hold this image (HEAD first), so two
    builds at once neither push twice nor remove the local name the other is pushing (issue 15 item 9)."""
    import hashlib
    import json

    from filelock import FileLock

    from builder.credentials import credentials_for
    from builder.engine import PushError, push_tag, pushed_name
    from builder.paths import cache_dir as _cache_dir
    from builder.registry.client import RegistryClient

    host = registry.split("/", 1)[0]
    path = "lmi-build/dev-cpu"
    repo = f"{host}/{path}"
    tag = made.ref.rsplit(":", 1)[-1]
    creds = credentials_for(registry)
    api = RegistryClient(host, creds, stage="runtime")

    def present() -> str | None:  # the registry's digest of this very image at repo:tag, else None
        digest = api.manifest_digest(path, tag)
        if digest is None:
            return None
        body, _, _ = api.get_manifest(path, digest)
        try:
            config = (json.loads(body).get("config") or {}).get("digest")
        except ValueError:
            return None
        return digest if config == made.image_id else None

    locks = _cache_dir(ctx.cache.dir) / "runtime"
    locks.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(f"{host}|{made.image_id}".encode()).hexdigest()[:16]
    with FileLock(str(locks / f"push-{key}.lock")):
        digest = present()
        if digest is not None:
            ctx.reporter.info(f"  {repo}:{tag} already holds this runtime ({digest[:19]}): not pushed")
            return f"{repo}@{digest}"
        client = ctx.engine("runtime")
        auth = {"username": creds.username, "password": creds.password.get_secret_value()} if creds else None
        try:
            with pushed_name(client, made.image_id, repo, tag):  # only the local name made for the push
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


class ModelsInputs(Frozen):
    build: ResolvedModels


def runtime_models(ctx, inputs: ModelsInputs) -> RuntimeImage:
    first = inputs.build.first
    return base_for(ctx, first.release.family, published=first.base_image,
                    hf=any(p.resolved.entry_point == "djl_python.huggingface" for p in inputs.build.plans))
