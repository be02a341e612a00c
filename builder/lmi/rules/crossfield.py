"""LMI's own cross-field validators (the pydantic ``@field_validator`` / ``@model_validator`` functions of
djl_python's properties managers that raise), as rules with the release range in which each exists.

The table of every validator and the rule that stands for it is docs/lmi-validators.md. The range of
each rule is read off djl-serving's release branches (``engines/python/setup/djl_python/
properties_manager/<file>`` on ``<first>`` .. ``<last>``); a release is matched by the branch it was
derived from (``Release.provenance['branch']``), so the ten DJL 0.36.0 releases are told apart.
Nothing here is upstream code: each check restates what the validator refuses.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from builder.catalog import Release
from builder.catalog.facts import Span, branch_key, branch_of, load_facts  # noqa: F401 - re-exported
from builder.lmi.properties import format_value
from builder.lmi.rules.base import ASYNC_ENTRY_POINT, Ctx, as_bool, check, rule  # noqa: F401 - re-exported

PM = "engines/python/setup/djl_python/properties_manager/"
# Longest value we hand to ast.literal_eval: long_lora_scaling_factors and friends are short, and
# literal_eval of a hostile megabyte of brackets costs memory and recursion.
LITERAL_MAX = 4096


# The release range of each validator is data (builder/catalog/families.yaml lmi_validators, with the file
# each was read from); a release is matched by the branch it was derived from (facts.branch_of).
_SPANS = load_facts().lmi_validators
LATEST = load_facts().latest_branch_read
TNX = _SPANS["tnx"]  # tnx_properties.py
ALL = _SPANS["all"]  # properties.py, hf_properties.py
LMI_DIST_FML = _SPANS["lmi_dist_fml"]
VLLM_SPEC_V2 = _SPANS["vllm_spec_v2"]
VLLM_MM = _SPANS["vllm_mm"]
LMI_DIST_MM = _SPANS["lmi_dist_mm"]
VLLM_LONG_LORA = _SPANS["vllm_long_lora"]
LMI_DIST_LONG_LORA = _SPANS["lmi_dist_long_lora"]
VLLM_PARSERS = _SPANS["vllm_parsers"]
VLLM_NEURON_CFG = _SPANS["vllm_neuron_cfg"]
VLLM_PP = _SPANS["vllm_pp"]

TNX_LOADER = rule("tnx-loader-partition", "Transformers-NeuronX: model_loader tnx refuses partition_schema "
                  "optimum, and model_loader optimum needs partition_schema optimum",
                  "drop model_loader (LMI picks it from partition_schema) or make the two agree",
                  f"djl-serving@0.29.0-dlc..0.34.0-dlc:{PM}tnx_properties.py validate_schema_loader_combination")
TNX_AOT_VLLM = rule("tnx-aot-vllm-loader", "Transformers-NeuronX: model_loader vllm cannot be compiled ahead of "
                    "time (save_mp_checkpoint_path, which compile.enabled sets)",
                    "use model_loader tnx to compile, or compile.enabled: false",
                    f"djl-serving@0.29.0-dlc..0.34.0-dlc:{PM}tnx_properties.py validate_partition_model_loader")
TNX_GQA = rule("tnx-group-query-attention", "Transformers-NeuronX: group_query_attention is shard-over-heads, "
               "shard-over-batch, replicated-heads or all-gather-heads", "use one of the four values",
               f"djl-serving@0.29.0-dlc..0.34.0-dlc:{PM}tnx_properties.py validate_gqa")
TNX_CTX = rule("tnx-context-length-estimate", "Transformers-NeuronX: context_length_estimate is a comma-separated "
               "list of integers", "write e.g. 256,512,1024",
               f"djl-serving@0.29.0-dlc..0.34.0-dlc:{PM}tnx_properties.py parse_context_length")
STREAM_DYN = rule("streaming-dynamic-batching", "enable_streaming cannot be combined with dynamic batching "
                  "(option.batch_size > 1 turns rolling batch off)", "remove enable_streaming or option.batch_size",
                  f"djl-serving@0.29.0-dlc..{LATEST}:{PM}properties.py validate_batch_size")
FML_DRAFT = rule("lmi-dist-fast-loader-draft", "lmi-dist cannot combine load_format sagemaker_fast_model_loader "
                 "with a speculative draft model", "remove speculative_draft_model or the load_format",
                 f"djl-serving@0.31.0-dlc..0.34.0-dlc:{PM}lmi_dist_rb_properties.py validate_speculative_and_fml")
SPEC_V2 = rule("vllm-speculative-v2-block-manager", "vLLM in LMI 0.30/0.31: speculative_model needs "
               "use_v2_block_manager=true", "add option.use_v2_block_manager: true",
               f"djl-serving@0.30.0-dlc..0.31.0-dlc:{PM}vllm_rb_properties.py validate_speculative_model")
MM = rule("limit-mm-per-prompt-format", "limit_mm_per_prompt is key=int[,key=int] without conflicting repeats "
          "(vLLM in LMI 0.30/0.31, lmi-dist 0.30-0.34; later vLLM reads it as JSON itself)",
          "write e.g. image=1,video=0",
          f"djl-serving@0.30.0-dlc..0.34.0-dlc:{PM}lmi_dist_rb_properties.py, vllm_rb_properties.py "
          "validate_limit_mm_per_prompt")
LONG_LORA = rule("long-lora-scaling-factors", "long_lora_scaling_factors is a number or a tuple/list of numbers "
                 "(a Python literal)", "write e.g. (4.0, 8.0)",
                 f"djl-serving@0.31.0-dlc..{LATEST}:{PM}vllm_rb_properties.py validate_long_lora_scaling_factors")
TOOL_PARSER = rule("tool-call-parser-required", "vLLM: enable_auto_tool_choice=true needs a tool_call_parser",
                   "add option.tool_call_parser (a parser of the bundled vLLM, e.g. hermes, llama3_json)",
                   f"djl-serving@0.32.0-dlc..{LATEST}:{PM}vllm_rb_properties.py validate_tool_call_parser")
REASONING = rule("reasoning-parser-required", "vLLM: enable_reasoning=true needs a reasoning_parser",
                 "add option.reasoning_parser (a parser of the bundled vLLM, e.g. deepseek_r1)",
                 f"djl-serving@0.32.0-dlc..{LATEST}:{PM}vllm_rb_properties.py validate_reasoning_parser")
NEURON_CFG = rule("override-neuron-config-format", "vLLM in LMI 0.32-0.34: override_neuron_config is a dict "
                  "literal", "write e.g. {\"enable_bucketing\": true} as a mapping",
                  f"djl-serving@0.32.0-dlc..0.34.0-dlc:{PM}vllm_rb_properties.py validate_override_neuron_config")
BNB = rule("bitsandbytes-device-map", "HF accelerate (rolling_batch disable): quantize bitsandbytes8/4 "
           "(load_in_8bit/4bit) needs option.device_map", "add option.device_map: auto",
           f"djl-serving@0.29.0-dlc..{LATEST}:{PM}hf_properties.py construct_kwargs_quantize")


def text(ctx: Ctx, key: str) -> str | None:
    """The option as LMI reads it from serving.properties (what the render writes), or None."""
    return format_value(ctx.opts[key]) if key in ctx.opts else None


def uses_vllm_properties(ctx: Ctx) -> bool:
    """VllmRbProperties is built by the vLLM rolling batcher and by the async service (djl_python/lmi_vllm/
    vllm_async_service.py, from 0.33.0-dlc on): rolling_batch vllm, or a recipe whose handler is that service
    (``Derived.vllm_properties``, computed once)."""
    return ctx.derived.vllm_properties


def _literal(raw: str) -> tuple[bool, Any]:
    if len(raw) > LITERAL_MAX:
        return False, None
    try:
        return True, ast.literal_eval(raw)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False, None


@check("tnx-properties", needs=("rolling_batch_ok",))
def check_tnx(ctx: Ctx) -> None:
    assert ctx.release
    # TransformerNeuronXProperties: the family whose every backend reads the tnx keys (families.yaml)
    if "tnx" not in (ctx.facts.key_backends or ()) or not TNX.covers(ctx.release) or ctx.recipe.model.entry_point:
        return
    loader, schema = text(ctx, "model_loader"), text(ctx, "partition_schema")
    if loader == "tnx" and schema == "optimum":
        ctx.error(ctx.opt_path("partition_schema"), TNX_LOADER, "Transformers-NeuronX's model_loader tnx does not "
                  "load optimum cache partitions (LMI refuses it at start-up); use partition_schema safetensors or "
                  "compile_only, or drop model_loader (optimum is then picked from the schema)")
    elif loader == "optimum" and schema != "optimum":
        where = ctx.opt_path("partition_schema") if schema is not None else ctx.opt_path("model_loader")
        ctx.error(where, TNX_LOADER, f"model_loader optimum needs partition_schema optimum (it is "
                  f"{schema or 'not set'}; LMI refuses it at start-up); write partition_schema: optimum or "
                  "drop model_loader")
    compiled = ctx.recipe.compile.enabled or "save_mp_checkpoint_path" in ctx.opts
    if loader == "vllm" and compiled:
        ctx.error(ctx.opt_path("model_loader"), TNX_AOT_VLLM, "model_loader vllm cannot be compiled ahead of time "
                  "by LMI's partition script (compile.enabled / save_mp_checkpoint_path); use model_loader tnx, "
                  "or compile.enabled: false")
    gqa = text(ctx, "group_query_attention")
    allowed = ("shard-over-heads", "shard-over-batch", "replicated-heads", "all-gather-heads")
    if gqa is not None and gqa not in allowed:
        ctx.error(ctx.opt_path("group_query_attention"), TNX_GQA, f"group_query_attention '{gqa}' is not a "
                  f"Transformers-NeuronX GQA method; use one of: {', '.join(allowed)}")
    cle = text(ctx, "context_length_estimate")
    if cle is not None and not all(re.fullmatch(r"\s*[+-]?\d+\s*", p) for p in cle.split(",")):
        ctx.error(ctx.opt_path("context_length_estimate"), TNX_CTX, f"context_length_estimate '{cle}' must be "
                  "integers separated by commas (LMI parses each with int()), e.g. 256,512,1024")


@check("streaming-dynamic-batching", needs=("rolling_batch_ok",))
def check_streaming(ctx: Ctx) -> None:
    assert ctx.release
    if not ALL.covers(ctx.release) or ctx.recipe.model.entry_point:
        return
    streaming = text(ctx, "enable_streaming")
    if streaming is None or streaming.strip().lower() == "false":
        return
    # Python's Properties see option.batch_size only: ModelInfo hands the engine the option.* keys and keeps
    # serving.batch_size for its own batching (wlm/src/main/java/ai/djl/serving/wlm/ModelInfo.java, 0.36.0-lmi27-dlc
    # lines 599-604), so only option.batch_size reaches validate_batch_size.
    value = ctx.opts.get("batch_size")
    if value is not None and str(value).strip().isdigit() and int(str(value).strip()) > 1:
        ctx.error(ctx.opt_path("enable_streaming"), STREAM_DYN, f"enable_streaming={streaming} with "
                  f"option.batch_size={value}: LMI cannot stream with dynamic batching (batch_size > 1 turns "
                  "rolling batch off) and refuses it at start-up; remove enable_streaming or option.batch_size")


@dataclass(frozen=True)
class Requirement:
    """One validator of the shape "when ``when`` holds, ``then`` must hold too" (LMI refuses the rest at
    start-up), run by one properties class over a span of release branches."""

    rule: str
    reader: str  # the properties class that runs it: "vllm" (VllmRbProperties) or "lmi-dist"
    span: Span
    when: Callable[[Ctx], bool]
    then: Callable[[Ctx], bool]
    at: str  # the option the error points at
    message: Callable[[Release], str]


READERS: dict[str, Callable[[Ctx], bool]] = {"vllm": uses_vllm_properties,
                                              "lmi-dist": lambda ctx: ctx.rolling_batch == "lmi-dist"}


def _parser_needed(rule_id: str, flag: str, key: str, example: str) -> Requirement:
    """vLLM's validate_tool_call_parser / validate_reasoning_parser: ``flag=true`` needs ``key``."""
    def message(rel: Release) -> str:
        libs = rel.libraries
        bundled = f"vLLM {libs['vllm']}" if libs.get("vllm") else "the bundled vLLM"
        return (f"{flag}=true needs option.{key} (LMI refuses a missing one at start-up); add {key}: a parser "
                f"registered in {bundled}, e.g. {example}")
    return Requirement(rule_id, "vllm", VLLM_PARSERS, when=lambda ctx: as_bool(ctx.opts.get(flag)) is True,
                       then=lambda ctx: bool(text(ctx, key)), at=flag, message=message)


