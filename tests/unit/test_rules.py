"""One failing and one passing recipe per rule id (builder.lmi.rules), plus locations and messages."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from builder.lmi.rules import RULES, validate
from builder.recipe import load_recipe

SHA = "0123456789abcdef0123456789abcdef01234567"
DEL = object()

BASES: dict[str, dict] = {
    "vllm": {"name": "t", "model": {"id": "org/model", "revision": SHA, "trust_remote_code": False},
             "container": {"family": "lmi", "version": "lmi-27.0.0"}, "target": {"instance_type": "ml.g5.12xlarge"},
             "serving": {"engine": "Python", "option": {"rolling_batch": "vllm", "tensor_parallel_degree": "max"}}},
    "lmi-dist": {"name": "t", "model": {"id": "org/model", "revision": SHA, "trust_remote_code": False},
                 "container": {"family": "lmi", "version": "0.29.0"}, "target": {"instance_type": "ml.g5.12xlarge"},
                 "serving": {"engine": "MPI", "option": {"rolling_batch": "lmi-dist"}}},
    "deepspeed": {"name": "t", "model": {"id": "org/model", "revision": SHA, "trust_remote_code": False},
                  "container": {"family": "lmi", "version": "0.27.0"}, "target": {"instance_type": "ml.g5.12xlarge"},
                  "serving": {"engine": "MPI", "option": {"rolling_batch": "deepspeed"}}},
    "trtllm": {"name": "t", "model": {"id": "org/model", "revision": SHA, "trust_remote_code": False},
               "container": {"family": "tensorrt-llm", "version": "0.33.0"},
               "target": {"instance_type": "ml.g5.12xlarge"},
               "serving": {"engine": "MPI", "option": {"rolling_batch": "trtllm"}}},
    "neuronx": {"name": "t", "model": {"id": "org/model", "revision": SHA, "trust_remote_code": False},
                "container": {"family": "neuronx", "version": "0.29.0"},
                "target": {"instance_type": "ml.inf2.24xlarge"},
                "serving": {"engine": "Python", "option": {"rolling_batch": "auto", "tensor_parallel_degree": 4}}},
    "cpu": {"name": "t", "model": {"path": "m", "entry_point": "model.py"},
            "container": {"family": "cpu", "version": "0.35.0"}, "target": {"instance_type": "ml.m5.xlarge"},
            "serving": {"option": {"rolling_batch": "disable"}}},
}


def merge(base: dict, patch: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in patch.items():
        if v is DEL:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def opt(**kw: Any) -> dict:
    return {"serving": {"option": kw}}


# (rule, base, failing patch, passing patch)
CASES: list[tuple[str, str, dict, dict]] = [
    ("unknown-release", "vllm", {"container": {"version": "0.28.0"}}, {"container": {"version": "0.33.0"}}),
    ("release-unpublished", "trtllm", {"container": {"version": "0.35.0"}}, {"container": {"version": "0.33.0"}}),
    ("unknown-instance", "vllm", {"target": {"instance_type": "ml.g5.13xlarge"}},
     {"target": {"instance_type": "g5.12xlarge"}}),
    ("unknown-region", "vllm", {"target": {"region": "xx-moon-1"}}, {"target": {"region": "af-south-1"}}),
    ("family-accelerator", "vllm", {"target": {"instance_type": "ml.inf2.xlarge"}},
     {"target": {"instance_type": "ml.g6.12xlarge"}}),
    ("family-accelerator", "neuronx", {"target": {"instance_type": "ml.p4d.24xlarge"}},
     {"target": {"instance_type": "ml.trn1.32xlarge"}}),
    ("trtllm-compute-capability", "trtllm", {"target": {"instance_type": "ml.g4dn.12xlarge"}},
     {"target": {"instance_type": "ml.p4d.24xlarge"}}),
    ("engine-value", "vllm", {"serving": {"engine": "python"}}, {"serving": {"engine": "Python"}}),
    ("engine-location", "vllm", opt(engine="Python"), {}),
    ("rolling-batch-unavailable", "vllm", opt(rolling_batch="trtllm"), opt(rolling_batch="disable")),
    ("rolling-batch-unavailable", "cpu", opt(rolling_batch="vllm"), opt(rolling_batch="disable")),
    ("backend-removed", "lmi-dist", {"container": {"version": "0.33.0"}}, {"container": {"version": "0.30.0"}}),
    ("backend-removed", "deepspeed", {"container": {"version": "0.29.0"}}, {}),
    ("rolling-batch-engine", "vllm", {"serving": {"engine": "MPI"}}, {"serving": {"engine": DEL}}),
    ("rolling-batch-engine", "lmi-dist", {"serving": {"engine": "Python"}}, {"serving": {"engine": "MPI"}}),
    ("rolling-batch-engine", "trtllm", {"serving": {"engine": "Python"}},
     {"serving": {"engine": "Python", "option": {"mpi_mode": True}}}),
    # v16 (0.34.0-dlc): auto picks vllm/trtllm/tnx/disable by model type; v27: auto is disable + async_mode
    ("rolling-batch-auto", "vllm", {"container": {"version": "lmi-16.0.0"}, **opt(rolling_batch="auto")},
     opt(rolling_batch="auto")),
    ("entry-point-backend", "deepspeed", opt(entryPoint="djl_python.huggingface"),
     opt(entryPoint="djl_python.deepspeed")),
    ("entry-point-option", "vllm", opt(entryPoint="model.py"), opt(entryPoint="djl_python.huggingface")),
    ("tp-range", "vllm", opt(tensor_parallel_degree=8), opt(tensor_parallel_degree=4)),
    ("tp-range", "vllm", opt(tensor_parallel_degree="all"), opt(tensor_parallel_degree="max")),
    ("tp-range", "neuronx", opt(tensor_parallel_degree=16), opt(tensor_parallel_degree=12)),
    ("tp-range", "cpu", opt(tensor_parallel_degree=2), opt(tensor_parallel_degree=1)),
    ("vllm-pipeline-parallel", "vllm", opt(tensor_parallel_degree=2, pipeline_parallel_degree=2),
     opt(tensor_parallel_degree=2, pipeline_parallel_degree=1)),
    ("batch-size-rolling-batch", "vllm", {"serving": {"batch_size": 4}},
     {"serving": {"batch_size": 4, "option": {"rolling_batch": "disable"}}}),
    ("async-mode-rolling-batch", "vllm", opt(async_mode=True), opt(async_mode=True, rolling_batch="disable")),
    ("cpu-full-transformers", "cpu", {"model": {"entry_point": DEL}}, {}),
    ("dtype-value", "vllm", opt(dtype="fp8"), opt(dtype="bfloat16")),
    ("dtype-value", "neuronx", opt(dtype="auto"), opt(dtype="bf16")),
    ("dtype-bf16-hardware", "vllm", {"target": {"instance_type": "ml.g4dn.12xlarge"}, **opt(dtype="bf16")},
     {"target": {"instance_type": "ml.g4dn.12xlarge"}, **opt(dtype="fp16")}),
    ("dtype-int8-backend", "vllm", opt(dtype="int8"), opt(dtype="fp16")),
    ("max-rolling-batch-size", "vllm", opt(max_rolling_batch_size=0), opt(max_rolling_batch_size=64)),
    ("job-queue-size", "vllm", {"serving": {"job_queue_size": 16, "option": {"max_rolling_batch_size": 64}}},
     {"serving": {"job_queue_size": 64, "option": {"max_rolling_batch_size": 64}}}),
    ("job-queue-size", "vllm", {"serving": {"job_queue_size": 0}}, {"serving": {"job_queue_size": 256}}),
    ("parallel-loading", "vllm", opt(parallel_loading=True), opt(parallel_loading=True, tensor_parallel_degree=1)),
    ("model-loading-timeout", "vllm", opt(model_loading_timeout="30min"), opt(model_loading_timeout=1800)),
    ("model-loading-timeout", "vllm", opt(model_loading_timeout=1.5), opt(model_loading_timeout="1800")),
    ("predict-timeout", "vllm", opt(predict_timeout=-1), opt(predict_timeout=240)),
    ("readiness-timeout", "vllm", {"smoke": {"readiness_timeout_s": 60}, **opt(model_loading_timeout=1800)},
     {"smoke": {"readiness_timeout_s": 2000}, **opt(model_loading_timeout=1800)}),
    ("output-formatter", "vllm", opt(output_formatter="xml"), opt(output_formatter="jsonlines")),
    ("output-formatter", "deepspeed", opt(output_formatter="sse"), opt(output_formatter="json")),
    ("quantize-value", "lmi-dist", opt(quantize="bitsandbytes"), opt(quantize="awq")),
    ("lmi-dist-lora-draft", "lmi-dist", opt(enable_lora=True, speculative_draft_model="org/draft"),
     opt(enable_lora=True)),
    ("unknown-option", "vllm", opt(max_rolling_batch_sise=8), {"serving": {"option": {"max_rolling_batch_sise": 8},
                                                                          "pass_through": ["max_rolling_batch_sise"]}}),
    ("unknown-option", "lmi-dist", opt(limit_mm_per_prompt="image=1"),
     {"container": {"version": "0.30.0"}, **opt(max_model_len=4096)}),
    ("option-key-syntax", "vllm", opt(**{"bad key": 1}), {"serving": {"option": {"good_key": 1},
                                                                      "pass_through": ["good_key"]}}),
    ("option-owned-by-model", "vllm", opt(revision=SHA), {}),
    ("pass-through-unused", "vllm", {"serving": {"pass_through": ["foo"]}},
     {"serving": {"pass_through": ["foo"], "option": {"foo": 1}}}),
    ("alias-conflict", "vllm", opt(tensor_parallel_degree=4, tensor_parallel_size=2),
     opt(tensor_parallel_degree=4, tensor_parallel_size=4)),
    ("alias-conflict", "vllm", opt(max_rolling_batch_size=64, max_num_seqs=32),
     opt(max_rolling_batch_size=64, max_num_seqs=64)),
    ("env-secret", "vllm", {"env": {"HF_TOKEN": "hf_x"}}, {"env": {"MY_FLAG": "1"}}),
    ("env-value-characters", "vllm", {"env": {"MY_FLAG": "a\u0085b"}}, {"env": {"MY_FLAG": "a b\tc"}}),
    ("env-value-characters", "vllm", {"smoke": {"env": {"MY_FLAG": "a\u2028b"}}}, {"smoke": {"env": {"MY_FLAG": "ab"}}}),
    ("env-secret", "vllm", {"smoke": {"env": {"HF_TOKEN": "hf_x"}}}, {"smoke": {"env": {"MY_FLAG": "1"}}}),
    # a secret-named option is refused even when pass_through lists it (it would be baked and labelled)
    ("option-secret", "vllm", {"serving": {"option": {"hf_token": "hf_x"}, "pass_through": ["hf_token"]}},
     opt(max_num_batched_tokens=4096)),
    ("option-secret", "vllm", {"serving": {"option": {"api_key": "k"}, "pass_through": ["api_key"]}},
     opt(max_rolling_batch_prefill_tokens=1024)),
    # my.key, my_key and my-key are all OPTION_MY_KEY in LMI's environment form (§10.2)
    ("env-name-collision", "vllm", {"serving": {"option": {"my.key": "1", "my_key": "2"},
                                                "pass_through": ["my.key", "my_key"]}},
     {"serving": {"option": {"my_key": "2"}, "pass_through": ["my_key"]}}),
    ("env-config-key", "vllm", {"env": {"OPTION_DTYPE": "fp16"}}, {"env": {"OMP_NUM_THREADS": "4"}}),
    # left out is false (LMI's default); a local model with its own code needs true, and true names the files
    ("trust-remote-code-needed", "vllm", {"model": {"id": DEL, "revision": DEL, "trust_remote_code": DEL,
                                                    "path": "rc"}},
     {"model": {"id": DEL, "revision": DEL, "trust_remote_code": DEL, "path": "m"}}),
    ("trust-remote-code-files", "vllm", {"model": {"id": DEL, "revision": DEL, "trust_remote_code": True,
                                                   "path": "rc"}},
     {"model": {"id": DEL, "revision": DEL, "trust_remote_code": True, "path": "m"}}),
    ("revision-pinned", "vllm", {"model": {"revision": "main"}}, {"model": {"revision": SHA}}),
    ("revision-pinned", "vllm", {"model": {"revision": DEL}}, {}),
    ("revision-hub-only", "vllm", {"model": {"id": DEL, "trust_remote_code": DEL, "s3": "s3://bucket/prefix/"}},
     {"model": {"id": DEL, "trust_remote_code": DEL, "revision": DEL, "s3": "s3://bucket/prefix/"}}),
    ("model-path", "cpu", {"model": {"path": "nope"}}, {"model": {"path": "m"}}),
    ("model-path", "cpu", {"model": {"path": "model.py"}}, {}),
    ("model-weights", "cpu", {"model": {"path": "noweights"}}, {"model": {"path": "m"}}),
    ("entry-point-file", "cpu", {"model": {"entry_point": "nope.py"}}, {"model": {"entry_point": "model.py"}}),
    ("entry-point-file", "cpu", {"model": {"entry_point": "requirements.txt"}}, {}),
    ("model-files", "cpu", {"model": {"files": ["nope.txt"]}}, {"model": {"files": ["requirements.txt", "m/config.json"]}}),
    # model.files is baked under base names beside the handler (builder/lmi/rules/files.py, issue 15 item 6)
    ("model-files-entry-point", "cpu", {"model": {"entry_point": DEL, "files": ["requirements.txt"]}},
     {"model": {"files": ["requirements.txt"]}}),
    ("model-files-kind", "cpu", {"model": {"files": ["m"]}}, {"model": {"files": ["m/config.json"]}}),
    ("model-files-kind", "cpu", {"model": {"files": [""]}}, {}),
    ("model-files-name-clash", "cpu", {"model": {"files": ["m/config.json", "noweights/config.json"]}},
     {"model": {"files": ["m/config.json"]}}),
    ("model-files-name-clash", "cpu", {"model": {"files": ["./model.py"]}}, {"model": {"files": ["nohandle.py"]}}),
    ("model-files-name-clash", "cpu", {"model": {"files": ["serving.properties"]}}, {}),
    ("model-files-name-clash", "cpu", {"model": {"requirements": "requirements.txt", "files": ["requirements.txt"]}},
     {"model": {"requirements": "requirements.txt"}}),
    ("env-name-syntax", "vllm", {"env": {"A B": "1"}}, {"env": {"A_B": "1"}}),
    ("env-name-syntax", "vllm", {"env": {"1ABC": "1"}}, {"env": {"_1ABC": "1"}}),
    ("env-name-syntax", "vllm", {"env": {"A$B": "1"}}, {"env": {"AB": "1"}}),
    ("env-name-syntax", "vllm", {"smoke": {"env": {"A-B": "1"}}}, {"smoke": {"env": {"A_B": "1"}}}),
    ("requirements-file", "cpu", {"model": {"requirements": "nope.txt"}}, {"model": {"requirements": "requirements.txt"}}),
    ("path-escape", "cpu", {"model": {"entry_point": "../outside.py"}}, {}),
    ("path-escape", "cpu", {"model": {"files": ["/etc/hostname"]}}, {}),
    ("path-escape", "cpu", {"model": {"requirements": "link-out.txt"}}, {"model": {"requirements": "requirements.txt"}}),
    ("entry-point-syntax", "cpu", {"model": {"entry_point": "broken.py"}}, {}),
    ("entry-point-handler", "cpu", {"model": {"entry_point": "nohandle.py"}},
     {"model": {"entry_point": "nohandle.py"}, **opt(handler="predict")}),
    ("compile-family", "vllm", {"compile": {"enabled": True}}, {}),
    ("compile-family", "cpu", {"compile": {"max_input_len": 512}}, {}),
    ("compile-runtime-limits", "neuronx", {"compile": {"max_input_len": 4096, "max_seq_len": 2048}},
     {"compile": {"max_input_len": 1024, "max_seq_len": 2048}}),
    ("compile-runtime-limits", "trtllm", {"compile": {"enabled": True, "max_batch_size": 32},
                                          **opt(max_rolling_batch_size=64)},
     {"compile": {"enabled": True, "max_batch_size": 64}, **opt(max_rolling_batch_size=64)}),
    ("compile-runtime-limits", "trtllm", {"compile": {"enabled": True, "max_input_len": 1024}, **opt(max_input_len=2048)},
     {"compile": {"enabled": True, "max_input_len": 2048}, **opt(max_input_len=2048)}),
    ("compile-only-option", "trtllm", {"compile": {"enabled": True}, **opt(quant_algo="W8A16")},
     {"compile": {"enabled": True, "options": {"quant_algo": "W8A16"}}}),
    # LMI's properties-manager validators (builder/lmi/rules/crossfield.py, docs/lmi-validators.md)
    ("tnx-loader-partition", "neuronx", opt(model_loader="tnx", partition_schema="optimum"),
     opt(model_loader="tnx", partition_schema="safetensors")),
    ("tnx-loader-partition", "neuronx", opt(model_loader="optimum"), opt(model_loader="optimum",
                                                                         partition_schema="optimum")),
    ("tnx-aot-vllm-loader", "neuronx", opt(model_loader="vllm", save_mp_checkpoint_path="/tmp/out"),
     opt(model_loader="tnx", save_mp_checkpoint_path="/tmp/out")),
    ("tnx-group-query-attention", "neuronx", opt(group_query_attention="shard_over_heads"),
     opt(group_query_attention="shard-over-heads")),
    ("tnx-context-length-estimate", "neuronx", opt(context_length_estimate="256,512k"),
     opt(context_length_estimate="256, 512")),
    ("streaming-dynamic-batching", "vllm", opt(rolling_batch="disable", batch_size=4, enable_streaming=True),
     opt(rolling_batch="disable", batch_size=4, enable_streaming=False)),
    ("lmi-dist-fast-loader-draft", "lmi-dist",
     {"container": {"version": "lmi-13.0.0"}, **opt(load_format="sagemaker_fast_model_loader",
                                                     speculative_draft_model="org/draft")},
     {"container": {"version": "lmi-13.0.0"}, **opt(load_format="sagemaker_fast_model_loader")}),
    ("vllm-speculative-v2-block-manager", "vllm", {"container": {"version": "lmi-12.0.0"},
                                                   **opt(speculative_model="org/draft")},
     {"container": {"version": "lmi-12.0.0"}, **opt(speculative_model="org/draft", use_v2_block_manager=True)}),
    ("limit-mm-per-prompt-format", "lmi-dist", {"container": {"version": "lmi-12.0.0"},
                                                **opt(limit_mm_per_prompt="image=one")},
     {"container": {"version": "lmi-12.0.0"}, **opt(limit_mm_per_prompt="image=1,video=0")}),
    ("long-lora-scaling-factors", "vllm", opt(long_lora_scaling_factors="four"),
     opt(long_lora_scaling_factors="(4.0, 8.0)")),
    ("tool-call-parser-required", "vllm", opt(enable_auto_tool_choice=True),
     opt(enable_auto_tool_choice=True, tool_call_parser="hermes")),
    ("reasoning-parser-required", "vllm", opt(enable_reasoning=True),
     opt(enable_reasoning=True, reasoning_parser="deepseek_r1")),
    ("override-neuron-config-format", "vllm", {"container": {"version": "lmi-14.0.0"},
                                               **opt(override_neuron_config="[1, 2]")},
     {"container": {"version": "lmi-14.0.0"}, **opt(override_neuron_config={"enable_bucketing": True})}),
    ("bitsandbytes-device-map", "vllm", opt(rolling_batch="disable", quantize="bitsandbytes8"),
     opt(rolling_batch="disable", quantize="bitsandbytes8", device_map="auto")),
    # validate_pipeline_parallel exists from 0.30.0-dlc (lmi-12) on, and the async service builds the same properties
    ("vllm-pipeline-parallel", "vllm", {"container": {"version": "lmi-12.0.0"},
                                        **opt(tensor_parallel_degree=2, pipeline_parallel_degree=2)},
     {"container": {"version": "lmi-11.0.0"}, **opt(tensor_parallel_degree=2, pipeline_parallel_degree=2)}),
    ("vllm-pipeline-parallel", "vllm", opt(rolling_batch="disable", async_mode=True, tensor_parallel_degree=2,
                                           pipeline_parallel_degree=2),
     opt(rolling_batch="disable", tensor_parallel_degree=2, pipeline_parallel_degree=2)),
]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """Recipe folder with the files the cpu base and the file rules refer to."""
    d = tmp_path / "recipes"
    (d / "m").mkdir(parents=True)
    (d / "m" / "config.json").write_text("{}")
    (d / "m" / "model.safetensors").write_bytes(b"\x08" + b"\0" * 7 + b"{}      ")  # empty but well-formed
    (d / "rc").mkdir()  # a model with its own code (trust-remote-code-*)
    (d / "rc" / "config.json").write_text('{"auto_map": {"AutoModelForCausalLM": "modeling_x.XForCausalLM"}}')
    (d / "rc" / "modeling_x.py").write_text("class XForCausalLM: ...\n")
    (d / "rc" / "model.safetensors").write_bytes((d / "m" / "model.safetensors").read_bytes())
    (d / "noweights").mkdir()
    (d / "noweights" / "config.json").write_text("{}")
    (d / "model.py").write_text("def handle(inputs):\n    return None\n")
    (d / "nohandle.py").write_text("def predict(inputs):\n    return None\n")
    (d / "broken.py").write_text("import os\n\ndef handle(inputs):\n    return (\n")
    (d / "requirements.txt").write_text("numpy\n")
    (tmp_path / "outside.py").write_text("def handle(x):\n    pass\n")
    (d / "link-out.txt").symlink_to(tmp_path / "outside.py")
    return d


def run(workdir: Path, data: dict) -> list:
    path = workdir / "recipe.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return validate(load_recipe(path))


def ids(diags: list) -> set[str]:
    return {d.rule for d in diags}


@pytest.mark.parametrize("base", sorted(BASES))
def test_bases_are_clean(workdir: Path, base: str) -> None:
    diags = run(workdir, BASES[base])
    assert not [d for d in diags if d.severity == "error"], [d.format() for d in diags]


@pytest.mark.parametrize(("rule", "base", "fail", "ok"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_rule_fails_and_passes(workdir: Path, rule: str, base: str, fail: dict, ok: dict) -> None:
    bad = run(workdir, merge(BASES[base], fail))
    hit = [d for d in bad if d.rule == rule]
    assert hit, f"{rule} not reported: {[d.format() for d in bad]}"
    assert all(d.location.line > 0 for d in hit)
    good = run(workdir, merge(BASES[base], ok))
    assert rule not in ids(good), [d.format() for d in good]


def test_every_rule_has_a_case() -> None:
    assert set(RULES) - {c[0] for c in CASES} == set()


def test_location_points_at_the_value(workdir: Path) -> None:
    path = workdir / "r.yaml"
    text = yaml.safe_dump(merge(BASES["vllm"], opt(dtype="fp8")), sort_keys=False)
    path.write_text(text)
    [d] = [d for d in validate(load_recipe(path)) if d.rule == "dtype-value"]
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "dtype: fp8" in t)
    assert d.location.line == line and d.location.col == text.splitlines()[line - 1].index("fp8") + 1
    assert d.path == ("serving", "option", "dtype")
    assert "use one of" in d.message  # states the fix


def test_async_mode_is_first_class(workdir: Path) -> None:
    """Upstream's recommended setup (v17 on): no rolling_batch, or disable + async_mode, with vLLM EngineArgs
    keys and the async service's own keys, validates with no warning and no pass_through."""
    keys = {"gpu_memory_utilization": 0.9, "async_scheduling": True, "enable_stateful_sessions": True,
            "sessions_path": "/tmp/s", "lmcache_config_file": "lmcache.yaml", "kv_transfer_config": "{}"}
    for version in ("lmi-19.0.0", "lmi-25.0.0"):
        for mode in ({"rolling_batch": DEL}, {"rolling_batch": "disable", "async_mode": True}):
            data = merge(BASES["vllm"], {"container": {"version": version}, **opt(**keys, **mode)})
            diags = run(workdir, data)
            assert not diags, (version, mode, [d.format() for d in diags])


