"""Registry-native assembly: the model image is made inside the target registry, no Docker daemon.

Steps (containers-and-registries.md §9.3, generalised): read the base's manifest and config by
digest; check that the chosen manifest format can carry the base's layers and suits the target
(before any upload); get every base blob into the target repository (skip / cross-repo mount /
stream registry to registry); upload our layers (gzip, weights shards, compiled, config last, from
``builder.assembly.layers``, the same plan the Docker bake uses); upload the derived config; PUT the
manifest **by digest** (no tag moves here: publishing is a separate, verified tag move).
Manifest: Docker v2 schema 2 by default, OCI on request (``builder.registry.manifest``).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from builder import __version__, console
from builder.assembly import identity as _identity
from builder.assembly.digests import FileDigestCache
from builder.assembly.files import config_files as _config_files
from builder.assembly.labels import model_labels
from builder.assembly.layers import Layer, plan_layers
from builder.assembly.request import AssembledImage, AssemblyRequest, BaseInfo, LayerInfo
from builder.diagnostics import BuilderError, UsageError
from builder.paths import cache_dir as _default_cache_dir
from builder.registry import reference
from builder.registry.client import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    RegistryClient,
    is_loopback,
)
from builder.registry.imageconfig import EPOCH, build_config
from builder.registry.layerblobs import (
    FORMAT,
    GZIP_ENCODER,
    Compression,
    LayerBlob,
    LayerMemo,
    LayerStream,
    canonical_json,
    layer_key,
)
from builder.registry.manifest import (
    MANIFEST_MEDIA,
    OCI_CONFIG,
    UNCOMPRESSED,
    FormatError,
    ManifestFormat,
    base_layer_media,
    build_manifest,
    layer_media,
    target_refusal,
)
from builder.registry.transfer import (
    Ticker,
    ensure_base_blob,
    human,
    resumable_upload,
    upload_workers,
)

STAGE = "assemble"


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
    config = json.loads(cfg_bytes)
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    if len(diff_ids) != len(manifest["layers"]):
        # our config appends to rootfs.diff_ids: a base whose counts differ makes an image no engine runs
        raise BuilderError(f"base {ref}: its config lists {len(diff_ids)} diff_ids for {len(manifest['layers'])} "
                           "layers", stage=STAGE, hint="the base image is malformed; rebuild or re-push it")
    return BaseImage(ref=str(ref), digest=digest, config=config, layers=manifest["layers"])


def check_target(fmt: ManifestFormat, compression: Compression, instance_type: str | None) -> None:
    """A format the target's platform refuses (SageMaker: OCI) is a usage error, raised before any read."""
    refusal = target_refusal(fmt, instance_type)
    if refusal:
        raise UsageError(f"--manifest-format {fmt}: {refusal}",
                         hint="use --manifest-format docker (the default) for SageMaker targets")
    try:
        layer_media(fmt, compression)
    except FormatError as exc:
        raise UsageError(str(exc)) from None


def check_base_layers(fmt: ManifestFormat, base_img: BaseImage) -> None:
    """Base layers the format cannot carry are refused before the first upload."""
    try:
        for i, desc in enumerate(base_img.layers):
            base_layer_media(fmt, desc.get("mediaType", ""), i)
    except FormatError as exc:
        raise BuilderError(f"base {base_img.ref}: {exc}", stage=STAGE,
                           hint="use --manifest-format oci, or a base image whose layers are gzip") from None
    uncompressed = [i for i, d in enumerate(base_img.layers) if d.get("mediaType") in UNCOMPRESSED]
    if uncompressed:
        console.warn(f"base {base_img.ref}: layer(s) {uncompressed} are uncompressed tars; kept as they are, "
                     "but some clients and validators (crane validate) expect gzip layers")


def _push_layer(target: RegistryClient, repo: str, layer: Layer, memo: LayerMemo,
                compression: Compression, stop: threading.Event | None = None) -> tuple[LayerBlob, LayerInfo]:
    key = layer_key(layer, compression)
    known = memo.get(key)
    start = time.monotonic()
    if known is not None and target.blob_size(repo, known.digest) is not None:
        console.info(f"  {layer.name}: skipped (unchanged, in registry, {human(known.size)})")
        return known, LayerInfo(name=layer.name, kind=layer.kind, digest=known.digest, size=known.size,
                                files=len(layer.files), skipped=True)
    ticker = Ticker(layer.name, layer.size)
    streams: list[LayerStream] = []

    def open_stream() -> LayerStream:
        # stored-block gzip costs a crc32 pass: re-encoding from the source is as cheap as a kept copy;
        # a fresh stream per attempt (a resumed upload hashes the bytes the registry holds, sends the rest)
        streams.append(LayerStream(layer, compression, progress=ticker))
        return streams[-1]

    done = resumable_upload(target, repo, open_stream, lambda: streams[-1].result().digest,
                            name=layer.name, stop=stop, size=LayerStream(layer, compression).expected_size())
    blob = streams[-1].result()
    if known is not None and known.digest != blob.digest:
        raise BuilderError(f"layer {layer.name} changed while it was read (digest {blob.digest[:19]}, "
                           f"remembered {known.digest[:19]})", stage=STAGE, hint="run the build again")
    # only now, after the registry's PUT ?digest= said 201: a layer is never remembered half-sent
    memo.put(key, blob)
    console.info(f"  {layer.name}: uploaded {human(done.sent)} in {time.monotonic() - start:.1f} s")
    return blob, LayerInfo(name=layer.name, kind=layer.kind, digest=blob.digest, size=blob.size,
                           files=len(layer.files), uploaded=True, bytes_uploaded=done.sent, resumed=done.resumed,
                           restarted=done.restarted)


