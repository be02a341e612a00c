"""The docker assembler: pinned base -> artifacts image (weights, compiled) -> model image (config).

Cost grows with the change, not with the model (DESIGN.md principle 5): the weights and compiled
artifacts go into an intermediate image tagged by their content digest
(``lmi-build/artifacts:<digest12>``, label role=artifacts) and reused while it exists, so a
serving-option change only sends the configuration layer (kilobytes) and never reads the weights:
file digests come from a (path, size, mtime_ns, inode) table (``builder.assembly.digests``).

``build_context``, ``chunked`` and ``tag_image`` are public: the multi-model image
(``builder.multi.image``) builds the same way. The engine calls (client, build, image_id) are
``builder.engine``'s.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock

from builder import __version__, console, engine
from builder import labels as L
from builder.assembly import identity
from builder.assembly.digests import FileDigestCache, layer_content_digest
from builder.assembly.files import config_files
from builder.assembly.labels import model_labels
from builder.assembly.layers import (
    CHUNK,
    Layer,
    LayerEntry,
    iter_entries_tar,
    layer_items,
    plan_layers,
    tar_header,
)
from builder.assembly.request import AssembledImage, AssemblyRequest, BaseInfo, LayerInfo
from builder.diagnostics import BuilderError
from builder.image import metadata, render
from builder.image.base import resolve_base
from builder.paths import cache_dir as _cache_dir

STAGE = "bake"
ARTIFACTS_REPO = "lmi-build/artifacts"
CONTEXT_LAYERS = "layers"


def _client(request: AssemblyRequest):
    if request.docker is not None:
        return request.docker
    return engine.docker_client(STAGE, timeout=900)


def build_context(dockerfile: str, layers: list[Layer]) -> tuple[Iterator[bytes], int, list[str]]:
    """Tar chunks of Dockerfile + one folder per layer; returns (chunks, approximate size, folders)."""
    dirs = [f"{CONTEXT_LAYERS}/{layer.name}" for layer in layers]
    items: list[tuple[str, LayerEntry]] = [(CONTEXT_LAYERS, LayerEntry(CONTEXT_LAYERS, None, 0o755, 0))]
    for layer, d in zip(layers, dirs, strict=True):
        items.extend(layer_items(layer, d))
    data = dockerfile.encode()

    def gen() -> Iterator[bytes]:
        yield tar_header("Dockerfile", size=len(data), mode=0o644, is_dir=False)
        yield data + b"\0" * ((-len(data)) % 512)
        yield from iter_entries_tar(items)

    total = len(data) + sum(e.size + 1024 for _, e in items)
    return gen(), total, dirs


def chunked(it: Iterator[bytes]) -> Iterator[bytes]:
    """Coalesce small tar pieces so the HTTP body goes out in ~1 MiB chunks."""
    buf = bytearray()
    for piece in it:
        buf += piece
        if len(buf) >= CHUNK:
            yield bytes(buf)
            buf.clear()
    if buf:
        yield bytes(buf)


def _diff_ids(client, image_id: str) -> list[str]:
    return list(client.api.inspect_image(image_id).get("RootFS", {}).get("Layers") or [])


def engine_lock(name: str, cache_root: Path) -> FileLock:
    """A lock for one name in the engine's namespace (a tag), shared by this user's builds whatever their
    cache folder: two builds with two caches (two CI jobs) that both check, build and then tag would each
    record their own image, the tag naming one of them. Under ``<tmp>/lmi-build-locks-<uid>`` (0700: no
    other user can hold it and stall our builds); where that folder cannot be used, the cache's own
    (serialising only builds that share the cache)."""
    key = hashlib.sha256(name.encode()).hexdigest()[:16]
    shared = Path(tempfile.gettempdir()) / f"lmi-build-locks-{os.getuid()}"
    try:
        shared.mkdir(mode=0o700, exist_ok=True)
        if shared.is_symlink() or shared.stat().st_uid != os.getuid():
            raise OSError(f"{shared} is not ours")  # someone else's folder: not a lock to trust
        return FileLock(str(shared / f"{key}.lock"))
    except OSError:
        return FileLock(str(cache_root / f"{key}.lock"))


def check_tags(tags: list[str]) -> list[str]:
    """Extra ``--tag`` references, checked as docker reads them (before any stage runs) and refused in the
    tool's own namespace; returns them with their explicit tag."""
    from builder.registry.reference import parse_local_tag

    return [parse_local_tag(tag) for tag in tags]


