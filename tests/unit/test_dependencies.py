"""Every third-party module the package imports is a declared runtime dependency.

The test extras are installed wherever the tests run, so a module used at run time but declared
only as a test extra passes every other test and breaks `nox -s build` (it did, for numpy)."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IMPORT_NAME = {"pyyaml": "yaml"}  # distributions whose import name differs
TRANSITIVE = {"botocore": "boto3", "urllib3": "requests"}  # imported directly, installed by a declared one


def _declared() -> set[str]:
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0].strip().lower().replace("-", "_") for d in deps}
    return {IMPORT_NAME.get(n, n) for n in names}


def test_runtime_imports_are_declared_dependencies():
    declared = _declared()
    missing = set()
    for path in (ROOT / "builder").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                mods = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                mods = [node.module.split(".")[0]]
            else:
                continue
            for mod in mods:
                if mod in sys.stdlib_module_names or mod == "builder" or mod in declared:
                    continue
                if TRANSITIVE.get(mod) in declared:
                    continue
                missing.add(f"{mod} ({path.relative_to(ROOT)})")
    assert not missing, f"imported but not in [project].dependencies: {sorted(missing)}"
