"""``lmi-build render`` for a multi-model recipe: ``DIR/<name>/`` per model with the three files."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def render_multi(recipe: Path, output: Path) -> int:
    from builder.console import info
    from builder.diagnostics import DiagnosticError, has_errors, relpath
    from builder.lmi.render import render
    from builder.multi.layout import plan_models
    from builder.multi.validate import validate_multi_path

    loaded, diags = validate_multi_path(recipe, with_fit=False)
    if has_errors(diags) or loaded.recipe is None:
        raise DiagnosticError(diags, stage="render")
    for d in diags:
        info(d.format())
    models = {}
    for plan in plan_models(loaded):
        paths = render(plan.resolved, output / plan.name)
        for p in paths:
            info(f"wrote {relpath(p)}")
        models[plan.name] = {"recipe_hash": plan.resolved.recipe_hash, "files": [str(p) for p in paths]}
    sys.stdout.write(json.dumps({"models": models}) + "\n")
    return 0
