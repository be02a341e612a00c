"""``serving.properties`` writer and reader with ``java.util.Properties`` semantics.

LMI's Java front end reads the file with ``java.util.Properties`` (reference/lmi-runtime.md §3), but
the partition tools split at the first ``=`` with no escape handling (§10.4). So the writer emits
plain ``key=value`` whenever that is unambiguous for both readers, and escapes only what Java needs
(``\\``, leading spaces, line breaks, non-ASCII as ``\\uXXXX``); keys are restricted so that nothing can
add a key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

KEY_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")


class PropertiesError(ValueError):
    pass


def _escape(text: str, *, is_key: bool) -> str:
    out = []
    for i, ch in enumerate(text):
        code = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\f":
            out.append("\\f")
        elif ch == " " and (is_key or i == 0):
            out.append("\\ ")
        elif is_key and ch in "=:#!":
            out.append("\\" + ch)
        elif not is_key and i == 0 and ch in "#!":
            out.append("\\" + ch)  # only matters for keys, harmless for values
        elif code < 0x20 or code > 0x7E:
            if code > 0xFFFF:  # Java strings are UTF-16: write the surrogate pair
                code -= 0x10000
                out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
            else:
                out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def format_value(value: object) -> str:
    """Python value -> LMI text: booleans lower-case (§18), numbers as written."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def dumps(items: Mapping[str, object] | Iterable[tuple[str, object]], header: Iterable[str] = ()) -> str:
    pairs = list(items.items()) if isinstance(items, Mapping) else list(items)
    lines = [f"# {h}" for h in header if "\n" not in h and "\r" not in h]
    seen: set[str] = set()
    for key, value in pairs:
        if not KEY_RE.match(key):
            raise PropertiesError(f"refusing property key {key!r}: keys are letters, digits, '_', '.', '-'")
        if key in seen:
            raise PropertiesError(f"duplicate property key {key!r}")
        seen.add(key)
        lines.append(f"{_escape(key, is_key=True)}={_escape(format_value(value), is_key=False)}")
    return "\n".join(lines) + "\n"


_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


def _logical_lines(text: str) -> Iterable[str]:
    raw_lines = re.split(r"\r\n|\r|\n", text)
    i = 0
    while i < len(raw_lines):
        line = raw_lines[i].lstrip(" \t\f")
        i += 1
        if not line or line[0] in "#!":
            continue
        while ends_with_continuation(line) and i <= len(raw_lines):
            line = line[:-1]
            nxt = raw_lines[i].lstrip(" \t\f") if i < len(raw_lines) else ""
            i += 1
            line += nxt
        yield line


def ends_with_continuation(line: str) -> bool:
    n = len(line) - len(line.rstrip("\\"))
    return n % 2 == 1


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch != "\\" or i + 1 >= len(text):
            if ch != "\\":
                out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "u":
            hex_ = text[i + 2:i + 6]
            if len(hex_) < 4 or not all(c in "0123456789abcdefABCDEF" for c in hex_):
                raise PropertiesError("malformed \\uxxxx escape")
            out.append(chr(int(hex_, 16)))
            i += 6
            continue
        out.append(_ESCAPES.get(nxt, nxt))
        i += 2
    joined = "".join(out)
    # re-join UTF-16 surrogate pairs the way Java strings hold them
    return joined.encode("utf-16", "surrogatepass").decode("utf-16", "surrogatepass")


def loads(text: str) -> dict[str, str]:
    """Parse like ``java.util.Properties.load(Reader)``; later keys win, as in Java."""
    result: dict[str, str] = {}
    for line in _logical_lines(text):
        key_end, i = len(line), 0
        while i < len(line):
            ch = line[i]
            if ch == "\\":
                i += 2
                continue
            if ch in "=: \t\f":
                key_end = i
                break
            i += 1
        key = line[:key_end]
        rest = line[key_end:]
        # skip whitespace, then at most one separator, then whitespace
        rest = rest.lstrip(" \t\f")
        if rest[:1] in ("=", ":"):
            rest = rest[1:].lstrip(" \t\f")
        result[_unescape(key)] = _unescape(rest)
    return result
