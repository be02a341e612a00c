"""``nox -s gpu_check``: on a GPU host, host preflight + the fit estimate vs what torch allocates.

Generates a small Llama-shaped model with random float16 weights (numpy + safetensors), estimates its
weight bytes from the safetensors headers (builder.artifacts.fit), loads it onto GPU 0 with torch and
compares with ``torch.cuda.memory_allocated``. Prints a table, writes benchmarks/results/gpu_check.json.
Exits 0 with "SKIPPED: <reason>" when there is no GPU or no torch (nothing is faked).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "gpu_check.json"
SHAPE = {"hidden_size": 1024, "intermediate_size": 2816, "num_attention_heads": 16, "num_key_value_heads": 4,
         "num_hidden_layers": 8, "vocab_size": 32000, "max_position_embeddings": 4096}


def _make_model(folder: Path) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    h, i, v, layers = SHAPE["hidden_size"], SHAPE["intermediate_size"], SHAPE["vocab_size"], SHAPE["num_hidden_layers"]
    kv = SHAPE["num_key_value_heads"] * h // SHAPE["num_attention_heads"]
    shapes = {"model.embed_tokens.weight": (v, h), "model.norm.weight": (h,), "lm_head.weight": (v, h)}
    for n in range(layers):
        p = f"model.layers.{n}."
        shapes.update({p + "self_attn.q_proj.weight": (h, h), p + "self_attn.k_proj.weight": (kv, h),
                       p + "self_attn.v_proj.weight": (kv, h), p + "self_attn.o_proj.weight": (h, h),
                       p + "mlp.gate_proj.weight": (i, h), p + "mlp.up_proj.weight": (i, h),
                       p + "mlp.down_proj.weight": (h, i), p + "input_layernorm.weight": (h,),
                       p + "post_attention_layernorm.weight": (h,)})
    rng = np.random.default_rng(0)
    save_file({k: rng.standard_normal(s, dtype=np.float32).astype(np.float16) for k, s in shapes.items()},
              str(folder / "model.safetensors"))
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "torch_dtype": "float16", **SHAPE}
    (folder / "config.json").write_text(json.dumps(cfg))


def _skip(reason: str) -> int:
    print(f"SKIPPED: {reason}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="gpu_check")
    ap.add_argument("--instance", default=None, help="catalog instance to size against (default: one whose "
                                                     "GPU architecture matches this host)")
    args = ap.parse_args(argv)
    from builder.catalog import load_catalog
    from builder.compile.preflight import detect_host, refusal

    host = detect_host()
    if not host.gpus:
        return _skip(f"no NVIDIA GPU on this host ({host.note or 'nvidia-smi listed none'})")
    try:
        import torch
    except ImportError:
        return _skip("torch is not importable (pip install torch on the GPU host)")
    if not torch.cuda.is_available():
        return _skip("torch sees no CUDA device")
    cat = load_catalog()
    gpu = host.gpus[0]
    name = args.instance or next((n for n, i in cat.instances.items() if i.kind == "gpu" and i.arch == gpu.arch
                                  and i.devices == 1), "g5.xlarge")
    instance = cat.instance(name)
    rows: list[tuple[str, str]] = [("host GPUs", f"{len(host.gpus)} x {gpu.name} {gpu.arch}, "
                                                 f"{gpu.memory_bytes / 2**30:.1f} GiB (nvidia-smi)"),
                                   ("catalog instance", f"{name}: {instance.accelerator} {instance.arch}, "
                                                        f"{instance.memory_gib} GiB"),
                                   ("preflight", refusal(host, instance, ranks=1) or "ok: may compile for it")]
    from builder.artifacts.fit import fit_report
    from builder.lmi.resolve import resolve
    from builder.recipe.model import Recipe

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _make_model(folder)
        recipe = Recipe.model_validate({"name": "gpu-check", "model": {"path": str(folder)},
                                        "container": {"family": "lmi", "version": "0.33.0"},
                                        "target": {"instance_type": name},
                                        "serving": {"option": {"max_rolling_batch_size": 8, "max_model_len": 2048}}})
        report = fit_report(folder, resolve(recipe))
        from safetensors.torch import load_file

        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated(0)
        t0 = time.monotonic()
        tensors = load_file(str(folder / "model.safetensors"), device="cuda:0")
        torch.cuda.synchronize()
        load_s = time.monotonic() - t0
        actual = torch.cuda.memory_allocated(0) - base
        # a KV cache of the estimated shape, allocated for real
        per_layer = (2, 8, 2048, report.kv_heads, report.head_dim)
        kv = [torch.empty(per_layer, dtype=torch.float16, device="cuda:0") for _ in range(report.layers)]
        torch.cuda.synchronize()
        kv_actual = torch.cuda.memory_allocated(0) - base - actual
        total_dev = torch.cuda.get_device_properties(0).total_memory
        del tensors, kv
    err = (actual - report.weight_bytes) / report.weight_bytes
    kv_err = (kv_actual - report.kv_cache_bytes) / report.kv_cache_bytes
    rows += [("parameters (headers)", f"{report.parameters:,}"),
             ("weights estimated", f"{report.weight_bytes:,} B"),
             ("weights allocated by torch", f"{actual:,} B ({err:+.3%}), loaded in {load_s:.2f}s"),
             ("KV cache estimated (8 x 2048)", f"{report.kv_cache_bytes:,} B"),
             ("KV cache allocated by torch", f"{kv_actual:,} B ({kv_err:+.3%})"),
             ("device memory torch / nvidia-smi", f"{total_dev:,} B / {gpu.memory_bytes:,} B")]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"gpu": gpu.model_dump(), "instance": name, "weights_estimated": report.weight_bytes,
                                   "weights_allocated": actual, "kv_estimated": report.kv_cache_bytes,
                                   "kv_allocated": kv_actual, "torch_total_memory": total_dev,
                                   "torch_version": torch.__version__}, indent=2))
    return 0 if abs(err) < 0.01 and abs(kv_err) < 0.01 else 1


if __name__ == "__main__":
    sys.exit(main())
