"""Fixtures (see tests/conftest.py): tiny local models made by the tests themselves.

``make_tiny_model`` writes a 2-layer Llama-shaped model: config.json, tokenizer files and random
float16 safetensors (numpy + safetensors only; no torch). Its exact parameter count is returned so
fit tests compare against arithmetic, not against the code under test.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

TINY_CONFIG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
    "num_attention_heads": 8, "num_key_value_heads": 2, "num_hidden_layers": 2, "vocab_size": 256,
    "max_position_embeddings": 512, "torch_dtype": "float16", "rms_norm_eps": 1e-5, "tie_word_embeddings": False,
}


def tiny_tensors(cfg: dict) -> dict[str, tuple[int, ...]]:
    h, i, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    hd = h // cfg["num_attention_heads"]
    kv = cfg["num_key_value_heads"] * hd
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (v, h), "model.norm.weight": (h,),
                                          "lm_head.weight": (v, h)}
    for layer in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        shapes.update({p + "self_attn.q_proj.weight": (h, h), p + "self_attn.k_proj.weight": (kv, h),
                       p + "self_attn.v_proj.weight": (kv, h), p + "self_attn.o_proj.weight": (h, h),
                       p + "mlp.gate_proj.weight": (i, h), p + "mlp.up_proj.weight": (i, h),
                       p + "mlp.down_proj.weight": (h, i), p + "input_layernorm.weight": (h,),
                       p + "post_attention_layernorm.weight": (h,)})
    return shapes


def make_tiny_model(folder: Path, *, config: dict | None = None, shards: int = 1, pickles: bool = False,
                    extras: bool = True, seed: int = 0) -> dict:
    """Write the model; returns {"parameters": n, "weight_bytes": b, "config": cfg}."""
    from safetensors.numpy import save_file

    cfg = dict(TINY_CONFIG, **(config or {}))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(cfg, indent=1))
    vocab = {f"w{i}": i for i in range(cfg["vocab_size"] - 3)} | {"<unk>": cfg["vocab_size"] - 3,
                                                                  "<s>": cfg["vocab_size"] - 2,
                                                                  "</s>": cfg["vocab_size"] - 1}
    (folder / "tokenizer.json").write_text(json.dumps({
        "version": "1.0", "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"},
        "pre_tokenizer": {"type": "Whitespace"}, "added_tokens": [], "normalizer": None, "post_processor": None,
        "decoder": None, "truncation": None, "padding": None}))
    (folder / "tokenizer_config.json").write_text(json.dumps({"bos_token": "<s>", "eos_token": "</s>",
                                                              "unk_token": "<unk>", "model_max_length": 512,
                                                              "tokenizer_class": "PreTrainedTokenizerFast"}))
    (folder / "special_tokens_map.json").write_text(json.dumps({"bos_token": "<s>", "eos_token": "</s>"}))
    rng = np.random.default_rng(seed)
    shapes = tiny_tensors(cfg)
    names = list(shapes)
    params = sum(int(np.prod(s)) for s in shapes.values())
    if pickles:
        (folder / "pytorch_model.bin").write_bytes(rng.bytes(params * 2))
    else:
        per = -(-len(names) // shards)
        for k in range(shards):
            part = {n: rng.standard_normal(shapes[n]).astype(np.float16) for n in names[k * per:(k + 1) * per]}
            fname = "model.safetensors" if shards == 1 else f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
            save_file(part, str(folder / fname), metadata={"format": "pt"})
    if extras:  # files the runtime does not need and the fetch stage must leave out
        (folder / "README.md").write_text("# tiny\n")
        (folder / "original").mkdir(exist_ok=True)
        (folder / "original" / "consolidated.00.pth").write_bytes(b"\0" * 64)
    return {"parameters": params, "weight_bytes": params * 2, "config": cfg}


@pytest.fixture
def tiny_model(tmp_path: Path) -> tuple[Path, dict]:
    folder = tmp_path / "tiny-llama"
    return folder, make_tiny_model(folder)


@pytest.fixture
def tiny_model_dir(tiny_model: tuple[Path, dict]) -> Path:
    return tiny_model[0]


def recipe_data(model: dict, *, family: str = "dev-cpu", version: str = "0.34.0",
                instance: str = "ml.m5.xlarge", option: dict | None = None, compile: dict | None = None) -> dict:
    """A minimal valid recipe mapping (tests turn it into YAML or a ``Recipe``)."""
    data: dict = {"name": "tiny", "model": model, "container": {"family": family, "version": version},
                  "target": {"instance_type": instance}, "serving": {"option": dict(option or {})}}
    if compile is not None:
        data["compile"] = compile
    return data


def write_recipe(folder: Path, data: dict) -> Path:
    import yaml

    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def write_header_only_safetensors(path: Path, tensors: dict[str, tuple[str, tuple[int, ...]]]) -> None:
    """A safetensors file whose header describes big tensors but holds no data: enough for the fit check
    (which reads headers only) to size a 70B model in a few bytes."""
    import struct

    unit = {"F16": 2, "BF16": 2, "F32": 4, "I8": 1}
    header, off = {}, 0
    for name, (dtype, shape) in tensors.items():
        n = int(np.prod(shape)) * unit[dtype]
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + n]}
        off += n
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob)


def make_llama_shaped(folder: Path, *, layers: int, hidden: int, heads: int, kv_heads: int, inter: int,
                      vocab: int = 128256, max_pos: int = 8192, dtype: str = "BF16") -> int:
    """config.json + a header-only safetensors for a Llama-shaped model; returns the parameter count."""
    cfg = dict(TINY_CONFIG, hidden_size=hidden, intermediate_size=inter, num_attention_heads=heads,
               num_key_value_heads=kv_heads, num_hidden_layers=layers, vocab_size=vocab,
               max_position_embeddings=max_pos, torch_dtype="bfloat16")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(cfg))
    shapes = tiny_tensors(cfg)
    write_header_only_safetensors(folder / "model.safetensors", {n: (dtype, s) for n, s in shapes.items()})
    return sum(int(np.prod(s)) for s in shapes.values())
