"""Compile-only settings (``compile:``) -> the properties the partition tool reads, and the checks that
the runtime settings stay within what the engine is built for.

TensorRT-LLM (reference/lmi-runtime.md §8.3): every property becomes ``--key value`` for
``trtllm-build``; ``max_rolling_batch_size`` is copied to ``max_batch_size``; quantization is
``quant_algo`` (toolkit era, v0.29.0: ``quantize``). Neuron (§8.4, §11.3): ``n_positions`` and
``max_rolling_batch_size`` fix the compiled shapes, ``quantize`` only ``static_int8``.
"""

from __future__ import annotations

from typing import Any

from builder.catalog.facts import load_facts, since
from builder.diagnostics import Diagnostic
from builder.lmi.properties import format_value
from builder.lmi.resolve import Resolved
from builder.recipe.loader import LoadedRecipe

# the families with a compile: option map in builder/catalog/families.yaml
AOT_FAMILIES = tuple(name for name, f in load_facts().families.items() if f.compile is not None)
NEURON_ENTRY_POINT = load_facts().of("neuronx").handler or "djl_python.transformers_neuronx"
# Build-time keys LMI does not expose at runtime (§8.3): they belong under compile:
BUILD_ONLY_KEYS = {"quant_algo", "kv_cache_quant_algo", "group_size", "smoothquant_val", "clamp_val",
                   "use_meta_recipe", "has_zero_point", "pre_quant_scales", "exclude_modules", "calib_dataset",
                   "calib_batches", "calib_batch_size", "calib_max_seq_length", "random_seed",
                   "tokenizer_max_seq_length"}


def compile_options(resolved: Resolved) -> dict[str, Any]:
    """option.* keys (without the prefix) the compile adds or fixes, from ``compile:``."""
    c = resolved.recipe.compile
    facts = load_facts().of(resolved.release.family).compile
    out: dict[str, Any] = {}
    if facts is not None:
        # the toolkit era (tensorrt-llm before 0.30) had other keys (families.yaml toolkit_options)
        toolkit = facts.toolkit_before is not None and not since(resolved.release.djl_version, facts.toolkit_before)
        keys = {**facts.options, **(facts.toolkit_options if toolkit else {})}
        for field in ("max_input_len", "max_seq_len", "max_num_tokens", "max_batch_size", "quantization"):
            value = getattr(c, field)
            if not value or field not in keys:
                continue
            if keys[field] == "max_output_len":  # "now maps to max_seq_len" (§8.3): output = seq - input
                value = c.max_seq_len - (c.max_input_len or 1024)
            out[keys[field]] = value
    out.update(c.calibration)
    out.update(c.options)
    return out


def compile_properties(resolved: Resolved, *, model_dir: str, output_dir: str) -> dict[str, str]:
    """The serving.properties handed to the partition tool (paths as the tool sees them)."""
    props = {k: v for k, v in resolved.properties.items()
             if k not in ("option.model_id", "option.revision")}
    for key, value in compile_options(resolved).items():
        props[f"option.{key}"] = format_value(value)
    props["option.model_id"] = model_dir
    facts = load_facts().of(resolved.release.family)
    if facts.compile is not None and facts.compile.output_dir_option:  # neuronx: partition.py (§11.2)
        props["engine"] = facts.required_engine.get("*", props["engine"])  # the Neuron handler's Python engine
        props["option.entryPoint"] = props.get("option.entryPoint") or facts.handler or NEURON_ENTRY_POINT
        props[f"option.{facts.compile.output_dir_option}"] = output_dir  # §11.2: required by partition.py
    return dict(sorted(props.items()))


