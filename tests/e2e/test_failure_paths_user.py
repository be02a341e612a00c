"""What a user meets on a failure path, on the installed `lmi-build`'s defaults (issue 15 items 8, 11):
a usage error before any stage, nothing left behind, `cache prune` clearing what a dead writer left."""

from __future__ import annotations

import os
import time

import pytest

from tests.e2e.user import User

pytestmark = pytest.mark.e2e

QUICKSTART = "recipes/examples/quickstart.yaml"


def test_push_without_a_publish_target_is_refused_before_the_bake(user: User):
    r = user.run("build", QUICKSTART, "--push")
    assert r.rc == 2 and "Traceback" not in r.stderr, r
    assert "no publish target" in r.stderr and "==> bake" not in r.stderr, r


def test_report_to_a_folder_is_refused_before_any_stage(user: User):
    r = user.run("build", QUICKSTART, "--report", str(user.home))
    assert r.rc == 2 and "Traceback" not in r.stderr, r
    assert "is a folder" in r.stderr and "==> validate" not in r.stderr, r


def test_cache_prune_removes_a_dead_writers_temporary(user: User):
    leftover = user.cache / "builds" / "20260101T000000-1" / ".tmp-record-dead"
    leftover.parent.mkdir(parents=True, exist_ok=True)
    leftover.write_text("{")
    old = time.time() - 3600
    os.utime(leftover, (old, old))
    r = user.run("cache", "prune")
    assert r.rc == 0 and "Traceback" not in r.stderr, r
    assert ".tmp-record-dead" in r.stderr and not leftover.exists(), r
