"""The whole pipeline, as the README's first command runs it, on a copy of the quickstart.

Real parts only: the Docker engine, the dev-cpu runtime (LMI's djl_python behind our front end),
the quickstart's numpy handler. Checks the build record, the image, a no-change rebuild, a
config-only rebuild, and that secrets present in the environment reach no output, record, label,
env or layer.
"""

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
from builder.lmi.properties import dumps, loads
from builder.lmi.resolve import resolve
from builder.paths import REPO_DIR
from builder.recipe import load_recipe
from tests.support.docker_fixtures import image_tags, remove_images_made_since

pytestmark = pytest.mark.docker

SECRET = "hf_" + "S3cr3tT0k3n" * 3
AWS_SECRET = "aws/" + "Sup3rS3cr3t" * 3


@pytest.fixture
def quickstart(tmp_path: Path, docker_client, devcpu_runtime, monkeypatch):
    """A copy of recipes/examples/quickstart.yaml under a unique name, with its model generated."""
    src = REPO_DIR / "recipes/examples"
    work = tmp_path / "recipes"
    shutil.copytree(src / "quickstart", work / "quickstart", ignore=shutil.ignore_patterns("*.safetensors"))
    write_example_model(work / "quickstart/model", force=True)
    name = f"qs-test-{uuid.uuid4().hex[:8]}"
    text = (src / "quickstart.yaml").read_text().replace("name: quickstart", f"name: {name}")
    recipe = work / "quickstart.yaml"
    recipe.write_text(text)
    monkeypatch.setenv("HF_TOKEN", SECRET)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    before = image_tags(docker_client)
    yield recipe, tmp_path / "cache"
    remove_images_made_since(docker_client, before, (name, "lmi-build/artifacts:"))


def _build(recipe: Path, cache: Path, report: Path, capsys, *extra: str) -> tuple[int, dict, str]:
    rc = main(["build", str(recipe), "--cache-dir", str(cache), "--report", str(report), *extra])
    out = capsys.readouterr()
    return rc, json.loads(report.read_text()), out.out + out.err


def _stages(record: dict) -> dict[str, str]:
    return {s["name"]: s["status"] for s in record["stages"]}


