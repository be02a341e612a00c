"""Engine, rolling batch (which backend), entry point and parallelism: what LMI itself would refuse,
or silently rewrite, at endpoint start-up (reference/lmi-runtime.md §2, §4, §5, §7, §8, seed guide)."""

from __future__ import annotations

import difflib

from builder.catalog import Release
from builder.catalog.facts import load_facts
from builder.lmi.keys import derived_keys
from builder.lmi.rules.base import Ctx, as_bool, as_int, check, rule

ENGINE_VALUE = rule("engine-value", "serving.engine is Python or MPI (exact case)",
                    "write engine: Python or engine: MPI", "seed guide, §4")
ENGINE_OPTION = rule("engine-location", "engine is a server key, not an option",
                     "move option.engine to serving.engine", "§10.1")
RB_UNAVAILABLE = rule("rolling-batch-unavailable", "option.rolling_batch must be a backend the container "
                      "family/version offers (cpu and dev-cpu: disable only)",
                      "use one of the listed values or the family that ships the backend", "seed guide, §2, §12")
BACKEND_REMOVED = rule("backend-removed", "DeepSpeed is gone after LMI 0.27.0, lmi-dist and the scheduler after "
                       "0.32 (LMI rewrites lmi-dist to vllm with only a log line; we refuse)",
                       "use rolling_batch: vllm with engine Python, or an older container.version", "§2, §17.4")
RB_ENGINE = rule("rolling-batch-engine", "each backend needs its engine: vllm Python, lmi-dist MPI, deepspeed MPI, "
                 "trtllm MPI (or Python with option.mpi_mode=true), neuronx auto/tnx Python",
                 "set serving.engine to the engine named in the message, or leave it out", "seed guide, §8.1-8.2")
RB_AUTO = rule("rolling-batch-auto", "rolling_batch auto lets LMI pick the backend at start-up from the model "
               "type and image features (warning; v11-v16 only: from v17 auto is disable + async_mode, the vLLM "
               "async service)", "pin option.rolling_batch (vllm, lmi-dist or disable)",
               "§7, §17.3, §18")
ENTRY_BACKEND = rule("entry-point-backend", "DeepSpeed needs option.entryPoint=djl_python.deepspeed; NeuronX "
                     "needs djl_python.transformers_neuronx", "remove option.entryPoint (the render sets it) or "
                     "write the value in the message", "seed guide")
ENTRY_OPTION = rule("entry-point-option", "a custom handler is given as model.entry_point (so it is baked), not as "
                    "a .py option.entryPoint, and not both", "move the script to model.entry_point", "§5, §13")
TP_RANGE = rule("tp-range", "tensor_parallel_degree is max or 1..devices of the target (GPUs or NeuronCores; "
                "1 on CPU), and TP x PP fits the devices; workers = devices // (TP x PP)",
                "use max, or a number the instance has devices for", "seed guide, §4, §5, §17.7")
VLLM_PP = rule("vllm-pipeline-parallel", "vLLM in LMI >= 0.30 does not support pipeline_parallel_degree != 1",
               "remove option.pipeline_parallel_degree or use tensor parallelism", "§8.1")
BATCH_RB = rule("batch-size-rolling-batch", "batch_size > 1 (dynamic batching) and rolling batch are exclusive; "
                "LMI silently switches rolling batch off", "set option.rolling_batch: disable, or batch_size: 1",
                "§4, §7, §8.4, §17.7")
ASYNC_RB = rule("async-mode-rolling-batch", "option.async_mode and rolling batch are mutually exclusive",
                "with async_mode: true set rolling_batch: disable", "§5")
CPU_TRANSFORMERS = rule("cpu-full-transformers", "the cpu-full image has no transformers, so the built-in "
                        "djl_python.huggingface handler cannot load there (warning; the dev-cpu family builds on "
                        "its hf variant with torch + transformers for that handler)",
                        "give a custom model.entry_point that needs no transformers, or add it via "
                        "model.requirements", "§12, §17.11")

