"""A tiny random Llama that ``transformers`` loads as ``LlamaForCausalLM``, written with numpy only.

For the HF-accelerate handler example on CPU (docs/hf-cpu.md): 2 layers, hidden size 32, the
quickstart's WordLevel vocabulary, seeded random float32 weights. The measured run in
reference/lmi-runtime.md §19 used the same shape (made there with transformers); here no torch is
needed on the host. Tensor names and shapes follow transformers' ``modeling_llama``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from builder.examples.files import prepare_dest, write_json_docs, write_safetensors
from builder.examples.quickstart import tokenizer_json, vocab

HIDDEN = 32
INTERMEDIATE = 64
LAYERS = 2
HEADS = 4
KV_HEADS = 2  # grouped-query attention, as in current Llamas
MAX_POSITIONS = 256
SEED = 20261127
FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
         "special_tokens_map.json", "model.safetensors")


def llama_config(vocab_size: int) -> dict:
    v = vocab()
    return {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "vocab_size": vocab_size, "hidden_size": HIDDEN, "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": LAYERS, "num_attention_heads": HEADS, "num_key_value_heads": KV_HEADS,
        "head_dim": HIDDEN // HEADS, "hidden_act": "silu", "max_position_embeddings": MAX_POSITIONS,
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "rope_scaling": None, "attention_bias": False,
        "mlp_bias": False, "attention_dropout": 0.0, "initializer_range": 0.02, "tie_word_embeddings": False,
        "use_cache": True, "torch_dtype": "float32",
        "bos_token_id": v["<s>"], "eos_token_id": v["</s>"], "pad_token_id": v["<pad>"],
    }


def llama_weights(vocab_size: int, seed: int = SEED) -> dict[str, np.ndarray]:
    """Every parameter of LlamaForCausalLM at this size (names as transformers saves them)."""
    rng = np.random.default_rng(seed)
    head_dim = HIDDEN // HEADS

    def normal(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    w = {"model.embed_tokens.weight": normal(vocab_size, HIDDEN),
         "model.norm.weight": np.ones(HIDDEN, np.float32),
         "lm_head.weight": normal(vocab_size, HIDDEN)}
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        w[p + "self_attn.q_proj.weight"] = normal(HEADS * head_dim, HIDDEN)
        w[p + "self_attn.k_proj.weight"] = normal(KV_HEADS * head_dim, HIDDEN)
        w[p + "self_attn.v_proj.weight"] = normal(KV_HEADS * head_dim, HIDDEN)
        w[p + "self_attn.o_proj.weight"] = normal(HIDDEN, HEADS * head_dim)
        w[p + "mlp.gate_proj.weight"] = normal(INTERMEDIATE, HIDDEN)
        w[p + "mlp.up_proj.weight"] = normal(INTERMEDIATE, HIDDEN)
        w[p + "mlp.down_proj.weight"] = normal(HIDDEN, INTERMEDIATE)
        w[p + "input_layernorm.weight"] = np.ones(HIDDEN, np.float32)
        w[p + "post_attention_layernorm.weight"] = np.ones(HIDDEN, np.float32)
    return w


def write_tiny_llama(dest: str | os.PathLike, *, force: bool = False) -> list[Path]:
    """Write the tiny Llama into ``dest``; refuses to overwrite its files unless ``force``."""
    dest = prepare_dest(dest, list(FILES), force=force)
    v = vocab()
    config = llama_config(len(v))
    special = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
    docs = {
        "config.json": config,
        # do_sample stays off so the same prompt gives the same text (greedy decoding).
        "generation_config.json": {"bos_token_id": config["bos_token_id"], "eos_token_id": config["eos_token_id"],
                                   "pad_token_id": config["pad_token_id"], "do_sample": False},
        "tokenizer.json": tokenizer_json(v),
        "tokenizer_config.json": {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": MAX_POSITIONS,
                                  "clean_up_tokenization_spaces": False,
                                  # a Llama takes no token_type_ids; generate() rejects unused inputs
                                  "model_input_names": ["input_ids", "attention_mask"], **special},
        "special_tokens_map.json": special,
    }
    written = write_json_docs(dest, docs, sort_keys=True)
    # transformers refuses safetensors whose metadata format is not one of its frameworks ("pt").
    write_safetensors(dest / "model.safetensors", llama_weights(len(v)), {"format": "pt"})
    written.append(dest / "model.safetensors")
    return written
