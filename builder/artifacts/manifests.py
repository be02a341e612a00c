"""The step every remote source (Hub, S3) shares: a fetched file list becomes a manifest in the cache
and a snapshot folder, and a complete manifest answers the next fetch without downloading.

Its own module so that ``sources`` (Hub, local, the dispatcher) and ``s3`` import it by public
names instead of each other.
"""

from __future__ import annotations

import time

from builder.artifacts.cache import ArtifactCache, Manifest
from builder.artifacts.models import FileEntry, ModelArtifacts, content_digest


def cached_artifacts(cache: ArtifactCache, key: str, *, remote: bool = True) -> ModelArtifacts | None:
    """The artifacts of manifest ``key`` if every blob it names is in the cache, else None."""
    m = cache.manifest(key, remote=remote)
    if m is None or not all(cache.has_blob(f) for f in m.files):
        return None
    with cache.locked():
        folder = cache.snapshot(m.digest, m.files, {f.name: cache.blob(f.sha256) for f in m.files})
    return ModelArtifacts(dir=folder, files=m.files, digest=m.digest, source=m.source,
                          source_kind=m.source_kind, revision=m.revision, cached=True,  # type: ignore[arg-type]
                          origin=m.origin)


def commit_artifacts(cache: ArtifactCache, key: str, source: str, kind: str, revision: str | None,
                     files: list[FileEntry], etags: dict[str, str]) -> ModelArtifacts:
    """Record the downloaded ``files`` (already in the cache's blobs) under ``key``; their snapshot folder."""
    digest = content_digest(files)
    cache.write_manifest(Manifest(key=key, source=source, source_kind=kind, revision=revision, files=files,
                                  digest=digest, created=time.time(), etags=etags))
    folder = cache.snapshot(digest, files, {f.name: cache.blob(f.sha256) for f in files})
    return ModelArtifacts(dir=folder, files=files, digest=digest, source=source, source_kind=kind,  # type: ignore[arg-type]
                          revision=revision, cached=False, origin="built")