def test_quickstart_builds_serves_and_keeps_secrets_out(quickstart, docker_client, tmp_path, capsys):
    recipe, cache = quickstart
    rc, record, output = _build(recipe, cache, tmp_path / "r1.json", capsys)
    assert rc == 0, output
    assert record["ok"] is True
    stages = _stages(record)
    assert stages["validate"] == "passed" and stages["bake"] == "passed" and stages["smoke"] == "passed"
    assert stages["compile"] == "skipped" and stages["publish"] == "skipped"
    smoke = next(s for s in record["stages"] if s["name"] == "smoke")
    assert smoke["details"]["accelerators"] == "none"
    assert {c["name"] for c in smoke["details"]["checks"] if c["ok"]} >= {"ready", "generate", "generate-stream"}

    image = docker_client.images.get(record["image"]["image_id"])
    resolved = resolve(load_recipe(recipe).recipe)
    digest = record["inputs"]["image_digest"]
    assert f"{resolved.recipe.name}:{digest[7:19]}" in image.tags and record["image"]["tags"][0] in image.tags
    assert image.labels[L.INPUTS_DIGEST] == digest == record["image"]["identity"]["digest"]
    assert record["inputs"]["image_inputs"]["recipe_hash"] == resolved.recipe_hash
    assert image.labels[L.RECIPE_HASH] == resolved.recipe_hash
    assert image.labels[L.DEV_RUNTIME] == "true"

    # the baked serving.properties is exactly what render writes
    container = docker_client.containers.create(image.id, labels={L.MANAGED: "true", L.ROLE: "test"})
    try:
        bits, _ = container.get_archive("/opt/ml/model/serving.properties")
        data = b"".join(bits)
    finally:
        container.remove(force=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        baked = tar.extractfile("serving.properties").read().decode()
    assert loads(baked) == loads(dumps(resolved.properties))

    # secrets: not in the output, the record, the labels, the env, the history or any layer
    inspect = json.dumps(docker_client.api.inspect_image(image.id))
    history = json.dumps(docker_client.api.history(image.id))
    saved = b"".join(docker_client.api.get_image(image.id))
    for secret in (SECRET, AWS_SECRET):
        assert secret not in output
        assert secret not in (tmp_path / "r1.json").read_text()
        assert secret not in inspect and secret not in history
        assert secret.encode() not in saved


def test_nothing_changed_then_config_only(quickstart, tmp_path, capsys):
    recipe, cache = quickstart
    rc, first, out = _build(recipe, cache, tmp_path / "r1.json", capsys)
    assert rc == 0, out

    rc, again, out = _build(recipe, cache, tmp_path / "r2.json", capsys)
    assert rc == 0, out
    assert _stages(again)["bake"] == "cached"
    assert _stages(again)["smoke"] == "cached"  # the same image id passed before
    assert again["image"]["image_id"] == first["image"]["image_id"]

    recipe.write_text(recipe.read_text().replace("model_loading_timeout: 60", "model_loading_timeout: 61"))
    rc, changed, out = _build(recipe, cache, tmp_path / "r3.json", capsys)
    assert rc == 0, out
    assert changed["image"]["image_id"] != first["image"]["image_id"]
    assert changed["image"]["artifacts_image_reused"] is True
    assert changed["image"]["bytes_sent"] < 1 << 20
    assert _stages(changed)["smoke"] == "passed"  # a new image is always tested


def test_a_failing_stage_is_named_and_recorded(quickstart, tmp_path, capsys):
    recipe, cache = quickstart
    handler = recipe.parent / "quickstart/model.py"
    handler.write_text(handler.read_text() + "\n\ndef broken(:\n")
    rc, record, out = _build(recipe, cache, tmp_path / "r.json", capsys)
    assert rc == 1
    assert record["ok"] is False and record["failed_stage"] == "validate"
    assert "model.py" in out and "Traceback" not in out


def test_handler_edit_makes_a_new_tag_and_the_old_tag_stays(quickstart, docker_client, tmp_path, capsys):
    """Issue 14: the tag digests the handler too, so an edited model.py is a new tag, never the old one."""
    from builder.image.lookup import image_for_recipe

    recipe, cache = quickstart
    rc, first, out = _build(recipe, cache, tmp_path / "r1.json", capsys, "--smoke", "never")
    assert rc == 0, out
    handler = recipe.parent / "quickstart/model.py"
    original = handler.read_text()
    handler.write_text(original + "\n# edited: another image\n")
    rc, second, out = _build(recipe, cache, tmp_path / "r2.json", capsys, "--smoke", "never")
    assert rc == 0, out

    (tag1, tag2) = first["image"]["tags"][0], second["image"]["tags"][0]
    assert tag1 != tag2 and first["image"]["image_id"] != second["image"]["image_id"]
    assert first["recipe_hash"] == second["recipe_hash"]  # the recipe text did not change
    assert docker_client.images.get(tag1).id == first["image"]["image_id"]  # the old tag stays put
    assert docker_client.images.get(tag2).id == second["image"]["image_id"]
    a, b = first["inputs"]["image_inputs"], second["inputs"]["image_inputs"]
    assert a["files"]["model.py"] != b["files"]["model.py"]
    assert {k: v for k, v in a.items() if k != "files"} == {k: v for k, v in b.items() if k != "files"}
    assert image_for_recipe(recipe, docker_client) == tag2  # serve/smoke RECIPE: the latest build

    # the first handler again: the first image, reused under its own tag, nothing built
    handler.write_text(original)
    rc, third, out = _build(recipe, cache, tmp_path / "r3.json", capsys, "--smoke", "never")
    assert rc == 0, out
    assert third["image"]["image_id"] == first["image"]["image_id"] and _stages(third)["bake"] == "cached"
    assert image_for_recipe(recipe, docker_client) == tag1