def assemble(request: AssemblyRequest) -> AssembledImage:
    """The docker assembler (``builder.assembly.ASSEMBLERS["docker"]``): ``request``'s image built on the
    local engine, tagged ``<name>:<image-digest-12>`` (and ``request.tags``); reused when that tag already
    names an image of the same inputs."""
    start = time.monotonic()
    resolved = request.resolved
    client = _client(request)
    extra_tags = check_tags(list(request.tags))
    cache_root = _cache_dir(request.cache_dir) / "image"
    cache_root.mkdir(parents=True, exist_ok=True)
    hits: list[str] = []

    base = resolve_base(client, request.base_image or resolved.base_image,
                        allow_unpinned=request.allow_unpinned_base, pull=request.pull)
    console.info(f"  base {base.ref} -> {base.from_ref[:80]} ({base.pin})")

    config = config_files(resolved, request.extra_files)
    layers = plan_layers(request.model_dir, None, config, split_threshold=request.split_threshold,
                         blob_dir=cache_root / "blobs",
                         base_layers=len(_diff_ids(client, base.image_id)))  # the layer budget

    digests = FileDigestCache(_cache_dir(request.cache_dir))
    content = {x.name: layer_content_digest(x, digests) for x in layers}
    # the tag is the digest of the inputs (identity.py); the file digests are the memo's, not re-read
    ident = identity.for_layers(resolved, base_digest=base.digest, layers=layers, config=config,
                                digests=digests, compile_key=request.compile_key)
    tag = ident.tag(resolved.recipe.name)
    digests.save()
    if digests.hits:
        hits.append(f"file-digests:{len(digests.hits)}/{len(digests.hits) + len(digests.misses)}")

    # check, build and tag under one lock per tag: two builds of the same inputs never race a tag
    with engine_lock(f"tag|{tag}", cache_root):
        existing = _tagged_for(client, tag, ident, no_cache=request.no_cache)
        if existing is not None:
            hits.append(f"image:{tag}")
            console.info(f"  {tag} already names an image of these inputs ({existing[:19]}): reused, nothing built")
            # artifacts_reused: no weights were sent (nothing was)
            made_id, bytes_sent, artifacts_ref, artifacts_reused = existing, 0, None, True
        else:
            made: list[str] = []  # every image this build creates; removed again if it does not end tagged
            try:
                built = _build_image(client, request, base, layers, content, ident, cache_root, hits, made=made)
                made_id, bytes_sent, artifacts_ref, artifacts_reused = built
                # a build with another cache folder (another lock) may have tagged it meanwhile: keep that
                # one, and remove ours (it would dangle, untagged)
                raced = _tagged_for(client, tag, ident, no_cache=False)
                if raced is not None:
                    made_id = raced
                    remove_made(client, made)
                else:
                    tag_image(client, made_id, tag)
            except BaseException:
                remove_made(client, made)  # a failed bake leaves no untagged intermediate image
                raise
    tags = [tag]
    for extra in extra_tags:  # the user's own tags move as the user asked (docker tag semantics)
        repo, _, t = extra.rpartition(":") if ":" in extra.rsplit("/", 1)[-1] else (extra, "", "latest")
        tag_image(client, made_id, f"{repo}:{t or 'latest'}", force=True)
        tags.append(f"{repo}:{t or 'latest'}")

    diff_ids = _diff_ids(client, made_id)
    ours = diff_ids[-len(layers):] if len(diff_ids) >= len(layers) else []
    infos = [LayerInfo(name=x.name, kind=x.kind, digest=ours[i] if ours else None, content_digest=content[x.name],
                       size=x.size, files=len(x.files)) for i, x in enumerate(layers)]
    result = AssembledImage(assembler="docker", reference=made_id, image_id=made_id, identity=ident, tags=tags,
                            base=BaseInfo(reference=base.ref, digest=base.digest, pin=base.pin), layers=infos,
                            bytes_sent=bytes_sent, reused=existing is not None,
                            seconds=round(time.monotonic() - start, 3), artifacts_ref=artifacts_ref,
                            artifacts_image_reused=artifacts_reused, cache_hits=hits)
    console.info(f"  image {made_id[:19]} tagged {', '.join(tags)}; {bytes_sent / 1024:.1f} KiB sent to the engine")
    return result


def _tagged_for(client, tag: str, ident: identity.ImageIdentity, *, no_cache: bool) -> str | None:
    """The image id ``tag`` already names when it was built from these same inputs (it is reused), None
    when the tag is free. A tag is never moved to another image: one naming an image of other inputs
    (or one not ours) is an error that leaves that image as it is."""
    have = engine.image_id(client, tag)
    if have is None:
        return None
    got = (client.api.inspect_image(have)["Config"].get("Labels") or {}).get(L.INPUTS_DIGEST)
    if got != ident.digest:
        raise BuilderError(f"tag {tag} already names image {have[:19]} with inputs digest {got or 'none'}, "
                           f"not this build's {ident.digest[:19]}; refusing to move the tag", stage=STAGE,
                           hint=f"inspect it with `docker image inspect {tag}`; remove it (`docker rmi {tag}`) "
                                "if it is not needed, then build again")
    if no_cache:
        raise BuilderError(f"tag {tag} already names image {have[:19]}, built from these same inputs; --no-cache "
                           "would make a second image for it", stage=STAGE,
                           hint=f"build without --no-cache to reuse it, or `docker rmi {tag}` first to rebuild")
    tag_image(client, have, tag, force=True)  # the same image: marks it the latest build of its recipe
    return have


