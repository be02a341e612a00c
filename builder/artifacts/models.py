"""Typed results of the fetch stage (what the image and compile stages consume)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel


class FileEntry(BaseModel):
    name: str  # POSIX path relative to the model folder
    size: int
    sha256: str  # hex


class ModelArtifacts(BaseModel):
    dir: Path  # holds exactly the files to bake (a cache snapshot or the local folder itself)
    files: list[FileEntry]
    digest: str  # "sha256:<hex>" over names + file digests (see content_digest)
    source: str  # "hub:org/name", "s3://bucket/prefix/", "path:/abs/folder"
    source_kind: Literal["hub", "s3", "path"]
    revision: str | None = None  # resolved commit sha for Hub models
    cached: bool = False  # True when nothing had to be downloaded or hashed
    # the artifact cache entry: "local", "remote" (--cache-remote) or "built" (fetched from the source here)
    origin: Literal["local", "remote", "built"] | None = None

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def content_digest(files: list[FileEntry]) -> str:
    """Digest of a model's content: independent of where it came from, so the same weights fetched
    from the Hub, S3 or a folder share compile-cache entries."""
    h = hashlib.sha256()
    for f in sorted(files, key=lambda e: e.name):
        h.update(f"{f.name}\0{f.sha256}\n".encode())
    return "sha256:" + h.hexdigest()
