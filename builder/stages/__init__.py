"""The build's stages, registered in order. Each is one module with a typed, frozen input and result:

========  ==========  =============================================  ================
stage     produces    module                                         result
========  ==========  =============================================  ================
validate  recipe      builder/stages/validate.py                     Validated
resolve   build       builder/stages/resolve.py                      ResolvedBuild
fetch     model       builder/stages/fetch.py                        FetchedModel
runtime   runtime     builder/stages/runtime.py                      RuntimeImage
compile   compiled    builder/stages/compile.py                      Compiled
bake      image       builder/stages/bake.py                         BuiltImage
smoke     smoke       builder/stages/smoke.py                        Smoked
publish   published   builder/stages/publish.py                      Published
========  ==========  =============================================  ================

A multi-model recipe (top-level ``models:``) runs the same stages' multi-model variants (``MULTI``), with
``mme`` (the multi-model endpoint archives) last. ``builder.stages.runner.run_stages`` runs a list.
"""

from __future__ import annotations

from builder.stages import bake, compile, fetch, publish, resolve, runtime, smoke, validate
from builder.stages.base import Stage, StageFailed, StageResult

BUILD: tuple[Stage, ...] = (
    Stage("validate", "recipe", validate.validate, validate.NoInputs),
    Stage("resolve", "build", resolve.resolve, resolve.Inputs),
    Stage("fetch", "model", fetch.fetch, fetch.Inputs),
    Stage("runtime", "runtime", runtime.runtime, runtime.Inputs),
    Stage("compile", "compiled", compile.compile_stage, compile.Inputs),
    Stage("bake", "image", bake.bake, bake.Inputs),
    Stage("smoke", "smoke", smoke.smoke, smoke.Inputs),
    Stage("publish", "published", publish.publish, publish.Inputs),
)

MULTI: tuple[Stage, ...] = (
    Stage("validate", "recipe", validate.validate_models, validate.NoInputs),
    Stage("resolve", "build", resolve.resolve_models, resolve.ModelsInputs),
    Stage("fetch", "model", fetch.fetch_models, fetch.ModelsInputs),
    Stage("runtime", "runtime", runtime.runtime_models, runtime.ModelsInputs),
    Stage("bake", "image", bake.bake_models, bake.ModelsInputs),
    Stage("smoke", "smoke", smoke.smoke_models, smoke.ModelsInputs),
    Stage("publish", "published", publish.publish_models, publish.ModelsInputs),
    Stage("mme", "archives", publish.mme, publish.ArchivesInputs),
)

__all__ = ["BUILD", "MULTI", "Stage", "StageFailed", "StageResult"]
