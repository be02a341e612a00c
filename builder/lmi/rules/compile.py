"""The compile: section: only for TensorRT-LLM and NeuronX, and runtime limits within the compiled ones
(reference/lmi-runtime.md §8.3, §8.4, §11)."""

from __future__ import annotations

from builder.catalog.facts import load_facts
from builder.lmi.rules.base import Ctx, as_int, check, rule
from builder.lmi.rules.values import effective_max_rolling_batch_size

COMPILE_FAMILY = rule("compile-family", "a compile: section only for tensorrt-llm and neuronx releases with an "
                      "AOT tool", "remove compile:, or use the tensorrt-llm / neuronx family", "§11")
COMPILE_LIMITS = rule("compile-runtime-limits", "runtime limits may not exceed what the engine was compiled for "
                      "(max_rolling_batch_size <= compile.max_batch_size, max lengths <= compile.max_input_len / "
                      "max_seq_len, max_num_tokens <= compile.max_num_tokens)", "raise the compile limit or lower "
                      "the runtime value", "§8.3, §11.4")
COMPILE_ONLY = rule("compile-only-option", "build-time TensorRT-LLM keys (quantization, calibration) in "
                    "serving.option have no effect on an AOT-compiled engine (warning)",
                    "move them to compile.options / compile.calibration", "§8.3")

@check("compile", needs=("rolling_batch_ok",))
def check_compile(ctx: Ctx) -> None:
    comp = ctx.recipe.compile
    data = ctx.loaded.doc.data if isinstance(ctx.loaded.doc.data, dict) else {}
    written = "compile" in data
    rel = ctx.release
    assert rel is not None
    facts = ctx.facts.compile  # builder/catalog/families.yaml: the families with a compile option map
    if facts is None:
        if written:
            aot = " and ".join(n for n, f in load_facts().families.items() if f.compile is not None)
            ctx.error(("compile",), COMPILE_FAMILY, f"the {ctx.family} family has no ahead-of-time compilation; "
                      f"remove the compile: section (compile is for {aot})", key=True)
        return
    if comp.enabled and rel.aot is None:
        ctx.error(("compile", "enabled"), COMPILE_FAMILY, f"{rel.family} {rel.version} has no AOT tool in the "
                  "catalog; remove compile.enabled or pick a release that has one")
        return
    if comp.max_input_len and comp.max_seq_len and comp.max_input_len > comp.max_seq_len:
        ctx.error(("compile", "max_input_len"), COMPILE_LIMITS, f"compile.max_input_len {comp.max_input_len} exceeds "
                  f"compile.max_seq_len {comp.max_seq_len}; the sequence includes the input")
    if not comp.enabled:
        return
    mrbs = effective_max_rolling_batch_size(ctx)
    if comp.max_batch_size and mrbs and mrbs > comp.max_batch_size:
        path = ctx.opt_path("max_rolling_batch_size") if "max_rolling_batch_size" in ctx.opts else \
            ("compile", "max_batch_size")
        ctx.error(path, COMPILE_LIMITS, f"max_rolling_batch_size {mrbs} exceeds compile.max_batch_size "
                  f"{comp.max_batch_size}; the engine cannot batch more than it was built for: lower it or raise "
                  "compile.max_batch_size")
    pairs = (("max_input_len", comp.max_input_len, "compile.max_input_len"),
             ("max_seq_len", comp.max_seq_len, "compile.max_seq_len"),
             ("max_model_len", comp.max_seq_len, "compile.max_seq_len"),
             ("n_positions", comp.max_seq_len, "compile.max_seq_len"),
             ("max_num_tokens", comp.max_num_tokens, "compile.max_num_tokens"))
    for key, limit, name in pairs:
        if key in ctx.opts and limit:
            n = as_int(ctx.opts[key])
            if n is not None and n > limit:
                ctx.error(ctx.opt_path(key), COMPILE_LIMITS, f"option.{key} {n} exceeds {name} {limit}; the "
                          f"compiled engine cannot serve it: lower it or raise {name}")
    if facts.build_time_keys:  # tensorrt-llm
        for key in sorted(set(ctx.opts) & set(facts.build_time_keys)):
            ctx.warning(ctx.opt_path(key), COMPILE_ONLY, f"option.{key} is a build-time setting and the engine is "
                        "compiled ahead of time; move it to compile.options (or compile.quantization / "
                        "compile.calibration)", key=True)
