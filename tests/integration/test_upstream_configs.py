"""Upstream's own configurations (opt-in: DJL_SERVING_SRC=<djl-serving checkout or mirror>).

For each release branch, every serving.properties that djl-serving's integration tests write with
tests/integration/llm/prepare.py goes through import + validate + render: no rejection, no
serving.pass_through, no warning but an unpinned revision, every option back in the render
(reference/lmi-releases.md §3). The counts per release are in the README; `python -m
tests.support.upstream_configs BRANCH...` prints them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.upstream_configs import check, generate, handlers_to_skip, release_of

SRC = os.environ.get("DJL_SERVING_SRC")
BRANCHES = ["0.29.0-dlc", "0.30.0-dlc", "0.31.0-dlc", "0.32.0-dlc", "0.33.0-dlc", "0.34.0-dlc", "0.35.0-dlc",
            *[f"0.36.0-lmi{n}-dlc" for n in range(18, 28)]]

pytestmark = pytest.mark.skipif(not SRC, reason="set DJL_SERVING_SRC to a djl-serving checkout or mirror to run "
                                "upstream's own configurations through import/validate/render")


@pytest.mark.parametrize("branch", BRANCHES)
def test_upstream_configurations_import_validate_and_render_clean(branch: str, tmp_path: Path) -> None:
    release = release_of(branch)
    assert release, branch
    configs = generate(Path(SRC), branch, handlers_to_skip(release))
    assert configs, f"prepare.py of {branch} wrote no serving.properties"
    bad = [o for o in (check(release, h, m, p, tmp_path) for h, m, p in configs) if not o.ok]
    assert not bad, f"{len(bad)} of {len(configs)} upstream configurations of {release}:\n" + "\n".join(
        f"  {o.handler}/{o.model}: {'; '.join(o.problems)}" for o in bad)