FAMILY_OF_RB = {"trtllm": "tensorrt-llm", "tnx": "neuronx", "deepspeed": "lmi (0.27.0)", "lmi-dist": "lmi (<= 0.30.0)",
                "vllm": "lmi"}


@check("engine")
def check_engine(ctx: Ctx) -> None:
    engine = ctx.recipe.serving.engine
    if engine is not None and engine not in ("Python", "MPI"):
        close = next((e for e in ("Python", "MPI") if e.lower() == engine.strip().lower()), None)
        fix = f"write '{close}' (the value is case-sensitive)" if close else "use Python or MPI"
        ctx.error(("serving", "engine"), ENGINE_VALUE, f"engine '{engine}' is not an LMI engine; {fix}")
    if "engine" in ctx.opts:
        ctx.error(ctx.opt_path("engine"), ENGINE_OPTION,
                  "engine is a server key: move 'engine' from serving.option to serving (serving.engine)", key=True)


@check("entry-point", needs=("release",))
def check_entry_point(ctx: Ctx) -> None:
    ep = ctx.opts.get("entryPoint")
    if ep is None:
        return
    ep = str(ep)
    path = ctx.opt_path("entryPoint")
    if ctx.recipe.model.entry_point:
        ctx.error(path, ENTRY_OPTION, "model.entry_point already names the handler; remove option.entryPoint "
                  "(the render points it at the baked script)")
        return
    if ep.endswith(".py") or ep.startswith(("http://", "https://")):
        ctx.error(path, ENTRY_OPTION, f"option.entryPoint '{ep}' is a script; give it as model.entry_point (a file "
                  "beside the recipe) so it is baked into the image, and remove option.entryPoint")
        return
    need = ctx.facts.handler or load_facts().required_entry_point.get(ctx.rolling_batch)
    if need and ep != need:
        ctx.error(path, ENTRY_BACKEND, f"this backend needs option.entryPoint={need}, not '{ep}'; remove the key "
                  f"(the render writes {need}) or write {need}")


@check("rolling-batch", needs=("release",))
def check_rolling_batch(ctx: Ctx) -> None:
    """Reports why the backend is unusable (``Derived.rolling_batch_ok`` false skips the backend rules)."""
    rel = ctx.release
    assert rel is not None
    rb = ctx.rolling_batch
    path = ctx.opt_path("rolling_batch") if "rolling_batch" in ctx.opts else ("container", "version")
    gone = ctx.derived.removed_at  # removals are recorded by DJL release (families.yaml removed_backends)
    if gone is not None:
        last = [r.version for r in ctx.catalog.releases if r.family == rel.family and rb in r.rolling_batch]
        instead = ctx.facts.rewrites_removed.get(rb)
        extra = f" (LMI would silently rewrite it to {instead})" if instead else ""
        ctx.error(path, BACKEND_REMOVED,
                  f"rolling_batch '{rb}' was removed in LMI {gone}{extra}; use rolling_batch: vllm with engine Python"
                  f", or container.version {' or '.join(last) or 'older'} to keep {rb}")
        return
    if rb not in rel.rolling_batch:
        if ctx.facts.no_rolling_batch:
            ctx.error(path, RB_UNAVAILABLE, f"the {ctx.family} family has no rolling-batch backend; "
                      "write rolling_batch: disable (or leave it out)")
            return
        known = list(ctx.catalog.backends)  # every rolling_batch value of any release (containers.yaml)
        close = difflib.get_close_matches(rb, known, n=1, cutoff=0.6) if rb not in known else []
        hint = f"; did you mean '{close[0]}'?" if close else ""
        where = f" (it ships in the {FAMILY_OF_RB[rb]} family)" if rb in FAMILY_OF_RB else ""
        ctx.error(path, RB_UNAVAILABLE, f"rolling_batch '{rb}' is not offered by {rel.family} {rel.version}{where}"
                  f"{hint}; offered: {', '.join(rel.rolling_batch)}")
        return
    if rb == "auto" and ctx.facts.auto_warning and _auto_by_model_type(rel):
        ctx.warning(path, RB_AUTO, f"rolling_batch auto lets {rel.label} choose the backend at start-up from the "
                    "model type; pin it (e.g. rolling_batch: vllm) so the image behaves the same everywhere")


