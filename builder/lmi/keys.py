"""The ``option.*`` keys each LMI release reads (reference/lmi-releases.md §2, lmi-runtime.md §5, §6, §8).

LMI ignores unknown keys silently (§17.1); the builder rejects them unless the recipe lists them in
``serving.pass_through``. For the releases in ``builder/catalog/keys/`` (lmi v11-v27, tensorrt-llm, neuronx)
the set is DERIVED from the release itself by ``scripts/derive_keys.py``: the properties managers' fields and
aliases, the handler's and async service's reads, and, where ``VllmRbProperties`` keeps extra keys that are
``in EngineArgs.__annotations__`` (v14 on), every field of the bundled vLLM's ``EngineArgs``. The hand-typed
lists below are used only where no derived data exists (lmi 0.27.0, cpu, dev-cpu), where the derived set is a
lower bound (tensorrt-llm: build-time keys of the partition script), and, for vLLM, where the bundled vLLM is
a dev build whose ``EngineArgs`` could not be read (its ``engine_args: unknown``; VLLM below then stands in
for it as before, and other keys still need ``pass_through``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from builder.catalog import HERE as CATALOG_DIR
from builder.catalog import Release, version_tuple
from builder.catalog.facts import load_facts

KEYS_DIR = CATALOG_DIR / "keys"
ASYNC_ENTRY_POINT = "djl_python.lmi_vllm.vllm_async_service"

# §5: options the Java front end (PyModel / PyEnv) reads for every Python-engine model.
PYTHON_ENGINE = frozenset({
    "entryPoint", "handler", "pythonExecutable", "env", "predict_timeout", "model_loading_timeout",
    "parallel_loading", "enable_venv", "mpi_mode", "async_mode", "tensor_parallel_degree",
    "pipeline_parallel_degree",
})

# §6: properties.Properties (every backend), plus model location keys.
COMMON = frozenset({
    "model_id", "model_dir", "revision", "dtype", "rolling_batch", "tensor_parallel_degree", "cluster_size",
    "batch_size", "max_rolling_batch_size", "enable_streaming", "trust_remote_code", "mpi_mode", "tgi_compat",
    "bedrock_compat", "enable_lora", "output_formatter", "input_formatter", "waiting_steps", "draft_model_id",
    "spec_length", "task", "quantize", "adapters", "device", "max_new_tokens",
})
# §8.5 HF accelerate (HuggingFaceProperties), also the handler of rolling_batch=disable on GPU and CPU.
HF_ACCELERATE = frozenset({
    "device_id", "device_map", "low_cpu_mem_usage", "disable_flash_attn", "is_peft_model", "load_in_4bit",
    "load_in_8bit",
})

# §8.1 vLLM: fields of VllmRbProperties plus the common EngineArgs names (not exhaustive, see module doc).
VLLM = frozenset({
    "engine", "pipeline_parallel_degree", "quantization", "max_rolling_batch_prefill_tokens",
    "max_num_batched_tokens", "cpu_offload_gb_per_gpu", "cpu_offload_gb", "max_loras", "long_lora_scaling_factors",
    "enable_auto_tool_choice", "tool_call_parser", "enable_reasoning", "reasoning_parser", "normalize",
    "chat_template", "chat_template_content_format",
    # v0.29.0 declared fields (§8.1)
    "gpu_memory_utilization", "enforce_eager", "max_lora_rank", "lora_extra_vocab_size", "max_logprobs",
    "enable_chunked_prefill", "enable_prefix_caching", "load_format", "max_model_len", "preloaded_model",
    # aliases LMI accepts (§8.1 alias conflicts)
    "tensor_parallel_size", "pipeline_parallel_size", "max_num_seqs",
    # common vLLM EngineArgs fields
    "kv_cache_dtype", "swap_space", "block_size", "seed", "max_seq_len_to_capture", "disable_custom_all_reduce",
    "tokenizer", "tokenizer_mode", "tokenizer_revision", "code_revision", "rope_scaling", "rope_theta",
    "speculative_config", "speculative_model", "num_speculative_tokens", "max_cpu_loras", "fully_sharded_loras",
    "lora_dtype", "disable_sliding_window", "limit_mm_per_prompt", "served_model_name",
    "distributed_executor_backend", "guided_decoding_backend", "num_scheduler_steps", "disable_log_stats",
    "enable_lora_bias", "max_parallel_loading_workers", "hf_overrides", "mm_processor_kwargs",
    "enable_expert_parallel", "data_parallel_size", "compilation_config", "generation_config",
})

# §8.2 lmi-dist (0.29.0 keys; the 0.34.0-dlc additions are families.yaml keys_since, by DJL version).
LMI_DIST = frozenset({
    "engine", "load_format", "pipeline_parallel_degree", "max_rolling_batch_prefill_tokens", "max_model_len",
    "enforce_eager", "gpu_memory_utilization", "speculative_draft_model", "speculative_length",
    "draft_model_tp_size", "record_acceptance_rate", "speculative_telemetry", "max_loras", "max_lora_rank",
    "lora_extra_vocab_size", "max_cpu_loras", "max_logprobs", "enable_chunked_prefill", "cpu_offload_gb_per_gpu",
    "enable_prefix_caching",
})

# §8.3 TensorRT-LLM runtime knobs, build-time keys read by the partition script, and the user-guide
# keys (toolkit era) that the runtime still passes through.
TRTLLM = frozenset({
    "tokenizer", "tokenizer_mode", "skip_tokenizer_init", "tokenizer_revision", "pipeline_parallel_size",
    "context_parallel_size", "moe_tensor_parallel_size", "moe_expert_parallel_size", "enable_attention_dp",
    "auto_parallel", "load_format", "enable_chunked_prefill", "guided_decoding_backend", "embedding_parallel_mode",
    "fast_build", "enable_build_cache", "max_batch_size", "max_input_len", "max_seq_len", "max_beam_width",
    "max_num_tokens", "backend", "enable_overlap_scheduler", "kv_cache_dtype", "attn_backend", "use_cuda_graph",
    "moe_backend", "enable_block_reuse", "max_tokens", "max_attention_window", "sink_token_length",
    "free_gpu_memory_fraction", "host_cache_size", "onboard_blocks", "cross_kv_cache_fraction",
    "secondary_offload_min_priority", "event_buffer_max_size",
    # build time (§8.3 "Build time")
    "quant_algo", "kv_cache_quant_algo", "group_size", "smoothquant_val", "clamp_val", "use_meta_recipe",
    "has_zero_point", "pre_quant_scales", "exclude_modules", "calib_dataset", "calib_batches", "calib_batch_size",
    "calib_max_seq_length", "random_seed", "tokenizer_max_seq_length", "gather_context_logits", "max_draft_len",
    "multiple_profiles", "opt_num_tokens", "pipeline_parallel_degree",
    # user guide (§8.3 "User-guide keys")
    "max_output_len", "tokens_per_block", "batch_scheduler_policy", "kv_cache_free_gpu_mem_fraction",
    "max_num_sequences", "enable_trt_overlap", "enable_kv_cache_reuse", "baichuan_model_version",
    "chatglm_model_version", "gpt_model_version", "use_fused_mlp", "rotary_base", "rotary_scaling",
    "rotary_dim", "logits_dtype", "trtllm_checkpoint_path", "num_checkpoint_workers", "num_engine_workers",
    "load_by_shard", "smoothquant_alpha", "smoothquant_per_token", "smoothquant_per_channel", "multi_query_mode",
    "q_format", "calib_size", "awq_block_size", "use_fp8_context_fmha",
})

# §8.4 Transformers-NeuronX (0.29.0).
TNX = frozenset({
    "neuron_optimize_level", "enable_mixed_precision_accumulation", "enable_saturate_infinity", "n_positions",
    "unroll", "context_length_estimate", "load_in_8bit", "low_cpu_mem_usage", "load_split_model",
    "compiled_graph_path", "draft_model_compiled_path", "speculative_draft_model", "speculative_length",
    "draft_model_tp_size", "save_mp_checkpoint_path", "group_query_attention", "model_loader",
    "rolling_batch_strategy", "fuse_qkv", "attention_layout", "collectives_layout", "cache_layout",
    "partition_schema", "all_reduce_dtype", "cast_logits_dtype", "on_device_embedding_config", "amp",
    "max_model_len", "block_size", "enable_prefix_caching",
})

# §8.6 DeepSpeed (<= 0.27.0).
DEEPSPEED = frozenset({
    "max_tokens", "low_cpu_mem_usage", "enable_cuda_graph", "triangular_masking", "return_tuple",
    "training_mp_size", "checkpoint", "save_mp_checkpoint_path", "ds_config", "deepspeed_config_path",
    "smoothquant_alpha",
})

# §8.5 old scheduler (removed with 0.33).
SCHEDULER = frozenset({"decoding_strategy", "max_sparsity", "max_splits", "disable_flash_attn", "multi_gpu"})

BACKEND_KEYS: dict[str, frozenset[str]] = {
    "vllm": VLLM, "lmi-dist": LMI_DIST, "trtllm": TRTLLM, "tnx": TNX, "deepspeed": DEEPSPEED,
    "scheduler": SCHEDULER, "disable": HF_ACCELERATE,
}

# Keys whose value comes from the ``model:`` section of the recipe (reference §6, seed guide).
OWNED_BY_MODEL = {"model_id": "model.id / model.s3 / model.path", "revision": "model.revision",
                  "trust_remote_code": "model.trust_remote_code"}


def backends_for(release: Release, rolling_batch: str) -> list[str]:
    """The backends whose keys apply: the named one, or every one the release offers for ``auto``."""
    return _backends(release.family, tuple(release.rolling_batch), rolling_batch)


def _backends(family: str, offered: tuple[str, ...], rolling_batch: str) -> list[str]:
    facts = load_facts().of(family)
    if facts.key_backends is not None:  # tensorrt-llm: trtllm; neuronx: tnx (+ vllm / lmi-dist when named)
        return list(facts.key_backends) + ([rolling_batch] if rolling_batch in facts.extra_key_backends else [])
    if rolling_batch == "auto":
        return [rb for rb in offered if rb != "auto"]
    return [rolling_batch]


@dataclass(frozen=True)
class DerivedKeys:
    """A release's derived key data (builder/catalog/keys/<release>.yaml, written by scripts/derive_keys.py)."""

    family: str
    release: str
    data: dict[str, Any]
    path: Path

    @property
    def modes(self) -> dict[str, list[str]]:
        return self.data["modes"]

    @property
    def complete(self) -> bool:
        return bool(self.data.get("complete", True))

    @property
    def engine_args(self) -> frozenset[str] | None:
        """The bundled vLLM's EngineArgs fields, or None when the release has none or they are unknown."""
        src = self.data["sources"].get("engine_args", {})
        return frozenset(src["keys"]) if "keys" in src else None

    @property
    def engine_args_unknown(self) -> bool:
        return self.data.get("engine_args") == "unknown"

    @property
    def vllm_version(self) -> str | None:
        return self.data["sources"].get("engine_args", {}).get("vllm_version")

    @property
    def auto_by_model_type(self) -> bool:
        """Whether rolling_batch=auto still picks among backends by model type (LmiConfigRecommender)."""
        return bool(self.data.get("auto", {}).get("by_model_type", True))

    def keys(self, mode: str) -> dict[str, str]:
        """key -> the source that reads it (first in the mode's order: java, classes, EngineArgs, files)."""
        out: dict[str, str] = {}
        for sid in self.modes[mode]:
            for key in self.data["sources"][sid].get("keys", []):
                out.setdefault(key, sid)
        return out