# In report order (diagnostics at one position keep it).
REQUIREMENTS: tuple[Requirement, ...] = (
    Requirement(FML_DRAFT, "lmi-dist", LMI_DIST_FML,
                when=lambda ctx: text(ctx, "load_format") == "sagemaker_fast_model_loader",
                then=lambda ctx: not ctx.opts.get("speculative_draft_model"), at="speculative_draft_model",
                message=lambda rel: "lmi-dist cannot use speculative decoding with load_format "
                                    "sagemaker_fast_model_loader; remove speculative_draft_model or the load_format"),
    Requirement(SPEC_V2, "vllm", VLLM_SPEC_V2, when=lambda ctx: bool(ctx.opts.get("speculative_model")),
                then=lambda ctx: as_bool(ctx.opts.get("use_v2_block_manager", False)) is True, at="speculative_model",
                message=lambda rel: f"vLLM in {rel.label} needs the V2 block manager for speculative decoding; "
                                    "add option.use_v2_block_manager: true"),
    _parser_needed(TOOL_PARSER, "enable_auto_tool_choice", "tool_call_parser", "hermes"),
    _parser_needed(REASONING, "enable_reasoning", "reasoning_parser", "deepseek_r1"),
)


@check("option-requirements", needs=("rolling_batch_ok",))
def check_requirements(ctx: Ctx) -> None:
    assert ctx.release
    for r in REQUIREMENTS:
        if READERS[r.reader](ctx) and r.span.covers(ctx.release) and r.when(ctx) and not r.then(ctx):
            ctx.error(ctx.opt_path(r.at), r.rule, r.message(ctx.release))


