"""Which files of a model the runtime needs (and nothing else goes into the image).

Only top-level files: config, tokenizer, generation config, safetensors weights and their index.
``*.bin`` (PyTorch pickles) only when a model has no safetensors at all, with a warning: loading a
pickle executes code. Custom code (``*.py``) only when the recipe trusts remote code.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

CONFIG_FILES = ("config.json", "generation_config.json", "preprocessor_config.json", "adapter_config.json",
                "params.json")
TOKENIZER_PATTERNS = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                      "tokenizer.model", "*.tiktoken", "vocab.json", "vocab.txt", "merges.txt", "spiece.model",
                      "sentencepiece.bpe.model", "chat_template.json", "chat_template.jinja")
SAFETENSORS_PATTERNS = ("*.safetensors", "model.safetensors.index.json")
PICKLE_PATTERNS = ("pytorch_model*.bin", "pytorch_model.bin.index.json")
CODE_PATTERNS = ("*.py",)

PICKLE_WARNING = ("model has no *.safetensors weights; using PyTorch *.bin files (pickles: loading them "
                  "executes code - prefer a safetensors revision)")


def patterns(*, trust_remote_code: bool, pickles: bool) -> list[str]:
    out = [*CONFIG_FILES, *TOKENIZER_PATTERNS, *SAFETENSORS_PATTERNS]
    if pickles:
        out += PICKLE_PATTERNS
    if trust_remote_code:
        out += CODE_PATTERNS
    return out


def _match(name: str, pats: Iterable[str]) -> bool:
    return "/" not in name and any(fnmatch.fnmatchcase(name, p) for p in pats)


def select(names: Iterable[str], *, trust_remote_code: bool = False) -> tuple[list[str], list[str]]:
    """(selected names, warnings) from the names of all files a source offers."""
    names = sorted(set(names))
    has_safetensors = any(_match(n, ("*.safetensors",)) for n in names)
    warnings: list[str] = []
    pickles = not has_safetensors and any(_match(n, ("pytorch_model*.bin",)) for n in names)
    if pickles:
        warnings.append(PICKLE_WARNING)
    pats = patterns(trust_remote_code=trust_remote_code, pickles=pickles)
    chosen = [n for n in names if _match(n, pats)]
    if "config.json" not in chosen and "params.json" not in chosen:
        warnings.append("model has no config.json: LMI auto-configuration and the fit check cannot read it")
    if not any(_match(n, ("*.safetensors", "pytorch_model*.bin")) for n in chosen):
        warnings.append("model has no weights (*.safetensors or pytorch_model*.bin)")
    return chosen, warnings
