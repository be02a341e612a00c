"""Publishing an image that was assembled in a registry: a verified tag move, no bytes re-pushed.

The digest smoke-tested is the digest published: the tag is PUT with the exact manifest bytes
fetched by digest, then read back with a HEAD (all four Accept types, containers-and-registries.md
§5.5) and compared. A tag that already points at another digest is refused unless ``force``
(DESIGN.md: publishing never silently overwrites a tag).
"""

from __future__ import annotations

import json

from pydantic import BaseModel

from builder import console
from builder.diagnostics import BuilderError
from builder.registry import reference
from builder.registry.client import RegistryClient
from builder.registry.transfer import ensure_base_blob

STAGE = "publish"


class TagMove(BaseModel):
    reference: str  # HOST/REPO:TAG
    pinned: str  # HOST/REPO@sha256:...
    digest: str
    previous: str | None  # where the tag pointed before (None: new tag)
    moved: bool  # False when the tag already pointed at this digest


def move_tag(pinned: str, tag: str, *, credentials: object | None, force: bool = False,
             target: str | None = None, target_credentials: object | None = None) -> TagMove:
    """Point ``tag`` at the image ``pinned`` (``HOST/REPO@sha256:...``).

    ``target`` (``HOST/REPO``) publishes into another repository: blobs are mounted (same registry)
    or streamed (another registry) first; by default the tag goes into the image's own repository."""
    src = reference.parse(pinned, what="image")
    if src.digest is None:
        raise BuilderError(f"{pinned} is not pinned by digest (HOST/REPO@sha256:...)", stage=STAGE)
    dst = reference.parse(target, what="publish target", allow_tag=False) if target else src
    if not reference.is_tag(tag):
        raise BuilderError(f"{tag!r} is not a valid tag", stage=STAGE)
    source = RegistryClient(src.host, credentials, stage=STAGE)
    dest = source if dst.host == src.host else RegistryClient(dst.host, target_credentials, stage=STAGE)
    body, media, digest = source.get_manifest(src.repo, src.digest)

    previous = dest.manifest_digest(dst.repo, tag)
    out = TagMove(reference=f"{dst.name}:{tag}", pinned=dst.pinned(digest), digest=digest, previous=previous,
                  moved=False)
    if previous == digest:
        console.info(f"  {out.reference} already points at {digest}")
        return out
    if previous is not None and not force:
        raise BuilderError(f"{out.reference} already points at {previous}, not {digest}", stage=STAGE,
                           hint="publish under a new tag, or pass --force to move it")
    if (dst.host, dst.repo) != (src.host, src.repo):
        manifest = json.loads(body)
        for i, desc in enumerate([manifest["config"], *manifest.get("layers", [])]):
            ensure_base_blob(dest, dst.repo, source, src.repo, desc["digest"], int(desc["size"]), f"blob-{i}")
    dest.put_manifest(dst.repo, tag, body, media)
    check = dest.manifest_digest(dst.repo, tag)
    if check != digest:
        raise BuilderError(f"after the tag move {out.reference} points at {check}, expected {digest}",
                           stage=STAGE, hint="another publisher may have moved the tag meanwhile")
    console.info(f"  {out.reference} -> {digest}" + (f" (was {previous})" if previous else ""))
    out.moved = True
    return out