class _Background:
    """``fn()`` in a daemon thread: after a Ctrl-C the process exits without waiting for it (the
    identity's hashing of a 400 GB model would hold the exit for minutes); its cache writes are atomic."""

    def __init__(self, fn: Any, name: str):
        self._result: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn,), daemon=True, name=name)
        self._thread.start()

    def _run(self, fn: Any) -> None:
        try:
            self._result = fn()
        except BaseException as exc:  # raised in the caller's thread by result()
            self._error = exc

    def result(self) -> Any:
        while self._thread.is_alive():
            self._thread.join(0.2)  # timed: a Ctrl-C is seen while waiting
        if self._error is not None:
            raise self._error
        return self._result


def _push_layers(target: RegistryClient, repo: str, layers: list[Layer], memo: LayerMemo,
                 compression: Compression, workers: int) -> list[tuple[LayerBlob, LayerInfo]]:
    """Upload ``layers``, up to ``workers`` at once, results in plan order. The first failure (or a
    Ctrl-C in the calling thread) stops the others: each cancels its upload session, and nothing
    after this (config, manifest) happens, so no tag or manifest refers to a half-sent layer."""
    if not layers:
        return []
    stop = threading.Event()
    pool = ThreadPoolExecutor(max_workers=min(workers, len(layers)), thread_name_prefix="lmi-upload")
    futures = [pool.submit(_push_layer, target, repo, layer, memo, compression, stop) for layer in layers]
    try:
        pending = set(futures)
        while pending:
            # a timed wait: the main thread sees a Ctrl-C within the timeout, whichever thread got the signal
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
            for f in done:
                f.result()  # the first failure stops the rest
        return [f.result() for f in futures]
    except BaseException:
        stop.set()
        for f in futures:
            f.cancel()
        raise
    finally:
        pool.shutdown(wait=True)  # no upload thread outlives the build


