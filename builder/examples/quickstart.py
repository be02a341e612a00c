"""The quickstart's model: a tiny, deterministic text model (also the dev-cpu tests').

Files: ``config.json``, ``tokenizer.json`` (HF tokenizers WordLevel, whitespace pre-tokenizer),
``tokenizer_config.json``, ``vocab.json`` and ``model.safetensors`` (seeded random float32 weights,
written by the safetensors package's numpy writer). The quickstart handler
(recipes/examples/quickstart/model.py) parses the file with numpy only.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from builder.examples.files import prepare_dest, write_json_docs, write_safetensors

WORDS = (
    "the a of to and in is it that for on with as by at from this be are was model models "
    "deep learning inference serving container image build recipe fast small large token tokens "
    "text data train test layer weight weights gpu cpu neuron engine compile cache run runs ready "
    "what how why we you they can will not more"
).split()
SPECIAL = ["<pad>", "<unk>", "<s>", "</s>"]
HIDDEN = 32
SEED = 20261126


def vocab() -> dict[str, int]:
    return {w: i for i, w in enumerate(SPECIAL + WORDS)}


def weights(seed: int = SEED) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    v = len(SPECIAL) + len(WORDS)
    return {
        "embed.weight": rng.standard_normal((v, HIDDEN)).astype(np.float32),
        "mix.weight": (rng.standard_normal((HIDDEN, HIDDEN)) / np.sqrt(HIDDEN)).astype(np.float32),
        "lm_head.weight": rng.standard_normal((HIDDEN, v)).astype(np.float32),
    }


def tokenizer_json(vocab_: dict[str, int]) -> dict:
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": vocab_[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for t in SPECIAL],
        "normalizer": {"type": "Lowercase"},
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": None,
        "decoder": None,
        "model": {"type": "WordLevel", "vocab": vocab_, "unk_token": "<unk>"},
    }


def write_example_model(dest: str | os.PathLike, *, force: bool = False) -> list[Path]:
    """Write the tiny model into ``dest``; refuses to overwrite other files unless ``force``."""
    dest = prepare_dest(dest, ["config.json", "tokenizer.json", "tokenizer_config.json", "vocab.json",
                               "model.safetensors"], force=force)
    v = vocab()
    config = {"architectures": ["TinyWordLM"], "model_type": "lmi-builder-tiny-word-lm",
              "vocab_size": len(v), "hidden_size": HIDDEN, "bos_token_id": v["<s>"], "eos_token_id": v["</s>"],
              "pad_token_id": v["<pad>"], "torch_dtype": "float32", "seed": SEED}
    docs = {
        "config.json": config,
        "tokenizer.json": tokenizer_json(v),
        "tokenizer_config.json": {"tokenizer_class": "PreTrainedTokenizerFast", "unk_token": "<unk>",
                                  "bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>",
                                  "model_max_length": 512},
        "vocab.json": v,
    }
    written = write_json_docs(dest, docs, sort_keys={"config.json"})
    # one metadata entry: several would be written in a random order (files.write_safetensors)
    write_safetensors(dest / "model.safetensors", weights(), {"format": "np"})
    written.append(dest / "model.safetensors")
    return written
