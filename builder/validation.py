"""Everything ``validate`` checks, in one place: recipe rules, compile settings, hardware fit.

The rules need only the recipe and the catalog; the hardware fit also needs the model's
``config.json`` and safetensors headers, so it runs when the model is local or already cached
(reference: issue "Model artifacts, hardware fit"), and says so in an info line when it is not.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from builder.diagnostics import BuilderError, Diagnostic, Location, has_errors
from builder.recipe import LoadedRecipe, load_recipe

if TYPE_CHECKING:
    from builder.lmi.resolve import Resolved


def validate_loaded(loaded: LoadedRecipe, *, with_fit: bool = True, cache_dir: Path | None = None) -> list[Diagnostic]:
    return check(loaded, with_fit=with_fit, cache_dir=cache_dir)[0]


def check(loaded: LoadedRecipe, *, with_fit: bool = True,
          cache_dir: Path | None = None) -> tuple[list[Diagnostic], Resolved | None]:
    """The diagnostics, and the recipe resolved when the rules pass: the build's one resolution (its
    validate stage hands this value forward instead of resolving again)."""
    diags = list(loaded.diagnostics)
    if loaded.recipe is None or has_errors(diags):
        return diags, None
    from builder.lmi.rules import validate as run_rules

    diags = run_rules(loaded)
    if not has_errors(diags):  # a cached Hub/S3 model's own code vs trust_remote_code (rules/remote_code.py)
        from builder.lmi.rules.remote_code import cached_diagnostics

        diags += cached_diagnostics(loaded, cache_dir)
    if has_errors(diags):
        return diags, None
    from builder.lmi.resolve import resolve

    try:
        resolved = resolve(loaded.recipe)
    except BuilderError as exc:
        return diags + [loaded.at((), "resolve", str(exc))], None
    from builder.compile.settings import compile_diagnostics

    seen = {(d.rule, d.path) for d in diags}
    diags += [d for d in compile_diagnostics(loaded, resolved) if (d.rule, d.path) not in seen]
    # a custom handler's model format is its own business: the transformer-shaped estimate applies to
    # LMI's built-in handlers only
    if with_fit and loaded.recipe.model.bake and not loaded.recipe.model.entry_point:
        diags += _fit(loaded, resolved, cache_dir)
    if with_fit:  # every baked file must fit one image layer (builder/image/layer_check.py)
        from builder.image.layer_check import layer_diagnostics

        diags += layer_diagnostics(loaded, cache_dir)
    return diags, resolved


def validate_path(path: str | Path, **kwargs) -> tuple[LoadedRecipe, list[Diagnostic]]:
    loaded = load_recipe(path)
    return loaded, validate_loaded(loaded, **kwargs)


def _fit(loaded: LoadedRecipe, resolved, cache_dir: Path | None) -> list[Diagnostic]:
    from builder.artifacts.fit import fit_diagnostics, fit_report
    from builder.artifacts.locate import local_model_dir
    from builder.paths import cache_dir as default_cache

    try:
        folder, _ = local_model_dir(loaded.recipe, loaded.base_dir, default_cache(cache_dir))
    except BuilderError:
        return []  # not local or cached: nothing to read the sizes from (the build fetches, then checks)
    try:
        report = fit_report(folder, resolved)
    except BuilderError as exc:
        return [Diagnostic("fit-unreadable", "info", f"hardware fit not checked: {exc}",
                           Location(str(loaded.file)), ())]
    return fit_diagnostics(report, loaded)
