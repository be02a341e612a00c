"""``model-weights``: a ``model.path`` folder without weights the bake takes is an error at the model.path line."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import yaml

from builder.cli import main
from builder.lmi.rules import validate
from builder.recipe import load_recipe

HANDLER = "def handle(inputs):\n    return None\n"


def _safetensors(path: Path) -> None:
    raw = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 8)


def _recipe(d: Path, *, path: str = "m", entry_point: str | None = "model.py") -> Path:
    model: dict = {"path": path}
    if entry_point:
        model["entry_point"] = entry_point
    data = {"name": "t", "model": model, "container": {"family": "dev-cpu", "version": "0.34.0"},
            "target": {"instance_type": "ml.m5.xlarge"},
            "serving": {"engine": "Python", "option": {"rolling_batch": "disable"}}}
    f = d / "recipe.yaml"
    f.write_text(yaml.safe_dump(data, sort_keys=False))
    return f


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    (tmp_path / "model.py").write_text(HANDLER)
    return tmp_path


def _weights_diags(recipe: Path) -> list:
    return [d for d in validate(load_recipe(recipe)) if d.rule == "model-weights"]


def test_no_weights_is_an_error_at_the_model_path_line(folder: Path) -> None:
    recipe = _recipe(folder)
    [d] = _weights_diags(recipe)
    lines = recipe.read_text().splitlines()
    line = next(i for i, t in enumerate(lines, 1) if t.strip() == "path: m")
    assert d.severity == "error" and d.path == ("model", "path")
    assert (d.location.line, d.location.col) == (line, lines[line - 1].index("m", lines[line - 1].index(":")) + 1)
    assert "holds no model weights" in d.message and "LMI_BUILD_NEEDS_WEIGHTS = False" in d.message


def test_safetensors_present_is_clean(folder: Path) -> None:
    _safetensors(folder / "m" / "model.safetensors")
    assert validate(load_recipe(_recipe(folder))) == []


def test_pickles_present_are_weights_too(folder: Path) -> None:
    (folder / "m" / "pytorch_model.bin").write_bytes(b"\0" * 64)
    assert _weights_diags(_recipe(folder)) == []


def test_nonexistent_folder_is_still_model_path_only(folder: Path) -> None:
    diags = validate(load_recipe(_recipe(folder, path="nope")))
    assert [d.rule for d in diags] == ["model-path"]
    assert "does not exist" in diags[0].message


@pytest.mark.parametrize("name", ["model.pt", "original/consolidated.00.pth", "sub/model.safetensors"])
def test_weights_the_bake_leaves_out_are_named(folder: Path, name: str) -> None:
    target = folder / "m" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"\0" * 64)
    [d] = _weights_diags(_recipe(folder))
    assert f"found {name}, which the bake leaves out" in d.message


def test_git_lfs_pointer_is_not_weights(folder: Path) -> None:
    (folder / "m" / "model.safetensors").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:" + "0" * 64 + "\nsize 21024\n")
    [d] = _weights_diags(_recipe(folder))
    assert "Git LFS pointer" in d.message and "git lfs pull" in d.message


@pytest.mark.parametrize(("line", "clean"), [("LMI_BUILD_NEEDS_WEIGHTS = False", True),
                                             ("LMI_BUILD_NEEDS_WEIGHTS: bool = False", True),
                                             ("LMI_BUILD_NEEDS_WEIGHTS = True", False),
                                             ("# LMI_BUILD_NEEDS_WEIGHTS = False", False),
                                             ("def f():\n    LMI_BUILD_NEEDS_WEIGHTS = False", False)])
def test_handler_that_says_it_needs_no_weights(folder: Path, line: str, clean: bool) -> None:
    (folder / "model.py").write_text(line + "\n\n" + HANDLER)
    assert (_weights_diags(_recipe(folder)) == []) is clean


def test_without_a_handler_the_fix_is_only_weights(folder: Path) -> None:
    [d] = _weights_diags(_recipe(folder, entry_point=None))
    assert "LMI_BUILD_NEEDS_WEIGHTS" not in d.message and "put the weights there" in d.message


def test_validate_cli_prints_the_located_line_and_exits_1(folder: Path, capsys) -> None:
    recipe = _recipe(folder)
    assert main(["validate", str(recipe)]) == 1
    err = capsys.readouterr().err
    assert ":3:9: error: [model-weights]" in err and "Traceback" not in err


def test_build_stops_at_validate(folder: Path, tmp_path: Path, capsys) -> None:
    report = tmp_path / "record.json"
    rc = main(["build", str(_recipe(folder)), "--cache-dir", str(tmp_path / "cache"), "--report", str(report)])
    assert rc == 1
    record = json.loads(report.read_text())
    assert record["failed_stage"] == "validate" and [s["name"] for s in record["stages"]] == ["validate"]
    assert "[model-weights]" in capsys.readouterr().err
