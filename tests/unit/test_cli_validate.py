"""The validate / render / schema commands through builder.cli.main: exit codes and output, and no
traceback whatever the input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from builder.cli import main

ROOT = Path(__file__).resolve().parents[2]
GOOD = {"name": "ok", "model": {"id": "org/m", "revision": "a" * 40, "trust_remote_code": False},
        "container": {"family": "lmi", "version": "lmi-27.0.0"}, "target": {"instance_type": "ml.g5.xlarge"},
        "serving": {"engine": "Python", "option": {"rolling_batch": "vllm", "tensor_parallel_degree": 1}}}


def write(folder: Path, name: str, content: str | bytes | dict) -> Path:
    path = folder / name
    if isinstance(content, dict):
        content = yaml.safe_dump(content, sort_keys=False)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def test_valid_recipe_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(write(tmp_path, "a.yaml", GOOD))]) == 0
    assert "1 valid, 0 invalid" in capsys.readouterr().err


def test_warning_only_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = {**GOOD, "model": {"id": "org/m", "trust_remote_code": False}}
    assert main(["validate", str(write(tmp_path, "a.yaml", data))]) == 0
    assert "warning: [revision-pinned]" in capsys.readouterr().err


def test_invalid_exits_1_with_located_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    data = {**GOOD, "serving": {"engine": "Python", "option": {"rolling_batch": "vllm", "dtype": "fp8"}}}
    write(tmp_path, "a.yaml", data)
    assert main(["validate", "a.yaml"]) == 1
    err = capsys.readouterr().err
    assert "a.yaml:15:12: error: [dtype-value] dtype 'fp8'" in err


def test_folder_recursive_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sub = tmp_path / "x" / "y"
    sub.mkdir(parents=True)
    write(tmp_path, "a.yaml", GOOD)
    write(sub, "b.yml", {**GOOD, "target": {"instance_type": "ml.g5.13xlarge"}})
    write(sub, "notes.txt", "ignored")
    assert main(["validate", "--format", "json", str(tmp_path)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["valid"] is False and len(doc["files"]) == 2
    bad = next(f for f in doc["files"] if f["file"].endswith("b.yml"))
    assert bad["diagnostics"][0]["rule"] == "unknown-instance"


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert main(["validate", str(tmp_path / "nothing-here")]) == 2
    assert main(["validate", str(tmp_path)]) == 2  # folder without recipes
    with pytest.raises(SystemExit) as exc:
        main(["validate", "--format", "xml", "a.yaml"])
    assert exc.value.code == 2


BAD_INPUTS = {
    "malformed.yaml": "name: [unclosed\nmodel: {",
    "tabs.yaml": "name: x\n\tmodel: 1\n",
    "empty.yaml": "",
    "comments.yaml": "# nothing\n",
    "list.yaml": "- a\n- b\n",
    "scalar.yaml": "just text\n",
    "types.yaml": "name: 5\nmodel: []\ncontainer: {family: gpu, version: 0.29}\ntarget: 7\nserving: {option: []}\n",
    "latin1.yaml": b"name: caf\xe9\n",
    "nul.yaml": b"name: a\x00b\n",
    "newline.yaml": 'name: x\nmodel: {id: "org/m\\nengine=MPI"}\n',
    "option-newline.yaml": yaml.safe_dump({**GOOD, "serving": {"option": {"dtype": "fp16\noption.x=1"}}}),
    "dupe.yaml": "name: a\nname: b\n",
    "anchors.yaml": "a: &x [*x]\n",
    "merge.yaml": "base: &b {x: 1}\nname: {<<: *b}\n",
    "deep.yaml": "a: " + "[" * 5000 + "]" * 5000 + "\n",
    "binary.yaml": bytes(range(256)),
    "bigkey.yaml": "? [a, b]\n: 1\n",
    "date.yaml": yaml.safe_dump({**GOOD, "container": {"family": "lmi", "version": "2024-01-01"}}),
    "multi.yaml": "name: a\n---\nname: b\n",
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_is_diagnosed_never_a_traceback(tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, name, BAD_INPUTS[name])
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal-error" not in err
    assert f"{name}:" in err and ": error: [" in err


def test_ten_megabyte_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("name: x\n" + "# padding\n" * 1_000_000)
    assert main(["validate", str(path)]) == 1
    assert "yaml-too-large" in capsys.readouterr().err


def test_render_writes_three_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipe = write(tmp_path, "a.yaml", GOOD)
    assert main(["render", str(recipe), "--output", str(tmp_path / "out")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["recipe_hash"]) == 64
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"serving.properties", "serving.env", "resolved.json"}
    assert "SERVING_LOAD_MODELS=test::Python=/opt/ml/model" in (tmp_path / "out" / "serving.env").read_text()


def test_render_refuses_invalid_recipe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipe = write(tmp_path, "a.yaml", {**GOOD, "container": {"family": "lmi", "version": "9.9.9"}})
    assert main(["render", str(recipe), "-o", str(tmp_path / "out")]) == 1
    assert "[unknown-release]" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_schema_is_the_model_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "lmi-builder recipe"
    assert schema["oneOf"] == [{"$ref": "#/$defs/Recipe"}, {"$ref": "#/$defs/MultiRecipe"}]
    single = schema["$defs"]["Recipe"]
    assert "serving" in single["properties"]
    assert set(single["required"]) == {"name", "model", "container", "target"}


def test_committed_schema_is_current(capsys: pytest.CaptureFixture[str]) -> None:
    committed = ROOT / "docs" / "recipe.schema.json"
    main(["schema"])
    assert committed.read_text() == capsys.readouterr().out, "run: lmi-build schema -o docs/recipe.schema.json"
