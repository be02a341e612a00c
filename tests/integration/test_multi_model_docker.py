"""A two-model image from two copies of the quickstart model: build (bake, smoke one generate per
model, archives), then ``lmi-build predict --model NAME`` against both names (docs/multi-model.md)."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import uuid
from pathlib import Path

import pytest

from builder import labels as L
from builder.cli import main
from builder.examples.quickstart import write_example_model
from builder.paths import REPO_DIR
from tests.support.docker_fixtures import image_tags, remove_images_made_since

pytestmark = pytest.mark.docker


@pytest.fixture
def two_models(tmp_path: Path, docker_client, devcpu_runtime):
    src = REPO_DIR / "recipes/examples"
    work = tmp_path / "recipes"
    for copy in ("one", "two"):  # two copies of the quickstart model, as two models
        shutil.copytree(src / "quickstart", work / copy, ignore=shutil.ignore_patterns("*.safetensors"))
        write_example_model(work / copy / "model", force=True)
    name = f"mm-test-{uuid.uuid4().hex[:8]}"
    text = (src / "multi-model-quickstart.yaml").read_text().replace("name: multi-model-quickstart", f"name: {name}")
    text = text.replace("path: quickstart/model\n    entry_point: quickstart/model.py",
                        "path: one/model\n    entry_point: one/model.py", 1)
    text = text.replace("path: quickstart/model\n    entry_point: quickstart/model.py",
                        "path: two/model\n    entry_point: two/model.py", 1)
    assert "one/model" in text and "two/model" in text
    recipe = work / "multi.yaml"
    recipe.write_text(text)
    before = image_tags(docker_client)
    yield recipe, tmp_path / "cache"
    remove_images_made_since(docker_client, before, (name,))


def test_two_model_image_builds_smokes_and_answers_both_names(two_models, docker_client, tmp_path, capsys):
    recipe, cache = two_models
    report = tmp_path / "record.json"
    rc = main(["build", str(recipe), "--cache-dir", str(cache), "--report", str(report)])
    out = capsys.readouterr()
    assert rc == 0, out.err
    record = json.loads(report.read_text())
    stages = {s["name"]: s for s in record["stages"]}
    assert record["ok"] and stages["bake"]["status"] == "passed" and stages["smoke"]["status"] == "passed"
    smoke = stages["smoke"]["details"]
    assert smoke["listed"] == ["alpha", "beta"] and [c["model"] for c in smoke["checks"] if c["ok"]] == ["alpha", "beta"]

    image = docker_client.images.get(record["image"]["image_id"])
    assert json.loads(image.labels["dev.lmi-builder.models"]) == ["alpha", "beta"]
    assert image.labels[L.ROLE] == "model" and image.labels[L.MANAGED] == "true"
    # one folder per model under the model store, each with its own serving.properties
    container = docker_client.containers.create(image.id, command=["true"], labels={L.MANAGED: "true"})
    try:
        for name, timeout in (("alpha", "60"), ("beta", "90")):
            raw = b"".join(container.get_archive(f"/opt/ml/model/{name}/serving.properties")[0])
            with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
                props = tar.extractfile("serving.properties").read().decode()
            assert f"option.model_loading_timeout={timeout}" in props and "option.model_id" not in props
    finally:
        container.remove(force=True)

    # the MME archives beside the record, deterministic: a second build writes the same bytes
    archives = {a["name"]: a["sha256"] for a in stages["mme"]["details"]["archives"]}
    assert set(archives) == {"alpha", "beta"}
    rc = main(["build", str(recipe), "--cache-dir", str(cache), "--report", str(tmp_path / "r2.json")])
    capsys.readouterr()
    again = json.loads((tmp_path / "r2.json").read_text())
    # this exact image passed: the smoke ledger says so and the smoke is not run again
    assert next(s for s in again["stages"] if s["name"] == "smoke")["status"] == "cached"
    assert rc == 0 and {a["name"]: a["sha256"] for s in again["stages"] if s["name"] == "mme"
                        for a in s["details"]["archives"]} == archives
    assert next(s for s in again["stages"] if s["name"] == "bake")["status"] == "cached"

    ask = json.dumps({"inputs": "the quick brown fox", "parameters": {"max_new_tokens": 4}})
    for name in ("alpha", "beta"):
        rc = main(["predict", str(recipe), "--model", name, "--data", ask, "--accelerators", "none"])
        out = capsys.readouterr()
        assert rc == 0, out.err
        assert json.loads(out.out)["generated_text"].strip()
    assert main(["smoke", str(recipe), "--accelerators", "none"]) == 0  # the smoke command: every model
    assert "one generate each" in capsys.readouterr().err
    rc = main(["predict", str(recipe), "--data", ask, "--accelerators", "none"])
    assert rc == 2 and "name one with --model NAME" in capsys.readouterr().err