def _auto_by_model_type(rel: Release) -> bool:
    """Whether ``auto`` still leaves the backend to the model type, as the release's derived data records it.

    What djl-serving's wlm/src/main/java/ai/djl/serving/wlm/LmiConfigRecommender.java (setRollingBatch) does:
    up to 0.34.0-dlc (v11-v16) a text-generation architecture gets vllm, lmi-dist, trtllm or tnx depending
    on the image features, the device and max_rolling_batch_size (e.g. 0.33.0-dlc lines 65-80), so the
    choice is the model's. From 0.35.0-dlc (v17) on every branch sets rolling_batch=disable with
    option.async_mode=true for text-generation architectures on the vLLM image (0.35.0-dlc and
    0.36.0-lmi27-dlc lines 69-74): the vLLM async service, the configuration upstream recommends. The one
    model-type branch left is '!isTextGenerationModel' -> disable (HF Accelerate, line 66), a fallback for
    architectures LMI does not optimise, not a choice between LLM backends: no warning there.
    scripts/derive_keys.py records this per release (``auto.by_model_type``, with the line).
    Releases without derived data (0.27.0) keep the warning.
    """
    derived = derived_keys(rel)
    return derived is None or derived.auto_by_model_type


@check("rolling-batch-engine", needs=("rolling_batch_ok",))
def check_engine_backend(ctx: Ctx) -> None:
    engine = ctx.recipe.serving.engine
    need = ctx.derived.required_engine
    if engine is None or need is None or engine == need or engine not in ("Python", "MPI"):
        return
    if need == "MPI" and ctx.facts.python_engine_with_mpi_mode and as_bool(ctx.opts.get("mpi_mode")) is True:
        return  # the TRT-LLM guide's quick start: engine=Python + option.mpi_mode=true (§8.3)
    if need == "Python" and as_bool(ctx.opts.get("mpi_mode")) is True:
        ctx.error(ctx.opt_path("mpi_mode"), RB_ENGINE, f"{ctx.rolling_batch} needs the Python engine; remove "
                  "option.mpi_mode")
        return
    ctx.error(("serving", "engine"), RB_ENGINE,
              f"rolling_batch '{ctx.rolling_batch}' needs engine {need}, not {engine}; write engine: {need} "
              "(or leave engine out and the render picks it)")


@check("mpi-mode-python-backend", needs=("rolling_batch_ok",))
def check_mpi_for_python_backends(ctx: Ctx) -> None:
    need = ctx.derived.required_engine
    if ctx.recipe.serving.engine is None and need == "Python" and as_bool(ctx.opts.get("mpi_mode")) is True:
        ctx.error(ctx.opt_path("mpi_mode"), RB_ENGINE, f"{ctx.rolling_batch} needs the Python engine; "
                  "option.mpi_mode=true launches MPI workers; remove it")


@check("batch-size-rolling-batch", needs=("rolling_batch_ok",))
def check_batch_size(ctx: Ctx) -> None:
    if ctx.rolling_batch == "disable":
        return
    s = ctx.recipe.serving
    for path, value in ((("serving", "batch_size"), s.batch_size),
                        (("serving", "max_dynamic_batch_size"), s.max_dynamic_batch_size),
                        (ctx.opt_path("batch_size"), ctx.opts.get("batch_size"))):
        n = as_int(value) if value is not None else None
        if n is not None and n > 1:
            ctx.error(path, BATCH_RB, f"{path[-1]} {n} turns on dynamic batching, which LMI does not combine with "
                      f"rolling batch '{ctx.rolling_batch}' (it would silently disable rolling batch); set "
                      "option.rolling_batch: disable, or remove the batch size")


