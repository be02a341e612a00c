"""`lmi-build inspect` on a custom-handler model: files, bytes and safetensors dtypes; no fit, exit 0."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from builder.cli import main
from builder.examples.files import write_safetensors
from builder.examples.quickstart import weights
from builder.paths import REPO_DIR
from tests.support.model_fixtures import recipe_data, write_recipe

QUICKSTART = REPO_DIR / "recipes" / "examples" / "quickstart.yaml"


def test_quickstart_table_exits_0(tmp_path: Path, capsys) -> None:
    assert main(["inspect", str(QUICKSTART), "--cache-dir", str(tmp_path / "c")]) == 0
    err = capsys.readouterr().err
    size = (QUICKSTART.parent / "quickstart/model/model.safetensors").stat().st_size
    assert "model.safetensors" in err and f"{size:,} bytes" in err and "F32" in err
    assert "does not apply" in err and "custom" in err and "Traceback" not in err


def test_quickstart_json_reads_the_headers(tmp_path: Path, capsys) -> None:
    assert main(["inspect", str(QUICKSTART), "--format", "json", "--cache-dir", str(tmp_path / "c")]) == 0
    out = json.loads(capsys.readouterr().out)
    truth = weights()
    model = QUICKSTART.parent / "quickstart/model"
    assert out["fit_applies"] is False and "does not apply" in out["reason"]
    assert out["handler"]["entry_point"] == "quickstart/model.py"
    assert out["weights"]["parameters"] == sum(a.size for a in truth.values())
    assert out["weights"]["bytes"] == sum(a.nbytes for a in truth.values())
    assert out["weights"]["tensors"] == len(truth) and out["weights"]["dtype"] == "F32"
    assert {f["name"]: f["bytes"] for f in out["files"]} == {p.name: p.stat().st_size for p in model.iterdir()}
    assert out["total_bytes"] == sum(p.stat().st_size for p in model.iterdir())


def _custom(tmp_path: Path) -> Path:
    (tmp_path / "m").mkdir()
    (tmp_path / "model.py").write_text("def handle(inputs):\n    return None\n")
    return write_recipe(tmp_path, recipe_data({"path": "m", "entry_point": "model.py"}))


def test_dominant_dtype_and_per_dtype_bytes(tmp_path: Path, capsys) -> None:
    recipe = _custom(tmp_path)
    write_safetensors(tmp_path / "m" / "a.safetensors", {"big": np.zeros((64, 8), np.float16),
                                                         "small": np.zeros(4, np.float32)})
    (tmp_path / "m" / "sub").mkdir()
    write_safetensors(tmp_path / "m" / "sub" / "b.safetensors", {"c": np.zeros(3, np.int64)})
    assert main(["inspect", str(recipe), "--format", "json", "--cache-dir", str(tmp_path / "c")]) == 0
    w = json.loads(capsys.readouterr().out)["weights"]
    assert w["dtypes"] == {"F16": 64 * 8 * 2, "F32": 16, "I64": 24} and w["dtype"] == "F16"
    assert w["files"] == 2 and w["tensors"] == 3 and w["parameters"] == 64 * 8 + 4 + 3 and w["unreadable"] == []


def test_unreadable_header_is_reported_not_raised(tmp_path: Path, capsys) -> None:
    recipe = _custom(tmp_path)
    (tmp_path / "m" / "model.safetensors").write_bytes(b"\xff" * 16)
    assert main(["inspect", str(recipe), "--cache-dir", str(tmp_path / "c")]) == 0
    err = capsys.readouterr().err
    assert "unreadable" in err and "model.safetensors" in err and "Traceback" not in err


def test_many_files_are_capped_in_the_table_not_in_json(tmp_path: Path, capsys) -> None:
    recipe = _custom(tmp_path)
    for i in range(30):
        (tmp_path / "m" / f"f{i:02d}.txt").write_text("x")
    assert main(["inspect", str(recipe), "--cache-dir", str(tmp_path / "c")]) == 0
    assert "10 more" in capsys.readouterr().err
    assert main(["inspect", str(recipe), "--format", "json", "--cache-dir", str(tmp_path / "c")]) == 0
    assert len(json.loads(capsys.readouterr().out)["files"]) == 30


def test_builtin_handler_still_gets_the_fit(tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    recipe = write_recipe(tmp_path, recipe_data({"path": str(tiny_model_dir)}, family="lmi", version="0.33.0",
                                                instance="ml.g5.xlarge"))
    assert main(["inspect", str(recipe), "--format", "json", "--cache-dir", str(tmp_path / "c")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["fit_applies"] is True and out["kv_cache_bytes_per_token"] > 0


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_custom_handler_model_not_local_is_still_exit_1(tmp_path: Path, capsys, fmt: str) -> None:
    shutil.copy(REPO_DIR / "recipes/examples/quickstart/model.py", tmp_path / "model.py")
    recipe = write_recipe(tmp_path, recipe_data({"id": "acme/absent", "revision": "a" * 40,
                                                 "trust_remote_code": False, "entry_point": "model.py"}))
    assert main(["inspect", str(recipe), "--format", fmt, "--cache-dir", str(tmp_path / "c")]) == 1
    assert "not available locally" in capsys.readouterr().err


def test_file_names_with_terminal_controls_are_escaped_in_the_table(tmp_path: Path, capsys) -> None:
    # issue 15 item 10: a file name is user data; it must not clear the screen or forge a line
    recipes = tmp_path / "r"
    shutil.copytree(QUICKSTART.parent / "quickstart", recipes / "quickstart")
    shutil.copy(QUICKSTART, recipes / "quickstart.yaml")
    (recipes / "quickstart" / "model" / "evil\x1b[2J[bold]x.json").write_text("{}")
    assert main(["inspect", str(recipes / "quickstart.yaml"), "--cache-dir", str(tmp_path / "c")]) == 0
    err = capsys.readouterr().err
    assert "\x1b[2J" not in err and "\\x1b[2J" in err.replace("\n", "")
