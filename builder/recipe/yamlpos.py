"""YAML loading that keeps the line and column of every node and refuses what YAML lets slip.

PyYAML's composer gives us nodes with start marks; we build plain Python values from them and a
map ``path -> (line, col)`` so that any later error (pydantic, a rule, a renderer) can point at the
exact node. Duplicate keys are errors (PyYAML silently keeps the last one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from builder.diagnostics import Diagnostic, Location, relpath

# libyaml's composer when available (about 2x faster on 1,000 recipes); node marks are the same
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_BYTES = 1 << 20  # a recipe is a few KB; 1 MiB is generous and keeps a 10 MB file out
Path_ = tuple[str | int, ...]


@dataclass
class Document:
    file: Path
    data: Any = None
    positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def location(self, path: Path_ = (), *, key: bool = False) -> Location:
        """The position of ``path`` (or of its key when ``key``), else of its nearest ancestor."""
        table = self.key_positions if key else self.positions
        p = tuple(path)
        while True:
            if p in table:
                line, col = table[p]
                return Location(relpath(self.file), line, col)
            if key and p in self.positions:
                line, col = self.positions[p]
                return Location(relpath(self.file), line, col)
            if not p:
                return Location(relpath(self.file), 1, 1)
            p = p[:-1]


class _Error(Exception):
    def __init__(self, rule: str, message: str, line: int, col: int):
        super().__init__(message)
        self.rule, self.message, self.line, self.col = rule, message, line, col


def load_document(file: Path, text: str | None = None) -> tuple[Document, list[Diagnostic]]:
    """Read and parse ``file``; never raises for bad input, returns diagnostics instead."""
    doc = Document(file=file)
    where = relpath(file)

    def diag(rule: str, message: str, line: int = 1, col: int = 1) -> list[Diagnostic]:
        return [Diagnostic(rule, "error", message, Location(where, line, col))]

    if text is None:
        try:
            size = file.stat().st_size
            if size > MAX_BYTES:
                return doc, diag("yaml-too-large", f"recipe is {size} bytes; the limit is {MAX_BYTES} bytes "
                                 "(a recipe holds configuration, not data)")
            raw = file.read_bytes()
        except FileNotFoundError:
            return doc, [Diagnostic("file-not-found", "error", "no such file", Location(where))]
        except IsADirectoryError:
            return doc, [Diagnostic("file-not-found", "error", "is a directory, expected a recipe file", Location(where))]
        except OSError as exc:
            return doc, [Diagnostic("file-unreadable", "error", f"cannot read: {exc.strerror}", Location(where))]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
            return doc, diag("yaml-encoding", f"not UTF-8 (byte 0x{raw[exc.start]:02x}); save the recipe as UTF-8",
                             line, col)
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\x00" in text:
        idx = text.index("\x00")
        line = text.count("\n", 0, idx) + 1
        return doc, diag("yaml-nul", "contains a NUL character", line, idx - (text.rfind("\n", 0, idx) + 1) + 1)
    if not text.strip():
        return doc, diag("yaml-empty", "recipe is empty; start from one of recipes/examples/")

    try:
        nodes = list(yaml.compose_all(text, Loader=_LOADER))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or "malformed YAML"
        if exc.context:
            problem = f"{exc.context}: {problem}"
        return doc, diag("yaml-syntax", f"malformed YAML: {problem}", line, col)
    except yaml.YAMLError as exc:
        return doc, diag("yaml-syntax", f"malformed YAML: {exc}")
    except RecursionError:
        return doc, diag("yaml-syntax", "YAML nested too deeply; a recipe is a few levels deep")
    nodes = [n for n in nodes if n is not None]
    if not nodes:
        return doc, diag("yaml-empty", "recipe is empty; start from one of recipes/examples/")
    if len(nodes) > 1:
        m = nodes[1].start_mark
        return doc, diag("yaml-multi-document", "a recipe is one YAML document; split this file", m.line + 1, m.column + 1)
    try:
        doc.data = _build(nodes[0], (), doc)
    except _Error as exc:
        return doc, diag(exc.rule, exc.message, exc.line, exc.col)
    except RecursionError:
        return doc, diag("yaml-syntax", "YAML nested too deeply")
    return doc, []


_constructor = yaml.SafeLoader(stream="")


def _build(node: yaml.Node, path: Path_, doc: Document) -> Any:
    doc.positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise _Error("yaml-merge-key", "YAML merge keys (<<) are not supported in recipes; write the keys out",
                             key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if not isinstance(key_node, yaml.ScalarNode):
                raise _Error("yaml-key-type", "mapping keys must be plain strings",
                             key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            key = key_node.value
            kpos = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key in out:
                first = doc.key_positions.get(path + (key,), kpos)
                raise _Error("yaml-duplicate-key", f"duplicate key '{key}' (first defined at line {first[0]}); "
                             "YAML would silently keep only the last one", *kpos)
            doc.key_positions[path + (key,)] = kpos
            out[key] = _build(value_node, path + (key,), doc)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(child, path + (i,), doc) for i, child in enumerate(node.value)]
    try:
        value = _constructor.construct_object(node, deep=True)
    except yaml.constructor.ConstructorError as exc:
        raise _Error("yaml-value", f"cannot read value: {exc.problem}", node.start_mark.line + 1,
                     node.start_mark.column + 1) from None
    if isinstance(value, (bytes, bytearray)) or type(value).__name__ in ("date", "datetime"):
        # YAML turns 2024-01-01 into a date: in a recipe every such value is meant as text.
        value = node.value
    return value
