"""lmi-build import: serving.properties and env files back into a recipe that validates."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from builder.cli import main
from builder.lmi.importer import env_to_properties, parse_env_file
from builder.lmi.rules import validate_file

SHA = "dc1d3b3bfdb69df26f8fc966c16353274b138c56"


def test_env_case_rule_reversed() -> None:
    env = {"OPTION_MAX_ROLLING_BATCH_SIZE": "8", "OPTION_entryPoint": "x", "OPTION_ENTRYPOINT": "y",
           "OPTION_Max_Rolling": "1", "SERVING_JOB_QUEUE_SIZE": "10", "SERVING_LOAD_MODELS": "test::MPI=/opt/ml/model",
           "OPTION_EMPTY": "", "OPTION_ENGINE": "Python"}
    props = env_to_properties(env)
    assert props["option.max_rolling_batch_size"] == "8"
    assert props["option.Max_Rolling"] == "1"  # mixed case kept verbatim (§10.2)
    assert props["job_queue_size"] == "10"
    assert props["option.entryPoint"] in ("x", "y")
    assert "option.empty" not in props  # empty values skipped
    assert props["engine"] == "Python"  # OPTION_ENGINE is the top-level engine


def test_file_wins_over_env(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "serving.properties").write_text(
        f"engine=MPI\noption.model_id=org/llama\noption.revision={SHA}\noption.rolling_batch=lmi-dist\n"
        "option.tensor_parallel_degree=4\noption.max_rolling_batch_size=64\n")
    (tmp_path / "docker.env").write_text("# comment\nOPTION_MAX_ROLLING_BATCH_SIZE=16\nSERVING_JOB_QUEUE_SIZE=500\n"
                                         "OPTION_DTYPE=fp16\n")
    out = tmp_path / "recipe.yaml"
    rc = main(["import", str(tmp_path / "serving.properties"), "--env-file", str(tmp_path / "docker.env"),
               "--family", "lmi", "--version", "0.29.0", "--name", "llama", "-o", str(out)])
    assert rc == 0
    data = yaml.safe_load(out.read_text())
    assert data["serving"]["option"]["max_rolling_batch_size"] == 64  # file wins
    assert data["serving"]["option"]["dtype"] == "fp16"  # env-only key kept
    assert data["serving"]["job_queue_size"] == 500
    assert data["serving"]["engine"] == "MPI"
    assert data["model"] == {"id": "org/llama", "revision": SHA, "trust_remote_code": False}
    assert data["target"]["instance_type"] == "ml.g5.12xlarge"  # smallest g5 with 4 GPUs
    assert not [d for d in validate_file(out) if d.severity == "error"]


def test_unknown_keys_become_pass_through_with_hint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "serving.properties").write_text("option.model_id=s3://bucket/m/\noption.rolling_batch=vllm\n"
                                                 "option.dtpye=fp16\n")
    out = tmp_path / "r.yaml"
    assert main(["import", str(tmp_path / "serving.properties"), "--family", "lmi", "--version", "lmi-27.0.0",
                 "--instance-type", "ml.g5.xlarge", "-o", str(out)]) == 0
    assert "did you mean 'dtype'" in capsys.readouterr().err
    data = yaml.safe_load(out.read_text())
    assert data["serving"]["pass_through"] == ["dtpye"] and data["model"] == {"s3": "s3://bucket/m/"}


def test_import_refuses_what_would_not_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "serving.properties").write_text("option.model_id=org/m\noption.rolling_batch=lmi-dist\n")
    out = tmp_path / "r.yaml"
    assert main(["import", str(tmp_path / "serving.properties"), "--family", "lmi", "--version", "lmi-27.0.0",
                 "-o", str(out)]) == 1
    assert "[backend-removed]" in capsys.readouterr().err and not out.exists()


def test_parse_env_file() -> None:
    assert parse_env_file("A=1\n# c\nB=x=y\n\nbad\n") == {"A": "1", "B": "x=y"}
    with pytest.raises(ValueError, match="white space"):  # docker refuses 'export B=1' (a space in the name)
        parse_env_file("export B=1\n")


def test_import_usage(tmp_path: Path) -> None:
    assert main(["import", "--family", "lmi", "--version", "0.29.0"]) == 2
    assert main(["import", str(tmp_path / "missing.properties"), "--family", "lmi", "--version", "0.29.0"]) == 2


@pytest.mark.parametrize("model_id", ["s3://bucket/llama/", None])
def test_trust_remote_code_of_an_s3_or_local_model_is_kept(tmp_path: Path, model_id: str | None) -> None:
    # 7 of upstream's v27 configurations set option.trust_remote_code=true on an S3 model (issue 16)
    props = tmp_path / "serving.properties"
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 8)  # the local model's folder has weights
    props.write_text(("option.model_id=" + model_id + "\n" if model_id else "") +
                     "engine=Python\noption.rolling_batch=vllm\noption.trust_remote_code=true\n")
    out = tmp_path / "recipe.yaml"
    assert main(["import", str(props), "--family", "lmi", "--version", "lmi-27.0.0", "--instance-type",
                 "ml.g6.12xlarge", "-o", str(out)]) == 0
    assert yaml.safe_load(out.read_text())["model"]["trust_remote_code"] is True


def test_import_writes_the_release_name_for_a_djl_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    props = tmp_path / "serving.properties"
    props.write_text("option.model_id=s3://bucket/m/\nengine=Python\noption.rolling_batch=vllm\n")
    out = tmp_path / "recipe.yaml"
    assert main(["import", str(props), "--family", "lmi", "--version", "0.29.0", "-o", str(out)]) == 0
    assert yaml.safe_load(out.read_text())["container"]["version"] == "lmi-11.0.0"
    assert "lmi-11.0.0" in capsys.readouterr().err
