"""Atomic file writes that leave nothing behind when they fail, and the sweep for what a killed
process left (issue 15 item 8).

A write is a temporary name beside the target plus ``os.replace``, so readers never see half a file.
On any failure (a full disk, Ctrl-C) the temporary is unlinked, and an ``OSError`` that names no file
(``write`` on a full disk says only ``[Errno 28]``) is raised again naming the target, so the user's
message says which file could not be written. A process killed between the two steps leaves a
temporary that ``stale_temporaries`` finds by its name and age (``cache prune`` removes them).
"""

from __future__ import annotations

import errno
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

TMP_PREFIX = ".tmp-"
# a temporary younger than this may belong to a running writer; older ones were left by a dead one
STALE_AFTER_S = 10 * 60


def with_path(exc: OSError, path: str | os.PathLike) -> OSError:
    """``exc`` itself when it names a file; else the same error naming ``path``."""
    if exc.filename:
        return exc
    named = type(exc)(exc.errno, exc.strerror or str(exc), str(path)) if exc.errno else \
        OSError(exc.errno, f"{exc}", str(path))
    return named


@contextmanager
def atomic_open(target: str | os.PathLike, mode: str = "w", *, prefix: str = TMP_PREFIX) -> Iterator[IO[Any]]:
    """``with atomic_open(path) as fh: fh.write(...)``: the file appears whole or not at all."""
    target = Path(target)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=prefix)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
        os.replace(tmp, target)
    except BaseException as exc:
        with suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not exc.filename:
            raise with_path(exc, target) from exc
        raise


def atomic_write(target: str | os.PathLike, data: str | bytes, *, prefix: str = TMP_PREFIX) -> Path:
    with atomic_open(target, "wb" if isinstance(data, bytes) else "w", prefix=prefix) as fh:
        fh.write(data)
    return Path(target)


def is_temporary(name: str) -> bool:
    """Names the builder's writers give their temporaries: ``.tmp-*`` (atomic_open, mkstemp writers),
    ``.NAME.<random>`` of the digest memo, ``*.tmp`` (blob and manifest writers)."""
    from builder.artifacts.hashing import MEMO_FILE

    return name.startswith(TMP_PREFIX) or name.startswith(f".{MEMO_FILE}.") and not name.endswith(".lock") \
        or name.endswith(".tmp") and not name.endswith(".lock")


def stale_temporaries(root: str | os.PathLike, *, older_than_s: float = STALE_AFTER_S,
                      now: float | None = None) -> list[Path]:
    """Temporary files under ``root`` last written more than ``older_than_s`` ago. Folders named
    ``.tmp``/``tmp`` (running compiles' and downloads' own areas, pruned by their owners) and lock
    files are never listed."""
    now = time.time() if now is None else now
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in (".tmp", "tmp", ".locks")]
        for name in filenames:
            if not is_temporary(name):
                continue
            path = Path(dirpath) / name
            try:
                if now - path.lstat().st_mtime > older_than_s:
                    found.append(path)
            except OSError:
                continue
    return sorted(found)


def os_error_message(exc: OSError) -> tuple[str, str | None]:
    """One line naming the path (both paths of a rename) and a hint for a full or read-only disk."""
    what = exc.strerror or str(exc) or type(exc).__name__
    paths = [str(p) for p in (exc.filename, exc.filename2) if p]
    text = f"{what}: {' -> '.join(paths)}" if paths else what
    hint = None
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = ("free space on that filesystem; `lmi-build cache prune` removes what no build needs "
                "(the cache is --cache-dir / LMI_BUILD_CACHE)")
    elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        hint = "write somewhere this user may write (--cache-dir, --report, -o)"
    return text, hint


def write_report(path: str | os.PathLike, text: str, *, stage: str) -> Path:
    """A ``--report FILE`` the user asked for: written whole or not at all; a failure is the command's
    failure (exit 1) naming the stage and the path, never a warning."""
    from builder.diagnostics import BuilderError

    target = Path(path)
    try:
        if target.is_dir():
            raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", str(target))
        target.parent.mkdir(parents=True, exist_ok=True)
        return atomic_write(target, text)
    except OSError as exc:
        message, hint = os_error_message(with_path(exc, target))
        raise BuilderError(f"cannot write the report: {message}", stage=stage, hint=hint) from None