def runtime_overrides(resolved: Resolved) -> dict[str, str]:
    """serving.properties values that make the runtime load the compiled folder as built (no JIT):
    the parallel degree and the shapes the engine was built for."""
    out = {"option.tensor_parallel_degree": str(resolved.tensor_parallel_degree)}
    for key, value in compile_options(resolved).items():
        if key in ("max_input_len", "max_seq_len", "max_output_len", "max_num_tokens", "max_rolling_batch_size",
                   "n_positions"):
            out[f"option.{key}"] = format_value(value)
    facts = load_facts().of(resolved.release.family).compile
    if facts is not None and facts.runtime_rolling_batch:  # tensorrt-llm: the compiled engine runs as trtllm
        out["option.rolling_batch"] = facts.runtime_rolling_batch
    return out


def _int(v: Any) -> int | None:
    try:
        return int(v) if not isinstance(v, bool) else None
    except (TypeError, ValueError):
        return None


def compile_diagnostics(loaded: LoadedRecipe, resolved: Resolved) -> list[Diagnostic]:
    """Compile settings against the family and against the runtime settings (located)."""
    recipe = loaded.recipe
    assert recipe is not None
    c = recipe.compile
    out: list[Diagnostic] = []
    if not c.enabled:
        return out
    family = resolved.release.family
    if family not in AOT_FAMILIES or resolved.release.aot is None:
        out.append(loaded.at(("compile", "enabled"), "compile-family",
                             f"container family {family!r} {resolved.release.version} has no ahead-of-time "
                             f"compile; compile applies to {' and '.join(AOT_FAMILIES)}"))
        return out
    opts = recipe.serving.option
    facts = load_facts().of(family)
    comp = facts.compile
    if c.max_input_len and c.max_seq_len and c.max_input_len >= c.max_seq_len:
        out.append(loaded.at(("compile", "max_seq_len"), "compile-lengths",
                             f"compile.max_seq_len ({c.max_seq_len}) must exceed compile.max_input_len "
                             f"({c.max_input_len}): it counts input plus output tokens"))
    batch = _int(opts.get("max_rolling_batch_size"))
    if c.max_batch_size and batch and batch > c.max_batch_size:
        out.append(loaded.at(("serving", "option", "max_rolling_batch_size"), "compile-batch-size",
                             f"max_rolling_batch_size {batch} exceeds compile.max_batch_size {c.max_batch_size}: "
                             f"the engine is built for at most {c.max_batch_size} sequences"))
    limits = [("max_input_len", c.max_input_len), ("max_seq_len", c.max_seq_len), ("max_model_len", c.max_seq_len),
              ("n_positions", c.max_seq_len), ("max_num_tokens", c.max_num_tokens)]
    for key, built in limits:
        value = _int(opts.get(key))
        if built and value and value > built:
            src = "max_seq_len" if key in ("max_model_len", "n_positions") else key
            out.append(loaded.at(("serving", "option", key), "compile-limit",
                                 f"option.{key} {value} exceeds compile.{src} {built} the engine is built for"))
    exact = comp.exact_length_option if comp else None  # neuronx: n_positions (§8.4, §11.3)
    if exact and c.max_seq_len and _int(opts.get(exact)) not in (None, c.max_seq_len):
        out.append(loaded.at(("serving", "option", exact), "compile-limit",
                             f"option.{exact} must equal compile.max_seq_len ({c.max_seq_len}): Neuron "
                             f"graphs are compiled for one sequence length", "error"))
    for key in sorted(set(opts) & BUILD_ONLY_KEYS):
        out.append(loaded.at(("serving", "option", key), "compile-only-key",
                             f"option.{key} is a build-time setting LMI ignores at runtime (§8.3); "
                             f"move it under compile.options or compile.calibration", "warning", key=True))
    allowed = comp.quantizations if comp else None  # neuronx: static_int8 only (§8.4)
    if allowed and c.quantization and c.quantization not in allowed:
        out.append(loaded.at(("compile", "quantization"), "compile-quantization",
                             f"{facts.display_name or family} accepts only quantization "
                             f"{' or '.join(repr(q) for q in allowed)} (got {c.quantization!r})"))
    return out
