"""``lmi-build build RECIPE``: the whole pipeline (also ``nox -s build -- RECIPE``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "build"
HELP = "validate -> fetch -> compile -> bake -> smoke -> (publish with --push)"
DESCRIPTION = (
    "Build the model-specific image a recipe describes. Stages: validate (rules + hardware fit), "
    "resolve (catalog defaults made explicit), fetch (model into the artifact cache), runtime (dev-cpu "
    "only), compile (TensorRT-LLM / Neuron AOT, when compile.enabled), bake (docker build or registry "
    "assembly), smoke (run the image like an endpoint), publish (only with --push). A recipe with top-level "
    "models: runs the same stages for every model, then mme (multi-model endpoint archives). Writes a JSON "
    "build record; exits non-zero naming the stage that failed."
)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", type=Path, help="recipe YAML file")
    p.add_argument("--report", type=Path, help="write the build record (JSON) here")
    from builder.paths import cache_dir_arg  # '' is refused, not read as '.'

    p.add_argument("--cache-dir", type=cache_dir_arg, help="artifact cache (default: $LMI_BUILD_CACHE or the user cache dir)")
    from builder.artifacts.remote import remote_arg

    p.add_argument("--cache-remote", type=remote_arg, metavar="S3_URI",
                   help="s3://bucket/prefix/ shared by runners: compile and model entries are looked up there "
                        "before compiling/fetching and uploaded after (default: $LMI_BUILD_CACHE_REMOTE)")
    g = p.add_argument_group("bake")
    g.add_argument("--base-image", help="runtime base image REF (pinned @sha256: or a local image id)")
    g.add_argument("--allow-unpinned-base", action="store_true", help="accept a base that cannot be pinned by digest (docker assembler)")
    g.add_argument("--no-cache", action="store_true", help="rebuild every layer (docker assembler)")
    g.add_argument("--pull", action="store_true", help="pull the base even when present locally (docker assembler)")
    g.add_argument("--tag", dest="tags", action="append", default=[], help="extra local tag (repeatable; docker assembler)")
    g.add_argument("--assembler", choices=["docker", "registry"], default="docker",
                   help="docker: build with the local engine (default); registry: assemble in --registry, no daemon")
    g.add_argument("--manifest-format", choices=["docker", "oci"], default="docker",
                   help="registry assembler: docker (v2 schema 2, gzip layers; default, what SageMaker accepts) "
                        "or oci (refused for ml.* SageMaker targets)")
    g.add_argument("--compile-executor", choices=["docker", "local"],
                   help="run the AOT compile in the runtime image (docker) or in this environment (local)")
    s = p.add_argument_group("smoke")
    s.add_argument("--smoke", choices=["auto", "always", "never"], default="auto",
                   help="auto: SKIPPED with the reason when the target's accelerator is missing; always: fail then")
    s.add_argument("--force-smoke", action="store_true", help="re-run the smoke test even if this image passed before")
    s.add_argument("--accelerators", choices=["auto", "none"], default="auto",
                   help="none: run the container without device requests (CPU-capable runtimes)")
    u = p.add_argument_group("publish")
    u.add_argument("--push", action="store_true", help="publish after a passing smoke test")
    u.add_argument("--registry", help="HOST[:PORT]/REPO (any OCI registry; also the target of --assembler registry)")
    u.add_argument("--skip-smoke", action="store_true", help="allow publishing without a passed smoke test")
    u.add_argument("--allow-dev-runtime", action="store_true", help="allow publishing a dev-cpu image")
    u.add_argument("--s3", metavar="s3://BUCKET/PREFIX/", help="also write the uncompressed artifacts for the stock "
                   "LMI image under this prefix (recipe: publish.s3.uri with --push); see docs/publish.md")
    u.add_argument("--s3-prune", action="store_true", help="delete objects under the prefix that are not in the layout")
    p.add_argument("--lmi-check", action="store_true", help="also run LMI's own djl_python validators")


def run(args: argparse.Namespace) -> int:
    from builder.options import BuildOptions
    from builder.pipeline import run_build

    opts = BuildOptions(
        recipe=args.recipe, report=args.report, cache_dir=args.cache_dir, base_image=args.base_image,
        allow_unpinned_base=args.allow_unpinned_base, no_cache=args.no_cache, pull=args.pull, tags=args.tags,
        smoke=args.smoke, force_smoke=args.force_smoke, accelerators=args.accelerators, push=args.push,
        registry=args.registry, assembler=args.assembler, manifest_format=args.manifest_format,
        compile_executor=args.compile_executor, cache_remote=args.cache_remote,
        skip_smoke=args.skip_smoke, allow_dev_runtime=args.allow_dev_runtime, lmi_check=args.lmi_check,
        s3=args.s3, s3_prune=args.s3_prune)
    record = run_build(opts)  # a recipe with top-level models: runs the multi-model stages (docs/multi-model.md)
    # stdout carries one machine-readable line: the image reference (pinned when assembled in a registry)
    image = record.image
    ref = image["reference"] if image.get("assembler") == "registry" else (image.get("tags") or [image.get("image_id", "")])[0]
    sys.stdout.write(f"{ref}\n")
    return 0
