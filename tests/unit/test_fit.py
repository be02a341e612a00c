"""Hardware fit from config.json + safetensors headers, against arithmetic done here."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.artifacts.fit import fit_diagnostics, fit_report
from builder.diagnostics import BuilderError
from builder.lmi.resolve import resolve
from builder.recipe.loader import load_recipe
from tests.support.model_fixtures import make_llama_shaped, recipe_data, write_recipe

GIB = 1 << 30


def _loaded(tmp_path: Path, model_dir: Path, *, family="lmi", version="0.33.0", instance="ml.g5.xlarge",
            option=None, compile=None):
    data = recipe_data({"path": str(model_dir)}, family=family, version=version, instance=instance,
                       option=option, compile=compile)
    loaded = load_recipe(write_recipe(tmp_path, data))
    assert loaded.ok, [d.format() for d in loaded.diagnostics]
    return loaded, resolve(loaded.recipe)


def test_tiny_model_exact_figures(tmp_path: Path, tiny_model):
    folder, truth = tiny_model
    loaded, resolved = _loaded(tmp_path, folder, option={"max_rolling_batch_size": 4})
    r = fit_report(folder, resolved)
    assert r.parameters == truth["parameters"] and r.weight_bytes == truth["weight_bytes"]
    assert (r.layers, r.hidden_size, r.attention_heads, r.kv_heads, r.head_dim) == (2, 64, 8, 2, 8)
    assert r.kv_cache_bytes_per_token == 2 * 2 * 2 * 8 * 2
    assert r.max_seq_len == 512 and r.max_seq_len_from.startswith("config.json")
    assert r.kv_cache_bytes == r.kv_cache_bytes_per_token * 512 * 4
    assert r.devices == 1 and r.device_memory_bytes == 24 * GIB and r.fits
    assert fit_diagnostics(r, loaded) == []


def test_max_length_precedence(tmp_path: Path, tiny_model):
    folder, _ = tiny_model
    _, resolved = _loaded(tmp_path, folder, option={"max_model_len": 100})
    assert fit_report(folder, resolved).max_seq_len == 100


def test_70b_on_a10g_x4_does_not_fit_weights(tmp_path: Path):
    model = tmp_path / "llama70b"
    n = make_llama_shaped(model, layers=80, hidden=8192, heads=64, kv_heads=8, inter=28672)
    loaded, resolved = _loaded(tmp_path, model, instance="ml.g5.12xlarge")
    r = fit_report(model, resolved)
    assert r.parameters == n and 69e9 < n < 72e9 and r.weight_bytes == 2 * n
    assert r.tensor_parallel_degree == 4 and r.weights_per_device_bytes == -(-2 * n // 4)
    assert not r.fits
    diags = fit_diagnostics(r, loaded)
    assert [d.rule for d in diags] == ["fit-weights"] and diags[0].severity == "error"
    assert "at least 6 devices" in diags[0].message
    assert diags[0].path == ("target", "instance_type")  # TP came from "max": point at the instance


def test_8b_kv_cache_warning_names_a_batch_that_fits(tmp_path: Path):
    model = tmp_path / "llama8b"
    make_llama_shaped(model, layers=32, hidden=4096, heads=32, kv_heads=8, inter=14336)
    loaded, resolved = _loaded(tmp_path, model, option={"max_rolling_batch_size": 256, "max_model_len": 8192})
    r = fit_report(model, resolved)
    assert r.kv_cache_bytes_per_token == 2 * 32 * 8 * 128 * 2  # 128 KiB per token
    diags = fit_diagnostics(r, loaded)
    assert [(d.rule, d.severity) for d in diags] == [("fit-kv-cache", "warning")]
    assert diags[0].path == ("serving", "option", "max_rolling_batch_size")
    budget = 24 * GIB * 0.9 - r.weights_per_device_bytes
    assert r.max_batch_that_fits == int(budget // (r.kv_cache_bytes_per_token * 8192))
    assert f"at most {r.max_batch_that_fits} sequences" in diags[0].message


def test_trtllm_uses_its_free_memory_fraction(tmp_path: Path):
    model = tmp_path / "llama8b"
    make_llama_shaped(model, layers=32, hidden=4096, heads=32, kv_heads=8, inter=14336)
    _, resolved = _loaded(tmp_path, model, family="tensorrt-llm", version="0.33.0", instance="ml.g5.12xlarge",
                          option={"kv_cache_free_gpu_mem_fraction": 0.5, "max_rolling_batch_size": 8})
    r = fit_report(model, resolved)
    assert r.memory_fraction_key == "kv_cache_free_gpu_mem_fraction" and r.memory_fraction == 0.5


def test_tp_must_divide_heads_error_and_kv_heads_warning(tmp_path: Path):
    model = tmp_path / "m"
    make_llama_shaped(model, layers=4, hidden=1536, heads=12, kv_heads=4, inter=2048, vocab=1000)
    loaded, resolved = _loaded(tmp_path, model, instance="ml.g5.48xlarge", option={"tensor_parallel_degree": 8})
    diags = fit_diagnostics(fit_report(model, resolved), loaded)
    assert [(d.rule, d.severity) for d in diags] == [("fit-tp-heads", "error")]
    assert diags[0].path == ("serving", "option", "tensor_parallel_degree") and diags[0].location.line > 0
    assert "[1, 2, 3, 4, 6]" in diags[0].message
    (tmp_path / "recipe.yaml").unlink()
    loaded, resolved = _loaded(tmp_path, model, instance="ml.g5.48xlarge", option={"tensor_parallel_degree": 6})
    diags = fit_diagnostics(fit_report(model, resolved), loaded)
    assert [(d.rule, d.severity) for d in diags] == [("fit-tp-kv-heads", "warning")]


def test_missing_config_is_a_clear_error(tmp_path: Path):
    (tmp_path / "m").mkdir()
    loaded, resolved = _loaded(tmp_path, tmp_path / "m")
    with pytest.raises(BuilderError, match="config.json"):
        fit_report(tmp_path / "m", resolved)


def test_corrupt_safetensors_header(tmp_path: Path, tiny_model):
    folder, _ = tiny_model
    (folder / "model.safetensors").write_bytes(b"\xff" * 16)
    _, resolved = _loaded(tmp_path, folder)
    with pytest.raises(BuilderError, match="not plausible"):
        fit_report(folder, resolved)