def test_async_keys_need_the_async_service(workdir: Path) -> None:
    """enable_stateful_sessions is read by vllm_async_service only: with rolling_batch=vllm (huggingface.py
    handler) LMI drops it."""
    data = merge(BASES["vllm"], {"container": {"version": "lmi-25.0.0"}, **opt(enable_stateful_sessions=True)})
    [d] = [d for d in run(workdir, data) if d.rule == "unknown-option"]
    assert "LMI v25" in d.message and "without a word" in d.message


def test_key_vllm_removed_is_an_error_that_says_so(workdir: Path) -> None:
    """max_seq_len_to_capture left vLLM's EngineArgs in 0.11: LMI v25 (vLLM 0.20.1) drops it."""
    data = merge(BASES["vllm"], {"container": {"version": "lmi-25.0.0"}, **opt(max_seq_len_to_capture=8192)})
    [d] = [d for d in run(workdir, data) if d.rule == "unknown-option"]
    assert ("LMI v25 passes extra keys to vLLM 0.20 only when EngineArgs has them; 'max_seq_len_to_capture' is "
            "not one") in d.message
    assert "drop it without a word" in d.message and "lmi-16.0.0" in d.message  # the last release reading it
    ok = merge(BASES["vllm"], {"container": {"version": "lmi-16.0.0"}, **opt(max_seq_len_to_capture=8192)})
    assert "unknown-option" not in ids(run(workdir, ok))


