"""smoke: start the built image the way an endpoint would, wait for readiness, send generation requests,
judge (builder/smoke). A passed outcome is kept in the smoke ledger by image id, so the same image is not
tested twice; a host that cannot run the target's accelerators reports SKIPPED with the reason (``--smoke
always`` makes that a failure)."""

from __future__ import annotations

import glob
from typing import Literal

from builder import ledger
from builder.diagnostics import BuilderError
from builder.stages.bake import BuiltImage, BuiltModels
from builder.stages.base import Frozen, StageFailed, StageResult
from builder.stages.resolve import ResolvedBuild, ResolvedModels
from builder.stages.validate import ValidatedModels


class Smoked(StageResult):
    outcome: Literal["passed", "failed", "skipped"]  # of the image (a ledger hit counts as passed)


class Inputs(Frozen):
    build: ResolvedBuild
    image: BuiltImage


def smoke(ctx, inputs: Inputs) -> Smoked:
    opts = ctx.options
    if opts.smoke == "never":
        return Smoked(outcome="skipped", status="skipped", reason="--smoke never")
    image = inputs.image
    image_id = image.image_id  # the engine's id (registry assembly: the config digest, the id after a pull)
    previous = ledger.lookup(image_id, ctx.cache.dir) if not opts.force_smoke else None
    if previous is not None and previous.status == "passed":
        return Smoked(outcome="passed", status="cached",
                      reason=f"this exact image ({image_id[:19]}) passed at {previous.finished_at}; --force-smoke reruns")
    ctx.reporter.step("smoke test")
    kind = inputs.build.resolved.instance.kind
    accelerators = "none" if opts.accelerators == "auto" and kind == "cpu" else opts.accelerators
    in_registry = image.assembler == "registry"
    unavailable = host_gap(kind, accelerators) if in_registry else None
    if unavailable:  # decided before pulling a multi-GB image only to find it cannot run here
        if opts.smoke == "always":
            raise BuilderError(f"smoke test cannot run: {unavailable}", stage="smoke",
                               hint="--smoke auto reports this as SKIPPED; build on a runner with the target's "
                                    "accelerator")
        if previous is None:
            ledger.record(ledger.SmokeOutcome(image_id=image_id, status="skipped", reason=unavailable), ctx.cache.dir)
        return Smoked(outcome="skipped", status="skipped", reason=unavailable)
    from builder.smoke.image_info import describe
    from builder.smoke.run import smoke_test

    pulled = None
    if in_registry:  # the pinned digest is what gets tested and published; pulled into the engine only for this
        from builder.credentials import credentials_for
        from builder.registry import pull_for_smoke

        pulled = pull_for_smoke(image.reference, credentials=credentials_for(image.reference),
                                docker=ctx.engine("smoke"))
    try:
        # what the image is for comes from this build's resolved value, not read back from the labels
        info = describe(image.reference, image_id, inputs.build.resolved)
        result = smoke_test(image.reference, mode=opts.smoke, accelerators=accelerators, log_dir=ctx.record_dir,
                            cache_dir=ctx.cache.dir, docker_client=ctx.engine("smoke"), info=info)
    finally:
        if pulled:
            from builder.registry import remove_pulled

            remove_pulled(image.reference, docker=ctx.engine("smoke"))
    details = result.model_dump(mode="json")
    if result.status == "failed":
        raise StageFailed(f"smoke test failed: {result.reason}", stage="smoke", details=details)
    return Smoked(outcome=result.status, status=result.status, reason=result.reason, details=details)


def host_gap(kind: str, accelerators: str) -> str | None:
    """Why this host cannot run the image at all (no engine; no device of the target's kind), or None.

    A probe with its own short timeout (not the run's client, whose reads wait as long as a bake). Only a
    host-level look: whether Docker can hand the GPUs to a container is the smoke stage's own
    check (it reports "no GPU runtime" itself)."""
    try:
        from builder.engine import docker_client

        docker_client("smoke", timeout=10)
    except BuilderError:
        return "no Docker engine on this host to run the image in"
    if accelerators == "none":
        return None
    if kind == "gpu" and not glob.glob("/dev/nvidia[0-9]*"):
        return "the target needs NVIDIA GPUs and this host has none (no /dev/nvidia*)"
    if kind == "neuron" and not glob.glob("/dev/neuron*"):
        return "the target needs Neuron devices and this host has none (no /dev/neuron*)"
    return None


# ------------------------------------------------------------------------------------------ multi-model

class ModelsInputs(Frozen):
    build: ResolvedModels
    recipe: ValidatedModels
    image: BuiltModels


def smoke_models(ctx, inputs: ModelsInputs) -> Smoked:
    """One generate request to each model of the multi-model image, as DJL's front end routes them."""
    import shutil

    opts, recipe, kind = ctx.options, inputs.recipe.recipe, inputs.build.first.instance.kind
    if opts.smoke == "never" or not recipe.smoke.enabled:
        return Smoked(outcome="skipped", status="skipped",
                      reason="--smoke never" if opts.smoke == "never" else "smoke.enabled is false")
    has_devices = bool(shutil.which("nvidia-smi")) if kind == "gpu" else bool(glob.glob("/dev/neuron*"))
    if kind != "cpu" and opts.accelerators == "auto" and opts.smoke == "auto" and not has_devices:
        return Smoked(outcome="skipped", status="skipped", reason=f"this host has no {kind} devices for the smoke test")
    image_id = inputs.image.image_id
    previous = None if opts.force_smoke else ledger.lookup(image_id, ctx.cache.dir)
    if previous is not None and previous.status == "passed":  # the single-model path's rule
        return Smoked(outcome="passed", status="cached",
                      reason=f"this exact image ({image_id[:19]}) passed at {previous.finished_at}; --force-smoke reruns")
    from builder.multi.smoke import smoke_multi

    names = [p.name for p in inputs.build.plans]
    ctx.reporter.step(f"smoke test ({len(names)} models, one generate each)")
    result = smoke_multi(image_id, names, accelerators=opts.accelerators, client=ctx.engine("smoke"))
    ledger.record(ledger.SmokeOutcome(image_id=image_id, status=result.status, reason=result.reason,
                                      accelerators=opts.accelerators), ctx.cache.dir)
    details = result.model_dump(mode="json")
    if result.status == "failed":
        raise StageFailed(f"smoke test failed: {result.reason}", stage="smoke", details=details)
    return Smoked(outcome=result.status, status=result.status, reason=result.reason, details=details)
