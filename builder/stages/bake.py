"""bake: serving.properties, the handler files and the model (or its compiled repository) -> the model
image, by the assembler ``--assembler`` names (builder/assembly: ``docker`` builds on the local engine,
``registry`` writes blobs and a manifest straight into the target registry). Same inputs, same
content-addressed tag: an image already made of them is reused (CACHED)."""

from __future__ import annotations

from builder.assembly import AssembledImage, AssemblyRequest, assemble
from builder.multi.image import MultiImage
from builder.stages.base import Frozen, StageResult
from builder.stages.compile import Compiled
from builder.stages.fetch import FetchedModel, FetchedModels
from builder.stages.resolve import ResolvedBuild
from builder.stages.runtime import RuntimeImage
from builder.stages.validate import ValidatedModels


class BuiltImage(StageResult):
    image: AssembledImage

    @property
    def assembler(self) -> str:
        return self.image.assembler

    @property
    def reference(self) -> str:  # what smoke and publish use (a local image id, or HOST/REPO@sha256:...)
        return self.image.reference

    @property
    def image_id(self) -> str:  # the engine's id (registry: the config digest, the id after a pull)
        return self.image.image_id

    def into_record(self, record) -> None:
        image = self.image
        record.image = image.model_dump(mode="json")
        # the base, and the tag digest and what it is made of (both assemblers)
        record.inputs.update({"base_digest": image.base.digest, "image_digest": image.identity.digest,
                              "image_inputs": image.identity.inputs.model_dump(mode="json")})


class Inputs(Frozen):
    build: ResolvedBuild
    model: FetchedModel
    runtime: RuntimeImage
    compiled: Compiled


def bake(ctx, inputs: Inputs) -> BuiltImage:
    opts, artifacts, compiled = ctx.options, inputs.model.artifacts, inputs.compiled.result
    # a compiled repository holds what the runtime loads (engines/NEFFs + config + tokenizer): it is
    # baked in place of the raw weights
    model_dir = compiled.dir if compiled and compiled.dir else (artifacts.dir if artifacts else None)
    request = AssemblyRequest(
        resolved=inputs.compiled.resolved, model_dir=model_dir, model_digest=artifacts.digest if artifacts else None,
        extra_files=inputs.build.handler_files, base_image=inputs.runtime.base_image,
        compile_labels=compiled.toolchain if compiled else None, compile_key=compiled.cache_key if compiled else None,
        recipe_file=opts.recipe, cache_dir=ctx.cache.dir,
        tags=tuple(opts.tags), no_cache=opts.no_cache, pull=opts.pull,
        # the locally built dev-cpu runtime has no registry digest to pin
        allow_unpinned_base=opts.allow_unpinned_base or inputs.runtime.local_runtime,
        registry=opts.registry, manifest_format=opts.manifest_format)
    if opts.assembler == "registry":
        from builder.credentials import credentials_for

        ctx.reporter.step(f"assemble in registry {opts.registry}")
        request = request.model_copy(update={"credentials": credentials_for(opts.registry or ""),
                                             "base_credentials": credentials_for(inputs.runtime.base_image or "")})
    else:
        ctx.reporter.step("bake image")
        request = request.model_copy(update={"docker": ctx.engine("bake")})
    image = assemble(opts.assembler, request)
    details = {"reference": image.reference, "image_id": image.image_id, "bytes_sent": image.bytes_sent,
               "reused": image.reused, "image_digest": image.identity.digest}
    return BuiltImage(image=image, status="cached" if image.reused else "passed", details=details)


# ------------------------------------------------------------------------------------------ multi-model

class BuiltModels(StageResult):
    image: MultiImage  # one image, every model's folder under the model store (builder/multi/image.py)

    @property
    def image_id(self) -> str:
        return self.image.image_id

    def into_record(self, record) -> None:
        record.image = self.image.model_dump(mode="json")


class ModelsInputs(Frozen):
    recipe: ValidatedModels
    model: FetchedModels
    runtime: RuntimeImage


def bake_models(ctx, inputs: ModelsInputs) -> BuiltModels:
    from builder.multi.image import bake_multi

    plans, opts = inputs.model.plans, ctx.options
    ctx.reporter.step(f"bake multi-model image ({len(plans)} models)")
    image = bake_multi(plans, inputs.recipe.recipe, base_image=inputs.runtime.base_image or "",
                       cache_dir=ctx.cache.dir, allow_unpinned=opts.allow_unpinned_base or inputs.runtime.local_runtime,
                       no_cache=opts.no_cache, client=ctx.engine("bake"))
    return BuiltModels(image=image, status="cached" if image.reused else "passed")
