"""File digests with one memo for the whole builder, so unchanged weights are hashed once, ever.

Hashing, not copying, is the expensive part (DESIGN.md: sha256 of 1 GiB ~ 3.9 s on one core). The
memo is keyed by (device, inode, size, mtime_ns): an edited or replaced file is re-hashed, an
untouched one is not, and the hard-linked snapshots the artifact cache makes share their entry with
the blob they link to. Fetch (``builder.artifacts``) and bake (``builder.image``) use the same file,
``<cache>/file-digests.json``, so a model hashed at fetch is not hashed again at bake.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from filelock import FileLock

CHUNK = 4 << 20
MEMO_FILE = "file-digests.json"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _key(path: Path) -> str:
    st = os.stat(path)
    return f"{st.st_dev}:{st.st_ino}|{st.st_size}|{st.st_mtime_ns}"


class DigestMemo:
    """``(device, inode, size, mtime_ns) -> sha256 hex`` (with one path, to forget deleted files)."""

    def __init__(self, file: Path):
        self.file = Path(file)
        self._data: dict[str, list[str]] | None = None
        self._dirty = False
        self.hits: list[str] = []  # paths answered from the memo in this process
        self.misses: list[str] = []  # paths actually read

    @property
    def hashed(self) -> int:
        return len(self.misses)

    def _load(self) -> dict[str, list[str]]:
        if self._data is None:
            self._data = _read(self.file)
        return self._data

    def digest(self, path: Path) -> str:
        """sha256 hex of the file's bytes."""
        data = self._load()
        key = _key(path)
        hit = data.get(key)
        if hit:
            self.hits.append(str(path))
            return hit[0]
        value = sha256_file(path)
        self.misses.append(str(path))
        if _key(path) == key:  # only remember what did not change while it was read
            data[key] = [value, os.path.realpath(path)]
            self._dirty = True
        return value

    def save(self) -> None:
        if not self._dirty:
            return
        self.file.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.file) + ".lock"):
            merged = _read(self.file)  # merge with what other processes wrote meanwhile
            merged.update(self._data or {})
            # forget entries whose file is gone, so the memo does not grow forever
            merged = {k: v for k, v in merged.items() if os.path.exists(v[1])}
            from builder.atomic import atomic_open

            # atomic: readers never see half a file; a failed write (full disk) leaves no temporary
            with atomic_open(self.file, prefix=f".{self.file.name}.") as fh:
                json.dump(merged, fh, sort_keys=True)
        self._dirty = False


def _read(file: Path) -> dict[str, list[str]]:
    try:
        raw = json.loads(file.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(raw, dict):
        return {}
    return {k: v for k, v in raw.items() if isinstance(v, list) and len(v) == 2}  # older formats: forgotten


def memo_for(cache_root: Path) -> DigestMemo:
    """The builder's one memo under a cache root (``builder.paths.cache_dir()``)."""
    return DigestMemo(Path(cache_root) / MEMO_FILE)
