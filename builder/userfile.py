"""Reading a file a user named (a recipe, serving.properties, an env file, ``--data @FILE``).

Only regular files, and never more than a limit: ``os.stat().st_size`` says nothing about
``/dev/zero`` (size 0, endless) or a FIFO (opening it blocks until a writer comes), so the file is
opened without blocking, checked with ``fstat`` on that very descriptor (no race with a rename), and
read with a bounded read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class InputFileError(Exception):
    """Why a user file cannot be read; ``rule`` names the case for diagnostics."""

    def __init__(self, rule: str, message: str):
        super().__init__(message)
        self.rule, self.message = rule, message


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_bytes(path: str | os.PathLike, *, limit: int, what: str = "file") -> bytes:
    """The bytes of regular file ``path``, at most ``limit`` of them; ``InputFileError`` otherwise."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        if os.path.islink(path):
            raise InputFileError("file-not-found", "is a symbolic link to a missing file") from None
        raise InputFileError("file-not-found", "no such file") from None
    except IsADirectoryError:
        raise InputFileError("file-not-regular", f"is a directory, expected a {what}") from None
    except OSError as exc:
        raise InputFileError("file-unreadable", f"cannot open: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise InputFileError("file-not-regular", f"is {_kind(mode)}, expected a {what} (a regular file)")
        os.set_blocking(fd, True)
        chunks: list[bytes] = []
        left = limit + 1  # one byte over the limit is enough to know it is too large
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
    except OSError as exc:
        raise InputFileError("file-unreadable", f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise InputFileError("file-too-large", f"is larger than {limit} bytes, the limit for a {what}")
    return data


def read_text(path: str | Path, *, limit: int, what: str = "file", encoding: str = "utf-8") -> str:
    """``read_bytes`` decoded; a decoding error becomes an ``InputFileError`` naming the line."""
    raw = read_bytes(path, limit=limit, what=what)
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputFileError("file-encoding", f"line {line}: not {encoding.upper()} (byte 0x{raw[exc.start]:02x})") \
            from None
