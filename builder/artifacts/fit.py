"""Hardware fit: will the model's weights and KV cache fit the target's accelerators?

From ``config.json`` and safetensors headers only (no torch, no weights read). The estimate covers
weights and KV cache, not activations or CUDA graphs: the memory fraction (vLLM
``gpu_memory_utilization``, default 0.9; TensorRT-LLM ``kv_cache_free_gpu_mem_fraction``, default 0.95,
reference/lmi-runtime.md §8.3) is the head-room LMI itself leaves for those.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from pydantic import BaseModel

from builder.artifacts.safetensors_header import DTYPE_BYTES, HeaderError, read_header
from builder.diagnostics import BuilderError, Diagnostic
from builder.lmi.resolve import Resolved
from builder.recipe.loader import LoadedRecipe

STAGE = "fit"
DTYPE_NAME_BYTES = {"fp32": 4, "float32": 4, "float": 4, "fp16": 2, "float16": 2, "half": 2, "bf16": 2,
                    "bfloat16": 2, "fp8": 1, "int8": 1, "float8_e4m3fn": 1, "fp8_e4m3": 1, "fp8_e5m2": 1}
GIB = 1 << 30


class FitReport(BaseModel):
    model_type: str | None
    parameters: int
    weight_bytes: int  # as stored
    runtime_weight_bytes: int  # at the serving dtype (option.dtype) when it differs from the stored one
    dtype: str
    layers: int
    hidden_size: int
    attention_heads: int
    kv_heads: int
    head_dim: int
    kv_dtype_bytes: int
    kv_cache_bytes_per_token: int  # 2 * layers * kv_heads * head_dim * dtype bytes
    max_seq_len: int
    max_seq_len_from: str
    batch_size: int  # max_rolling_batch_size (or batch_size)
    kv_cache_bytes: int  # for batch_size sequences of max_seq_len tokens
    instance_type: str
    accelerator: str
    devices: int
    device_memory_bytes: int
    tensor_parallel_degree: int
    pipeline_parallel_degree: int
    weights_per_device_bytes: int
    kv_cache_per_device_bytes: int
    memory_fraction: float
    memory_fraction_key: str
    max_batch_that_fits: int | None  # at max_seq_len, within the memory fraction
    fits: bool  # weights and KV cache within the memory fraction, TP divides the attention heads
    problems: list[str]


def _cfg(config: dict, *names: str, default=None):
    for src in (config, config.get("text_config") or {}, config.get("llm_config") or {}):
        for n in names:
            if src.get(n) is not None:
                return src[n]
    return default


def _opt(props: dict[str, str], key: str) -> str | None:
    return props.get(f"option.{key}")


def _int_opt(props: dict[str, str], key: str) -> int | None:
    v = _opt(props, key)
    return int(v) if v is not None and v.strip().isdigit() else None


def weights_from_headers(model_dir: Path) -> tuple[int, int, str]:
    """(parameters, bytes, dominant dtype) from safetensors headers; falls back to pickle file sizes."""
    files = sorted(model_dir.glob("*.safetensors"))
    params = nbytes = 0
    by_dtype: dict[str, int] = {}
    for f in files:
        try:
            tensors = read_header(f)
        except HeaderError as exc:
            raise BuilderError(str(exc), stage=STAGE) from None
        for t in tensors:
            params += t.numel
            nbytes += t.nbytes
            by_dtype[t.dtype] = by_dtype.get(t.dtype, 0) + t.nbytes
    if files:
        return params, nbytes, max(by_dtype, key=by_dtype.get) if by_dtype else "F16"  # type: ignore[arg-type]
    bins = sorted(model_dir.glob("pytorch_model*.bin"))
    if not bins:
        raise BuilderError(f"{model_dir}: no *.safetensors or pytorch_model*.bin weights to size", stage=STAGE)
    nbytes = sum(b.stat().st_size for b in bins)  # pickle overhead is small next to the tensors
    return nbytes // 2, nbytes, "F16"


def _max_len(props: dict[str, str], resolved: Resolved, config: dict) -> tuple[int, str]:
    for key in ("max_model_len", "max_seq_len", "n_positions"):
        v = _int_opt(props, key)
        if v:
            return v, f"option.{key}"
    i, o = _int_opt(props, "max_input_len"), _int_opt(props, "max_output_len")
    if i and o:
        return i + o, "option.max_input_len + option.max_output_len"
    comp = resolved.recipe.compile
    if comp.enabled and comp.max_seq_len:
        return comp.max_seq_len, "compile.max_seq_len"
    v = _cfg(config, "max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx")
    if v:
        return int(v), "config.json max_position_embeddings"
    return 2048, "default (config.json names no maximum length)"


def fit_report(model_dir: Path, resolved: Resolved) -> FitReport:
    cfg_path = Path(model_dir) / "config.json"
    try:
        config = json.loads(cfg_path.read_text())
    except OSError:
        raise BuilderError(f"{cfg_path}: missing; the fit check needs the model's config.json", stage=STAGE) from None
    except ValueError as exc:
        raise BuilderError(f"{cfg_path}: not valid JSON ({exc})", stage=STAGE) from None
    props = resolved.properties
    inst = resolved.instance

    params, stored_bytes, stored_dtype = weights_from_headers(Path(model_dir))
    layers = int(_cfg(config, "num_hidden_layers", "n_layer", "num_layers", "n_layers", default=0))
    hidden = int(_cfg(config, "hidden_size", "n_embd", "d_model", "dim", default=0))
    heads = int(_cfg(config, "num_attention_heads", "n_head", "num_heads", "n_heads", default=0))
    if not (layers and hidden and heads):
        raise BuilderError(f"{cfg_path}: cannot find layers/hidden size/attention heads "
                           f"(model_type {config.get('model_type')!r})", stage=STAGE)
    kv_heads = int(_cfg(config, "num_key_value_heads", "n_kv_heads", "num_kv_heads", "n_head_kv",
                        default=1 if config.get("multi_query") else heads))
    head_dim = int(_cfg(config, "head_dim", default=0) or hidden // heads)

    opt_dtype = (_opt(props, "dtype") or "auto").lower()
    stored_unit = DTYPE_BYTES.get(stored_dtype, 2)
    run_unit = DTYPE_NAME_BYTES.get(opt_dtype, stored_unit)
    runtime_weights = stored_bytes if run_unit == stored_unit else int(stored_bytes / stored_unit * run_unit)
    kv_unit = DTYPE_NAME_BYTES.get((_opt(props, "kv_cache_dtype") or "").lower(), run_unit)
    per_token = 2 * layers * kv_heads * head_dim * kv_unit

    max_len, max_len_from = _max_len(props, resolved, config)
    batch = _int_opt(props, "max_rolling_batch_size") or int(props.get("batch_size", "1") or 1)
    kv_total = per_token * max_len * batch

    tp = max(1, resolved.tensor_parallel_degree)
    pp = max(1, _int_opt(props, "pipeline_parallel_degree") or 1)
    if inst.kind == "cpu":
        device_mem = inst.host_memory_gib * GIB
    else:
        device_mem = inst.device_memory_bytes
    weights_dev = math.ceil(runtime_weights / (tp * pp))
    # KV heads shard across TP ranks; with fewer KV heads than ranks they are replicated.
    kv_share = math.ceil(kv_heads / tp) / kv_heads if kv_heads else 1.0
    kv_dev = math.ceil(kv_total * kv_share / pp)

    if resolved.rolling_batch == "trtllm":
        key = "kv_cache_free_gpu_mem_fraction"
        frac = float(_opt(props, key) or 0.95)
        kv_budget = (device_mem - weights_dev) * frac  # TRT-LLM: a fraction of what the weights leave free
    else:
        key = "gpu_memory_utilization"
        frac = float(_opt(props, key) or 0.9)
        kv_budget = device_mem * frac - weights_dev  # vLLM: weights + KV within the fraction
    per_seq_dev = per_token * max_len * kv_share / pp
    max_batch = max(0, int(kv_budget // per_seq_dev)) if per_seq_dev > 0 else None

    problems = []
    if weights_dev > device_mem:
        problems.append("weights per device exceed device memory")
    if kv_dev > kv_budget:
        problems.append("weights + KV cache exceed the memory fraction")
    if heads % tp:
        problems.append("tensor_parallel_degree does not divide the attention heads")
    return FitReport(
        model_type=config.get("model_type"), parameters=params, weight_bytes=stored_bytes,
        runtime_weight_bytes=runtime_weights, dtype=opt_dtype if opt_dtype != "auto" else stored_dtype.lower(),
        layers=layers, hidden_size=hidden, attention_heads=heads, kv_heads=kv_heads, head_dim=head_dim,
        kv_dtype_bytes=kv_unit, kv_cache_bytes_per_token=per_token, max_seq_len=max_len,
        max_seq_len_from=max_len_from, batch_size=batch, kv_cache_bytes=kv_total, instance_type=inst.name,
        accelerator=inst.accelerator, devices=inst.devices, device_memory_bytes=device_mem,
        tensor_parallel_degree=tp, pipeline_parallel_degree=pp, weights_per_device_bytes=weights_dev,
        kv_cache_per_device_bytes=kv_dev, memory_fraction=frac, memory_fraction_key=key,
        max_batch_that_fits=max_batch, fits=not problems, problems=problems)


def _gib(n: float) -> str:
    return f"{n / GIB:.2f} GiB"


def fit_diagnostics(report: FitReport, loaded: LoadedRecipe) -> list[Diagnostic]:
    """Located diagnostics (rule ids fit-weights, fit-kv-cache, fit-tp-heads, fit-tp-kv-heads)."""
    recipe = loaded.recipe
    opts = recipe.serving.option if recipe else {}
    tp_path: tuple = (("serving", "option", "tensor_parallel_degree") if "tensor_parallel_degree" in opts
                      else ("target", "instance_type"))
    out: list[Diagnostic] = []
    tp, dev = report.tensor_parallel_degree, report.device_memory_bytes
    where = f"{report.instance_type} ({report.devices} x {report.accelerator}, {_gib(dev)} each)"
    if report.weights_per_device_bytes > dev:
        need = math.ceil(report.runtime_weight_bytes / dev)
        out.append(loaded.at(tp_path, "fit-weights",
                             f"weights need {_gib(report.weights_per_device_bytes)} per device at "
                             f"tensor_parallel_degree={tp}, more than the {_gib(dev)} of one device of {where}; "
                             f"use at least {need} devices (a larger instance) or a quantized model"))
    elif "weights + KV cache exceed the memory fraction" in report.problems:
        path: tuple = (("serving", "option", "max_rolling_batch_size") if "max_rolling_batch_size" in opts
                       else ("target", "instance_type"))
        fits = report.max_batch_that_fits
        out.append(loaded.at(path, "fit-kv-cache",
                             f"weights ({_gib(report.weights_per_device_bytes)}/device) + KV cache for "
                             f"{report.batch_size} sequences of {report.max_seq_len} tokens "
                             f"({_gib(report.kv_cache_per_device_bytes)}/device) exceed "
                             f"{report.memory_fraction_key}={report.memory_fraction} of {_gib(dev)}; "
                             f"at most {fits} sequences of that length fit: lower max_rolling_batch_size "
                             f"or the maximum length ({report.max_seq_len_from})", "warning"))
    if report.attention_heads % tp:
        divisors = [d for d in range(1, report.devices + 1) if report.attention_heads % d == 0]
        out.append(loaded.at(tp_path, "fit-tp-heads",
                             f"tensor_parallel_degree={tp} does not divide the model's {report.attention_heads} "
                             f"attention heads; use one of {divisors}"))
    elif report.kv_heads % tp:
        out.append(loaded.at(tp_path, "fit-tp-kv-heads",
                             f"tensor_parallel_degree={tp} does not divide the model's {report.kv_heads} KV heads: "
                             f"KV heads are replicated across ranks, so the KV cache costs "
                             f"{math.ceil(report.kv_heads / tp) * tp / report.kv_heads:.1f}x its sharded size",
                             "warning"))
    return out


# --------------------------------------------------------------------- what is known without a shape
class FileInfo(BaseModel):
    name: str  # relative to the model folder, POSIX separators
    bytes: int


class WeightsSummary(BaseModel):
    files: int  # *.safetensors files whose header was read
    tensors: int
    parameters: int
    bytes: int
    dtype: str | None  # the dtype holding the most bytes, as safetensors names it (F32, BF16, ...)
    dtypes: dict[str, int]  # dtype -> bytes
    unreadable: list[str]  # "name: why" for safetensors files whose header could not be read


class ModelSummary(BaseModel):
    model_type: str | None
    architectures: list[str]
    files: list[FileInfo]
    total_bytes: int
    weights: WeightsSummary


def model_summary(model_dir: Path) -> ModelSummary:
    """Files, bytes and safetensors dtypes of any model folder: what ``inspect`` can say about a model
    that a custom handler loads its own way (no transformer shape, so no fit estimate)."""
    root = Path(model_dir)
    files: list[FileInfo] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            p = Path(dirpath) / name
            try:
                files.append(FileInfo(name=p.relative_to(root).as_posix(), bytes=p.stat().st_size))
            except OSError:
                continue  # a broken symlink: nothing to size
    tensors = params = nbytes = n_files = 0
    by_dtype: dict[str, int] = {}
    unreadable: list[str] = []
    for f in files:
        if not f.name.endswith(".safetensors"):
            continue
        try:
            infos = read_header(root / f.name)
        except (HeaderError, OSError, KeyError, TypeError, ValueError) as exc:
            unreadable.append(f"{f.name}: {exc}")
            continue
        n_files += 1
        for t in infos:
            tensors += 1
            params += t.numel
            nbytes += t.nbytes
            by_dtype[t.dtype] = by_dtype.get(t.dtype, 0) + t.nbytes
    config: dict = {}
    try:
        loaded = json.loads((root / "config.json").read_text())
        config = loaded if isinstance(loaded, dict) else {}
    except (OSError, ValueError):
        pass
    archs = config.get("architectures")
    model_type = config.get("model_type")
    return ModelSummary(
        model_type=model_type if isinstance(model_type, str) else None,
        architectures=[str(a) for a in archs] if isinstance(archs, list) else [],
        files=files, total_bytes=sum(f.bytes for f in files),
        weights=WeightsSummary(files=n_files, tensors=tensors, parameters=params, bytes=nbytes,
                               dtype=max(by_dtype, key=lambda k: by_dtype[k]) if by_dtype else None,
                               dtypes=dict(sorted(by_dtype.items())), unreadable=unreadable))