def assemble(request: AssemblyRequest) -> AssembledImage:
    """The registry assembler (``builder.assembly.ASSEMBLERS["registry"]``): ``request.resolved``'s image
    assembled in ``request.registry`` (``HOST/REPO``) on top of ``request.base_image`` (a registry
    reference), stored by digest; no tag is moved here (publishing moves tags).

    ``manifest_format``: ``docker`` (v2 schema 2, gzip layers: what SageMaker, containerd and Docker
    all accept) or ``oci``; refused before any upload when the target (``ml.*``: SageMaker) or the
    base's layer types cannot honour it (``builder.registry.manifest``).

    Labels are the Docker bake's (``builder.assembly.labels.model_labels``, same arguments), the env
    the recipe's ``env:`` (added to the base's Env, ours win), so both assemblers agree.
    ``base_credentials`` for a base in another registry (default: ``credentials`` when same host).
    ``workers``: layers uploaded at once (default ``LMI_BUILD_UPLOAD_WORKERS``, else from the core
    count and whether the registry is on this host: ``builder.registry.transfer.upload_workers``)."""
    resolved = request.resolved
    if not request.registry:
        raise UsageError("the registry assembler needs a target registry (--registry HOST[:PORT]/REPO)")
    if not request.base_image:
        raise UsageError("the registry assembler needs a base image in a registry (--base-image HOST/REPO@DIGEST)")
    base_ref = request.base_image
    compression, platform, manifest_format = request.compression, request.platform, request.manifest_format
    start = time.monotonic()
    target_ref = reference.parse(request.registry, what="--registry", allow_tag=False)
    base = reference.parse(base_ref, what="base image")
    if base.digest is None:
        console.warn(f"base {base_ref} is not pinned by digest; pinning what its tag points at now")
    target = RegistryClient(target_ref.host, request.credentials, stage=STAGE)
    same_host = base.host == target_ref.host
    source = target if same_host else RegistryClient(base.host, request.base_credentials, stage=STAGE)
    repo = target_ref.repo

    check_target(manifest_format, compression, resolved.recipe.target.instance_type)
    workers = upload_workers(request.workers, loopback=is_loopback(target_ref.host))
    console.step(f"assemble in {target_ref.name} (base {base_ref}, {manifest_format} manifest, no Docker daemon)")
    base_img = read_base(source, base, platform)
    check_base_layers(manifest_format, base_img)
    target.ping()

    # the default cache (not None): without it every run re-reads and re-uploads the model layers
    cache_dir = _default_cache_dir(request.cache_dir)
    with tempfile.TemporaryDirectory(prefix="lmi-assemble-") as tmp:
        blob_dir = Path(cache_dir) / "image" / "blobs" if cache_dir is not None else Path(tmp)
        config_bytes = _config_files(resolved, request.extra_files)
        layers = plan_layers(request.model_dir, None, config_bytes, split_threshold=request.split_threshold,
                             blob_dir=blob_dir, base_layers=len(base_img.layers))
        digests = FileDigestCache(Path(cache_dir))  # the fetch stage's memo: stat only, no re-read

        def identify() -> _identity.ImageIdentity:
            found = _identity.for_layers(resolved, base_digest=base_img.digest, layers=layers, config=config_bytes,
                                         digests=digests, compile_key=request.compile_key)
            digests.save()
            return found

        # without the fetch stage's memo (API use, the bench) this hashes the model files: alongside
        # the uploads, not before them (only the config's labels need it)
        identity = _Background(identify, "lmi-identity")
        memo = LayerMemo(cache_dir)
        results: list[LayerInfo] = []
        for i, desc in enumerate(base_img.layers):
            out = ensure_base_blob(target, repo, source, base.repo, desc["digest"], int(desc["size"]), f"base-{i}")
            results.append(LayerInfo(name=f"base-{i}", kind="base", digest=desc["digest"], size=int(desc["size"]),
                                     uploaded=out.uploaded, mounted=out.mounted, skipped=out.skipped,
                                     bytes_uploaded=out.bytes_moved))
        pushed = _push_layers(target, repo, layers, memo, compression, workers)
        ours: list[tuple[Layer, LayerBlob]] = [(layer, blob) for layer, (blob, _) in zip(layers, pushed, strict=True)]
        results += [res for _, res in pushed]
        ident = identity.result()

    image_labels = model_labels(resolved, base_ref=str(base), base_digest=base_img.digest,
                                model_digest=request.model_digest, compile_labels=request.compile_labels,
                                recipe_file=request.recipe_file, created=request.created, identity=ident)
    image_env = dict(resolved.recipe.env or {})
    config = build_config(base_img.config, ours, labels=image_labels, env=image_env)
    config_blob = canonical_json(config)
    config_digest = "sha256:" + hashlib.sha256(config_blob).hexdigest()
    config_sent = 0
    if target.blob_size(repo, config_digest) is None:
        target.upload_bytes(repo, config_digest, config_blob)
        config_sent = len(config_blob)
    manifest = build_manifest(base_img.layers, config_blob, config_digest, [b for _, b in ours],
                              base_digest=base_img.digest, fmt=manifest_format, compression=compression)
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    existed = target.manifest_digest(repo, digest) is not None
    manifest_sent = 0
    if not existed:
        target.put_manifest(repo, digest, manifest, MANIFEST_MEDIA[manifest_format])
        manifest_sent = len(manifest)
    total = sum(r.bytes_uploaded for r in results) + config_sent + manifest_sent
    pinned = target_ref.pinned(digest)
    seconds = round(time.monotonic() - start, 3)
    console.info(f"  config {config_digest[7:19]}: {'uploaded' if config_sent else 'skipped'}; manifest "
                 f"{'already there' if existed else 'stored by digest'}; {human(total)} uploaded in {seconds:.2f} s")
    inputs = {
        "format": FORMAT,
        "builder_version": __version__,
        "recipe_hash": resolved.recipe_hash,
        "image_digest": ident.digest,
        "base": {"manifest_digest": base_img.digest, "platform": platform},
        "compression": compression,
        "gzip_encoder": GZIP_ENCODER if compression == "gzip" else None,
        "manifest_format": manifest_format,
        "created": EPOCH,
        "layers": [{"name": lay.name, "kind": lay.kind, "diff_id": b.diff_id,
                    "files": [{"path": e.arcname, "mode": oct(e.mode), "size": e.size} for e in lay.files]}
                   for lay, b in ours],
        "labels": image_labels,
        "env": image_env,
    }
    return AssembledImage(assembler="registry", reference=pinned, image_id=config_digest, identity=ident,
                          base=BaseInfo(reference=str(base), digest=base_img.digest,
                                        pin="digest" if base.digest else "tag", platform=platform),
                          layers=results, bytes_sent=total, reused=not any(r.uploaded for r in results),
                          seconds=seconds, digest=digest, media_type=MANIFEST_MEDIA[manifest_format],
                          repository=target_ref.name, inputs=inputs)


__all__ = ["OCI_CONFIG", "assemble", "check_target", "read_base"]
