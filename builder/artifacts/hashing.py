"""File digests with a memo, so unchanged weights are never hashed twice.

Hashing, not copying, is the expensive part (DESIGN.md: sha256 of 1 GiB ~ 3.9 s on one core); the
memo is keyed by (real path, size, mtime_ns, inode), so an edited or replaced file is re-hashed and an
untouched one is not.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from filelock import FileLock

CHUNK = 4 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _key(path: Path) -> str:
    st = path.stat()
    return f"{os.path.realpath(path)}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}"


class DigestMemo:
    """``(path, size, mtime_ns, inode) -> sha256`` kept in one JSON file in the cache."""

    def __init__(self, file: Path):
        self.file = file
        self._data: dict[str, str] | None = None
        self._dirty = False
        self.hashed = 0  # files actually read in this process (tests and reports)

    def _load(self) -> dict[str, str]:
        if self._data is None:
            try:
                self._data = json.loads(self.file.read_text())
            except (OSError, ValueError):
                self._data = {}
        return self._data

    def digest(self, path: Path) -> str:
        data = self._load()
        key = _key(path)
        hit = data.get(key)
        if hit:
            return hit
        value = sha256_file(path)
        self.hashed += 1
        if _key(path) == key:  # file did not change while we read it
            data[key] = value
            self._dirty = True
        return value

    def save(self) -> None:
        if not self._dirty:
            return
        self.file.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.file) + ".lock"):
            try:  # merge with what other processes wrote meanwhile
                merged = json.loads(self.file.read_text())
            except (OSError, ValueError):
                merged = {}
            merged.update(self._data or {})
            # forget entries whose file is gone, so the memo does not grow forever
            merged = {k: v for k, v in merged.items() if os.path.exists(k.split("|", 1)[0])}
            tmp = self.file.with_name(f".{self.file.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(merged, sort_keys=True))
            os.replace(tmp, self.file)
        self._dirty = False
