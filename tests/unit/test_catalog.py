"""The catalog and the option key catalogue are consistent with the rules that use them."""

from __future__ import annotations

from builder.catalog import load_catalog
from builder.lmi.keys import known_keys


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
    trt = cat.release("tensorrt-llm", "0.33.0")
    assert trt and "kv_cache_free_gpu_mem_fraction" in known_keys(trt, "trtllm")
    assert "n_positions" not in known_keys(trt, "trtllm")


def test_deepspeed_batch_default_is_four() -> None:
    rel = load_catalog().release("lmi", "0.27.0")
    assert rel and rel.max_rolling_batch_default("deepspeed") == 4 and rel.max_rolling_batch_default("vllm") == 256
