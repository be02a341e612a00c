"""``lmi-build validate --lmi-check``: text and JSON output, no jar, exit code stays ours."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from builder.cli import main
from tests.unit.test_lmi_check_matrix import djl_jar as _djl_jar
from tests.unit.test_rules import BASES, merge

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "recipes" / "examples"
djl_jar = _djl_jar  # the session fixture that fetches (or finds) the jar


def test_text_line_names_validator_version_and_release(djl_jar: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--no-fit", "--lmi-check", str(EXAMPLES / "trtllm-jit-llama3-8b-g5.yaml")]) == 0
    err = capsys.readouterr().err
    assert "LMI djl_python 0.34.0 TensorRtLlmProperties: accepts" in err
    assert "not the recipe's release, tensorrt-llm 0.29.0" in err


def test_lmi_rejection_does_not_change_exit_code(djl_jar: None, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    # the deepspeed example is valid for LMI 0.27.0, but 0.34.0's base Properties no longer knows deepspeed
    assert main(["validate", "--no-fit", "--lmi-check", str(EXAMPLES / "deepspeed-llama2-7b-g5.yaml")]) == 0
    err = capsys.readouterr().err
    assert "Properties (base class only): rejects: rolling_batch" in err and "(they differ)" in err


def test_ours_invalid_lmi_agrees_exit_1(djl_jar: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "r.yaml"
    p.write_text(yaml.safe_dump(merge(BASES["neuronx"], {"serving": {"option": {"dtype": "auto"}}})))
    assert main(["validate", "--no-fit", "--lmi-check", "--format", "json", str(p)]) == 1
    doc = json.loads(capsys.readouterr().out)
    lc = doc["files"][0]["lmi_check"]
    assert lc["validator"] == "TransformerNeuronXProperties" and lc["lmi_ok"] is False and lc["agree"] is True
    assert lc["djl_python_version"] == "0.34.0" and lc["version_differs"] is True
    assert any("dtype" in e for e in lc["lmi_errors"])


def test_without_the_jar_one_line_and_same_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "cache"
    paths = [str(EXAMPLES / n) for n in ("trtllm-jit-llama3-8b-g5.yaml", "neuronx-llama3-8b-inf2.yaml")]
    assert main(["validate", "--no-fit", "--lmi-check", "--cache-dir", str(empty), *paths]) == 0
    err = capsys.readouterr().err
    assert err.count("lmi-check: djl_python jar not cached; run 'lmi-build runtime fetch'") == 1
    assert main(["validate", "--no-fit", "--lmi-check", "--cache-dir", str(empty), "--format", "json", *paths]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert all(f["lmi_check"]["lmi_ok"] is None and "runtime fetch" in f["lmi_check"]["note"] for f in doc["files"])


def test_without_flag_no_lmi_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--no-fit", "--format", "json", str(EXAMPLES / "trtllm-jit-llama3-8b-g5.yaml")]) == 0
    assert "lmi_check" not in json.loads(capsys.readouterr().out)["files"][0]
