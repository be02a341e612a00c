"""The compile path through the local executor with the stand-in toolchain (tests/equipment/standin):
the same code that runs on a GPU host, with preflight answered by an injected host inventory."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import pytest

from builder.artifacts.sources import fetch_model
from builder.compile import compile_artifacts
from builder.compile.models import Gpu, HostAccelerators
from builder.diagnostics import BuilderError
from builder.lmi.resolve import resolve
from builder.recipe.model import Recipe
from tests.support.model_fixtures import recipe_data

STANDIN = Path(__file__).resolve().parents[1] / "equipment" / "standin"
A10G = HostAccelerators(gpus=[Gpu(name="A10G", compute_capability="8.6", memory_bytes=24 << 30)] * 4)
H100 = HostAccelerators(gpus=[Gpu(name="H100 80GB HBM3", compute_capability="9.0", memory_bytes=80 << 30)] * 8)
IMAGE = "djl-inference@sha256:" + "a" * 64


@pytest.fixture
def standin_env(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(STANDIN / "site"))
    monkeypatch.setenv("LMI_BUILD_PARTITION_DIR", str(STANDIN / "partition"))
    monkeypatch.delenv("STANDIN_FAIL", raising=False)
    return monkeypatch


def _setup(tmp_path: Path, model_dir: Path, *, family="tensorrt-llm", version="0.33.0", instance="ml.g5.12xlarge",
           compile=None, option=None):
    data = recipe_data({"path": str(model_dir)}, family=family, version=version, instance=instance,
                       option=option, compile={"enabled": True, "executor": "local", **(compile or {})})
    recipe = Recipe.model_validate(data)
    art = fetch_model(recipe, tmp_path, cache_dir=tmp_path / "cache")
    return resolve(recipe), art


def _compile(resolved, art, tmp_path, host=A10G, **kw):
    kw.setdefault("preflight", True)
    return compile_artifacts(resolved, art, IMAGE, executor="local", cache_dir=tmp_path / "cache", host=host, **kw)


def test_trtllm_master_layout_then_cache_hit(standin_env, tiny_model_dir: Path, tmp_path: Path):
    resolved, art = _setup(tmp_path, tiny_model_dir, compile={"max_input_len": 256, "max_seq_len": 512,
                                                             "max_batch_size": 16})
    res = _compile(resolved, art, tmp_path)
    assert res.status == "compiled" and res.marker == "trtllm-build-config"
    assert res.toolchain == {"tensorrt_llm": "0.21.0rc1", "arch": "sm_86"} and res.seconds is not None
    cfg = json.loads((res.dir / "config.json").read_text())
    assert cfg["build_config"] == {"max_batch_size": 16, "max_input_len": 256, "max_seq_len": 512,
                                   "max_num_tokens": 16384}
    call = json.loads((res.dir / "standin-call.json").read_text())
    props_dir = call["argv"][call["argv"].index("--properties_dir") + 1]
    out_seen = call["argv"][3]
    assert "/compile/.tmp/" in out_seen and out_seen.endswith("/out")  # written under a temp name
    assert call["argv"] == ["--properties_dir", props_dir, "--trt_llm_model_repo", out_seen,
                            "--tensor_parallel_degree", "4", "--pipeline_parallel_degree", "1",
                            "--model_path", str(art.dir)]
    assert call["properties"]["option.model_id"] == str(art.dir)
    assert call["properties"]["option.max_rolling_batch_size"] == "16"
    assert res.properties_overrides["option.max_rolling_batch_size"] == "16"
    assert res.properties_overrides["option.tensor_parallel_degree"] == "4"
    assert (res.dir / "rank3.engine").is_file() and not (res.dir / "rank4.engine").exists()
    # the temp folder is gone and the properties dir is not in the entry
    assert list((tmp_path / "cache" / "compile" / ".tmp").iterdir()) == []

    again = _compile(resolved, art, tmp_path, host=HostAccelerators())  # no GPU needed for a hit
    assert again.status == "cached" and again.cache_key == res.cache_key and again.dir == res.dir
    assert again.toolchain == res.toolchain and again.seconds == res.seconds


def test_any_compile_setting_changes_the_key(standin_env, tiny_model_dir: Path, tmp_path: Path):
    r1, art = _setup(tmp_path, tiny_model_dir, compile={"max_batch_size": 16})
    r2, _ = _setup(tmp_path, tiny_model_dir, compile={"max_batch_size": 32})
    r3, _ = _setup(tmp_path, tiny_model_dir, compile={"max_batch_size": 16}, instance="ml.g6.12xlarge")
    from builder.compile import compile_cache_key

    keys = {compile_cache_key(r, art, IMAGE) for r in (r1, r2, r3)}
    keys.add(compile_cache_key(r1, art, IMAGE.replace("a" * 64, "b" * 64)))
    assert len(keys) == 4


def test_v029_triton_repo_layout(standin_env, tiny_model_dir: Path, tmp_path: Path):
    standin_env.setenv("STANDIN_TRTLLM_VERSION", "0.11.0")
    resolved, art = _setup(tmp_path, tiny_model_dir, version="0.29.0")
    res = _compile(resolved, art, tmp_path)
    assert res.status == "compiled" and res.marker == "triton-repo"
    assert (res.dir / "tensorrt_llm" / "config.pbtxt").is_file()
    assert (res.dir / "tensorrt_llm" / "tokenizer_config.json").is_file()


def test_neuron_layout_via_partition_entry(standin_env, tiny_model_dir: Path, tmp_path: Path):
    resolved, art = _setup(tmp_path, tiny_model_dir, family="neuronx", version="0.29.0", instance="ml.inf2.24xlarge",
                           compile={"max_seq_len": 256, "max_batch_size": 4},
                           option={"rolling_batch": "auto", "tensor_parallel_degree": 4})
    host = HostAccelerators(neuron_devices=["/dev/neuron0"])
    res = _compile(resolved, art, tmp_path, host=host)
    assert res.status == "compiled" and res.marker == "neuron-config"
    cfg = json.loads((res.dir / "config.json").read_text())
    assert cfg["neuron"]["sequence_length"] == 256 and cfg["neuron"]["batch_size"] == 4
    assert (res.dir / "compiled" / "VERSION").read_text() == "2.14.227.0"
    call = json.loads((res.dir / "standin-call.json").read_text())
    assert call["argv"][0] == "--model-dir" and call["argv"][2] == "--skip-copy"
    save = call["properties"]["option.save_mp_checkpoint_path"]
    assert "/compile/.tmp/" in save and save.endswith("/out")
    assert call["properties"]["option.entryPoint"] == "djl_python.transformers_neuronx"
    assert res.properties_overrides["option.n_positions"] == "256"


def test_architecture_mismatch_is_refused_precisely(standin_env, tiny_model_dir: Path, tmp_path: Path):
    resolved, art = _setup(tmp_path, tiny_model_dir)
    res = _compile(resolved, art, tmp_path, host=H100)
    assert res.status == "skipped"
    assert res.reason == ("target ml.g5.12xlarge is A10G sm_86; this host has H100 80GB HBM3 sm_90; "
                          "engines are architecture-specific")
    assert not (tmp_path / "cache" / "compile" / res.cache_key).exists()


def test_no_gpu_host_reports_skipped(standin_env, tiny_model_dir: Path, tmp_path: Path):
    resolved, art = _setup(tmp_path, tiny_model_dir)
    res = _compile(resolved, art, tmp_path, host=HostAccelerators(note="nvidia-smi not found"))
    assert res.status == "skipped" and "no NVIDIA GPU (nvidia-smi not found)" in res.reason and res.dir is None


def test_real_preflight_on_this_machine(standin_env, tiny_model_dir: Path, tmp_path: Path):
    """No injected host: whatever this machine has decides (here: no GPU -> skipped, never faked)."""
    from builder.compile.preflight import detect_host

    resolved, art = _setup(tmp_path, tiny_model_dir)
    res = compile_artifacts(resolved, art, IMAGE, executor="local", cache_dir=tmp_path / "cache")
    host = detect_host()
    if not host.gpus:
        assert res.status == "skipped" and "no NVIDIA GPU" in res.reason
    else:
        assert res.status in ("compiled", "skipped")


def test_toolchain_version_mismatch_refused_locally(standin_env, tiny_model_dir: Path, tmp_path: Path):
    standin_env.setenv("STANDIN_TRTLLM_VERSION", "0.20.0")
    resolved, art = _setup(tmp_path, tiny_model_dir)
    with pytest.raises(BuilderError, match="'0.20.0'.*differs from '0.21.0rc1'.*not portable"):
        _compile(resolved, art, tmp_path)


def test_failed_compile_leaves_no_entry(standin_env, tiny_model_dir: Path, tmp_path: Path):
    standin_env.setenv("STANDIN_FAIL", "1")
    resolved, art = _setup(tmp_path, tiny_model_dir)
    with pytest.raises(BuilderError, match="exited 3"):
        _compile(resolved, art, tmp_path)
    root = tmp_path / "cache" / "compile"
    assert [p.name for p in root.iterdir() if not p.name.startswith(".")] == []
    assert list((root / ".tmp").iterdir()) == []


def test_interrupted_compile_leaves_no_entry(standin_env, tiny_model_dir: Path, tmp_path: Path, monkeypatch):
    """Ctrl-C while the tool runs: the tool is killed and neither the entry nor its temp folder stays."""
    from builder.compile import executors

    resolved, art = _setup(tmp_path, tiny_model_dir)
    real_run = executors.LocalExecutor.run

    def slow_run(self, argv, timeout_s, env=None):
        argv = [self.python, "-c", "import time; print('compiling', flush=True); time.sleep(30)"]
        threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
        return real_run(self, argv, timeout_s, env)

    monkeypatch.setattr(executors.LocalExecutor, "run", slow_run)
    with pytest.raises(KeyboardInterrupt):
        _compile(resolved, art, tmp_path)
    root = tmp_path / "cache" / "compile"
    assert [p.name for p in root.iterdir() if not p.name.startswith(".")] == []
    assert list((root / ".tmp").iterdir()) == []


def test_marker_missing_is_not_cached(standin_env, tiny_model_dir: Path, tmp_path: Path, monkeypatch):
    from builder.compile import executors

    resolved, art = _setup(tmp_path, tiny_model_dir)
    monkeypatch.setattr(executors.LocalExecutor, "argv",
                        lambda self, c, a, v: [self.python, "-c", f"open('{v['output_dir']}/config.json','w')"
                                                                  f".write('{{}}')"])
    with pytest.raises(BuilderError, match="no top-level \"build_config\""):
        _compile(resolved, art, tmp_path)
    assert [p.name for p in (tmp_path / "cache" / "compile").iterdir() if not p.name.startswith(".")] == []


def test_compile_disabled_or_wrong_family_is_skipped(tiny_model_dir: Path, tmp_path: Path):
    recipe = Recipe.model_validate(recipe_data({"path": str(tiny_model_dir)}, family="tensorrt-llm",
                                               version="0.33.0", instance="ml.g5.12xlarge"))
    art = fetch_model(recipe, tmp_path, cache_dir=tmp_path / "cache")
    res = compile_artifacts(resolve(recipe), art, IMAGE, executor="local", cache_dir=tmp_path / "cache")
    assert res.status == "skipped" and "compile.enabled is false" in res.reason