def test_v11_vllm_reads_declared_fields_only(workdir: Path) -> None:
    """0.29.0-dlc's VllmRbProperties keeps no extra key: an EngineArgs name like tensor_parallel_size is dropped."""
    data = merge(BASES["vllm"], {"container": {"version": "lmi-11.0.0"}, **opt(tensor_parallel_size=4)})
    [d] = [d for d in run(workdir, data) if d.rule == "unknown-option"]
    assert "LMI v11 does not read 'tensor_parallel_size'" in d.message and "lmi-14.0.0" in d.message


def test_dev_build_vllm_keeps_pass_through(workdir: Path) -> None:
    """v27 bundles vLLM 0.23.1.dev4+gcd87ce883 (not on PyPI): its EngineArgs are unknown, so a key outside the
    properties classes and the hand-typed stand-in still needs pass_through, and the message says why."""
    data = merge(BASES["vllm"], opt(attention_backend="FLASHINFER"))
    [d] = [d for d in run(workdir, data) if d.rule == "unknown-option"]
    assert "dev build" in d.message and "pass_through" in d.message
    data["serving"]["pass_through"] = ["attention_backend"]
    assert "unknown-option" not in ids(run(workdir, data))


def test_unknown_option_did_you_mean(workdir: Path) -> None:
    [d] = [d for d in run(workdir, merge(BASES["vllm"], opt(max_rolling_batch_sise=8))) if d.rule == "unknown-option"]
    assert "did you mean 'max_rolling_batch_size'" in d.message and "pass_through" in d.message


