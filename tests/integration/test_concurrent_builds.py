"""Two builds at once (issue 15 item 9): `lmi-build build` processes of one recipe with one HOME and
cache give one image id (the tag's lock in builder/image/bake.py; the second reuses the first), and
registry-assembler builds to one registry push the dev-cpu runtime once, under a lock, never failing
on the local name the other build is pushing (builder/stages/runtime.py into_registry)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests

from builder import labels as L
from builder.paths import REPO_DIR
from tests.support.docker_fixtures import image_tags, remove_images_made_since

pytestmark = [pytest.mark.docker]


def _quickstart(tmp_path: Path, name: str) -> Path:
    src = REPO_DIR / "recipes/examples"
    shutil.copytree(src / "quickstart", tmp_path / "quickstart")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text((src / "quickstart.yaml").read_text().replace("name: quickstart", f"name: {name}"))
    return recipe


def _start(recipe: Path, home: Path, cache: Path, report: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "HOME": str(home), "LMI_BUILD_CACHE": str(cache), "NO_COLOR": "1"}
    return subprocess.Popen([sys.executable, "-m", "builder", "build", str(recipe), "--smoke", "never",
                             "--report", str(report), *extra], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish(procs: list[subprocess.Popen]) -> list[tuple[int, str]]:
    out = []
    for p in procs:
        _, err = p.communicate(timeout=600)
        out.append((p.returncode, err))
    return out


@pytest.fixture
def shared_cache(tmp_path: Path) -> Path:
    """This test's cache, seeded with the dev-cpu jar of the default cache (no second download)."""
    cache = tmp_path / "cache"
    from builder.paths import cache_dir

    maven = cache_dir() / "maven"
    if maven.is_dir():
        shutil.copytree(maven, cache / "maven")
    return cache


@pytest.mark.parametrize("caches", ["one cache", "two caches"])
def test_two_docker_builds_at_once_give_one_image_id(docker_client, devcpu_runtime, tmp_path, shared_cache, caches):
    """One cache: the tag's lock serialises them and the second reuses the first. Two caches (two
    locks): both may build; the one that finds the tag taken keeps that image and removes its own."""
    name = f"race-{uuid.uuid4().hex[:8]}"
    recipe = _quickstart(tmp_path, name)
    before = image_tags(docker_client)
    second = shared_cache
    if caches == "two caches":
        second = tmp_path / "cache2"
        shutil.copytree(shared_cache, second)
    try:
        reports = [tmp_path / "a.json", tmp_path / "b.json"]
        results = _finish([_start(recipe, tmp_path / "home", c, r) for c, r in zip((shared_cache, second), reports,
                                                                                   strict=True)])
        for rc, err in results:
            assert rc == 0, err[-3000:]
        records = [json.loads(r.read_text()) for r in reports]
        ids = {rec["image"]["image_id"] for rec in records}
        assert len(ids) == 1, ids
        tag = records[0]["image"]["tags"][0]
        assert docker_client.api.inspect_image(tag)["Id"] in ids  # the record names the tagged image
        # the loser of the race left nothing untagged behind
        dangling = docker_client.images.list(filters={"dangling": True, "label": f"{L.RECIPE_NAME}={name}"})
        assert dangling == []
        if caches == "one cache":
            assert sorted(s["status"] for rec in records for s in rec["stages"] if s["name"] == "bake") == \
                ["cached", "passed"]
    finally:
        remove_images_made_since(docker_client, before, (f"{name}:",))


@pytest.mark.registry
def test_two_registry_builds_at_once_push_the_runtime_once(docker_client, devcpu_runtime, tmp_path, shared_cache,
                                                          restartable_registry):
    reg = restartable_registry  # of its own: the runtime is not in it yet (the fixture stops it)
    name = f"race-{uuid.uuid4().hex[:8]}"
    recipe = _quickstart(tmp_path, name)
    reports = [tmp_path / "a.json", tmp_path / "b.json"]
    procs = [_start(recipe, tmp_path / "home", shared_cache, r, "--assembler", "registry", "--registry",
                    f"{reg.host}/models/{which}") for r, which in zip(reports, ("a", "b"), strict=True)]
    for rc, err in _finish(procs):
        assert rc == 0, err[-3000:]
        assert "ImageNotFound" not in err
    tags = requests.get(f"http://{reg.host}/v2/lmi-build/dev-cpu/tags/list", timeout=5).json()["tags"]
    assert tags == [devcpu_runtime.ref.rsplit(":", 1)[-1]]
    bases = {json.loads(r.read_text())["image"]["base"]["reference"] for r in reports}
    assert len(bases) == 1 and next(iter(bases)).startswith(f"{reg.host}/lmi-build/dev-cpu@sha256:")
    # the local names made for the push are gone; the runtime image stays
    assert not [t for t in image_tags(docker_client) if t.startswith(reg.host)]
    assert docker_client.api.inspect_image(devcpu_runtime.image_id)
