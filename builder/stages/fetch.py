"""fetch: the recipe's model source (local folder, Hub repository, S3 prefix) -> content-addressed model
artifacts in the cache (builder/artifacts), or SKIPPED when the image downloads the model at start."""

from __future__ import annotations

from typing import Any

from builder.artifacts.models import ModelArtifacts
from builder.stages.base import Frozen, StageResult
from builder.stages.resolve import ResolvedModels
from builder.stages.validate import Validated


class FetchedModel(StageResult):
    artifacts: ModelArtifacts | None  # None: model.bake is false

    def into_record(self, record) -> None:
        if self.artifacts is not None:
            record.inputs["model_digest"] = self.artifacts.digest


class Inputs(Frozen):
    recipe: Validated


def fetch(ctx, inputs: Inputs) -> FetchedModel:
    recipe = inputs.recipe.recipe
    if not recipe.model.bake:
        return FetchedModel(artifacts=None, status="skipped",
                            reason="model.bake is false: the image downloads option.model_id at start")
    from builder.artifacts.sources import fetch_model

    ctx.reporter.step(f"fetch model ({recipe.model.source_kind})")
    artifacts = fetch_model(recipe, inputs.recipe.base_dir, cache_dir=ctx.cache.dir, cache_remote=ctx.cache.remote)
    return FetchedModel(artifacts=artifacts, status="cached" if artifacts.cached else "passed",
                        details={"cache_origin": artifacts.origin, "digest": artifacts.digest,
                                 "files": len(artifacts.files), "bytes": sum(f.size for f in artifacts.files),
                                 "revision": artifacts.revision})


# ------------------------------------------------------------------------------------------ multi-model

class FetchedModels(StageResult):
    plans: list[Any]  # the resolve stage's plans, each with its fetched files (None: bake is false)

    def into_record(self, record) -> None:
        record.inputs["model_digests"] = {p.name: p.artifacts.digest for p in self.plans if p.artifacts}


class ModelsInputs(Frozen):
    build: ResolvedModels


def fetch_models(ctx, inputs: ModelsInputs) -> FetchedModels:
    from builder.multi.layout import fetch as fetch_plans

    plans = fetch_plans(inputs.build.plans, cache_dir=ctx.cache.dir, cache_remote=ctx.cache.remote)
    return FetchedModels(plans=plans, details={"models": {
        p.name: ({"digest": p.artifacts.digest, "files": len(p.artifacts.files), "cache_origin": p.artifacts.origin}
                 if p.artifacts else None) for p in plans}})
