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
    "target's devices at the configured memory fraction. For a custom handler (model.entry_point), which "
    "loads the model its own way, the transformer fit does not apply: inspect reports the model's files, "
    "their bytes and the safetensors dtypes and parameters instead (exit 0)."
)
# why the transformer-shaped estimate is skipped (validation skips it for the same reason)
MAX_FILE_ROWS = 20
NOT_APPLICABLE = ("the transformer fit (KV cache, tensor parallelism) does not apply: model.entry_point is a custom "
                  "handler that loads the model its own way")


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", metavar="RECIPE", help="recipe YAML file")
    p.add_argument("--format", choices=("table", "json"), default="table",
                   help="table on stderr (default) or one JSON object on stdout")
    p.add_argument("--cache-dir", metavar="DIR", help="cache folder (default LMI_BUILD_CACHE or user cache)")
    p.add_argument("--layers", action="store_true",
                   help="print the image's layer plan instead (files and bytes per layer, base layer count)")


def run(args: argparse.Namespace) -> int:
    if getattr(args, "layers", False):
        from builder.image import layer_report

        return layer_report.run(args)
    from builder.artifacts.fit import fit_diagnostics, fit_report
    from builder.artifacts.locate import local_model_dir
    from builder.console import console, info
    from builder.lmi.resolve import resolve
    from builder.multi import is_multi_file
    from builder.paths import cache_dir
    from builder.recipe.loader import load_or_raise

    if is_multi_file(args.recipe):
        from builder.diagnostics import UsageError

        raise UsageError(f"{args.recipe}: a multi-model recipe; inspect reads one model (not available for models: "
                         "yet)", hint="lmi-build validate checks every model's fit (docs/multi-model.md)")
    loaded = load_or_raise(args.recipe)
    assert loaded.recipe is not None
    resolved = resolve(loaded.recipe)
    folder, where = local_model_dir(loaded.recipe, loaded.base_dir, cache_dir(args.cache_dir))
    if loaded.recipe.model.entry_point:
        return _custom(loaded, folder, where, args.format)
    report = fit_report(folder, resolved)
    diags = fit_diagnostics(report, loaded)
    if args.format == "json":
        data = report.model_dump(mode="json")
        data["model"] = where
        data["fit_applies"] = True
        data["diagnostics"] = [d.to_json() for d in diags]
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return 0
    from rich.table import Table

    gib = 1 << 30
    t = Table(title=_cell(f"{loaded.recipe.name}: {where}"), show_header=False)
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
        t.add_row(_cell(k), _cell(v))  # recipe values and file names: no markup, no terminal controls
    console().print(t)
    for d in diags:
        info(d.format())
    return 0


def _custom(loaded, folder, where: str, fmt: str) -> int:
    """What is known about a model a custom handler loads: files, bytes, safetensors dtypes."""
    from builder.artifacts.fit import model_summary
    from builder.console import console, info

    recipe = loaded.recipe
    summary = model_summary(folder)
    handler = loaded.base_dir / recipe.model.entry_point
    handler_bytes = handler.stat().st_size if handler.is_file() else None
    if fmt == "json":
        data = {"model": where, "fit_applies": False, "reason": NOT_APPLICABLE,
                "handler": {"entry_point": recipe.model.entry_point, "bytes": handler_bytes},
                "instance_type": recipe.target.instance_type, **summary.model_dump(mode="json")}
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return 0
    from rich.table import Table

    w = summary.weights
    t = Table(title=_cell(f"{recipe.name}: {where}"), show_header=False)
    rows = [("handler", f"{recipe.model.entry_point}" + (f" ({handler_bytes:,} bytes)" if handler_bytes is not None
                                                         else "")),
            ("model type", " / ".join(x for x in [summary.model_type or "", ", ".join(summary.architectures)] if x)
             or "(no config.json model_type)"),
            ("files", f"{len(summary.files)}, {summary.total_bytes:,} bytes")]
    shown = summary.files[:MAX_FILE_ROWS]  # a sharded model has hundreds; --format json lists them all
    rows += [(f"  {f.name}", f"{f.bytes:,} bytes") for f in shown]
    if len(summary.files) > len(shown):
        rows.append(("  ...", f"{len(summary.files) - len(shown)} more (--format json lists every file)"))
    if w.files:
        dtypes = ", ".join(f"{d} {n:,} bytes" for d, n in w.dtypes.items()) or "no tensors"
        rows.append(("weights (safetensors headers)", f"{w.parameters:,} parameters in {w.tensors} tensors, "
                                                      f"{w.bytes:,} bytes; dtype {w.dtype or '-'} ({dtypes})"))
    else:
        rows.append(("weights (safetensors headers)", "no readable *.safetensors file"))
    rows += [("unreadable", u) for u in w.unreadable]
    rows.append(("target", recipe.target.instance_type))
    rows.append(("fit", "not applicable"))
    for k, v in rows:
        t.add_row(_cell(k), _cell(v))  # recipe values and file names: no markup, no terminal controls
    console().print(t)
    info(NOT_APPLICABLE)
    return 0


def _cell(text: str) -> str:
    from rich.markup import escape

    from builder.console import printable

    return escape(printable(str(text), newlines=False))
