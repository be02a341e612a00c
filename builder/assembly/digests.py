"""Content digests of layer files, remembered by (device, inode, size, mtime_ns).

Hashing is the expensive part of a build (DESIGN.md "Performance facts": sha256 of 1 GiB takes
3.9 s, reading it through tar 0.5 s), so an unchanged file is never hashed twice, and a
config-only rebuild only ``stat``s the weights. The table is the builder's one memo, ``<cache>/file-digests.json``,
written atomically under a file lock (``builder.artifacts.hashing``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from builder.artifacts.hashing import MEMO_FILE, DigestMemo
from builder.assembly.layers import Layer


class FileDigestCache(DigestMemo):
    """The builder's one file-digest memo (``builder.artifacts.hashing``), answering ``sha256:<hex>``.

    ``root`` is the cache root: the fetch stage has usually hashed the model already."""

    def __init__(self, root: Path):
        super().__init__(Path(root) / MEMO_FILE)

    def digest(self, path: Path) -> str:  # type: ignore[override]
        return "sha256:" + super().digest(path)


def layer_content_digest(layer: Layer, cache: FileDigestCache) -> str:
    """sha256 over (arcname, mode, size, file digest) of every entry: equal iff the layer tar is equal."""
    h = hashlib.sha256(f"layer-v1|{layer.kind}\n".encode())
    for entry in sorted(layer.entries, key=lambda e: e.arcname):
        file_digest = cache.digest(entry.source) if entry.source is not None else "dir"
        h.update(f"{entry.arcname}\0{entry.mode:o}\0{entry.size}\0{file_digest}\n".encode())
    return f"sha256:{h.hexdigest()}"