def keys_file(family: str, version: str) -> Path:
    name = version if version.startswith(f"{family}-") else f"{family}-{version}"
    return KEYS_DIR / f"{name}.yaml"


@lru_cache(maxsize=64)
def _load(family: str, version: str) -> DerivedKeys | None:
    path = keys_file(family, version)
    if not path.is_file():
        return None
    data = yaml.safe_load(path.read_text())
    if data.get("family") != family or data.get("release") != version or "modes" not in data:
        raise ValueError(f"{path}: not the derived keys of {family} {version}; rerun scripts/derive_keys.py")
    return DerivedKeys(family, version, data, path)


def derived_keys(release: Release) -> DerivedKeys | None:
    """The derived key data of a release, or None for the releases without any (lmi 0.27.0, cpu, dev-cpu)."""
    return _load(release.family, release.version)


def key_modes(release: Release, rolling_batch: str, entry_point: str | None = None) -> list[str]:
    """The derived modes whose keys apply to a recipe (empty when the release has no derived data).

    The entry point decides first: ``vllm_async_service`` (what the render pins for ``auto`` and for
    ``disable`` + ``async_mode`` from v15 on) builds VllmRbProperties itself, so it reads the full vLLM set
    whatever ``rolling_batch`` says. ``auto`` is the async service where LmiConfigRecommender makes it
    ``disable`` + ``async_mode`` (v17 on), else every backend it may pick.
    """
    d = derived_keys(release)
    if d is None:
        return []
    if entry_point == ASYNC_ENTRY_POINT and "async" in d.modes:
        return ["async"]
    facts = load_facts().of(release.family)
    if facts.key_backends is not None:
        extra = [rolling_batch] if rolling_batch in facts.extra_key_backends else []
        return [m for m in [*facts.key_backends, *extra] if m in d.modes]
    if rolling_batch == "auto":
        if not d.auto_by_model_type and "async" in d.modes:
            return ["async"]
        return list(d.modes)
    return [rolling_batch] if rolling_batch in d.modes else []