def remove_made(client, made: list[str]) -> list[str]:
    """Remove the images in ``made`` (ids from this build's own output, so never another's) that carry
    no tag, newest first; an image with a tag, a child or a container is left. Returns the removed."""
    import docker.errors

    removed = []
    for image_id in reversed(made):
        try:
            tags = [t for t in client.api.inspect_image(image_id).get("RepoTags") or [] if t != "<none>:<none>"]
            if tags:
                continue
            client.api.remove_image(image_id, noprune=True)
            removed.append(image_id)
        except docker.errors.ImageNotFound:
            continue
        except docker.errors.APIError as exc:  # a child or a container uses it: not a leftover
            console.info(f"  kept intermediate image {image_id[:12]}: {exc.explanation}")
    return removed


def tag_image(client, image_id: str, ref: str, *, force: bool = False) -> None:
    repo, _, t = ref.rpartition(":")
    try:
        client.api.tag(image_id, repo, t, force=force)
    except Exception as exc:  # SDK errors vary
        raise BuilderError(f"tagging {image_id[:19]} as {ref} failed: {exc}", stage=STAGE) from None


def _build_image(client, request: AssemblyRequest, base, layers: list[Layer], content: dict[str, str],
                 ident: identity.ImageIdentity, cache_root: Path, hits: list[str], *,
                 made: list[str] | None = None) -> tuple[str, int, str | None, bool]:
    """Artifacts image (reused by its inputs digest) + labels + config layer; the result is not tagged
    here. Returns (image id, bytes sent, artifacts ref, artifacts image reused)."""
    resolved, model_digest = request.resolved, request.model_digest
    artifact_layers = [x for x in layers if x.kind != "config"]
    config_layer = layers[-1]
    bytes_sent = 0
    artifacts_reused = False
    artifacts_ref: str | None = None
    from_ref = base.from_ref
    if artifact_layers:
        h = hashlib.sha256(f"artifacts-v1|{__version__}|{base.image_id}|{base.from_ref}".encode())
        for x in artifact_layers:
            h.update(f"\n{x.name}|{x.kind}|{content[x.name]}".encode())
        inputs = h.hexdigest()
        artifacts_ref = f"{ARTIFACTS_REPO}:{inputs[:12]}"
        with engine_lock(f"artifacts|{artifacts_ref}", cache_root):
            existing = None if request.no_cache else engine.image_id(client, artifacts_ref)
            if existing is not None and client.api.inspect_image(existing)["Config"].get("Labels", {}) \
                    .get(L.INPUTS_DIGEST) == inputs:
                artifacts_reused = True
                hits.append(f"artifacts-image:{artifacts_ref}")
                console.info(f"  artifacts image {artifacts_ref} reused (weights not sent, not read)")
                from_ref = existing
            else:
                artifact_labels = metadata.artifacts_labels(
                    inputs_digest=inputs, base_ref=base.ref, base_digest=base.digest,
                    model_id=resolved.recipe.model.id or resolved.recipe.model.s3 or resolved.recipe.model.path or "",
                    model_digest=model_digest)
                dockerfile = render.render_artifacts(from_ref=base.from_ref,
                                                     layer_dirs=[f"{CONTEXT_LAYERS}/{x.name}" for x in artifact_layers],
                                                     labels=artifact_labels)
                chunks, total, _ = build_context(dockerfile, artifact_layers)
                console.info(f"  building artifacts image {artifacts_ref} "
                             f"({sum(x.size for x in artifact_layers) / 2**20:.1f} MiB in {len(artifact_layers)} layer(s))")
                out = engine.build(client, chunked(chunks), what="the artifacts image", stage=STAGE,
                                   tag=artifacts_ref, total=total, nocache=request.no_cache,
                                   show_progress=request.progress, echo_steps=True, made=made)
                bytes_sent += out.bytes_sent
                from_ref = out.image_id

    labels = model_labels(resolved, base_ref=base.ref, base_digest=base.digest, model_digest=model_digest,
                          compile_labels=request.compile_labels, recipe_file=request.recipe_file,
                          created=request.created, identity=ident)
    stable, dependent = metadata.split_labels(labels)
    head = render.render_artifacts(from_ref=from_ref, layer_dirs=[], labels=stable)  # FROM + the stable labels
    chunks, total, _ = build_context(head, [])
    labelled = engine.build(client, chunked(chunks), what="the model image (labels)", stage=STAGE, total=total,
                            nocache=request.no_cache, echo_steps=True, made=made)
    bytes_sent += labelled.bytes_sent
    dockerfile = render.render_model(resolved.release.family, from_ref=labelled.image_id,
                                     config_dir=f"{CONTEXT_LAYERS}/{config_layer.name}", env=resolved.recipe.env,
                                     labels=dependent)
    chunks, total, _ = build_context(dockerfile, [config_layer])
    out = engine.build(client, chunked(chunks), what="the model image", stage=STAGE, total=total,
                       nocache=request.no_cache, show_progress=request.progress, echo_steps=True, made=made)
    bytes_sent += out.bytes_sent
    if out.cached_steps or labelled.cached_steps:
        hits.append(f"build-steps:{out.cached_steps + labelled.cached_steps}/{out.steps + labelled.steps}")
    return out.image_id, bytes_sent, artifacts_ref, artifacts_reused


__all__ = ["ARTIFACTS_REPO", "assemble", "build_context", "check_tags", "chunked", "remove_made",
           "tag_image"]
