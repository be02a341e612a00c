"""Values of common options: dtype, batch and queue sizes, timeouts, formatter, quantization
(seed guide "LMI Common Configurations"; reference/lmi-runtime.md §4-§8)."""

from __future__ import annotations

from builder.catalog import version_tuple
from builder.lmi.keys import backends_for
from builder.lmi.rules.base import Ctx, as_bool, as_int, check, rule

DTYPE_VALUE = rule("dtype-value", "option.dtype is one the backend accepts (fp32, fp16, bf16, auto; vLLM also "
                   "float32/float16/bfloat16; NeuronX fp32/fp16/bf16)", "use one of the listed values", "§6, §8")
DTYPE_BF16 = rule("dtype-bf16-hardware", "bf16 needs compute capability >= 8.0 (G5/P4/P5 or newer) or "
                  "Inferentia2/Trainium", "use fp16 on this instance, or an Ampere-or-newer GPU", "seed guide")
DTYPE_INT8 = rule("dtype-int8-backend", "dtype int8 exists only in lmi-dist", "use rolling_batch: lmi-dist, or a "
                  "quantization (option.quantize) the backend supports", "seed guide")
MRBS = rule("max-rolling-batch-size", "option.max_rolling_batch_size is an integer > 0",
            "write a positive integer (LMI defaults: 256 vllm/trtllm, 32 otherwise, 4 DeepSpeed)", "seed guide, §7")
JQS = rule("job-queue-size", "job_queue_size is an integer > 0 and >= max_rolling_batch_size",
           "raise job_queue_size to at least max_rolling_batch_size", "seed guide, §4")
PARALLEL_LOADING = rule("parallel-loading", "parallel_loading only with more than one worker (devices // TP > 1) "
                        "and host memory >= workers x model size", "remove it, or lower tensor_parallel_degree so "
                        "several copies fit", "seed guide, §5")
LOAD_TIMEOUT = rule("model-loading-timeout", "option.model_loading_timeout is an integer number of seconds > 0",
                    "write whole seconds, e.g. 1800", "seed guide, §5")
PREDICT_TIMEOUT = rule("predict-timeout", "option.predict_timeout is an integer number of seconds > 0",
                       "write whole seconds, e.g. 240", "§5")
READINESS = rule("readiness-timeout", "smoke.readiness_timeout_s below the model loading timeout gives up while "
                 "the server may still be loading (warning)", "raise smoke.readiness_timeout_s or leave it out",
                 "§17.6")
OUTPUT_FORMATTER = rule("output-formatter", "option.output_formatter is a formatter of the LMI version",
                        "use one of the listed values", "§6")
QUANTIZE = rule("quantize-value", "option.quantize is a method the backend of this version accepts",
                "use one of the listed values", "§8.1, §8.4, §8.6")
LORA_DRAFT = rule("lmi-dist-lora-draft", "lmi-dist cannot combine LoRA with a speculative draft model",
                  "remove enable_lora or speculative_draft_model", "§8.2")

DTYPES = {
    "vllm": {"fp32", "fp16", "bf16", "float32", "float16", "bfloat16", "auto"},
    "lmi-dist": {"fp32", "fp16", "bf16", "auto", "int8"},
    "trtllm": {"fp32", "fp16", "bf16", "float32", "float16", "bfloat16", "auto"},
    "tnx": {"fp32", "fp16", "bf16"},
    "deepspeed": {"fp32", "fp16", "bf16"},
    "scheduler": {"fp32", "fp16", "bf16", "auto"},
    "disable": {"fp32", "fp16", "bf16", "auto"},
}
BF16 = {"bf16", "bfloat16"}


def effective_max_rolling_batch_size(ctx: Ctx) -> int | None:
    assert ctx.release
    if "max_rolling_batch_size" in ctx.opts:
        return as_int(ctx.opts["max_rolling_batch_size"])
    if "max_num_seqs" in ctx.opts:
        return as_int(ctx.opts["max_num_seqs"])
    return ctx.release.max_rolling_batch_default(ctx.rolling_batch)


@check("batch-limits", needs=("rolling_batch_ok",))
def check_batch_limits(ctx: Ctx) -> None:
    if "max_rolling_batch_size" in ctx.opts:
        n = as_int(ctx.opts["max_rolling_batch_size"])
        if n is None or n <= 0:
            ctx.error(ctx.opt_path("max_rolling_batch_size"), MRBS,
                      f"max_rolling_batch_size '{ctx.opts['max_rolling_batch_size']}' must be an integer > 0, "
                      "e.g. 64")
            return
    jqs = ctx.recipe.serving.job_queue_size
    if jqs is not None and jqs <= 0:
        ctx.error(("serving", "job_queue_size"), JQS, f"job_queue_size {jqs} must be > 0 (LMI default 1000)")
        return
    mrbs = effective_max_rolling_batch_size(ctx)
    if ctx.rolling_batch != "disable" and mrbs is not None and (jqs or 1000) < mrbs:
        path = ("serving", "job_queue_size") if jqs is not None else ctx.opt_path("max_rolling_batch_size")
        ctx.error(path, JQS, f"job_queue_size {jqs or 1000}{'' if jqs else ' (default)'} is below "
                  f"max_rolling_batch_size {mrbs}: requests would be rejected while the batch has room; set "
                  f"job_queue_size to at least {mrbs}")


