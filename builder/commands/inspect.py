"""``lmi-build inspect RECIPE``: model size, KV cache and whether it fits the target (no download)."""

from __future__ import annotations

import argparse
import json
import sys

NAME = "inspect"
HELP = "estimate a recipe's model memory (weights, KV cache) against its target instance"
DESCRIPTION = (
    "Read the model's config.json and safetensors headers (no weights loaded, nothing downloaded: "
    "the model must be a local folder or already in the cache) and report parameters, weight bytes, "
    "KV-cache bytes per token and for max_rolling_batch_size sequences, and whether it fits the "
    "target's devices at the configured memory fraction."
)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", metavar="RECIPE", help="recipe YAML file")
    p.add_argument("--format", choices=("table", "json"), default="table",
                   help="table on stderr (default) or one JSON object on stdout")
    p.add_argument("--cache-dir", metavar="DIR", help="cache folder (default LMI_BUILD_CACHE or user cache)")


def run(args: argparse.Namespace) -> int:
    from builder.artifacts.fit import fit_diagnostics, fit_report
    from builder.artifacts.locate import local_model_dir
    from builder.console import console, info
    from builder.lmi.resolve import resolve
    from builder.paths import cache_dir
    from builder.recipe.loader import load_or_raise

    loaded = load_or_raise(args.recipe)
    assert loaded.recipe is not None
    resolved = resolve(loaded.recipe)
    folder, where = local_model_dir(loaded.recipe, loaded.base_dir, cache_dir(args.cache_dir))
    report = fit_report(folder, resolved)
    diags = fit_diagnostics(report, loaded)
    if args.format == "json":
        data = report.model_dump(mode="json")
        data["model"] = where
        data["diagnostics"] = [d.to_json() for d in diags]
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return 0
    from rich.table import Table

    gib = 1 << 30
    t = Table(title=f"{loaded.recipe.name}: {where}", show_header=False)
    rows = [
        ("parameters", f"{report.parameters:,} ({report.parameters / 1e9:.2f} B)"),
        ("weights", f"{report.weight_bytes / gib:.2f} GiB stored, {report.runtime_weight_bytes / gib:.2f} GiB "
                    f"at {report.dtype}"),
        ("layers / hidden / heads / KV heads", f"{report.layers} / {report.hidden_size} / "
                                               f"{report.attention_heads} / {report.kv_heads}"),
        ("KV cache per token", f"{report.kv_cache_bytes_per_token:,} bytes"),
        ("KV cache", f"{report.kv_cache_bytes / gib:.2f} GiB for {report.batch_size} x {report.max_seq_len} tokens "
                     f"({report.max_seq_len_from})"),
        ("target", f"{report.instance_type}: {report.devices} x {report.accelerator}, "
                   f"{report.device_memory_bytes / gib:.0f} GiB each"),
        ("parallelism", f"tp={report.tensor_parallel_degree} pp={report.pipeline_parallel_degree}"),
        ("per device", f"weights {report.weights_per_device_bytes / gib:.2f} GiB + KV "
                       f"{report.kv_cache_per_device_bytes / gib:.2f} GiB "
                       f"({report.memory_fraction_key}={report.memory_fraction})"),
        ("max batch at that length", str(report.max_batch_that_fits)),
        ("fits", "yes" if report.fits else "NO: " + "; ".join(report.problems)),
    ]
    for k, v in rows:
        t.add_row(k, v)
    console().print(t)
    for d in diags:
        info(d.format())
    return 0
