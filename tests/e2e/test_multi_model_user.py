"""A user's multi-model commands on their defaults (docs/multi-model.md): the installed ``lmi-build`` in a
fresh clone, empty HOME (see conftest.py). Exit code, no traceback, and output that shows the work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.user import Result, User

pytestmark = pytest.mark.e2e

MULTI = "recipes/examples/multi-model-quickstart.yaml"
ASK = '{"inputs": "the quick brown fox", "parameters": {"max_new_tokens": 4}}'


def ok(result: Result) -> Result:
    assert result.rc == 0, result
    assert "Traceback" not in result.stderr, result
    return result


def test_validate_render_and_mme(user: User):
    ok(user.run("validate", MULTI))
    out = user.home / "multi-render"
    answer = json.loads(ok(user.run("render", MULTI, "-o", str(out))).stdout)
    assert sorted(answer["models"]) == ["alpha", "beta"]
    assert (out / "beta" / "serving.properties").read_text().count("option.model_loading_timeout=90") == 1
    folder = user.home / "mme"
    doc = json.loads(ok(user.run("mme", MULTI, "-o", str(folder))).stdout)
    assert doc["TargetModels"] == ["alpha.tar.gz", "beta.tar.gz"] and all(a["size"] > 0 for a in doc["archives"])
    assert sorted(p.name for p in Path(folder).iterdir()) == ["alpha.tar.gz", "beta.tar.gz"]


@pytest.fixture(scope="module")
def multi_build(user: User, docker_client):
    from tests.support.docker_fixtures import image_tags, remove_images_made_since

    before = image_tags(docker_client)
    yield user.run("build", MULTI, timeout=900)
    remove_images_made_since(docker_client, before, ("multi-model-quickstart:",))


@pytest.mark.docker
def test_build_and_predict_each_model(user: User, multi_build: Result):
    r = ok(multi_build)
    assert "alpha: ok" in r.stderr and "beta: ok" in r.stderr, r
    for name in ("alpha", "beta"):
        p = ok(user.run("predict", MULTI, "--model", name, "--data", ASK))
        assert json.loads(p.stdout)["generated_text"].strip(), p
