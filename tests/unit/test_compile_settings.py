"""Compile settings vs runtime settings (located diagnostics) and host preflight parsing."""

from __future__ import annotations

from pathlib import Path

from builder.catalog import load_catalog
from builder.compile.models import Gpu, HostAccelerators
from builder.compile.preflight import detect_host, parse_nvidia_smi, refusal
from builder.compile.settings import compile_diagnostics, compile_properties
from builder.lmi.resolve import resolve
from builder.recipe.loader import load_recipe
from tests.support.model_fixtures import recipe_data, write_recipe


def _diags(tmp_path: Path, *, family="tensorrt-llm", version="0.33.0", instance="ml.g5.12xlarge", option=None,
           compile=None):
    loaded = load_recipe(write_recipe(tmp_path, recipe_data({"path": "m"}, family=family, version=version,
                                                            instance=instance, option=option,
                                                            compile={"enabled": True, **(compile or {})})))
    assert loaded.ok, [d.format() for d in loaded.diagnostics]
    resolved = resolve(loaded.recipe)
    return compile_diagnostics(loaded, resolved), resolved


def test_runtime_may_not_exceed_engine_limits(tmp_path: Path):
    diags, _ = _diags(tmp_path, option={"max_rolling_batch_size": 128, "max_input_len": 4096, "max_num_tokens": 9000},
                      compile={"max_batch_size": 64, "max_input_len": 2048, "max_seq_len": 4096,
                               "max_num_tokens": 8192})
    by_rule = sorted((d.rule, d.path[-1], d.severity) for d in diags)
    assert by_rule == [("compile-batch-size", "max_rolling_batch_size", "error"),
                       ("compile-limit", "max_input_len", "error"),
                       ("compile-limit", "max_num_tokens", "error")]
    assert all(d.location.line > 0 for d in diags)


def test_input_len_below_seq_len_and_build_only_keys(tmp_path: Path):
    diags, _ = _diags(tmp_path, option={"quant_algo": "FP8"}, compile={"max_input_len": 4096, "max_seq_len": 4096})
    assert sorted((d.rule, d.severity) for d in diags) == [("compile-lengths", "error"),
                                                           ("compile-only-key", "warning")]


def test_family_without_aot(tmp_path: Path):
    diags, _ = _diags(tmp_path, family="lmi", version="0.33.0")
    assert [(d.rule, d.path) for d in diags] == [("compile-family", ("compile", "enabled"))]


def test_neuron_sequence_length_and_quantization(tmp_path: Path):
    diags, resolved = _diags(tmp_path, family="neuronx", version="0.29.0", instance="ml.inf2.24xlarge",
                             option={"n_positions": 1024, "rolling_batch": "auto"},
                             compile={"max_seq_len": 2048, "quantization": "awq"})
    assert sorted(d.rule for d in diags) == ["compile-limit", "compile-quantization"]
    props = compile_properties(resolved, model_dir="/m", output_dir="/o")
    assert props["option.n_positions"] == "2048" and props["option.save_mp_checkpoint_path"] == "/o"
    assert props["engine"] == "Python"


def test_trtllm_properties_by_version(tmp_path: Path):
    _, new = _diags(tmp_path, compile={"max_seq_len": 4096, "max_input_len": 1024, "quantization": "fp8",
                                       "calibration": {"calib_size": 256}})
    p = compile_properties(new, model_dir="/m", output_dir="/o")
    assert (p["option.max_seq_len"], p["option.quant_algo"], p["option.calib_size"]) == ("4096", "fp8", "256")
    (tmp_path / "recipe.yaml").unlink()
    _, old = _diags(tmp_path, version="0.29.0", compile={"max_seq_len": 4096, "max_input_len": 1024,
                                                         "quantization": "smoothquant"})
    p = compile_properties(old, model_dir="/m", output_dir="/o")
    assert (p["option.max_output_len"], p["option.quantize"]) == ("3072", "smoothquant")


def test_parse_nvidia_smi():
    text = "NVIDIA A10G, 8.6, 23028 MiB\nNVIDIA A10G, 8.6, 23028 MiB\n"
    gpus = parse_nvidia_smi(text)
    assert [(g.name, g.arch, g.memory_bytes) for g in gpus] == [("A10G", "sm_86", 23028 << 20)] * 2


def test_detect_host_with_fake_nvidia_smi():
    class P:
        returncode, stdout, stderr = 0, "NVIDIA H100 80GB HBM3, 9.0, 81559 MiB\n", ""

    seen = []
    host = detect_host(run=lambda argv, **kw: seen.append(argv) or P(), which=lambda n: "/usr/bin/nvidia-smi",
                       dev_glob="/nonexistent/neuron*")
    assert seen == [["/usr/bin/nvidia-smi", "--query-gpu=name,compute_cap,memory.total", "--format=csv,noheader"]]
    assert host.gpus[0].arch == "sm_90" and host.neuron_devices == []


def test_refusals():
    cat = load_catalog()
    g5 = cat.instance("ml.g5.12xlarge")
    one_a10g = HostAccelerators(gpus=[Gpu(name="A10G", compute_capability="8.6", memory_bytes=1)])
    assert "needs 4 GPUs, this host has 1" in refusal(one_a10g, g5, ranks=4)
    assert refusal(one_a10g, g5, ranks=1) is None
    inf2 = cat.instance("ml.inf2.24xlarge")
    assert "no Neuron devices" in refusal(HostAccelerators(), inf2, ranks=4)
    assert refusal(HostAccelerators(neuron_devices=["/dev/neuron0"]), inf2, ranks=4) is None
