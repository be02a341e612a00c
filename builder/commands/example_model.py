"""``lmi-build example-model [DIR]``: write the tiny quickstart model (numpy weights, word-level vocab)."""

from __future__ import annotations

import argparse
import json
import sys

from builder.paths import REPO_DIR

NAME = "example-model"
HELP = "write a tiny deterministic example model (config, tokenizer, model.safetensors)"
DEFAULT_DIR = REPO_DIR / "recipes" / "examples" / "quickstart" / "model"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", nargs="?", default=str(DEFAULT_DIR),
                        help="folder to write (default: recipes/examples/quickstart/model, git-ignored)")
    parser.add_argument("--force", action="store_true", help="overwrite existing model files")


def run(args: argparse.Namespace) -> int:
    from builder.console import info
    from builder.runtime.example_model import write_example_model

    files = write_example_model(args.dir, force=args.force)
    info(f"wrote {len(files)} files to {args.dir}")
    sys.stdout.write(json.dumps({"dir": args.dir, "files": [str(p) for p in files]}, indent=2) + "\n")
    return 0
