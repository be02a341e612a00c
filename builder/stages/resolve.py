"""resolve: the validated recipe -> the build's resolved value (release, instance, every property LMI
would otherwise default, the recipe hash) and the handler files baked beside serving.properties.

Nothing is resolved again after this: later stages read ``ResolvedBuild``. ``--lmi-check`` asks LMI's own
djl_python validator for a second opinion here (never a gate).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from builder.lmi.resolve import Resolved
from builder.recipe import Recipe
from builder.stages.base import Frozen, StageResult
from builder.stages.validate import Validated, ValidatedModels


class ResolvedBuild(StageResult):
    resolved: Resolved
    handler_files: dict[str, Path]  # {name in the model folder: source} (builder.recipe.files)
    recipe_file: Path

    @property
    def recipe(self) -> Recipe:
        return self.resolved.recipe

    def into_record(self, record) -> None:
        resolved = self.resolved
        record.recipe_hash = resolved.recipe_hash
        record.resolved = resolved.to_json()
        record.inputs.update({"recipe_file": str(self.recipe_file), "recipe_hash": resolved.recipe_hash,
                              "lmi": f"{resolved.release.family} {resolved.release.version}",
                              "instance_type": resolved.instance.name})


class Inputs(Frozen):
    recipe: Validated


def resolve(ctx, inputs: Inputs) -> ResolvedBuild:
    from builder.recipe.files import handler_files

    resolved = inputs.recipe.resolved
    # the image tag is the digest of every input (builder/assembly/identity.py): known at bake
    details: dict[str, Any] = {"recipe_hash12": resolved.recipe_hash[:12]}
    if ctx.options.lmi_check:
        details["lmi_check"] = lmi_check(ctx, resolved)
    return ResolvedBuild(resolved=resolved, handler_files=handler_files(resolved.recipe, inputs.recipe.base_dir),
                         recipe_file=ctx.options.recipe, details=details)


def lmi_check(ctx, resolved: Resolved) -> dict:
    """LMI's own djl_python validator, fed what Java would pass (builder/lmi_check_compare.py)."""
    from builder.lmi_check_compare import validator_input
    from builder.runtime.lmi_check import lmi_check as run_check

    li = validator_input(resolved)
    verdict = run_check(li.backend, li.options, env=li.env)
    ctx.reporter.info(f"LMI djl_python {verdict.djl_python_version or '?'} {verdict.validator or ''}: "
                      f"{'accepts' if verdict.ok else 'rejects' if verdict.ok is False else 'not run'}"
                      + (f": {verdict.message}" if verdict.message else ""))
    return verdict.model_dump(mode="json")


# ------------------------------------------------------------------------------------------ multi-model

class ResolvedModels(StageResult):
    plans: list[Any]  # builder.multi.layout.ModelPlan per model, in the recipe's order (frozen)
    recipe_hash: str  # the models' own recipe hashes, with their names (builder.multi.image.recipe_hash)
    recipe_file: Path

    @property
    def first(self) -> Resolved:  # container and target are the recipe's, so every model's are the same
        return self.plans[0].resolved

    def into_record(self, record) -> None:
        record.recipe_hash = self.recipe_hash
        record.resolved = {"models": {p.name: p.resolved.to_json() for p in self.plans}}
        record.inputs.update({"recipe_file": str(self.recipe_file), "recipe_hash": self.recipe_hash,
                              "lmi": f"{self.first.release.family} {self.first.release.version}",
                              "instance_type": self.first.instance.name, "models": [p.name for p in self.plans]})


class ModelsInputs(Frozen):
    recipe: ValidatedModels


def resolve_models(ctx, inputs: ModelsInputs) -> ResolvedModels:
    from builder.multi.image import recipe_hash

    plans = inputs.recipe.plans  # resolved once, by validation
    digest = recipe_hash(plans)
    return ResolvedModels(plans=plans, recipe_hash=digest, recipe_file=ctx.options.recipe,
                          details={"recipe_hash12": digest[:12]})
