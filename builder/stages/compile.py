"""compile: fetched weights -> TensorRT-LLM engines / Neuron artifacts ahead of time, cached by everything
that affects them (builder/compile). Its properties overrides make a new resolved value (the runtime loads
the compiled artifacts instead of compiling again, §11.5); nothing earlier is changed."""

from __future__ import annotations

from builder.compile.models import CompileResult
from builder.lmi.resolve import Resolved
from builder.stages.base import Frozen, StageFailed, StageResult
from builder.stages.fetch import FetchedModel
from builder.stages.resolve import ResolvedBuild
from builder.stages.runtime import RuntimeImage


class Compiled(StageResult):
    result: CompileResult | None  # None: not asked for, or nothing baked to compile
    resolved: Resolved  # what the bake renders: the build's value, with compile's overrides when it ran


class Inputs(Frozen):
    build: ResolvedBuild
    model: FetchedModel
    runtime: RuntimeImage


def compile_stage(ctx, inputs: Inputs) -> Compiled:
    resolved, artifacts = inputs.build.resolved, inputs.model.artifacts
    if not resolved.recipe.compile.enabled:
        return Compiled(result=None, resolved=resolved, status="skipped", reason="compile.enabled is false")
    if artifacts is None:
        return Compiled(result=None, resolved=resolved, status="skipped",
                        reason="no baked model to compile (model.bake is false)")
    from builder.compile.run import compile_artifacts

    executor = ctx.options.compile_executor or resolved.recipe.compile.executor
    compiled = compile_artifacts(resolved, artifacts, inputs.runtime.base_image or "", executor=executor,
                                 cache_dir=ctx.cache.dir, cache_remote=ctx.cache.remote)
    # (compile connects to the engine itself, after its host preflight: a host without the accelerator is told
    # that, not that it lacks Docker)
    details = {"cache_origin": compiled.origin, "cache_remote": compiled.remote, "cache_key": compiled.cache_key,
               "toolchain": compiled.toolchain}
    if compiled.status == "skipped":
        raise StageFailed(f"compile did not run: {compiled.reason}", stage="compile", details=details,
                          hint="set compile.enabled: false to let LMI compile at start-up (JIT), or build on a "
                               "runner with the target's accelerator")
    return Compiled(result=compiled, resolved=resolved.with_properties(compiled.properties_overrides),
                    status="passed" if compiled.status == "compiled" else "cached", reason=compiled.reason,
                    details=details)
