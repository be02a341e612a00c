"""publish: the smoke-tested image to its targets (Amazon ECR, any OCI registry: push and verify each tag
by read-back; an image assembled in its registry: move tags onto its digest) and, with ``--s3`` or
``publish.s3``, the uncompressed artifacts for the stock LMI image. The same gate everywhere: only after a
passing smoke test, unless ``--skip-smoke``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from builder import labels
from builder.stages.bake import BuiltImage, BuiltModels
from builder.stages.base import Frozen, StageResult
from builder.stages.compile import Compiled
from builder.stages.fetch import FetchedModel, FetchedModels
from builder.stages.resolve import ResolvedBuild
from builder.stages.runtime import RuntimeImage
from builder.stages.smoke import Smoked
from builder.stages.validate import ValidatedModels


class Published(StageResult):
    targets: list[dict[str, Any]]  # the build record's ``published`` entries

    def into_record(self, record) -> None:
        record.published.extend(self.targets)


class Inputs(Frozen):
    build: ResolvedBuild
    model: FetchedModel
    runtime: RuntimeImage
    compiled: Compiled
    image: BuiltImage
    smoke: Smoked


def publish(ctx, inputs: Inputs) -> Published:
    from builder.publish.s3_publish import s3_uri_for

    opts, recipe = ctx.options, inputs.build.recipe
    s3_uri = s3_uri_for(recipe, opts.s3, opts.push)
    if not opts.push and not s3_uri:
        return Published(targets=[], status="skipped", reason="not requested (--push)")
    targets: list[dict[str, Any]] = []
    if opts.push and (not s3_uri or opts.registry or opts.assembler == "registry"
                      or recipe.publish.ecr or recipe.publish.registry):
        if inputs.image.assembler == "registry":
            targets += in_place(ctx, inputs.build, inputs.image)
        else:
            targets += to_registries(ctx, inputs.image.reference, recipe, smoke_outcome=inputs.smoke.outcome)
    if s3_uri:
        from builder.publish.s3_publish import publish_stage

        targets.append(publish_stage(inputs.compiled.resolved, s3_uri, artifacts=inputs.model.artifacts,
                                     compiled=inputs.compiled.result, extra_files=inputs.build.handler_files,
                                     stand_in=inputs.runtime.base_image, smoke=opts.smoke, prune=opts.s3_prune,
                                     log_dir=ctx.record_dir, smoke_status=inputs.smoke.outcome,
                                     skip_smoke=opts.skip_smoke))
    return Published(targets=targets, details={"targets": targets})


def to_registries(ctx, image_ref: str, recipe: Any, *, smoke_outcome: str) -> list[dict[str, Any]]:
    """Push a local image to the recipe's targets plus ``--registry`` (builder/publish/publisher.py)."""
    from builder.publish.recipe import publish_from_recipe

    opts = ctx.options
    outcome = publish_from_recipe(image_ref, recipe, registry=opts.registry, skip_smoke=opts.skip_smoke,
                                  allow_dev_runtime=opts.allow_dev_runtime, cache_dir=ctx.cache.dir,
                                  smoke_status=smoke_outcome)
    return [t.model_dump(mode="json") for t in outcome.targets]


def in_place(ctx, build: ResolvedBuild, image: BuiltImage) -> list[dict[str, Any]]:
    """An image assembled in its target registry is published by moving tags onto its digest
    (verified by read-back in ``move_tag``), after the same gate as a pushed image."""
    from builder.credentials import credentials_for
    from builder.publish import gate
    from builder.publish.tags import tags_for
    from builder.registry import move_tag

    opts, resolved = ctx.options, build.resolved
    recipe, pinned = resolved.recipe, image.reference
    image_labels = {labels.DEV_RUNTIME: "true"} if resolved.release.family == "dev-cpu" else {}
    smoke, _ = gate.check(image.image_id, image_labels, skip_smoke=opts.skip_smoke,
                          allow_dev_runtime=opts.allow_dev_runtime,
                          cache_dir=str(ctx.cache.dir) if ctx.cache.dir else None)
    digest = image.image.identity.digest or ""  # the assembled image's identity: the default tag
    variables = {"name": recipe.name, "image_digest": digest.removeprefix("sha256:") or None,
                 "image_digest12": digest.removeprefix("sha256:")[:12] or None, "recipe_hash": resolved.recipe_hash,
                 "recipe_hash12": resolved.recipe_hash[:12], "lmi_version": resolved.release.version,
                 "git_sha": None}
    moved = []
    creds = credentials_for(pinned)
    for tag in tags_for(recipe.name, digest, recipe.publish.tags, variables):
        move = move_tag(pinned, tag, credentials=creds)
        moved.append({"tag": tag, "moved": move.moved, "previous": move.previous})
    return [{"registry": opts.registry, "pinned": pinned, "tags": moved, "smoke": smoke, "verified": True}]


# ------------------------------------------------------------------------------------------ multi-model

class ModelsInputs(Frozen):
    recipe: ValidatedModels
    image: BuiltModels
    smoke: Smoked


def publish_models(ctx, inputs: ModelsInputs) -> Published:
    """The multi-model image through the single-model publisher as it is: the smoke gate (ledger by image id),
    the default tag <name>-<inputs digest 12> from the image's labels, push, verify every tag."""
    opts, recipe = ctx.options, inputs.recipe.recipe
    if not (opts.push and (recipe.publish.ecr or recipe.publish.registry or opts.registry)):
        return Published(targets=[], status="skipped",
                         reason="not requested (--push with publish.ecr, publish.registry or --registry)")
    targets = to_registries(ctx, inputs.image.image.tags[0], recipe, smoke_outcome=inputs.smoke.outcome)
    return Published(targets=targets, details={"targets": targets})


class Archives(StageResult):
    output: Any  # builder.multi.mme.MmeOutput: the archives, and the S3 upload when asked for
    folder: Path
    s3_uri: str | None

    def into_record(self, record) -> None:
        if self.s3_uri:
            record.published.append({"target": "s3-mme", **self.output.model_dump(mode="json")})


class ArchivesInputs(Frozen):
    recipe: ValidatedModels
    model: FetchedModels
    runtime: RuntimeImage
    smoke: Smoked


def mme(ctx, inputs: ArchivesInputs) -> Archives:
    """SageMaker multi-model endpoint archives (one deterministic model.tar.gz per model), uploaded under
    ``--s3`` / ``publish.s3`` with ``--push`` after the same smoke gate."""
    from builder.diagnostics import BuilderError
    from builder.multi.mme import mme_output

    opts, recipe = ctx.options, inputs.recipe.recipe
    s3_uri = opts.s3 or (recipe.publish.s3.uri if opts.push and recipe.publish.s3 else None)
    if s3_uri and inputs.smoke.outcome != "passed" and not opts.skip_smoke:
        raise BuilderError(f"not publishing to {s3_uri}: the smoke test {inputs.smoke.outcome}", stage="publish",
                           hint="publish after a passing smoke test, or pass --skip-smoke")
    plans = inputs.model.plans
    folder = ctx.record_dir / "mme"
    out = mme_output(plans, folder, s3_uri=s3_uri,
                     stand_in=inputs.runtime.base_image if plans[0].resolved.release.family == "dev-cpu" else None)
    return Archives(output=out, folder=folder, s3_uri=s3_uri, details=out.model_dump(mode="json"))
