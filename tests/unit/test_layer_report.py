"""``inspect --layers`` (builder/image/layer_report.py) and the layer-size validation (layer_check.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from builder.assembly.layers import MAX_LAYER_BYTES, RESERVED_BASE_LAYERS, TOTAL_LAYERS
from builder.cli import main
from builder.image import layer_report
from builder.validation import validate_path

HANDLER = "def handle(inputs):\n    return None\n"
MiB = 1 << 20


def _recipe(d: Path, *, bake: bool = True) -> Path:
    data = {"name": "t", "model": {"path": "m", "entry_point": "model.py", **({} if bake else {"bake": False})},
            "container": {"family": "dev-cpu", "version": "0.34.0"},
            "target": {"instance_type": "ml.m5.xlarge"},
            "serving": {"engine": "Python", "option": {"rolling_batch": "disable"}}}
    (d / "model.py").write_text(HANDLER)
    f = d / "recipe.yaml"
    f.write_text(yaml.safe_dump(data, sort_keys=False))
    return f


def _sparse(path: Path, size: int) -> None:
    """A file of ``size`` bytes that takes no disk (ext4/tmpfs holes): the check only stats it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.truncate(size)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    m = tmp_path / "m"
    m.mkdir()
    (m / "config.json").write_text('{"model_type": "llama"}')
    (m / "tokenizer.json").write_text("{}")
    for i in range(1, 4):
        _sparse(m / f"model-{i:05d}-of-00003.safetensors", 300 * MiB + i)
    return m


@pytest.fixture(autouse=True)
def _no_engine_and_own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the base count must not depend on what this machine's engine holds
    monkeypatch.setattr(layer_report, "_engine_layers", lambda ref: None)
    monkeypatch.setenv("LMI_BUILD_CACHE", str(tmp_path / "cache"))


def test_json_shape(tmp_path: Path, model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = {p: p.stat().st_mtime_ns for p in model.iterdir()}
    assert main(["inspect", str(_recipe(tmp_path)), "--layers", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [(x["kind"], len(x["files"])) for x in doc["layers"]] == [
        ("weights", 1), ("weights", 1), ("weights", 1), ("weights", 2), ("config", 2)]
    assert doc["layers"][0] == {"name": "00-weights-model-00001-of-00003.safetensors", "kind": "weights",
                                "files": ["model-00001-of-00003.safetensors"], "bytes": 300 * MiB + 1}
    assert doc["layers"][3]["files"] == ["config.json", "tokenizer.json"]
    assert doc["layers"][3]["bytes"] == len('{"model_type": "llama"}') + 2
    assert doc["layers"][-1]["files"] == ["model.py", "serving.properties"]
    assert doc["base"]["layers"] is None and "unknown" in doc["base"]["source"]
    assert doc["budget"] == {"total": TOTAL_LAYERS, "overlay_limit": 127, "ours": TOTAL_LAYERS - RESERVED_BASE_LAYERS,
                             "max_layer_bytes": MAX_LAYER_BYTES}
    assert doc["total_layers"] is None
    # nothing was read or written in the model folder, nothing hashed into the cache's digest table
    assert {p: p.stat().st_mtime_ns for p in model.iterdir()} == before
    assert not (tmp_path / "cache" / "file-digests.json").exists()


def test_base_count_from_engine_and_from_a_build_record(tmp_path: Path, model: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    recipe = _recipe(tmp_path)
    record = tmp_path / "cache" / "builds" / "20261201T000000-1" / "build-record.json"
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"recipe_file": str(recipe), "image": {
        "base": {"reference": "localhost:5000/base@sha256:" + "a" * 64},
        "layers": [{"name": f"base-{i}", "kind": "base"} for i in range(7)] + [{"name": "00-config", "kind": "config"}]}}))
    assert main(["inspect", str(recipe), "--layers", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["base"]["layers"] == 7 and "build record" in doc["base"]["source"]
    assert doc["total_layers"] == 7 + len(doc["layers"])

    class Resolved:  # a recipe whose base the engine has
        base_image = "djl:lmi"

    monkeypatch.setattr(layer_report, "_engine_layers", lambda ref: 42 if ref == "djl:lmi" else None)
    got = layer_report.base_layer_count(Resolved(), recipe, tmp_path / "cache")
    assert (got.layers, got.source) == (42, "local Docker engine")


def test_table_goes_to_stderr(tmp_path: Path, model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(_recipe(tmp_path)), "--layers"]) == 0
    out = capsys.readouterr()
    assert out.out == ""
    assert "00-weights-model-00001-of-00003.safetensors" in out.err and "base (none): unknown" in out.err


def test_not_baked_plans_the_config_layer_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "m").mkdir()
    assert main(["inspect", str(_recipe(tmp_path, bake=False)), "--layers", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [x["kind"] for x in doc["layers"]] == ["config"] and doc["model"].startswith("not baked")


def test_file_over_the_layer_limit_is_a_located_validation_error(tmp_path: Path, model: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    _sparse(model / "original" / "consolidated.pth", MAX_LAYER_BYTES + 1)
    recipe = _recipe(tmp_path)
    _, diags = validate_path(recipe, cache_dir=tmp_path / "cache")
    [d] = [d for d in diags if d.rule == "layer-size"]
    line = next(i for i, t in enumerate(recipe.read_text().splitlines(), 1) if t.strip() == "path: m")
    assert d.severity == "error" and d.path == ("model", "path") and d.location.line == line
    assert "original/consolidated.pth" in d.message and "51,200 MiB" in d.message
    assert main(["validate", str(recipe)]) == 1
    err = capsys.readouterr().err
    assert "[layer-size]" in err and "Traceback" not in err
    # inspect --layers says the same in one line, exit 1
    assert main(["inspect", str(recipe), "--layers"]) == 1
    err = capsys.readouterr().err
    assert "original/consolidated.pth" in err and "Traceback" not in err


def test_file_at_the_limit_is_clean(tmp_path: Path, model: Path) -> None:
    _sparse(model / "consolidated.pth", MAX_LAYER_BYTES)
    _, diags = validate_path(_recipe(tmp_path), cache_dir=tmp_path / "cache")
    assert not [d for d in diags if d.rule.startswith("layer-")]


def test_sparse_files_are_supported_here(tmp_path: Path) -> None:
    """Guard: the tests above rely on holes, not on 50 GiB of disk."""
    _sparse(tmp_path / "x", MAX_LAYER_BYTES + 1)
    assert os.stat(tmp_path / "x").st_blocks * 512 < MiB
