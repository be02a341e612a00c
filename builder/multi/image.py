"""Output (b): one image holding every model under the model store, ``/opt/ml/model/<name>/``, each
folder the model's own layout (the same files as its ``<name>.tar.gz``). One COPY (one layer) per
model, so changing one model's configuration rebuilds from its step on and leaves the others' layers.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import BaseModel, Field

from builder import __version__, console
from builder import labels as L
from builder.diagnostics import BuilderError
from builder.multi.layout import ModelPlan

STAGE = "bake"
MODELS_LABEL = L.MODELS
MODEL_STORE = "opt/ml/model"
IDENTITY_FORMAT = "multi-image-identity-v1"


class MultiImage(BaseModel):
    image_id: str
    tags: list[str]
    base_ref: str
    base_digest: str
    models: list[str]
    inputs_digest: str
    reused: bool = False
    bytes_sent: int = 0
    layers: list[dict] = Field(default_factory=list)


class MultiImageInputs(BaseModel):
    """What a multi-model image is made of, as ``builder.assembly.identity.ImageInputs`` is for one model:
    its sha256 is the ``dev.lmi-builder.inputs.digest`` label (``sha256:<hex>``, the local tag's 12 hex
    and the default publish tag's, ``builder.publish.tags.default_tag``), and its JSON the
    ``dev.lmi-builder.inputs`` label, which ``builder.publish.publisher.image_digest`` requires of a
    model image before it trusts the digest."""

    format: str = IDENTITY_FORMAT
    builder_version: str = __version__
    recipe_hash: str  # recipe_hash(plans): every model's resolved recipe hash, with its name, in order
    base_digest: str
    models: dict[str, dict[str, str]]  # name -> {file under /opt/ml/model/<name>/: "sha256:<hex>"}
    env: str  # sha256 of the shared env (values are not repeated in a label)

    def canonical(self) -> bytes:
        from builder.assembly.identity import canonical_json

        return canonical_json(self)

    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.canonical()).hexdigest()


def recipe_hash(plans: list[ModelPlan]) -> str:
    """The multi-model recipe's hash: the models' own recipe hashes, with their names, in order."""
    text = json.dumps([[p.name, p.resolved.recipe_hash] for p in plans], separators=(",", ":"))
    return hashlib.sha256(f"multi-v1|{text}".encode()).hexdigest()


def labels_for(plans: list[ModelPlan], recipe, *, base_ref: str, base_digest: str,
               inputs: MultiImageInputs) -> dict[str, str]:
    first = plans[0].resolved
    doc = first.to_json()  # container and target are shared; serving is per model (under "models")
    doc["recipe"] = recipe.model_dump(mode="json", by_alias=True)
    doc["models"] = {p.name: p.resolved.to_json()["serving"] for p in plans}
    doc.pop("serving", None)
    smoke = recipe.smoke.model_dump(mode="json")
    smoke["model_loading_timeout"] = sum(int(p.resolved.properties.get("option.model_loading_timeout", 0) or 0)
                                         for p in plans)  # loaded one after the other before the port opens
    out = {
        L.MANAGED: "true", L.ROLE: "model", L.BUILDER_VERSION: __version__, L.RECIPE_NAME: recipe.name,
        L.RECIPE_HASH: recipe_hash(plans), L.RECIPE_JSON: json.dumps(doc, sort_keys=True, separators=(",", ":")),
        L.LMI_VERSION: first.release.version, L.LMI_FAMILY: first.release.family,
        L.TARGET_INSTANCE: first.instance.name, L.TARGET_ARCH: str(first.instance.arch or first.instance.kind),
        L.SMOKE: json.dumps(smoke, sort_keys=True, separators=(",", ":")), L.INPUTS_DIGEST: inputs.digest(),
        L.INPUTS_JSON: inputs.canonical().decode(), "org.opencontainers.image.version": inputs.digest()[7:19],
        MODELS_LABEL: json.dumps([p.name for p in plans]), "org.opencontainers.image.title": recipe.name,
        "org.opencontainers.image.base.name": base_ref, "org.opencontainers.image.base.digest": base_digest,
    }
    if first.release.family == "dev-cpu":
        out[L.DEV_RUNTIME] = "true"
    return out


def bake_multi(plans: list[ModelPlan], recipe, *, base_image: str, cache_dir: Path | None = None,
               allow_unpinned: bool = False, no_cache: bool = False, client=None) -> MultiImage:
    from builder.assembly.layers import FILE_MODE, Layer, LayerEntry, write_blob
    from builder.engine import build, image_id
    from builder.image.bake import build_context, chunked, tag_image
    from builder.image.base import resolve_base
    from builder.image.render import render_artifacts
    from builder.paths import cache_dir as _cache_dir

    if client is None:
        from builder.engine import docker_client

        client = docker_client(STAGE, timeout=900)
    base = resolve_base(client, base_image, allow_unpinned=allow_unpinned)
    console.info(f"  base {base.ref} -> {base.from_ref[:80]} ({base.pin})")
    blob_dir = _cache_dir(cache_dir) / "image" / "blobs"
    layers: list[Layer] = []
    files: dict[str, dict[str, str]] = {}
    for plan in plans:
        entries = []
        files[plan.name] = {}
        for f in plan.layout():
            source = f.path if f.path is not None else write_blob(blob_dir, f.data or b"")
            entries.append(LayerEntry(f"{MODEL_STORE}/{plan.name}/{f.name}", Path(source), FILE_MODE, f.size))
            files[plan.name][f.name] = f"sha256:{f.sha256.removeprefix('sha256:')}"
        layers.append(Layer(name=plan.name, kind="config", entries=tuple(entries)))
    identity = MultiImageInputs(recipe_hash=recipe_hash(plans), base_digest=base.digest, models=files,
                                env=hashlib.sha256(json.dumps(recipe.env, sort_keys=True).encode()).hexdigest())
    inputs = identity.digest()
    tag = f"{recipe.name}:{inputs[7:19]}"
    labels = labels_for(plans, recipe, base_ref=base.ref, base_digest=base.digest, inputs=identity)
    existing = None if no_cache else image_id(client, tag)
    if existing is not None and (client.api.inspect_image(existing)["Config"].get("Labels") or {}) \
            .get(L.INPUTS_DIGEST) == inputs:
        console.info(f"  {tag} already names an image of these inputs ({existing[:19]}): reused, nothing built")
        tag_image(client, existing, tag, force=True)
        return MultiImage(image_id=existing, tags=[tag], base_ref=base.ref, base_digest=base.digest,
                          models=[p.name for p in plans], inputs_digest=inputs, reused=True)
    dockerfile = render_artifacts(from_ref=base.from_ref, layer_dirs=[f"layers/{x.name}" for x in layers],
                                  labels=labels)
    if recipe.env:
        from builder.image.render import env_assignment

        env_lines = "".join(f"ENV {env_assignment(k, v)}\n" for k, v in sorted(recipe.env.items()))
        import re

        dockerfile = re.sub(r"^(FROM [^\n]*\n)", lambda m: m.group(1) + env_lines, dockerfile, count=1, flags=re.M)
    chunks, total, _ = build_context(dockerfile, layers)
    console.info(f"  building {tag}: {len(plans)} model(s) under /{MODEL_STORE}/ "
                 f"({sum(x.size for x in layers) / 2**20:.1f} MiB)")
    out = build(client, chunked(chunks), what="the multi-model image", stage=STAGE, total=total,
                nocache=no_cache, echo_steps=True)
    if existing is not None:
        raise BuilderError(f"tag {tag} already names image {existing[:19]} of other inputs; refusing to move it",
                           stage=STAGE, hint=f"docker rmi {tag}, then build again")
    tag_image(client, out.image_id, tag)
    console.info(f"  image {out.image_id[:19]} tagged {tag}; {out.bytes_sent / 1024:.1f} KiB sent to the engine")
    return MultiImage(image_id=out.image_id, tags=[tag], base_ref=base.ref, base_digest=base.digest,
                      models=[p.name for p in plans], inputs_digest=inputs, bytes_sent=out.bytes_sent,
                      layers=[{"model": x.name, "files": len(x.files), "size": x.size} for x in layers])


def image_for_multi(path: str | Path, client=None) -> str:
    """The local image a multi-model recipe was last built to (``serve``/``predict``/``smoke RECIPE``)."""
    from builder.diagnostics import DiagnosticError, UsageError
    from builder.multi.layout import plan_models
    from builder.multi.validate import validate_multi_path

    loaded, diags = validate_multi_path(path, with_fit=False)
    if not loaded.ok or any(d.severity == "error" for d in diags):
        raise DiagnosticError(diags)
    plans = plan_models(loaded)
    if client is None:
        from builder.engine import docker_client

        client = docker_client("smoke")
    name = loaded.recipe.name
    found = client.api.images(filters={"label": [f"{L.RECIPE_HASH}={recipe_hash(plans)}", f"{L.RECIPE_NAME}={name}",
                                                 f"{L.ROLE}=model"]})
    for image in found:
        ours = sorted(t for t in image.get("RepoTags") or [] if t.startswith(f"{name}:"))
        if ours:
            return ours[0]
    raise UsageError(f"{path}: no local image built from this multi-model recipe",
                     hint=f"build it first: lmi-build build {path}")