def test_unknown_instance_did_you_mean(workdir: Path) -> None:
    [d] = run(workdir, merge(BASES["vllm"], {"target": {"instance_type": "ml.g5.13xlarge"}}))
    assert "did you mean" in d.message and "ml.g5.12xlarge" in d.message


def test_unknown_release_lists_versions(workdir: Path) -> None:
    [d] = run(workdir, merge(BASES["vllm"], {"container": {"version": "0.28.0"}}))
    assert "lmi-11.0.0" in d.message and "lmi-27.0.0" in d.message


def test_a_djl_version_of_several_releases_is_refused_with_the_line_to_write(workdir: Path) -> None:
    # Since LMI v18 every release is DJL 0.36.0 (reference/lmi-releases.md §1).
    [d] = run(workdir, merge(BASES["vllm"], {"container": {"version": "0.36.0"}}))
    assert d.rule == "unknown-release" and "10 lmi releases" in d.message
    assert "lmi-18.0.0" in d.message and 'version: "lmi-27.0.0"' in d.message
    assert d.path == ("container", "version")


def test_a_djl_version_of_one_release_keeps_working(workdir: Path) -> None:
    diags = run(workdir, merge(BASES["vllm"], {"container": {"version": "0.33.0"}}))
    assert not [d for d in diags if d.severity == "error"], [d.format() for d in diags]