def known_keys(release: Release, rolling_batch: str, entry_point: str | None = None) -> frozenset[str]:
    """Every ``option.*`` key the runtime of ``release`` reads with this ``rolling_batch`` (and handler)."""
    d = derived_keys(release)
    if d is None:
        return _known_keys(release.family, release.djl_version, tuple(release.rolling_batch), rolling_batch)
    modes = key_modes(release, rolling_batch, entry_point)
    keys: set[str] = set()
    for mode in modes:
        keys |= set(d.keys(mode))
    if not modes:  # a rolling_batch this release has no manager for (rules report the value itself)
        keys |= set(d.keys(next(iter(d.modes))))
    if d.engine_args_unknown and any("engine_args" in d.modes[m] for m in modes):
        keys |= VLLM  # the bundled vLLM is a dev build whose EngineArgs were not read: the hand-typed stand-in
    if not d.complete:
        keys |= _known_keys(release.family, release.djl_version, tuple(release.rolling_batch), rolling_batch)
    return frozenset(keys)


@lru_cache(maxsize=8)
def _family_data(family: str) -> tuple[DerivedKeys, ...]:
    out = []
    for path in KEYS_DIR.glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        if data.get("family") == family:
            out.append(DerivedKeys(family, data["release"], data, path))
    return tuple(sorted(out, key=lambda d: version_tuple(d.release.split("-", 1)[-1])))


def releases_reading(family: str, key: str) -> list[str]:
    """The derived releases of a family where some source reads ``key`` (any mode), oldest first."""
    return [d.release for d in _family_data(family)
            if any(key in src.get("keys", []) for sid, src in d.data["sources"].items() if sid != "java")]


@lru_cache(maxsize=256)
def _known_keys(family: str, version: str, offered: tuple[str, ...], rolling_batch: str) -> frozenset[str]:
    facts = load_facts().of(family)
    keys: set[str] = set(COMMON) | set(PYTHON_ENGINE)
    for backend in _backends(family, offered, rolling_batch):
        keys |= BACKEND_KEYS.get(backend, frozenset())
        keys |= facts.keys_added(backend, version)  # families.yaml keys_since
    if facts.hf_accelerate:
        keys |= HF_ACCELERATE  # the HF handler serves rolling_batch=disable and vllm in-process
    return frozenset(keys)
