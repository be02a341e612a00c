"""validate: the recipe file -> a loaded, checked recipe and its one resolution.

Every rule runs (builder.validation) before anything is fetched or built; warnings are printed, errors stop
the build as one DiagnosticError. Option combinations that need the recipe to judge (``--push`` without a
target, S3 artifacts of an unbaked model, a manifest format the target refuses) are refused here too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from builder.diagnostics import DiagnosticError, UsageError, has_errors
from builder.lmi.resolve import Resolved
from builder.multi.loader import LoadedMulti
from builder.multi.model import MultiRecipe
from builder.recipe import LoadedRecipe, Recipe
from builder.stages.base import Frozen, StageResult


class Validated(StageResult):
    loaded: LoadedRecipe
    resolved: Resolved  # made once, here (builder.validation.check); the resolve stage hands it forward

    @property
    def recipe(self) -> Recipe:
        return self.loaded.recipe

    @property
    def base_dir(self) -> Path:
        return self.loaded.base_dir


class NoInputs(Frozen):
    pass


def validate(ctx, _: NoInputs) -> Validated:
    from builder.recipe import load_recipe
    from builder.validation import check

    opts = ctx.options
    ctx.reporter.step(f"validate {opts.recipe}")
    loaded = load_recipe(opts.recipe)
    diags, resolved = check(loaded, cache_dir=ctx.cache.dir)
    warnings = _report(ctx, diags, passed=loaded.recipe is not None and resolved is not None)
    check_targets(opts, loaded.recipe)
    return Validated(loaded=loaded, resolved=resolved, details={"warnings": warnings})


def _report(ctx, diags: list, *, passed: bool) -> int:
    """Print the warnings and notes (errors travel in the DiagnosticError; the CLI prints them once); raise
    when there is an error. Returns the number of warnings."""
    for d in diags:
        if d.severity != "error":
            ctx.reporter.info(d.format())
    if has_errors(diags) or not passed:
        raise DiagnosticError([d for d in diags if d.severity == "error"])
    return sum(1 for d in diags if d.severity == "warning")


def check_push_target(opts, recipe) -> None:
    """``--push`` with nowhere to push to (issue 15 item 11); single- and multi-model recipes alike."""
    if opts.push and not (recipe.publish.ecr or recipe.publish.registry or recipe.publish.s3 or opts.registry
                          or opts.s3):
        raise UsageError(f"--push: {opts.recipe} has no publish target (publish.ecr, publish.registry or "
                         "publish.s3) and no --registry or --s3 was given",
                         hint="add a publish: section to the recipe, pass --registry HOST[:PORT]/REPO or --s3 "
                              "s3://bucket/prefix/, or build without --push")


def check_targets(opts, recipe: Recipe) -> None:
    """What the options ask of this recipe that it cannot give: said now, not after the fetch and the bake."""
    check_push_target(opts, recipe)
    if opts.s3 or (opts.push and recipe.publish.s3):  # S3 artifacts need the fetched model
        from builder.publish.s3_publish import require_model

        require_model(recipe)
    if opts.assembler == "registry":  # a format the target refuses (SageMaker: OCI), before fetch or upload
        from builder.registry.assemble import check_target

        check_target(opts.manifest_format, "gzip", recipe.target.instance_type)


# ------------------------------------------------------------------------------------------ multi-model

class ValidatedModels(StageResult):
    loaded: LoadedMulti  # a recipe with top-level models: (docs/multi-model.md)
    plans: list[Any]  # builder.multi.layout.ModelPlan per model, with the resolution its validation made

    @property
    def recipe(self) -> MultiRecipe:
        return self.loaded.recipe


def validate_models(ctx, _: NoInputs) -> ValidatedModels:
    """Every model validated as its own single-model recipe, plus the device and memory budgets."""
    from builder.multi.loader import load_multi
    from builder.multi.validate import check_multi

    opts = ctx.options
    ctx.reporter.step(f"validate {opts.recipe} (multi-model)")
    loaded = load_multi(opts.recipe)
    diags, plans = check_multi(loaded, cache_dir=ctx.cache.dir)
    warnings = _report(ctx, diags, passed=loaded.recipe is not None and plans is not None)
    check_push_target(opts, loaded.recipe)
    return ValidatedModels(loaded=loaded, plans=plans, details={"warnings": warnings})
