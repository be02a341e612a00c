"""Validation of a baked model against the layer limits (rule ids ``layer-size``, ``layer-budget``).

Run by ``builder.validation`` when the model is local or already cached, like the hardware fit: only
``stat`` (the same file list the assemblers plan from, ``builder.assembly.layers``), nothing read. A file
larger than one layer may hold cannot be baked at all, so it is an error at the recipe's model line
before any fetch, compile or upload; the build's own plan raises the same error for a model that was
not local when validated.
"""

from __future__ import annotations

from pathlib import Path

from builder.assembly import layers as L
from builder.diagnostics import BuilderError, Diagnostic
from builder.recipe.loader import LoadedRecipe

LAYER_SIZE = "layer-size"
LAYER_BUDGET = "layer-budget"


def _model_path(loaded: LoadedRecipe) -> tuple[str, ...]:
    m = loaded.recipe.model  # type: ignore[union-attr]
    return ("model", "path") if m.path is not None else ("model", "id") if m.id else ("model", "s3")


def layer_diagnostics(loaded: LoadedRecipe, cache_dir: Path | None = None) -> list[Diagnostic]:
    recipe = loaded.recipe
    # a compiled repository is baked in place of the raw files (pipeline), planned when it exists
    if recipe is None or not recipe.model.bake or recipe.compile.enabled:
        return []
    from builder.artifacts.locate import local_model_dir
    from builder.paths import cache_dir as default_cache

    try:
        folder, _ = local_model_dir(recipe, loaded.base_dir, default_cache(cache_dir))
        files, _ = L.plan_sources(folder, None, {})
    except BuilderError:
        return []  # not local or cached (the build's plan checks once fetched); unreadable: model rules say so
    sizes = {name: size for name, (_, size, _) in files.items()}
    where = _model_path(loaded)
    out = [loaded.at(where, LAYER_SIZE, f"{L.oversize_message(name, size)}; {L.SPLIT_HINT}")
           for name, size in sorted(sizes.items()) if size > L.MAX_LAYER_BYTES]
    if out:
        return out
    try:
        L.plan_groups(sizes, {}, {"serving.properties": 0})  # the base is not known here: planned as the build would
    except L.LayerLimitError as exc:
        out.append(loaded.at(where, LAYER_BUDGET, f"{exc}; {exc.hint}" if exc.hint else str(exc)))
    return out
