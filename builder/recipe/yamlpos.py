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
from builder.userfile import InputFileError, read_bytes

# libyaml's composer when available (about 2x faster on 1,000 recipes); node marks are the same
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_BYTES = 1 << 20  # a recipe is a few KB; 1 MiB is generous and keeps a 10 MB file out
# Anchors and aliases stay allowed (a shared env block), but every node an alias expands to is
# counted: 9 aliases of 9 aliases of ... is a 1 KB file that expands to 9**8 nodes (a "billion
# laughs" bomb). The largest example recipe has under 100 nodes.
MAX_NODES = 10_000
MAX_DEPTH = 32  # a recipe is 4 levels deep; libyaml itself stops at 1,000
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
            raw = read_bytes(file, limit=MAX_BYTES, what="recipe file")
        except InputFileError as exc:
            if exc.rule == "file-too-large":
                return doc, diag("yaml-too-large", f"recipe is larger than {MAX_BYTES} bytes, the limit "
                                 "(a recipe holds configuration, not data)")
            return doc, [Diagnostic(exc.rule, "error", exc.message, Location(where))]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
            return doc, diag("yaml-encoding", f"not UTF-8 (byte 0x{raw[exc.start]:02x}); save the recipe as UTF-8",
                             line, col)
    elif len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        return doc, diag("yaml-too-large", f"recipe is larger than {MAX_BYTES} bytes, the limit "
                         "(a recipe holds configuration, not data)")
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
        doc.data = _Builder(doc).build(nodes[0], ())
    except _Error as exc:
        return doc, diag(exc.rule, exc.message, exc.line, exc.col)
    except RecursionError:
        return doc, diag("yaml-syntax", "YAML nested too deeply")
    return doc, []


_constructor = yaml.SafeLoader(stream="")


class _Builder:
    """Plain values from nodes, with a position per path, within the node and depth budgets."""

    def __init__(self, doc: Document):
        self.doc = doc
        self.count = 0
        self.seen: set[int] = set()  # ids of nodes built once: meeting one again is an alias

    def build(self, node: yaml.Node, path: Path_) -> Any:
        doc = self.doc
        line, col = node.start_mark.line + 1, node.start_mark.column + 1
        self.count += 1
        if self.count > MAX_NODES:
            alias = " (YAML aliases expand to a copy per use)" if id(node) in self.seen else ""
            raise _Error("yaml-too-many-nodes", f"recipe has more than {MAX_NODES} values{alias}; a recipe "
                         "holds a few dozen", line, col)
        if len(path) > MAX_DEPTH:
            raise _Error("yaml-too-deep", f"values nested more than {MAX_DEPTH} levels deep; a recipe is a "
                         "few levels deep", line, col)
        self.seen.add(id(node))
        doc.positions[path] = (line, col)
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise _Error("yaml-merge-key", "YAML merge keys (<<) are not supported in recipes; write the "
                                 "keys out", key_node.start_mark.line + 1, key_node.start_mark.column + 1)
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
                out[key] = self.build(value_node, path + (key,))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(child, path + (i,)) for i, child in enumerate(node.value)]
        return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    try:
        value = _constructor.construct_object(node, deep=True)
    except yaml.constructor.ConstructorError as exc:
        raise _Error("yaml-value", f"cannot read value: {exc.problem}", node.start_mark.line + 1,
                     node.start_mark.column + 1) from None
    finally:
        _constructor.constructed_objects.pop(node, None)  # the shared constructor would keep every node
    if isinstance(value, (bytes, bytearray)) or type(value).__name__ in ("date", "datetime"):
        # YAML turns 2024-01-01 into a date: in a recipe every such value is meant as text.
        value = node.value
    return value
