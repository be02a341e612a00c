"""``lmi-build catalog``: the container releases the builder knows, and where each fact came from."""

from __future__ import annotations

import argparse
import json
import sys

from builder.catalog import Release, load_catalog
from builder.diagnostics import UsageError

NAME = "catalog"
HELP = "list the LMI container releases the builder knows (tag, DJL version, CUDA, libraries, status)"
DESCRIPTION = (
    "'ls' lists every release of every family (or of --family): the name a recipe writes in "
    "container.version (LMI's own numbering for the lmi family, e.g. lmi-27.0.0), the image tag and whether "
    "upstream documents it, the DJL version, CUDA, the bundled vLLM / TensorRT-LLM / Neuron SDK, the "
    "rolling-batch backends and the status. 'show FAMILY VERSION' prints one release with the branch, "
    "commit and file:line of every derived fact. Rows for lmi v11-v27, tensorrt-llm and neuronx are derived "
    "from djl-serving's release branches by scripts/derive_releases.py."
)


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = sub.add_parser("ls", help="one line per release")
    ls.add_argument("--family", help="only this family (lmi, tensorrt-llm, neuronx, cpu, dev-cpu)")
    ls.add_argument("--format", choices=["table", "json"], default="table")
    show = sub.add_parser("show", help="one release, with the provenance of each fact")
    show.add_argument("family")
    show.add_argument("version", help='release name or a DJL version that names one release')


def _engine_library(release: Release) -> str:
    libs = release.libraries
    for key, label in (("tensorrt_llm", "TRT-LLM"), ("neuron_sdk", "Neuron SDK"), ("deepspeed", "DeepSpeed"),
                       ("vllm", "vLLM"), ("djl_python", "djl_python")):
        if key in libs:
            return f"{label} {libs[key]}"
    return "-"


def _status(release: Release) -> str:
    if release.status != "current":
        return release.status
    return "current" + (" (tag inferred)" if release.tag_evidence == "inferred" else "")


def _row(release: Release) -> dict[str, object]:
    return {"family": release.family, "version": release.version, "djl_version": release.djl_version,
            "tag": release.tag, "tag_evidence": release.tag_evidence, "cuda": release.cuda,
            "engine_library": _engine_library(release), "backends": list(release.rolling_batch),
            "status": _status(release), "libraries": dict(release.libraries),
            "branch": release.provenance.get("branch")}


def run(args: argparse.Namespace) -> int:
    catalog = load_catalog()
    if args.action == "show":
        release = catalog.release(args.family, args.version)
        if release is None:
            several = catalog.by_djl(args.family, args.version)
            if several:
                raise UsageError(f"{args.family} {args.version} names {len(several)} releases: "
                                 f"{', '.join(r.version for r in several)}")
            raise UsageError(f"no {args.family} release {args.version!r}",
                             hint=f"lmi-build catalog ls --family {args.family}")
        json.dump(release.model_dump(mode="json"), sys.stdout, indent=2)
        print()
        return 0
    families = [args.family] if args.family else list(catalog.families)
    if args.family and args.family not in catalog.families:
        raise UsageError(f"--family {args.family!r}: known families are {', '.join(catalog.families)}")
    rows = [_row(catalog.release(f, v)) for f in families for v in catalog.versions(f)]  # type: ignore[arg-type]
    if args.format == "json":
        json.dump({"releases": rows}, sys.stdout, indent=2)
        print()
        return 0
    columns = ("family", "version", "djl_version", "tag", "cuda", "engine_library", "backends", "status")
    cells = [[", ".join(v) if isinstance(v := row[c], list) else str(v if v is not None else "-") for c in columns]
             for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for r in cells:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    return 0
