"""`lmi-build validate DIR` checks the YAML files that are recipes and says which it skipped;
a file named on the command line is always validated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from builder.cli import main
from builder.paths import REPO_DIR

# the quickstart's container and target (the one family whose version naming stays put)
GOOD = {"name": "ok", "model": {"path": "m", "entry_point": "model.py"},
        "container": {"family": "dev-cpu", "version": "0.34.0"}, "target": {"instance_type": "ml.m5.xlarge"},
        "serving": {"engine": "Python", "option": {"rolling_batch": "disable"}}}
WORKFLOW = "name: ci\non: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n"
COMPOSE = "services:\n  web:\n    image: nginx\n"
MODELINE = "# yaml-language-server: $schema=../docs/recipe.schema.json\n"


def _write(folder: Path, name: str, text: str | dict) -> Path:
    if not (folder / "m").exists():  # GOOD's model: a folder with weights and a handler
        (folder / "m").mkdir(parents=True)
        (folder / "m" / "model.safetensors").write_bytes(b"\x08" + b"\0" * 7 + b"{}      ")
        (folder / "model.py").write_text("def handle(inputs):\n    return None\n")
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if isinstance(text, str) else yaml.safe_dump(text, sort_keys=False))
    return path


def test_non_recipes_in_a_folder_are_skipped_and_named(tmp_path: Path, capsys) -> None:
    _write(tmp_path, "recipe.yaml", GOOD)
    _write(tmp_path, ".github/workflows/ci.yml", WORKFLOW)  # dot folders were never searched
    _write(tmp_path, "ci.yml", WORKFLOW)
    _write(tmp_path, "deploy/compose.yaml", COMPOSE)
    _write(tmp_path, "list.yaml", yaml.safe_dump([GOOD]))  # a list of recipes is not a recipe
    assert main(["validate", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    for name in ("ci.yml", "deploy/compose.yaml", "list.yaml"):
        assert f"{name}: skipped: not a recipe" in err
    assert "workflows" not in err
    assert "1 recipe(s): 1 valid, 0 invalid" in err and "3 YAML file(s) skipped" in err


def test_a_named_file_is_always_validated(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, "ci.yml", WORKFLOW)
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert "error: [unknown-key]" in err and "skipped" not in err


def test_broken_recipe_in_a_folder_is_still_validated(tmp_path: Path, capsys) -> None:
    _write(tmp_path, "good.yaml", GOOD)
    _write(tmp_path, "broken.yaml", "name: b\nmodel:\n  id: [unclosed\ncontainer:\n  family: lmi\n")
    _write(tmp_path, "broken-other.yaml", "services: [unclosed\n")
    assert main(["validate", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "broken.yaml:" in err and "error: [yaml-syntax]" in err
    assert "broken-other.yaml: skipped" in err


@pytest.mark.parametrize(("text", "rule"), [
    (MODELINE + "name: half\nmodel:\n  id: org/m\n", "missing-key"),  # the modeline makes it a recipe
    ("{name: f, model: {id: org/m}, container: {family: lmi, version: '0.36.0'}}\n", "missing-key"),
    ("name: a\nmodel: {id: org/m}\ncontainer: {family: lmi}\n---\nname: b\n", "yaml-multi-document"),
])
def test_recognised_as_recipes(tmp_path: Path, capsys, text: str, rule: str) -> None:
    _write(tmp_path, "r.yaml", text)
    assert main(["validate", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"error: [{rule}]" in err and "skipped" not in err


def test_folder_without_any_recipe_is_a_usage_error(tmp_path: Path, capsys) -> None:
    _write(tmp_path, "ci.yml", WORKFLOW)
    assert main(["validate", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "none of its 1 YAML file(s) is a recipe" in err and "Traceback" not in err


def test_json_lists_the_skipped_files(tmp_path: Path, capsys) -> None:
    _write(tmp_path, "recipe.yaml", GOOD)
    _write(tmp_path, "ci.yml", WORKFLOW)
    assert main(["validate", "--format", "json", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert [f["file"].endswith("recipe.yaml") for f in doc["files"]] == [True]
    assert len(doc["skipped"]) == 1 and doc["skipped"][0]["file"].endswith("ci.yml")
    assert "not a recipe" in doc["skipped"][0]["reason"]


def test_named_file_is_not_reported_as_skipped_when_its_folder_is_given_too(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, "ci.yml", WORKFLOW)
    _write(tmp_path, "recipe.yaml", GOOD)
    assert main(["validate", "--format", "json", str(tmp_path), str(path)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["skipped"] == [] and len(doc["files"]) == 2


def test_the_examples_folder_has_only_recipes(capsys) -> None:
    assert main(["validate", str(REPO_DIR / "recipes" / "examples")]) == 0
    err = capsys.readouterr().err
    assert "skipped" not in err
    n = len(list((REPO_DIR / "recipes" / "examples").glob("*.yaml")))
    assert f"{n} recipe(s): {n} valid, 0 invalid" in err
