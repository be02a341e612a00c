"""Cross-field, version- and hardware-aware recipe rules: ``validate(loaded) -> [Diagnostic]``.

Every rule has a stable id (``RULES``, listed in docs/recipes.md), states the rule and the fix, and
points at the offending YAML node. The checks only read; resolve() relies on them having passed.
"""

from __future__ import annotations

from pathlib import Path

from builder.catalog import Catalog, load_catalog
from builder.diagnostics import Diagnostic, has_errors
from builder.lmi.rules import backend, compile, crossfield, files, model, options, remote_code, target, values
from builder.lmi.rules.base import RULES, Ctx, Rule
from builder.recipe.loader import LoadedRecipe, load_recipe


def validate(loaded: LoadedRecipe, catalog: Catalog | None = None) -> list[Diagnostic]:
    """Loader diagnostics plus every rule's, ordered by position. Never raises for bad input."""
    diags = list(loaded.diagnostics)
    if loaded.recipe is None or has_errors(diags):
        return diags
    catalog = catalog or load_catalog()
    recipe = loaded.recipe
    ctx = Ctx(loaded, recipe, catalog, catalog.release(recipe.container.family, recipe.container.version),
              catalog.instance(recipe.target.instance_type))
    for check in target.CHECKS:
        check(ctx)
    model.check_hub(ctx)
    model_bytes = model.check_paths(ctx)
    files.check_files(ctx)  # what the bake writes beside serving.properties
    if not any(d.path[:2] == ("model", "path") and d.severity == "error" for d in ctx.out):
        remote_code.check(ctx)  # the local folder's own Python code vs model.trust_remote_code
    options.check_env(ctx)
    files.check_env_names(ctx)
    backend.check_engine(ctx)
    if ctx.release is not None:
        backend.check_entry_point(ctx)
        if backend.check_rolling_batch(ctx):
            backend.check_engine_backend(ctx)
            backend.check_mpi_for_python_backends(ctx)
            options.check_keys(ctx)
            options.check_aliases(ctx)
            backend.check_batch_size(ctx)
            backend.check_async(ctx)
            backend.check_cpu_handler(ctx)
            values.check_batch_limits(ctx)
            values.check_timeouts(ctx)
            values.check_output_formatter(ctx)
            values.check_quantize(ctx)
            values.check_lmi_dist(ctx)
            compile.check_compile(ctx)
            crossfield.check(ctx)  # LMI's properties-manager validators (docs/lmi-validators.md)
    if ctx.release is not None and ctx.instance is not None:
        fit_before = len(ctx.out)
        for check in target.FIT_CHECKS:
            check(ctx)
        if len(ctx.out) == fit_before and backend.check_rolling_batch_ok(ctx):
            backend.check_tp(ctx)
            backend.check_vllm_pp(ctx)
            values.check_dtype(ctx)
            tp = backend.tp_pp(ctx)
            workers = max(1, ctx.instance.devices // (tp[0] * tp[1])) if tp and ctx.instance.kind != "cpu" else \
                (1 if tp else None)
            values.check_parallel_loading(ctx, workers, model_bytes)
    diags.extend(ctx.out)
    return sorted(diags, key=lambda d: (d.location.file, d.location.line, d.location.col))


def validate_file(path: str | Path) -> list[Diagnostic]:
    return validate(load_recipe(path))


__all__ = ["RULES", "Rule", "validate", "validate_file"]