def _check_mm(ctx: Ctx) -> None:
    raw = text(ctx, "limit_mm_per_prompt")
    if raw is None:
        return
    seen: dict[str, int] = {}
    for item in raw.split(","):
        parts = [p.strip().lower() for p in item.split("=")]
        problem = None
        if len(parts) != 2:
            problem = f"'{item.strip()}' is not key=value"
        elif not re.fullmatch(r"[+-]?\d+", parts[1]):
            problem = f"'{parts[1]}' in '{item.strip()}' is not an integer"
        elif parts[0] in seen and seen[parts[0]] != int(parts[1]):
            problem = f"'{parts[0]}' is given twice with different values"
        if problem:
            ctx.error(ctx.opt_path("limit_mm_per_prompt"), MM, f"limit_mm_per_prompt '{raw}': {problem} (LMI "
                      "refuses it at start-up); write e.g. image=1,video=0")
            return
        seen[parts[0]] = int(parts[1])


@check("option-value-formats", needs=("rolling_batch_ok",))
def check_values(ctx: Ctx) -> None:
    """Value formats that the vLLM / lmi-dist properties parse in a validator."""
    assert ctx.release
    rel, vllm, lmi_dist = ctx.release, uses_vllm_properties(ctx), ctx.rolling_batch == "lmi-dist"
    raw = text(ctx, "override_neuron_config")
    if vllm and VLLM_NEURON_CFG.covers(rel) and raw is not None:
        ok, value = _literal(raw)
        if not (ok and isinstance(value, dict)) and not isinstance(ctx.opts["override_neuron_config"], dict):
            ctx.error(ctx.opt_path("override_neuron_config"), NEURON_CFG, "override_neuron_config must be a "
                      "mapping (LMI reads it with ast.literal_eval and refuses anything but a dict); write it as a "
                      "YAML mapping or a {...} literal")
    if (vllm and VLLM_MM.covers(rel)) or (lmi_dist and LMI_DIST_MM.covers(rel)):
        _check_mm(ctx)
    raw = text(ctx, "long_lora_scaling_factors")
    if raw is not None and ((vllm and VLLM_LONG_LORA.covers(rel)) or (lmi_dist and LMI_DIST_LONG_LORA.covers(rel))):
        ok, value = _literal(raw)
        numbers = (int, float)
        good = ok and not isinstance(value, bool) and (
            isinstance(value, numbers) or isinstance(value, tuple)
            or (isinstance(value, list) and all(isinstance(v, numbers) and not isinstance(v, bool) for v in value)))
        if not good:
            ctx.error(ctx.opt_path("long_lora_scaling_factors"), LONG_LORA, f"long_lora_scaling_factors '{raw}' "
                      "is not a number or a list of numbers (LMI refuses it at start-up); write e.g. (4.0, 8.0)")


@check("bitsandbytes-device-map", needs=("rolling_batch_ok",))
def check_bitsandbytes(ctx: Ctx) -> None:
    assert ctx.release
    # HuggingFaceProperties of the HF accelerate handler (djl_python/huggingface.py), not the async services
    if ctx.rolling_batch != "disable" or not ALL.covers(ctx.release) or not ctx.facts.hf_accelerate \
            or ctx.recipe.model.entry_point or ctx.derived.entry_point != "djl_python.huggingface":
        return
    if "device_map" in ctx.opts:
        return
    quantize = text(ctx, "quantize")
    for key, method in (("load_in_8bit", "bitsandbytes8"), ("load_in_4bit", "bitsandbytes4")):
        if as_bool(ctx.opts.get(key)) is True:
            quantize, where = method, key
            break
    else:
        where = "quantize"
    if quantize in ("bitsandbytes8", "bitsandbytes4"):
        ctx.error(ctx.opt_path(where), BNB, f"{where}={text(ctx, where)} loads the model with bitsandbytes, which "
                  "HF accelerate only does with a device map (LMI refuses it at start-up: 'device_map should be "
                  "set'); add option.device_map: auto")
