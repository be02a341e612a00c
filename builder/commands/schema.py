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


def schema_dict() -> dict:
    """One document for both recipe shapes: ``oneOf`` the single-model ``Recipe`` (top-level ``model:``)
    and the ``MultiRecipe`` (top-level ``models:``, docs/multi-model.md), sharing one ``$defs``.

    Both models forbid unknown keys (``additionalProperties: false``), so a document matches at most
    one branch; ``oneOf`` (not ``anyOf``) also makes an editor flag a recipe with both keys."""
    from pydantic.json_schema import models_json_schema

    from builder.multi.model import MultiRecipe
    from builder.recipe.model import Recipe

    refs, defs = models_json_schema([(Recipe, "validation"), (MultiRecipe, "validation")], by_alias=True)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "lmi-builder recipe",
            "description": "An lmi-builder recipe: one model (top-level model:) or several (top-level models:, "
                           "docs/multi-model.md).",
            "oneOf": [refs[(Recipe, "validation")], refs[(MultiRecipe, "validation")]], **defs}


def schema_text() -> str:
    return json.dumps(schema_dict(), indent=2, sort_keys=False) + "\n"


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
