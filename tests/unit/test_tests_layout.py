"""Helper modules live in tests/support/, not beside the tests under a ``test_*.py`` name.

pytest collects every ``test_*.py``: a helper named like one is imported as a test module (and
reported as collecting nothing), and a reader looks for tests in it."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _defines_a_test(path: Path) -> bool:
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
            return True
        if isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            return True
    return False


def test_every_test_module_defines_a_test() -> None:
    helpers = sorted(str(p.relative_to(TESTS)) for p in TESTS.rglob("test_*.py") if not _defines_a_test(p))
    assert helpers == [], f"helper modules named like tests (move them to tests/support/): {helpers}"


def test_the_unit_folder_holds_only_tests() -> None:
    """tests/unit/ is test modules only; what they share (e.g. javaprops.py, the JDK's Properties) is support."""
    allowed = {"__init__.py", "conftest.py"}
    helpers = sorted(p.name for p in (TESTS / "unit").glob("*.py") if p.name not in allowed
                     and not p.name.startswith("test_"))
    assert helpers == [], f"move these to tests/support/: {helpers}"
