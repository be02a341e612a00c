"""docs/lmi-validators.md against the code and against upstream: every crossfield rule is in the table, every
rule the table names exists, and (with a djl-serving checkout) every validator that raises on a release
branch has its row with its branch range (scripts/list_validators.py)."""

from __future__ import annotations

import os
import re
from importlib import util
from pathlib import Path

import pytest

from builder.lmi.rules import RULES, crossfield

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "lmi-validators.md").read_text()
ROWS = [line for line in DOC.splitlines() if line.startswith("| `")]


def test_every_crossfield_rule_is_in_the_table() -> None:
    ours = {v for v in vars(crossfield).values() if isinstance(v, str) and v in RULES}
    assert ours and all(f"`{r}`" in DOC for r in ours), sorted(r for r in ours if f"`{r}`" not in DOC)


def test_every_rule_the_table_names_exists() -> None:
    named = {m for row in ROWS for m in re.findall(r"`([a-z0-9]+(?:-[a-z0-9]+)+)`", row.split(" | ")[-1])}
    assert named and named <= set(RULES), sorted(named - set(RULES))


@pytest.mark.skipif(not os.environ.get("DJL_SERVING_SRC"), reason="set DJL_SERVING_SRC to a djl-serving checkout "
                    "or mirror to check the table against every release branch")
def test_every_raising_validator_has_its_row_and_range() -> None:
    spec = util.spec_from_file_location("list_validators", ROOT / "scripts" / "list_validators.py")
    lv = util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(lv)  # type: ignore[union-attr]
    src = Path(os.environ["DJL_SERVING_SRC"])
    order = lv.branches(src)
    found = lv.scan(src)
    assert found
    for (file, function), branches in found.items():
        rows = [r for r in ROWS if r.startswith(f"| `{file}` |") and f"`{function}`" in r.split(" | ")[1]]
        assert rows, f"{file} {function} raises on {branches[0]}..{branches[-1]} but has no row"
        for run in lv.runs(branches, order):
            assert run in rows[0], f"{file} {function}: the row does not give the range {run}"
