"""The catalog and the option key catalogue are consistent with the rules that use them."""

from __future__ import annotations

from builder.catalog import load_catalog
from builder.lmi.keys import ASYNC_ENTRY_POINT, VLLM, derived_keys, known_keys


def test_catalog_loads_and_every_release_is_complete() -> None:
    cat = load_catalog()
    for rel in cat.releases:
        assert rel.family in cat.families
        assert rel.default_rolling_batch in rel.rolling_batch
        assert "default" in rel.default_max_rolling_batch_size
        assert all(rb in cat.backends for rb in rel.rolling_batch)
        assert known_keys(rel, rel.default_rolling_batch) >= {"rolling_batch", "tensor_parallel_degree", "dtype"}


def test_key_catalogue_is_version_aware() -> None:
    cat = load_catalog()
    old, new = cat.release("lmi", "0.29.0"), cat.release("lmi", "lmi-27.0.0")
    assert old and new
    assert "speculative_draft_model" in known_keys(old, "lmi-dist")
    assert "speculative_draft_model" not in known_keys(new, "vllm")
    assert "lmcache_auto_config" in known_keys(new, "vllm") and "lmcache_auto_config" not in known_keys(old, "vllm")
    # properties.py declares lmcache_auto_config from v19 on (0.36.0-lmi19-dlc), not on 0.35.0-dlc or v18
    for version, has in (("lmi-17.0.0", False), ("lmi-18.0.0", False), ("lmi-19.0.0", True)):
        rel = cat.release("lmi", version)
        assert rel and ("lmcache_auto_config" in known_keys(rel, "vllm")) is has, version
    trt = cat.release("tensorrt-llm", "0.33.0")
    assert trt and "kv_cache_free_gpu_mem_fraction" in known_keys(trt, "trtllm")
    assert "n_positions" not in known_keys(trt, "trtllm")


def test_keys_are_derived_per_release_with_fallback_only_where_no_data() -> None:
    cat = load_catalog()
    without = sorted(f"{r.family} {r.version}" for r in cat.releases if derived_keys(r) is None)
    assert without == ["cpu 0.34.0", "cpu 0.35.0", "dev-cpu 0.34.0", "lmi 0.27.0"]  # no branch to derive from
    v25, v18 = cat.release("lmi", "lmi-25.0.0"), cat.release("lmi", "lmi-18.0.0")
    assert v25 and v18
    # EngineArgs of the bundled vLLM: 0.20.1 has attention_backend and no swap_space; 0.12.0 the other way
    assert "attention_backend" in known_keys(v25, "vllm") and "swap_space" not in known_keys(v25, "vllm")
    assert "swap_space" in known_keys(v18, "vllm") and "attention_backend" not in known_keys(v18, "vllm")
    # the async service's own keys only with the async service; auto is that service from v17 on
    assert "sessions_path" in known_keys(v25, "disable", ASYNC_ENTRY_POINT)
    assert "sessions_path" in known_keys(v25, "auto")
    assert "sessions_path" not in known_keys(v25, "vllm", "djl_python.huggingface")
    # a dev-build vLLM (v27: 0.23.1.dev4+gcd87ce883) has unknown EngineArgs: the hand-typed list stands in
    v27 = cat.release("lmi", "lmi-27.0.0")
    assert v27 and derived_keys(v27).engine_args_unknown and VLLM <= known_keys(v27, "vllm")  # type: ignore[union-attr]
    v11 = cat.release("lmi", "lmi-11.0.0")
    assert v11 and "gpu_memory_utilization" in known_keys(v11, "vllm")
    assert "tensor_parallel_size" not in known_keys(v11, "vllm")  # 0.29.0-dlc keeps no extra key


def test_deepspeed_batch_default_is_four() -> None:
    rel = load_catalog().release("lmi", "0.27.0")
    assert rel and rel.max_rolling_batch_default("deepspeed") == 4 and rel.max_rolling_batch_default("vllm") == 256
