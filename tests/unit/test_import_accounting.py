"""`import` loses nothing (issue 16 item 7): every key of the input is in the recipe, is a documented rename
(model.id / model.revision / model.trust_remote_code), or is reported on stderr with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from builder.cli import main
from builder.lmi.importer import read_sources, unaccounted

SHA = "dc1d3b3bfdb69df26f8fc966c16353274b138c56"


def run_import(tmp: Path, capsys: pytest.CaptureFixture[str], properties: str | None, env: str | None = None,
               *extra: str) -> tuple[int, dict, list[str], dict[str, str]]:
    args = []
    prop_path = env_path = None
    if properties is not None:
        prop_path = tmp / "serving.properties"
        prop_path.write_text(properties)
        args.append(str(prop_path))
    if env is not None:
        env_path = tmp / "docker.env"
        env_path.write_text(env)
        args += ["--env-file", str(env_path)]
    out = tmp / "recipe.yaml"
    rc = main(["import", *args, "--family", "lmi", "--version", "lmi-27.0.0", "--instance-type", "ml.g6.12xlarge",
               "-o", str(out), *extra])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    data = yaml.safe_load(out.read_text()) if out.exists() else {}
    # the input keys as LMI reads them, to hold the recipe and stderr against
    return rc, data, err, read_sources(prop_path, env_path).props


def test_the_check_finds_a_key_that_is_neither_kept_nor_reported() -> None:
    props = {"option.dtype": "fp16", "option.lost": "1", "job_queue_size": "10", "option.model_id": "org/m"}
    data = {"model": {"id": "org/m"}, "serving": {"job_queue_size": 10, "option": {"dtype": "fp16"}}}
    assert unaccounted(props, data, []) == ["option.lost"]
    assert unaccounted(props, data, ["warning: option.lost not imported: because"]) == []
    assert unaccounted(props, data, ["warning: option.lost_other not imported"]) == ["option.lost"]  # whole name


def test_model_dir_and_non_hub_revision_are_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, data, err, props = run_import(tmp_path, capsys, "option.model_id=s3://bucket/m/\noption.revision=main\n"
                                      "option.model_dir=/opt/ml/model\nengine=Python\noption.rolling_batch=vllm\n")
    assert rc == 0 and data["model"] == {"s3": "s3://bucket/m/"}
    assert any("option.model_dir not imported" in line and "/opt/ml/model" in line for line in err)
    assert any("option.revision 'main' not imported" in line and "S3 prefix" in line for line in err)
    assert unaccounted(props, data, err) == []


def test_container_path_model_id_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"\x08" + b"\0" * 7 + b"{}      ")
    rc, data, err, props = run_import(tmp_path, capsys, "option.model_id=/opt/ml/model/llama\nengine=Python\n"
                                      "option.rolling_batch=vllm\n")
    assert rc == 0 and data["model"]["path"] == "."
    assert any("'/opt/ml/model/llama' is a path inside the container" in line for line in err)
    assert unaccounted(props, data, err) == []


def test_env_variables_lmi_does_not_read_are_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = ("HF_MODEL_ID=org/m\nHF_REVISION=" + SHA + "\nOPTION_ROLLING_BATCH=vllm\nSERVING_ENGINE=Python\n"
           "HF_TOKEN=hf_secret\nCUDA_VISIBLE_DEVICES=0,1\nOPTION_DTYPE=\n")
    rc, data, err, props = run_import(tmp_path, capsys, None, env)
    assert rc == 0
    text = "\n".join(err)
    assert "'HF_TOKEN' not imported: looks like a secret" in text and "hf_secret" not in text
    assert "hf_secret" not in yaml.safe_dump(data)
    assert "'CUDA_VISIBLE_DEVICES' not imported: not an LMI configuration variable" in text and "env:" in text
    assert "'OPTION_DTYPE' not imported: empty, and LMI skips empty variables" in text
    assert unaccounted(props, data, err) == []


def test_lmi_env_fallbacks_become_options_unless_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = "TENSOR_PARALLEL_DEGREE=2\nMODEL_LOADING_TIMEOUT=1800\nPREDICT_TIMEOUT=60\n"
    rc, data, err, _ = run_import(tmp_path, capsys, f"option.model_id=org/m\noption.revision={SHA}\nengine=Python\n"
                                  "option.rolling_batch=vllm\noption.predict_timeout=240\n", env)
    assert rc == 0
    option = data["serving"]["option"]
    assert option["tensor_parallel_degree"] == 2 and option["model_loading_timeout"] == 1800
    assert option["predict_timeout"] == 240  # the option wins: LMI reads PREDICT_TIMEOUT only without it
    assert any("'PREDICT_TIMEOUT' not imported: LMI reads it only when option.predict_timeout is not set" in line
               for line in err)
    assert any("'TENSOR_PARALLEL_DEGREE' (LMI's fallback for option.tensor_parallel_degree) imported" in line
               for line in err)


def test_env_values_the_file_or_a_later_line_overrides_are_reported(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    env = "OPTION_MAX_ROLLING_BATCH_SIZE=16\nOPTION_entryPoint=my.handler\nOPTION_ENTRYPOINT=djl_python.huggingface\n"
    rc, data, err, props = run_import(tmp_path, capsys, f"option.model_id=org/m\noption.revision={SHA}\n"
                                      "engine=Python\noption.rolling_batch=vllm\noption.max_rolling_batch_size=64\n",
                                      env)
    assert data["serving"]["option"]["max_rolling_batch_size"] == 64
    text = "\n".join(err)
    assert "docker.env:1: 'OPTION_MAX_ROLLING_BATCH_SIZE' not imported" in text and "the file wins" in text
    assert "docker.env:2: 'OPTION_entryPoint' not imported: line 3 ('OPTION_ENTRYPOINT') sets option.entryPoint " \
           "again" in text
    assert rc == 0 and data["serving"]["option"]["entryPoint"] == "djl_python.huggingface"
    assert unaccounted(props, data, err) == []
