"""``lmi-build render RECIPE --output DIR``: write serving.properties, serving.env and resolved.json."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

NAME = "render"
HELP = "write serving.properties, serving.env and resolved.json for a recipe"
DESCRIPTION = (
    "Validate the recipe, resolve it against the catalog (every value LMI would default made explicit) and "
    "write DIR/serving.properties (what the image carries), DIR/serving.env (the same configuration in LMI's "
    "environment-variable form) and DIR/resolved.json (the fully resolved recipe). Deterministic."
)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", type=Path, help="recipe YAML file")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="DIR", help="folder to write the files into")


def run(args: argparse.Namespace) -> int:
    from builder.console import info
    from builder.diagnostics import DiagnosticError, has_errors, relpath
    from builder.lmi.render import render
    from builder.lmi.resolve import resolve
    from builder.lmi.rules import validate
    from builder.multi import is_multi_file
    from builder.recipe import load_recipe

    if is_multi_file(args.recipe):  # one folder per model (builder/multi/render.py)
        from builder.multi.render import render_multi

        return render_multi(args.recipe, args.output)
    loaded = load_recipe(args.recipe)
    diags = validate(loaded)
    if has_errors(diags) or loaded.recipe is None:
        raise DiagnosticError(diags, stage="render")
    for d in diags:
        info(d.format())
    resolved = resolve(loaded.recipe)
    paths = render(resolved, args.output)
    for p in paths:
        info(f"wrote {relpath(p)}")
    sys.stdout.write(json.dumps({"recipe_hash": resolved.recipe_hash, "files": [str(p) for p in paths]}) + "\n")
    return 0