def test_syntax_error_located_in_handler_file(workdir: Path) -> None:
    diags = run(workdir, merge(BASES["cpu"], {"model": {"entry_point": "broken.py"}}))
    [d] = [d for d in diags if d.rule == "entry-point-syntax"]
    assert d.location.file.endswith("broken.py") and d.location.line >= 4


def test_model_path_may_use_dotdot_inside_git_repo(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "weights").mkdir()
    (tmp_path / "outside").mkdir()
    sub = repo / "recipes"
    sub.mkdir()
    (sub / "model.py").write_text("def handle(x):\n    pass\n")
    inside = run(sub, merge(BASES["cpu"], {"model": {"path": "../weights"}}))
    assert "path-escape" not in ids(inside) and "model-path" not in ids(inside)
    out = run(sub, merge(BASES["cpu"], {"model": {"path": "../../outside"}}))
    assert "path-escape" in ids(out)


def test_symlink_inside_model_folder_pointing_out(workdir: Path, tmp_path: Path) -> None:
    (workdir / "m" / "weights.safetensors").symlink_to(tmp_path / "outside.py")
    assert "path-escape" in ids(run(workdir, BASES["cpu"]))


def test_parallel_loading_host_memory(workdir: Path) -> None:
    # 4 workers x 100 GiB (sparse file) > 192 GiB of a g5.12xlarge
    with open(workdir / "m" / "model.safetensors", "wb") as f:
        f.truncate(100 << 30)
    data = merge(BASES["vllm"], {"model": {"id": DEL, "revision": DEL, "trust_remote_code": DEL, "path": "m"},
                                 **opt(parallel_loading=True, tensor_parallel_degree=1)})
    [d] = [d for d in run(workdir, data) if d.rule == "parallel-loading"]
    assert "host memory" in d.message