@check("async-mode-rolling-batch", needs=("rolling_batch_ok",))
def check_async(ctx: Ctx) -> None:
    if as_bool(ctx.opts.get("async_mode")) is True and ctx.rolling_batch not in ("disable", "auto"):
        ctx.error(ctx.opt_path("async_mode"), ASYNC_RB,
                  f"async_mode and rolling_batch '{ctx.rolling_batch}' are mutually exclusive; set "
                  "rolling_batch: disable with async_mode: true, or remove async_mode")


@check("cpu-full-transformers", needs=("rolling_batch_ok",))
def check_cpu_handler(ctx: Ctx) -> None:
    if not ctx.facts.needs_transformers_for_default_handler or ctx.recipe.model.entry_point:
        return  # dev-cpu: the pipeline picks the runtime's hf variant for djl_python.huggingface
    ep = str(ctx.opts.get("entryPoint", "djl_python.huggingface"))
    if ep == "djl_python.huggingface":
        path = ctx.opt_path("entryPoint") if "entryPoint" in ctx.opts else ("container", "family")
        ctx.warning(path, CPU_TRANSFORMERS, "the cpu-full image has no transformers, so the default handler "
                    "djl_python.huggingface cannot load a model; give a custom model.entry_point, or list "
                    "transformers (and torch) in model.requirements")


@check("tp-range", needs=("rolling_batch_ok", "instance", "fits"))
def check_tp(ctx: Ctx) -> None:
    inst = ctx.instance
    assert inst is not None
    unit = {"gpu": "GPUs", "neuron": "NeuronCores", "cpu": "CPU device"}[inst.kind]
    raw = ctx.opts.get("tensor_parallel_degree")
    if raw is not None and str(raw).strip().lower() != "max":
        tp = as_int(raw)
        if tp is None or tp < 1:
            ctx.error(ctx.opt_path("tensor_parallel_degree"), TP_RANGE,
                      f"tensor_parallel_degree '{raw}' must be max or an integer from 1 to {inst.devices} "
                      f"({inst.name} has {inst.devices} {unit})")
            return
        if inst.kind == "cpu" and tp != 1:
            ctx.error(ctx.opt_path("tensor_parallel_degree"), TP_RANGE,
                      f"tensor_parallel_degree {tp} on a CPU instance; CPU serving has no tensor parallelism, write 1")
            return
        if tp > inst.devices:
            ctx.error(ctx.opt_path("tensor_parallel_degree"), TP_RANGE,
                      f"tensor_parallel_degree {tp} exceeds the {inst.devices} {unit} of {inst.name}; use max or a "
                      f"value from 1 to {inst.devices}, or a larger instance")
            return
    if "pipeline_parallel_degree" in ctx.opts:
        pp = as_int(ctx.opts["pipeline_parallel_degree"])
        if pp is None or pp < 1:
            ctx.error(ctx.opt_path("pipeline_parallel_degree"), TP_RANGE,
                      "pipeline_parallel_degree must be an integer >= 1")
            return
    both = ctx.derived.tp_pp
    if both and both[0] * both[1] > inst.devices:
        ctx.error(ctx.opt_path("pipeline_parallel_degree"), TP_RANGE,
                  f"tensor_parallel_degree x pipeline_parallel_degree = {both[0] * both[1]} exceeds the "
                  f"{inst.devices} {unit} of {inst.name}; lower one of them")


@check("vllm-pipeline-parallel", needs=("rolling_batch_ok", "instance", "fits"))
def check_vllm_pp(ctx: Ctx) -> None:
    rel = ctx.release
    assert rel is not None
    pp = as_int(ctx.opts.get("pipeline_parallel_degree", 1))
    # vllm_rb_properties.py validate_pipeline_parallel exists from 0.30.0-dlc on, and the async service
    # builds the same properties (families.yaml lmi_validators.vllm_pp)
    refused = load_facts().lmi_validators["vllm_pp"].covers(rel)
    if ctx.derived.vllm_properties and refused and pp is not None and pp != 1:
        ctx.error(ctx.opt_path("pipeline_parallel_degree"), VLLM_PP,
                  f"vLLM in LMI {rel.version} rejects pipeline_parallel_degree {pp}; remove it and use "
                  "tensor_parallel_degree")
