"""``lmi-build example-model [DIR]``: write the tiny quickstart model (numpy weights, word-level vocab)."""

from __future__ import annotations

import argparse
import json
import sys

from builder.paths import REPO_DIR

NAME = "example-model"
HELP = "write a tiny deterministic example model (config, tokenizer, model.safetensors)"
DEFAULT_DIR = REPO_DIR / "recipes" / "examples" / "quickstart" / "model"
LLAMA_DIR = REPO_DIR / "recipes" / "examples" / "hf-cpu-tiny-llama" / "model"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", nargs="?", default=None,
                        help="folder to write (default: recipes/examples/quickstart/model, or with --llama "
                             "recipes/examples/hf-cpu-tiny-llama/model; the committed examples hold exactly these bytes)")
    parser.add_argument("--llama", action="store_true",
                        help="write a tiny random LlamaForCausalLM (2 layers, hidden 32) that transformers loads, "
                             "for the HF-accelerate handler on CPU (docs/hf-cpu.md)")
    parser.add_argument("--force", action="store_true", help="overwrite existing model files")


def run(args: argparse.Namespace) -> int:
    from builder.console import info
    from builder.examples.quickstart import write_example_model
    from builder.examples.tiny_llama import write_tiny_llama

    dest = args.dir or str(LLAMA_DIR if args.llama else DEFAULT_DIR)
    files = (write_tiny_llama if args.llama else write_example_model)(dest, force=args.force)
    info(f"wrote {len(files)} files to {dest}")
    sys.stdout.write(json.dumps({"dir": dest, "files": [str(p) for p in files]}, indent=2) + "\n")
    return 0
