"""The tiny random Llama for the HF handler example: written with numpy only, shaped like LlamaForCausalLM."""

from __future__ import annotations

import json

import numpy as np
import pytest

from builder.cli import main
from builder.diagnostics import BuilderError
from builder.examples import tiny_llama


def test_tensors_match_the_llama_config(tmp_path):
    from safetensors import safe_open

    tiny_llama.write_tiny_llama(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and config["model_type"] == "llama"
    h, inter, heads, kv = (config[k] for k in ("hidden_size", "intermediate_size", "num_attention_heads",
                                               "num_key_value_heads"))
    head_dim = config["head_dim"]
    assert head_dim * heads == h
    vocab = json.loads((tmp_path / "tokenizer.json").read_text())["model"]["vocab"]
    assert config["vocab_size"] == len(vocab) == max(vocab.values()) + 1
    with safe_open(str(tmp_path / "model.safetensors"), "np") as f:
        # transformers rejects safetensors files whose metadata format is not a framework it knows
        assert f.metadata() == {"format": "pt"}
        shapes = {k: tuple(f.get_tensor(k).shape) for k in f.keys()}
    expected = {"model.embed_tokens.weight": (len(vocab), h), "lm_head.weight": (len(vocab), h),
                "model.norm.weight": (h,)}
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        expected.update({p + "self_attn.q_proj.weight": (heads * head_dim, h),
                         p + "self_attn.k_proj.weight": (kv * head_dim, h),
                         p + "self_attn.v_proj.weight": (kv * head_dim, h),
                         p + "self_attn.o_proj.weight": (h, heads * head_dim),
                         p + "mlp.gate_proj.weight": (inter, h), p + "mlp.up_proj.weight": (inter, h),
                         p + "mlp.down_proj.weight": (h, inter),
                         p + "input_layernorm.weight": (h,), p + "post_attention_layernorm.weight": (h,)})
    assert shapes == expected


def test_deterministic_and_refuses_to_overwrite(tmp_path):
    tiny_llama.write_tiny_llama(tmp_path / "a")
    tiny_llama.write_tiny_llama(tmp_path / "b")
    for name in tiny_llama.FILES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    with pytest.raises(BuilderError, match="already holds"):
        tiny_llama.write_tiny_llama(tmp_path / "a")
    tiny_llama.write_tiny_llama(tmp_path / "a", force=True)


def test_special_tokens_exist_in_the_vocabulary(tmp_path):
    tiny_llama.write_tiny_llama(tmp_path)
    vocab = json.loads((tmp_path / "tokenizer.json").read_text())["model"]["vocab"]
    special = json.loads((tmp_path / "special_tokens_map.json").read_text())
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["eos_token_id"] == vocab[special["eos_token"]]
    assert config["pad_token_id"] == vocab[special["pad_token"]]
    w = tiny_llama.llama_weights(len(vocab))
    assert all(a.dtype == np.float32 for a in w.values())


def test_cli_writes_the_llama(tmp_path, capsys):
    assert main(["example-model", "--llama", str(tmp_path / "m")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dir"] == str(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "config.json").read_text())["model_type"] == "llama"
    assert main(["example-model", "--llama", str(tmp_path / "m")]) == 1  # refuses without --force
