"""Publishing a multi-model image (docs/multi-model.md, "Publishing the image"): ``build --push`` with
``publish.registry`` (the local Debian registry) and ``publish.ecr`` (moto's ECR control plane, bytes to
the local registry), through the single-model publisher: the smoke gate, the dev-runtime gate, the
default tag from the image's inputs digest, every tag verified by the registry."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest
import requests
import yaml

from builder import labels as L
from builder.cli import main
from builder.paths import REPO_DIR
from builder.publish.registry_api import MANIFEST_TYPES
from tests.support.docker_fixtures import image_tags, remove_images_made_since

pytestmark = [pytest.mark.docker, pytest.mark.registry]

ACCOUNT = "123456789012"


@pytest.fixture
def multi_recipe(tmp_path: Path, docker_client, devcpu_runtime):
    """The multi-model example under a name of its own; yields a writer taking the publish: section."""
    src = REPO_DIR / "recipes/examples"
    work = tmp_path / "recipes"
    shutil.copytree(src / "quickstart", work / "quickstart", ignore=shutil.ignore_patterns("__pycache__"))
    name = f"mm-pub-{uuid.uuid4().hex[:8]}"
    doc = yaml.safe_load((src / "multi-model-quickstart.yaml").read_text())
    doc["name"] = name

    def write(publish: dict) -> Path:
        path = work / "multi.yaml"
        path.write_text(yaml.safe_dump({**doc, "publish": publish}, sort_keys=False))
        return path

    before = image_tags(docker_client)
    yield name, write
    remove_images_made_since(docker_client, before, (name,))


def _build(recipe: Path, cache: Path, report: Path, *extra: str) -> tuple[int, dict]:
    rc = main(["build", str(recipe), "--cache-dir", str(cache), "--report", str(report), *extra])
    return rc, json.loads(report.read_text())


def _head(host: str, repo: str, ref: str) -> str | None:
    r = requests.head(f"http://{host}/v2/{repo}/manifests/{ref}", headers={"Accept": MANIFEST_TYPES}, timeout=5)
    return r.headers.get("Docker-Content-Digest") if r.status_code == 200 else None


def _config_digest(host: str, repo: str, ref: str) -> str:
    r = requests.get(f"http://{host}/v2/{repo}/manifests/{ref}", headers={"Accept": MANIFEST_TYPES}, timeout=5)
    r.raise_for_status()
    return r.json()["config"]["digest"]


def test_build_push_to_a_registry_after_the_smoke(multi_recipe, local_registry, docker_client, tmp_path, capsys):
    name, write = multi_recipe
    repo = f"test/mm-{uuid.uuid4().hex[:8]}"
    recipe = write({"registry": f"{local_registry.host}/{repo}", "tags": ["v-{image_digest12}"]})
    cache = tmp_path / "cache"

    # a dev-cpu image is refused by the publisher's gate unless asked for (the single-model rule)
    rc, record = _build(recipe, cache, tmp_path / "r0.json", "--push")
    err = capsys.readouterr().err
    assert rc == 1 and "dev-cpu development runtime" in err and "--allow-dev-runtime" in err
    assert record["published"] == [] and _head(local_registry.host, repo, "latest") is None

    rc, record = _build(recipe, cache, tmp_path / "r1.json", "--push", "--allow-dev-runtime")
    out = capsys.readouterr()
    assert rc == 0, out.err
    stages = {s["name"]: s for s in record["stages"]}
    assert stages["smoke"]["status"] == "cached"  # the refused run smoked this exact image
    assert stages["publish"]["status"] == "passed"
    image = docker_client.images.get(record["image"]["image_id"])
    hex12 = image.labels[L.INPUTS_DIGEST][7:19]
    assert record["image"]["tags"] == [f"{name}:{hex12}"]  # local tag and default publish tag: one digest
    [target] = record["published"]
    assert target["tags_pushed"] == [f"{name}-{hex12}", f"v-{hex12}"] and target["verified"]
    assert target["pinned"] == f"{local_registry.host}/{repo}@{target['digest']}"
    assert f"published: {target['pinned']}" in out.err
    for tag in target["tags_pushed"]:  # the registry itself says where each tag points
        assert _head(local_registry.host, repo, tag) == target["digest"]
    # what went out is this image: its config digest is the local image id, models label included
    assert _config_digest(local_registry.host, repo, target["digest"]) == image.id
    assert json.loads(image.labels["dev.lmi-builder.models"]) == ["alpha", "beta"]
    assert target["deploy"]["ContainerStartupHealthCheckTimeoutInSeconds"] == 150  # 60 + 90
    assert not any(t.startswith(f"{local_registry.host}/") for t in docker_client.images.get(image.id).tags)

    # again: the tags are already at this digest, nothing is pushed
    rc, again = _build(recipe, cache, tmp_path / "r2.json", "--push", "--allow-dev-runtime")
    capsys.readouterr()
    assert rc == 0 and again["published"][0]["tags_pushed"] == []
    assert sorted(again["published"][0]["tags_skipped"]) == sorted(target["tags_pushed"])

    # `lmi-build publish IMAGE` on the built image, to a second repository: the same tag from its labels
    other = f"test/mm-{uuid.uuid4().hex[:8]}"
    rc = main(["publish", record["image"]["tags"][0], "--registry", f"{local_registry.host}/{other}",
               "--allow-dev-runtime", "--cache-dir", str(cache)])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert out.out.strip().startswith(f"{local_registry.host}/{other}@sha256:")
    assert _head(local_registry.host, other, f"{name}-{hex12}") == target["digest"]


def test_smoke_gate_refuses_an_untested_image(multi_recipe, local_registry, tmp_path, capsys):
    _, write = multi_recipe
    repo = f"test/mm-{uuid.uuid4().hex[:8]}"
    recipe = write({"registry": f"{local_registry.host}/{repo}"})
    rc, record = _build(recipe, tmp_path / "cache", tmp_path / "r.json", "--push", "--allow-dev-runtime",
                           "--smoke", "never")
    err = capsys.readouterr().err
    assert rc == 1 and "has no smoke-test result" in err and "--skip-smoke" in err
    assert record["published"] == []
    r = requests.get(f"http://{local_registry.host}/v2/{repo}/tags/list", timeout=5)
    assert r.status_code == 404 or not r.json().get("tags")


def test_build_push_to_ecr_on_moto(multi_recipe, ecr_mock, local_registry, docker_client, tmp_path, capsys,
                                   monkeypatch):
    name, write = multi_recipe
    repo = f"lmi/mm-{uuid.uuid4().hex[:8]}"
    # the ECR control plane is moto; the image bytes go to the local registry (never to moto)
    monkeypatch.setenv("LMI_BUILD_ECR_REGISTRY_HOST", local_registry.host)
    recipe = write({"ecr": {"account": ACCOUNT, "region": "us-west-2", "repository": repo}})
    rc, record = _build(recipe, tmp_path / "cache", tmp_path / "r.json", "--push", "--allow-dev-runtime")
    out = capsys.readouterr()
    assert rc == 0, out.err
    [target] = record["published"]
    hex12 = docker_client.images.get(record["image"]["image_id"]).labels[L.INPUTS_DIGEST][7:19]
    assert target["tags_pushed"] == [f"{name}-{hex12}"] and target["verified"]
    assert target["ecr_repository_created"] is True
    assert target["ecr_repository_uri"] == f"{ACCOUNT}.dkr.ecr.us-west-2.amazonaws.com/{repo}"
    described = ecr_mock.describe_repositories(repositoryNames=[repo])["repositories"][0]
    assert described["imageTagMutability"] == "IMMUTABLE"  # the default tag is safe there: one tag, one image
    assert _head(local_registry.host, repo, f"{name}-{hex12}") == target["digest"]
