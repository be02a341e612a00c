"""Upstream's own configurations (opt-in: DJL_SERVING_SRC=<djl-serving checkout or mirror>).

For each release branch, every serving.properties that djl-serving's integration tests
(tests/integration/tests.py) have tests/integration/llm/prepare.py write goes through import + validate + render: no rejection, no
serving.pass_through, no warning but an unpinned revision, every option back in the render
(reference/lmi-releases.md §3). The counts per release are in the README; `python -m
tests.support.upstream_configs BRANCH...` prints them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.upstream_configs import backends_of, check, generate, release_of

SRC = os.environ.get("DJL_SERVING_SRC")
BRANCHES = ["0.29.0-dlc", "0.30.0-dlc", "0.31.0-dlc", "0.32.0-dlc", "0.33.0-dlc", "0.34.0-dlc", "0.35.0-dlc",
            *[f"0.36.0-lmi{n}-dlc" for n in range(18, 28)]]

pytestmark = pytest.mark.skipif(not SRC, reason="set DJL_SERVING_SRC to a djl-serving checkout or mirror to run "
                                "upstream's own configurations through import/validate/render")


@pytest.mark.parametrize("branch", BRANCHES)
def test_no_false_rejection_of_upstream_configurations(branch: str, tmp_path: Path) -> None:
    """Every configuration imports, validates and renders with every option back, except where it sets a key
    the release does not read (LMI would drop it without a word: the rejection is the point of this tool), or
    a vLLM key of a release whose bundled vLLM is a dev build not on PyPI (its EngineArgs are unknown)."""
    from builder.catalog import load_catalog
    from builder.lmi.keys import derived_keys, known_keys

    release = release_of(branch)
    assert release, branch
    rel = load_catalog().release("lmi", release)
    d = derived_keys(rel)
    configs = generate(Path(SRC), branch, backends_of(release))
    assert configs, f"tests.py of {branch} has prepare.py write no serving.properties"
    every_read = set().union(*(known_keys(rel, rb, ep) for rb in rel.rolling_batch
                               for ep in (None, "djl_python.lmi_vllm.vllm_async_service")))
    wrong = []
    for outcome in (check(release, h, m, p, tmp_path) for h, m, p in configs):
        falsely_refused = [k for k in outcome.unread if k in every_read and not (d and d.engine_args_unknown)]
        if falsely_refused or len(outcome.problems) > (1 if outcome.unread else 0):
            wrong.append(f"  {outcome.handler}/{outcome.model}: {'; '.join(outcome.problems)}")
    assert not wrong, f"{len(wrong)} of {len(configs)} upstream configurations of {release}:\n" + "\n".join(wrong)
