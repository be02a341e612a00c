"""Content digests of layer files, remembered by (path, size, mtime_ns, inode).

Hashing is the expensive part of a build (DESIGN.md "Performance facts": sha256 of 1 GiB takes
3.9 s, reading it through tar 0.5 s), so an unchanged file is never hashed twice, and a
config-only rebuild only ``stat``s the weights. The table lives in ``<cache>/image/file-digests.json``,
written atomically under a file lock.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from filelock import FileLock

from builder.image.layers import CHUNK, Layer

TABLE = "file-digests.json"


class FileDigestCache:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.path = self.root / TABLE
        self._table: dict[str, str] = {}
        self._dirty = False
        self.hits: list[str] = []
        self.misses: list[str] = []
        try:
            data = json.loads(self.path.read_text())
            if isinstance(data, dict):
                self._table = {str(k): str(v) for k, v in data.items()}
        except (OSError, ValueError):
            self._table = {}

    @staticmethod
    def key(path: Path) -> str:
        st = os.stat(path)
        return f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}"

    def digest(self, path: Path) -> str:
        """``sha256:<hex>`` of the file's bytes."""
        key = self.key(path)
        known = self._table.get(key)
        if known:
            self.hits.append(str(path))
            return known
        self.misses.append(str(path))
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                h.update(chunk)
        value = f"sha256:{h.hexdigest()}"
        if self.key(path) == key:  # only remember what did not change while we read it
            prefix = key.split("|", 1)[0] + "|"
            for stale in [k for k in self._table if k.startswith(prefix)]:
                del self._table[stale]
            self._table[key] = value
            self._dirty = True
        return value

    def save(self) -> None:
        if not self._dirty:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.path) + ".lock"):
            try:  # merge with what a concurrent build wrote meanwhile
                on_disk = json.loads(self.path.read_text())
                merged = {**(on_disk if isinstance(on_disk, dict) else {}), **self._table}
            except (OSError, ValueError):
                merged = dict(self._table)
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-digests-")
            with os.fdopen(fd, "w") as fh:
                json.dump(merged, fh, sort_keys=True)
            os.replace(tmp, self.path)
        self._dirty = False


def layer_content_digest(layer: Layer, cache: FileDigestCache) -> str:
    """sha256 over (arcname, mode, size, file digest) of every entry: equal iff the layer tar is equal."""
    h = hashlib.sha256(f"layer-v1|{layer.kind}\n".encode())
    for entry in sorted(layer.entries, key=lambda e: e.arcname):
        file_digest = cache.digest(entry.source) if entry.source is not None else "dir"
        h.update(f"{entry.arcname}\0{entry.mode:o}\0{entry.size}\0{file_digest}\n".encode())
    return f"sha256:{h.hexdigest()}"