@check("timeouts", needs=("rolling_batch_ok",))
def check_timeouts(ctx: Ctx) -> None:
    for key, rid in (("model_loading_timeout", LOAD_TIMEOUT), ("predict_timeout", PREDICT_TIMEOUT)):
        if key in ctx.opts:
            raw = ctx.opts[key]
            n = as_int(raw)
            if n is None or n <= 0:
                ctx.error(ctx.opt_path(key), rid, f"{key} '{raw}' must be a whole number of seconds > 0 "
                          f"(e.g. {1800 if key == 'model_loading_timeout' else 240})")
    assert ctx.release
    load = as_int(ctx.opts.get("model_loading_timeout", ctx.release.model_loading_timeout))
    ready = ctx.recipe.smoke.readiness_timeout_s
    if ready is not None and load is not None and ready < load:
        ctx.warning(("smoke", "readiness_timeout_s"), READINESS,
                    f"smoke.readiness_timeout_s {ready} is below the model loading timeout {load}s; the smoke test "
                    "may give up while the model is still loading (set it >= the loading timeout)")


@check("output-formatter", needs=("rolling_batch_ok",))
def check_output_formatter(ctx: Ctx) -> None:
    if "output_formatter" not in ctx.opts:
        return
    assert ctx.release
    value = str(ctx.opts["output_formatter"])
    if value not in ctx.release.output_formatters:
        ctx.error(ctx.opt_path("output_formatter"), OUTPUT_FORMATTER,
                  f"output_formatter '{value}' is not known to LMI {ctx.release.version} (it would log a warning and "
                  f"fall back); use one of: {', '.join(ctx.release.output_formatters)}")


@check("quantize-value", needs=("rolling_batch_ok",))
def check_quantize(ctx: Ctx) -> None:
    assert ctx.release
    for key in ("quantize", "quantization"):
        if key not in ctx.opts:
            continue
        value = str(ctx.opts[key])
        for backend in backends_for(ctx.release, ctx.rolling_batch):
            allowed = ctx.release.quantize.get(backend)
            if allowed and value not in allowed:
                ctx.error(ctx.opt_path(key), QUANTIZE, f"{key} '{value}' is not accepted by {backend} in LMI "
                          f"{ctx.release.version}; use one of: {', '.join(allowed)}")
                return


@check("lmi-dist-lora-draft", needs=("rolling_batch_ok",))
def check_lmi_dist(ctx: Ctx) -> None:
    if ctx.rolling_batch == "lmi-dist" and as_bool(ctx.opts.get("enable_lora")) is True \
            and ctx.opts.get("speculative_draft_model"):
        ctx.error(ctx.opt_path("speculative_draft_model"), LORA_DRAFT,
                  "lmi-dist cannot use LoRA (enable_lora) together with a speculative draft model; remove one")


@check("dtype", needs=("rolling_batch_ok", "instance", "fits"))
def check_dtype(ctx: Ctx) -> None:
    if "dtype" not in ctx.opts:
        return
    assert ctx.release and ctx.instance
    value = str(ctx.opts["dtype"]).strip()
    path = ctx.opt_path("dtype")
    backends = backends_for(ctx.release, ctx.rolling_batch)
    allowed = set().union(*(DTYPES.get(b, set()) for b in backends)) if backends else DTYPES["disable"]
    if value == "int8" and "lmi-dist" not in backends:
        ctx.error(path, DTYPE_INT8, f"dtype int8 exists only with rolling_batch lmi-dist (not "
                  f"'{ctx.rolling_batch}'); use fp16/bf16, or option.quantize for a quantized model")
        return
    if value not in allowed:
        ctx.error(path, DTYPE_VALUE, f"dtype '{value}' is not accepted with rolling_batch '{ctx.rolling_batch}'; "
                  f"use one of: {', '.join(sorted(allowed))}")
        return
    inst = ctx.instance
    if value in BF16 and inst.kind == "gpu" and inst.compute_capability and \
            version_tuple(inst.compute_capability) < (8, 0):
        ctx.error(path, DTYPE_BF16, f"bf16 needs compute capability >= 8.0; {inst.name} has {inst.accelerator} "
                  f"(sm_{inst.compute_capability.replace('.', '')}); use fp16, or a g5/g6/p4d/p5 instance")


@check("parallel-loading", needs=("rolling_batch_ok", "instance", "fits"))
def check_parallel_loading(ctx: Ctx) -> None:
    if "parallel_loading" not in ctx.opts:
        return
    workers, model_bytes = ctx.derived.workers, ctx.model_bytes
    path = ctx.opt_path("parallel_loading")
    flag = as_bool(ctx.opts["parallel_loading"])
    if flag is None:
        ctx.error(path, PARALLEL_LOADING, "parallel_loading must be true or false")
        return
    if not flag or workers is None:
        return
    assert ctx.instance
    if workers <= 1:
        ctx.error(path, PARALLEL_LOADING, f"parallel_loading needs more than one worker, but {ctx.instance.name} "
                  f"runs {workers} (devices {ctx.instance.devices} // tensor x pipeline parallel); remove it, or "
                  "lower tensor_parallel_degree so several model copies fit")
        return
    if model_bytes:
        need = workers * model_bytes
        have = ctx.instance.host_memory_gib * (1 << 30)
        if need > have:
            ctx.error(path, PARALLEL_LOADING, f"parallel_loading loads {workers} copies ({need / (1 << 30):.1f} GiB) "
                      f"but {ctx.instance.name} has {ctx.instance.host_memory_gib} GiB of host memory; remove it")
