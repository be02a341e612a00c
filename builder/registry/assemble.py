"""Registry-native assembly: the model image is made inside the target registry, no Docker daemon.

Steps (containers-and-registries.md §9.3, generalised): read the base's manifest and config by
digest; get every base blob into the target repository (skip / cross-repo mount / stream registry
to registry); upload our layers (weights shards, compiled, config last, from
``builder.image.layers``, the same plan the Docker bake uses); upload the derived config; PUT the
manifest **by digest** (no tag moves here: publishing is a separate, verified tag move).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from builder import __version__, console
from builder.diagnostics import BuilderError
from builder.image import identity as _identity
from builder.image.bake import config_files as _config_files
from builder.image.digests import FileDigestCache
from builder.image.layers import Layer, plan_layers
from builder.image.metadata import model_labels
from builder.paths import cache_dir as _default_cache_dir
from builder.registry import reference
from builder.registry.client import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    RegistryClient,
    RegistryCredentials,
)
from builder.registry.imageconfig import EPOCH, OCI_CONFIG, build_config, build_manifest
from builder.registry.layerblobs import (
    FORMAT,
    Compression,
    LayerBlob,
    LayerMemo,
    LayerStream,
    canonical_json,
    file_chunks,
    layer_key,
)
from builder.registry.transfer import Outcome, Ticker, ensure_base_blob, human, stream_upload

STAGE = "assemble"


class LayerResult(BaseModel):
    name: str
    kind: str  # "base" | "weights" | "compiled" | "config"
    digest: str
    size: int
    uploaded: bool = False
    mounted: bool = False
    skipped: bool = False
    bytes_uploaded: int = 0


class AssembleResult(BaseModel):
    reference: str  # HOST/REPO@sha256:... (pinned)
    digest: str
    repository: str  # HOST/REPO
    base: dict[str, str]  # reference, manifest digest, platform
    config_digest: str
    layers: list[LayerResult]
    bytes_uploaded: int
    inputs: dict[str, Any] = Field(default_factory=dict)  # everything the digest depends on
    identity: _identity.ImageIdentity | None = None  # the default publish tag's digest (builder.image.identity)
    seconds: float


class BaseImage(BaseModel):
    ref: str
    digest: str  # of the platform manifest
    config: dict[str, Any]
    layers: list[dict[str, Any]]  # descriptors


def read_base(client: RegistryClient, ref: reference.ImageRef, platform: str = "linux/amd64") -> BaseImage:
    body, media, digest = client.get_manifest(ref.repo, ref.reference)
    manifest = json.loads(body)
    media = manifest.get("mediaType") or media
    if media in (OCI_INDEX, DOCKER_LIST):
        os_, _, arch = platform.partition("/")
        chosen = next((m for m in manifest.get("manifests", [])
                       if (m.get("platform") or {}).get("os") == os_
                       and (m.get("platform") or {}).get("architecture") == arch), None)
        if chosen is None:
            raise BuilderError(f"base {ref} has no {platform} image", stage=STAGE)
        body, media, digest = client.get_manifest(ref.repo, chosen["digest"])
        manifest = json.loads(body)
        media = manifest.get("mediaType") or media
    if media not in (OCI_MANIFEST, DOCKER_MANIFEST):
        raise BuilderError(f"base {ref}: unsupported manifest type {media!r}", stage=STAGE,
                           hint="the base must be an OCI or Docker v2 image manifest")
    cfg_desc = manifest["config"]
    cfg_bytes = client.get_blob(ref.repo, cfg_desc["digest"]).content
    if "sha256:" + hashlib.sha256(cfg_bytes).hexdigest() != cfg_desc["digest"]:
        raise BuilderError(f"base {ref}: config blob does not match its digest", stage=STAGE)
    return BaseImage(ref=str(ref), digest=digest, config=json.loads(cfg_bytes), layers=manifest["layers"])


def _push_layer(target: RegistryClient, repo: str, layer: Layer, memo: LayerMemo,
                compression: Compression) -> tuple[LayerBlob, Outcome]:
    key = layer_key(layer, compression)
    known = memo.get(key)
    start = time.monotonic()
    if known is not None and target.blob_size(repo, known.digest) is not None:
        console.info(f"  {layer.name}: skipped (unchanged, in registry, {human(known.size)})")
        return known, Outcome(skipped=True)
    ticker = Ticker(layer.name, layer.size)
    spooled = memo.blob_path(known.digest) if known is not None and compression == "gzip" else None
    if known is not None and spooled is not None and spooled.exists():
        sent = stream_upload(target, repo, file_chunks(spooled, ticker), lambda: known.digest)
        blob = known
    else:
        # gzip: keep the compressed bytes, so an unchanged layer is never compressed again
        stream = LayerStream(layer, compression, progress=ticker,
                             spool=memo.blob_path if compression == "gzip" else None)
        sent = stream_upload(target, repo, stream, lambda: stream.result().digest)
        blob = stream.result()
        if known is not None and known.digest != blob.digest:
            raise BuilderError(f"layer {layer.name} changed while it was read (digest {blob.digest[:19]}, "
                               f"remembered {known.digest[:19]})", stage=STAGE, hint="run the build again")
        memo.put(key, blob)
    console.info(f"  {layer.name}: uploaded {human(sent)} in {time.monotonic() - start:.1f} s")
    return blob, Outcome(uploaded=True, bytes_moved=sent)


def assemble_in_registry(resolved: Any, *, registry: str, base_ref: str, model_dir: Path | None,
                         compiled_dir: Path | None, extra_files: dict[str, Path],
                         credentials: RegistryCredentials | None, cache_dir: Path | None,
                         base_credentials: RegistryCredentials | None = None,
                         labels: dict[str, str] | None = None, env: dict[str, str] | None = None,
                         model_digest: str | None = None, compile_labels: dict[str, Any] | None = None,
                         compile_key: str | None = None, recipe_file: Path | None = None, created: str | None = None,
                         compression: Compression = "none", platform: str = "linux/amd64",
                         split_threshold: int = 256 << 20) -> AssembleResult:
    """Assemble ``resolved``'s image in ``registry`` (``HOST/REPO``) on top of ``base_ref``.

    ``labels`` default to the Docker bake's (``builder.image.metadata.model_labels``, same arguments),
    ``env`` to the recipe's ``env:`` (added to the base's Env, ours win), so both assemblers agree.
    ``base_credentials`` for a base in another registry (default: ``credentials`` when same host)."""
    start = time.monotonic()
    target_ref = reference.parse(registry, what="--registry", allow_tag=False)
    base = reference.parse(base_ref, what="base image")
    if base.digest is None:
        console.warn(f"base {base_ref} is not pinned by digest; pinning what its tag points at now")
    target = RegistryClient(target_ref.host, credentials, stage=STAGE)
    same_host = base.host == target_ref.host
    source = target if same_host else RegistryClient(base.host, base_credentials, stage=STAGE)
    repo = target_ref.repo

    console.step(f"assemble in {target_ref.name} (base {base_ref}, no Docker daemon)")
    base_img = read_base(source, base, platform)
    target.ping()

    # the default cache (not None): without it every run re-reads and re-uploads the model layers
    cache_dir = _default_cache_dir(cache_dir)
    with tempfile.TemporaryDirectory(prefix="lmi-assemble-") as tmp:
        blob_dir = Path(cache_dir) / "image" / "blobs" if cache_dir is not None else Path(tmp)
        config_bytes = _config_files(resolved, extra_files)
        layers = plan_layers(model_dir, compiled_dir, config_bytes,
                             split_threshold=split_threshold, blob_dir=blob_dir)
        digests = FileDigestCache(Path(cache_dir))  # the fetch stage's memo: stat only, no re-read
        ident = _identity.for_layers(resolved, base_digest=base_img.digest, layers=layers, config=config_bytes,
                                     digests=digests, compile_key=compile_key)
        digests.save()
        memo = LayerMemo(cache_dir)
        results: list[LayerResult] = []
        for i, desc in enumerate(base_img.layers):
            out = ensure_base_blob(target, repo, source, base.repo, desc["digest"], int(desc["size"]), f"base-{i}")
            results.append(LayerResult(name=f"base-{i}", kind="base", digest=desc["digest"], size=int(desc["size"]),
                                       uploaded=out.uploaded, mounted=out.mounted, skipped=out.skipped,
                                       bytes_uploaded=out.bytes_moved))
        ours: list[tuple[Layer, LayerBlob]] = []
        for layer in layers:
            blob, out = _push_layer(target, repo, layer, memo, compression)
            ours.append((layer, blob))
            results.append(LayerResult(name=layer.name, kind=layer.kind, digest=blob.digest, size=blob.size,
                                       uploaded=out.uploaded, skipped=out.skipped, bytes_uploaded=out.bytes_moved))

    if labels is None:
        labels = model_labels(resolved, base_ref=str(base), base_digest=base_img.digest, model_digest=model_digest,
                              compile_labels=compile_labels, compiled=compiled_dir is not None,
                              recipe_file=recipe_file, created=created, identity=ident)
    image_labels = dict(labels)
    image_env = dict(env if env is not None else (getattr(resolved.recipe, "env", None) or {}))
    config = build_config(base_img.config, ours, labels=image_labels, env=image_env)
    config_blob = canonical_json(config)
    config_digest = "sha256:" + hashlib.sha256(config_blob).hexdigest()
    config_sent = 0
    if target.blob_size(repo, config_digest) is None:
        target.upload_bytes(repo, config_digest, config_blob)
        config_sent = len(config_blob)
    manifest = build_manifest(base_img.layers, config_blob, config_digest, [b for _, b in ours],
                              base_digest=base_img.digest)
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    existed = target.manifest_digest(repo, digest) is not None
    manifest_sent = 0
    if not existed:
        target.put_manifest(repo, digest, manifest, OCI_MANIFEST)
        manifest_sent = len(manifest)
    total = sum(r.bytes_uploaded for r in results) + config_sent + manifest_sent
    pinned = target_ref.pinned(digest)
    seconds = round(time.monotonic() - start, 3)
    console.info(f"  config {config_digest[7:19]}: {'uploaded' if config_sent else 'skipped'}; manifest "
                 f"{'already there' if existed else 'stored by digest'}; {human(total)} uploaded in {seconds:.2f} s")
    inputs = {
        "format": FORMAT,
        "builder_version": __version__,
        "recipe_hash": getattr(resolved, "recipe_hash", ""),
        "image_digest": ident.digest,
        "base": {"manifest_digest": base_img.digest, "platform": platform},
        "compression": compression,
        "created": EPOCH,
        "layers": [{"name": lay.name, "kind": lay.kind, "diff_id": b.diff_id,
                    "files": [{"path": e.arcname, "mode": oct(e.mode), "size": e.size} for e in lay.files]}
                   for lay, b in ours],
        "labels": image_labels,
        "env": image_env,
    }
    return AssembleResult(reference=pinned, digest=digest, repository=target_ref.name,
                          base={"reference": str(base), "digest": base_img.digest, "platform": platform},
                          config_digest=config_digest, layers=results, bytes_uploaded=total, inputs=inputs,
                          identity=ident, seconds=seconds)


__all__ = ["OCI_CONFIG", "AssembleResult", "LayerResult", "assemble_in_registry", "read_base"]
