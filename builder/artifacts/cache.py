"""The content-addressed artifact cache (one per machine, under ``builder.paths.cache_dir()``).

Layout (``<cache>/models/``)::

    blobs/sha256/<hex>        file contents, named by their sha256 (read-only)
    manifests/<key>.json      one per source (hub repo@sha, s3 prefix, local folder): files + digests
    snapshots/<hex>/          a folder per model digest: hard links to blobs, exactly the files to bake
    tmp/                      partial downloads (resumed) and entries being written
    ../file-digests.json      (device, inode, size, mtime_ns) -> sha256 (shared with bake)

With a remote (``--cache-remote s3://...``, ``builder.artifacts.remote``), a manifest missing here is
looked up there (its blobs downloaded into ``blobs/`` through ``put_blob``), and a manifest written
here is uploaded there (blobs first, the manifest last).

Every entry is written under a temporary name and renamed into place, and all writers hold one
``filelock``, so an interrupted build leaves no half-written entry and two builds never corrupt it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock
from pydantic import BaseModel, Field

from builder.artifacts.hashing import memo_for
from builder.artifacts.models import FileEntry

if TYPE_CHECKING:
    from builder.artifacts.remote import RemoteCache

LOCK_TIMEOUT_S = 6 * 3600  # a concurrent build may be downloading a large model


class Manifest(BaseModel):
    key: str  # the source key, e.g. "hub:org/name@<sha>" or "s3://bucket/prefix/"
    source: str
    source_kind: str
    revision: str | None = None
    files: list[FileEntry]
    digest: str
    created: float
    etags: dict[str, str] = {}  # S3: name -> ETag, to notice changed objects without downloading
    origin: str | None = Field(default=None, exclude=True)  # "local" | "remote": where this read found it


class ArtifactCache:
    def __init__(self, root: Path, remote: RemoteCache | None = None):
        self.remote = remote
        self.root = Path(root) / "models"
        self.blobs = self.root / "blobs" / "sha256"
        self.manifests = self.root / "manifests"
        self.snapshots = self.root / "snapshots"
        self.tmp = self.root / "tmp"
        for d in (self.blobs, self.manifests, self.snapshots, self.tmp):
            d.mkdir(parents=True, exist_ok=True)
        self.memo = memo_for(Path(root))  # shared with the bake stage
        # one instance: re-entrant in this thread (two FileLock objects on one file deadlock each other)
        self._lock = FileLock(str(self.root / ".lock"), timeout=LOCK_TIMEOUT_S)

    @contextmanager
    def locked(self) -> Iterator[None]:
        with self._lock:
            yield

    # ------------------------------------------------------------------ blobs
    def blob(self, sha: str) -> Path:
        return self.blobs / sha

    def has_blob(self, entry: FileEntry) -> bool:
        p = self.blob(entry.sha256)
        return p.is_file() and p.stat().st_size == entry.size

    def put_blob(self, src: Path, sha: str, *, move: bool = False) -> Path:
        """Store ``src`` as the blob ``sha`` (moved, hard-linked, or copied; atomically)."""
        dest = self.blob(sha)
        if dest.is_file():
            if move:
                src.unlink(missing_ok=True)
            return dest
        tmp = self.tmp / f"blob-{sha}.{os.getpid()}.tmp"
        tmp.unlink(missing_ok=True)
        try:
            if move:
                os.replace(src, tmp)
            else:
                try:
                    os.link(src, tmp)  # same filesystem: free
                except OSError:
                    shutil.copyfile(src, tmp)
            os.replace(tmp, dest)
        except BaseException:  # a full disk mid-copy: no half blob left in tmp/ (a moved source goes back)
            if move and tmp.exists() and not src.exists():
                os.replace(tmp, src)
            tmp.unlink(missing_ok=True)
            raise
        return dest

    # -------------------------------------------------------------- manifests
    @staticmethod
    def _name(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()[:32]

    def manifest(self, key: str, *, remote: bool = True) -> Manifest | None:
        """The local manifest of ``key``; else (``remote``) the remote one, its blobs brought here."""
        path = self.manifests / f"{self._name(key)}.json"
        try:
            m = Manifest.model_validate_json(path.read_text())
        except (OSError, ValueError):
            m = None
        if m is not None and m.key == key:
            os.utime(path)  # "last used", read by `cache prune`
            m.origin = "local"
            return m
        if remote and self.remote is not None:
            from builder.artifacts.remote import model_from_remote

            return model_from_remote(self, key)
        return None

    def write_manifest(self, m: Manifest, *, publish: bool = True) -> None:
        path = self.manifests / f"{self._name(m.key)}.json"
        from builder.atomic import atomic_write

        atomic_write(path, m.model_dump_json(indent=1))  # a failed write (full disk) leaves no temporary
        if publish and self.remote is not None:
            from builder.artifacts.remote import model_to_remote

            model_to_remote(self, m)

    def all_manifests(self) -> list[tuple[Path, Manifest]]:
        out = []
        for p in sorted(self.manifests.glob("*.json")):
            try:
                out.append((p, Manifest.model_validate_json(p.read_text())))
            except (OSError, ValueError):
                continue
        return out

    # -------------------------------------------------------------- snapshots
    def snapshot(self, digest: str, files: list[FileEntry], sources: dict[str, Path]) -> Path:
        """A folder holding exactly ``files``, hard-linked from ``sources`` (name -> path), named by digest."""
        final = self.snapshots / digest.removeprefix("sha256:")
        if final.is_dir() and _complete(final, files):
            os.utime(final)
            return final
        tmp = self.tmp / f"snap-{final.name}.{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            for f in files:
                dest = tmp / f.name
                dest.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(sources[f.name], dest)
                except OSError:  # another filesystem: a copy (only local folders end up here)
                    shutil.copyfile(sources[f.name], dest)
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return final


def _complete(folder: Path, files: list[FileEntry]) -> bool:
    present = {p.relative_to(folder).as_posix(): p.stat().st_size for p in folder.rglob("*") if p.is_file()}
    return present == {f.name: f.size for f in files}


# ---------------------------------------------------------------------- ls / prune
class CacheItem(BaseModel):
    kind: str  # "model" | "snapshot" | "blob" | "compile" | "tmp"
    name: str
    path: Path
    bytes: int
    last_used: float
    detail: str = ""


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    seen: set[int] = set()
    total = 0
    for p in path.rglob("*"):
        if p.is_file() and not p.is_symlink():
            st = p.stat()
            if st.st_ino not in seen:
                seen.add(st.st_ino)
                total += st.st_size
    return total


def list_items(root: Path) -> list[CacheItem]:
    cache = ArtifactCache(root)
    items: list[CacheItem] = []
    for path, m in cache.all_manifests():
        items.append(CacheItem(kind="model", name=m.source + (f"@{m.revision[:12]}" if m.revision else ""),
                               path=path, bytes=sum(f.size for f in m.files), last_used=path.stat().st_mtime,
                               detail=m.digest[:19]))
    for snap in sorted(cache.snapshots.iterdir()):
        items.append(CacheItem(kind="snapshot", name=snap.name[:12], path=snap, bytes=0,
                               last_used=snap.stat().st_mtime, detail="hard links to blobs"))
    compile_root = Path(root) / "compile"
    if compile_root.is_dir():
        for entry in sorted(compile_root.iterdir()):
            if entry.name.startswith(".") or not (entry / "meta.json").is_file():
                continue
            try:
                meta = json.loads((entry / "meta.json").read_text())
            except ValueError:
                meta = {}
            items.append(CacheItem(kind="compile", name=entry.name[:12], path=entry, bytes=_size(entry),
                                   last_used=entry.stat().st_mtime,
                                   detail=f"{meta.get('family', '?')} {meta.get('version', '?')} "
                                          f"{meta.get('arch', '?')} tp={meta.get('tensor_parallel_degree', '?')}"))
    return items


def prune(root: Path, *, older_than_days: float | None, dry_run: bool) -> list[CacheItem]:
    """Remove model manifests and compile entries not used for ``older_than_days`` (None: keep all),
    then every snapshot, blob and temporary file no remaining manifest refers to."""
    cache = ArtifactCache(root)
    now = time.time()
    removed: list[CacheItem] = []
    with cache.locked():
        keep_blobs: set[str] = set()
        keep_snaps: set[str] = set()
        for path, m in cache.all_manifests():
            age_days = (now - path.stat().st_mtime) / 86400
            if older_than_days is not None and age_days > older_than_days:
                removed.append(CacheItem(kind="model", name=m.source, path=path,
                                         bytes=sum(f.size for f in m.files), last_used=path.stat().st_mtime))
                continue
            keep_blobs.update(f.sha256 for f in m.files)
            keep_snaps.add(m.digest.removeprefix("sha256:"))
        for blob in cache.blobs.iterdir():
            if blob.name not in keep_blobs:
                removed.append(CacheItem(kind="blob", name=blob.name[:12], path=blob, bytes=blob.stat().st_size,
                                         last_used=blob.stat().st_mtime))
        for snap in cache.snapshots.iterdir():
            if snap.name not in keep_snaps:
                removed.append(CacheItem(kind="snapshot", name=snap.name[:12], path=snap, bytes=0,
                                         last_used=snap.stat().st_mtime))
        for tmp in cache.tmp.iterdir():  # only under the lock: no writer is using them
            removed.append(CacheItem(kind="tmp", name=tmp.name, path=tmp, bytes=_size(tmp),
                                     last_used=tmp.stat().st_mtime))
        from builder.atomic import STALE_AFTER_S, stale_temporaries

        # temporaries of writers outside this lock (records, digest memo, smoke ledger, image blobs) that
        # a killed process left; old enough that no running writer still owns them (issue 15 item 8)
        for tmp in stale_temporaries(root, older_than_s=STALE_AFTER_S, now=now):
            removed.append(CacheItem(kind="tmp", name=str(tmp.relative_to(root)), path=tmp,
                                     bytes=tmp.lstat().st_size, last_used=tmp.lstat().st_mtime))
        compile_root = Path(root) / "compile"
        if compile_root.is_dir() and older_than_days is not None:
            for entry in compile_root.iterdir():
                # .locks/.tmp belong to running compiles: deleting a held lock file lets a second
                # compile of the same key take its own lock on a new inode
                if entry.name.startswith("."):
                    continue
                if entry.is_dir() and (now - entry.stat().st_mtime) / 86400 > older_than_days:
                    removed.append(CacheItem(kind="compile", name=entry.name[:12], path=entry, bytes=_size(entry),
                                             last_used=entry.stat().st_mtime))
        if not dry_run:
            for item in removed:
                if item.path.is_dir():
                    shutil.rmtree(item.path, ignore_errors=True)
                else:
                    item.path.unlink(missing_ok=True)
    return removed
