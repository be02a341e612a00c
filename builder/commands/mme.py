"""``lmi-build mme RECIPE -o DIR [--s3 URI]``: one model.tar.gz per model of a multi-model recipe,
for a SageMaker Multi-Model Endpoint (docs/multi-model.md)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

NAME = "mme"
HELP = "write one deterministic <name>.tar.gz per model of a multi-model recipe (SageMaker Multi-Model Endpoints)"
DESCRIPTION = (
    "Validate a multi-model recipe (top-level models:), fetch each model, and write DIR/<name>.tar.gz per model: "
    "its files with its own serving.properties at the root. Byte-identical for the same inputs. With --s3, "
    "upload them under that one prefix (unchanged archives are not sent again). Prints JSON: the archives, the "
    "image to use and the ModelDataUrl."
)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", type=Path, help="multi-model recipe YAML file")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="DIR", help="folder for the archives")
    p.add_argument("--s3", metavar="s3://BUCKET/PREFIX/", help="also upload the archives under this prefix")
    from builder.paths import cache_dir_arg

    p.add_argument("--cache-dir", type=cache_dir_arg, help="artifact cache")


def run(args: argparse.Namespace) -> int:
    from builder.diagnostics import DiagnosticError, UsageError, has_errors
    from builder.multi import is_multi_file
    from builder.multi.layout import fetch, plan_models
    from builder.multi.mme import mme_output
    from builder.multi.validate import validate_multi_path

    if not is_multi_file(args.recipe):
        raise UsageError(f"{args.recipe}: not a multi-model recipe (no top-level models:)",
                         hint="a single-model recipe deploys from S3 with `lmi-build publish --s3` (docs/publish.md)")
    if args.s3:
        from builder.publish.s3_publish import check_uri

        check_uri(args.s3)
    loaded, diags = validate_multi_path(args.recipe, cache_dir=args.cache_dir)
    if has_errors(diags) or loaded.recipe is None:
        raise DiagnosticError(diags, stage="mme")
    plans = plan_models(loaded)
    plans = fetch(plans, cache_dir=args.cache_dir)
    out = mme_output(plans, args.output, s3_uri=args.s3)
    sys.stdout.write(json.dumps(out.model_dump(mode="json"), indent=2) + "\n")
    return 0