def test_examples_validate() -> None:
    root = Path(__file__).resolve().parents[2] / "recipes" / "examples"
    for path in sorted(root.glob("*.yaml")):
        if path.name == "quickstart.yaml":
            continue  # its weights are generated on first use (lead's recipe)
        if path.name == "multi-model-quickstart.yaml":
            continue  # models: (builder/multi/validate.py); validated in tests/unit/test_multi_model.py
        diags = validate(load_recipe(path))
        assert not [d for d in diags if d.severity == "error"], [d.format() for d in diags]


@pytest.mark.parametrize(("key", "secret"), [
    ("hf_token", True), ("token", True), ("api_key", True), ("my-api-key", True), ("db.password", True),
    ("aws_secret_access_key", True), ("access_token", True), ("credentials", True),
    ("max_num_batched_tokens", False), ("max_rolling_batch_prefill_tokens", False), ("bos_token", False),
    ("max_tokens", False), ("tokenizer", False), ("keyring", False), ("secretary_count", False),
])
def test_secret_option_names(key: str, secret: bool) -> None:
    from builder.lmi.rules.options import is_secret_option
    assert is_secret_option(key) is secret


def test_env_form_never_drops_a_colliding_key() -> None:
    from builder.diagnostics import BuilderError
    from builder.lmi.resolve import env_form
    with pytest.raises(BuilderError, match="OPTION_MY_KEY"):
        env_form({"option.my.key": "1", "option.my-key": "2"})
