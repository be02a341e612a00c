"""``lmi-build schema``: the recipe's JSON Schema (for editors: ``# yaml-language-server: $schema=...``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

NAME = "schema"
HELP = "print the recipe JSON Schema (point your editor's YAML language server at it)"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", type=Path, help="write to this file instead of stdout")


def schema_text() -> str:
    from builder.recipe.model import Recipe

    schema = Recipe.model_json_schema(by_alias=True)
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema, "title": "lmi-builder recipe"}
    return json.dumps(schema, indent=2, sort_keys=False) + "\n"


def run(args: argparse.Namespace) -> int:
    from builder.diagnostics import BuilderError

    text = schema_text()
    if args.output:
        try:
            args.output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise BuilderError(f"cannot write {args.output}: {exc.strerror}", stage="schema") from None
    else:
        sys.stdout.write(text)
    return 0
