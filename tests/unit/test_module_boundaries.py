"""What one module shares with another goes by a public name: no ``from builder.X import _private``.

A private name imported elsewhere is an API nobody can see (issue 13: artifacts/sources.py and
artifacts/s3.py imported each other's ``_commit``; the multi-model modules the single-model ones').
Private *modules* inside their own package (``builder.commands._args``) are fine."""

from __future__ import annotations

import ast
from pathlib import Path

BUILDER = Path(__file__).resolve().parents[2] / "builder"


def test_no_module_imports_another_module_s_private_names() -> None:
    found = []
    for path in sorted(BUILDER.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("builder"):
                found += [f"{path.relative_to(BUILDER.parent)}: from {node.module} import {a.name}"
                          for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
    assert found == [], "make the shared name public (or move it to a module both import)"
