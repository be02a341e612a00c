"""Resolve the runtime base image to something that cannot move before building FROM it.

Pinned forms: ``REPO@sha256:<digest>`` (a registry digest, found in the local image's RepoDigests or
asked of the registry with ``get_registry_data``) and an image id ``sha256:<hex>`` (the sha256 of the
image config: exact, and the only pin a ``docker import``-made image has, since it has no
RepoDigests). ``REPO@sha256:<hex>`` whose hex is a local image id of REPO is accepted as an image-id
pin. A tag whose digest cannot be had is refused unless ``allow_unpinned``; then its local image id
is built FROM and recorded. The base is pulled only when the engine does not have it.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel

from builder import console
from builder.diagnostics import BuilderError

STAGE = "bake"
_ID_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_DIGEST_RE = re.compile(r"^(?P<repo>[^@\s]+)@(?P<digest>sha256:[0-9a-f]{64})$")

PinKind = Literal["repo-digest", "image-id", "unpinned-local-id"]


class BaseImage(BaseModel):
    ref: str  # as given (catalog tag, override, or id)
    from_ref: str  # what FROM names: REPO@sha256:… or the image id
    digest: str  # sha256:… (registry manifest digest or image id, see pin)
    image_id: str
    pin: PinKind
    pulled: bool = False


def _split_tag(ref: str) -> tuple[str, str | None]:
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        repo, tag = ref.rsplit(":", 1)
        return repo, tag
    return ref, None


def _inspect(client, ref: str) -> dict | None:
    import docker.errors

    try:
        return client.api.inspect_image(ref)
    except docker.errors.ImageNotFound:
        return None
    except docker.errors.APIError as exc:
        if exc.status_code == 404:
            return None
        raise BuilderError(f"cannot inspect base image {ref}: {exc.explanation or exc}", stage=STAGE) from None


def _repo_digest_for(attrs: dict, repo: str) -> str | None:
    for entry in attrs.get("RepoDigests") or []:
        name, _, digest = entry.partition("@")
        if name == repo or name.split("/", 1)[-1] == repo or repo.endswith("/" + name):
            return digest
    return None


def _pull(client, ref: str) -> None:
    repo, _, digest = ref.partition("@")
    repo, tag = _split_tag(repo) if not digest else (repo, None)
    console.info(f"pulling base image {ref}")
    from builder.engine import pull

    try:
        pull(client, repo, digest or tag or "latest", what=f"base image {ref}", stage=STAGE,
             hint="log in to the base image's registry, or pass --base-image with a local image")
    except BuilderError:
        raise
    except Exception as exc:  # the SDK raises several types for connection and auth problems
        raise BuilderError(f"pulling base image {ref} failed: {exc}", stage=STAGE,
                           hint="log in to the base image's registry, or pass --base-image with a local image") from None


def _registry_digest(client, ref: str) -> str | None:
    try:
        return client.images.get_registry_data(ref).id
    except Exception:  # unreachable registry, no auth, unknown name: the digest is simply not obtainable
        return None


def resolve_base(client, ref: str | None, *, allow_unpinned: bool = False, pull: bool = False) -> BaseImage:
    """Pin ``ref``; pull it only when missing locally (or ``pull`` asks to refresh a tag)."""
    if not ref:
        raise BuilderError("no base image: the recipe's family has no catalog image here", stage=STAGE,
                           hint="pass --base-image REPO@sha256:<digest> (or set container.image)")
    ref = ref.strip()
    if _ID_RE.match(ref):
        attrs = _inspect(client, ref)
        if attrs is None:
            raise BuilderError(f"base image id {ref} is not in the local engine", stage=STAGE,
                               hint="an image id can only be used where the image exists; use REPO@sha256:<digest>")
        return BaseImage(ref=ref, from_ref=attrs["Id"], digest=attrs["Id"], image_id=attrs["Id"], pin="image-id")

    m = _DIGEST_RE.match(ref)
    if m:
        repo, digest = m.group("repo"), m.group("digest")
        attrs = _inspect(client, ref)
        if attrs is not None:
            return BaseImage(ref=ref, from_ref=ref, digest=digest, image_id=attrs["Id"], pin="repo-digest")
        by_name = _inspect(client, repo) if ":" in repo.rsplit("/", 1)[-1] else None
        local = _inspect(client, digest)  # REPO@<image id>: a docker-import image pinned by its id
        if local is not None and (by_name is None or by_name["Id"] == local["Id"]):
            return BaseImage(ref=ref, from_ref=local["Id"], digest=local["Id"], image_id=local["Id"], pin="image-id")
        _pull(client, ref)
        attrs = _inspect(client, ref)
        if attrs is None:
            raise BuilderError(f"base image {ref} is still missing after the pull", stage=STAGE)
        return BaseImage(ref=ref, from_ref=ref, digest=digest, image_id=attrs["Id"], pin="repo-digest", pulled=True)

    repo, tag = _split_tag(ref)
    if tag is None:
        ref, tag = f"{ref}:latest", "latest"
    attrs = None if pull else _inspect(client, ref)
    pulled = False
    if attrs is None:
        digest = _registry_digest(client, ref)
        if digest is None and not allow_unpinned:
            raise BuilderError(f"base image {ref} is not pinned and no digest for it can be obtained",
                               stage=STAGE, hint="pass REPO@sha256:<digest>, or --allow-unpinned-base to build FROM "
                                                 "the local image id (recorded in the image labels)")
        _pull(client, f"{repo}@{digest}" if digest else ref)
        pulled = True
        attrs = _inspect(client, f"{repo}@{digest}" if digest else ref)
        if attrs is None:
            raise BuilderError(f"base image {ref} is still missing after the pull", stage=STAGE)
        if digest:
            return BaseImage(ref=ref, from_ref=f"{repo}@{digest}", digest=digest, image_id=attrs["Id"],
                             pin="repo-digest", pulled=pulled)
    digest = _repo_digest_for(attrs, repo)
    if digest is None:
        digest = _registry_digest(client, ref)
        if digest is not None and digest not in {d.partition("@")[2] for d in attrs.get("RepoDigests") or []}:
            digest = None  # the registry moved on: the local image is not what the tag names there now
    if digest is not None:
        return BaseImage(ref=ref, from_ref=f"{repo}@{digest}", digest=digest, image_id=attrs["Id"],
                         pin="repo-digest", pulled=pulled)
    if not allow_unpinned:
        raise BuilderError(f"base image {ref} has no registry digest (RepoDigests is empty; built or imported "
                           f"locally?)", stage=STAGE,
                           hint=f"pin it by image id (--base-image {attrs['Id']}) or pass --allow-unpinned-base")
    console.warn(f"base image {ref} is not pinned by a registry digest; building FROM its local id {attrs['Id'][:19]}")
    return BaseImage(ref=ref, from_ref=attrs["Id"], digest=attrs["Id"], image_id=attrs["Id"],
                     pin="unpinned-local-id", pulled=pulled)
