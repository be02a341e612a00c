"""``lmi-build plan`` for a multi-model recipe: one matrix entry (one image, one runner) for all models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from builder.diagnostics import Diagnostic


def multi_entry(file: Path, catalog, changed: tuple | None) -> tuple[dict[str, Any] | None, list[Diagnostic], bool]:
    """(matrix entry, diagnostics, affected). ``changed``: (root, changed files, ref) for --changed-since."""
    from builder.commands.plan import GIB, image_tag_fields, rebuild_reasons, runner_needs
    from builder.multi.loader import load_multi, make_view

    loaded = load_multi(file)
    if not loaded.ok:
        return None, loaded.diagnostics, False
    views = [make_view(loaded, i) for i in range(len(loaded.recipe.models))]
    bad = [d for v in views for d in v.diagnostics]
    if bad:
        return None, bad, False
    r = loaded.recipe
    needs = runner_needs(views[0].recipe, loaded.base_dir, catalog)
    sizes = [runner_needs(v.recipe, loaded.base_dir, catalog)["model_bytes"] for v in views]
    if all(s is not None for s in sizes):
        needs["model_bytes"] = sum(sizes)
        needs["disk_gib"] = round(sum(sizes) * 3 / GIB + 1, 1)
    else:
        needs["model_bytes"] = needs["disk_gib"] = None
        needs["notes"] = ["model size not known offline for every model; disk estimate omitted"]
    tag = image_tag_fields(views[0].recipe, catalog)
    try:
        from builder.multi.image import recipe_hash
        from builder.multi.layout import plan_models

        tag["recipe_hash"] = recipe_hash(plan_models(loaded))
    except Exception:  # validate says why a model does not resolve
        tag["recipe_hash"] = None
    entry = {"recipe": str(file), "name": r.name, "family": r.container.family, "version": r.container.version,
             "models": r.names, **needs, **tag}
    if changed is None:
        return entry, [], True
    root, files, ref = changed
    reasons = list(dict.fromkeys(x for v in views
                                 for x in rebuild_reasons(file.resolve(), v.recipe, loaded.base_dir, root, files, ref)))
    entry["reasons"] = reasons
    return entry, [], bool(reasons)
