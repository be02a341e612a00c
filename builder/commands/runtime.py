"""``lmi-build runtime``: the locally built runtimes (djl_python jar, rootfs image, dev-cpu image)."""

from __future__ import annotations

import argparse
import json
import sys

NAME = "runtime"
HELP = "fetch djl_python from Maven Central and build the dev-cpu development runtime"
DESCRIPTION = (
    "Actions: 'fetch' resolves DJL's Python engine jar (ai.djl.python:python) into the cache; "
    "'build dev-cpu' builds the dev-cpu runtime image (and its debootstrap rootfs base) when missing; "
    "'build dev-cpu --variant hf' builds the opt-in variant with torch + transformers for the HF-accelerate "
    "handler on CPU (Debian trixie, about 1.3 GB; docs/hf-cpu.md); "
    "'ls' lists the runtime images on this engine. Machine-readable results go to stdout as JSON."
)


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    fetch = sub.add_parser("fetch", help="resolve the djl_python jar into the cache and print where it is")
    fetch.add_argument("--refresh", action="store_true", help="fetch again even when cached")
    build = sub.add_parser("build", help="build a runtime image (only dev-cpu is built locally)")
    build.add_argument("runtime", choices=["dev-cpu"])
    build.add_argument("--variant", choices=["default", "hf"], default="default",
                       help="hf: the opt-in variant with torch, transformers and peft for option.entryPoint="
                            "djl_python.huggingface on CPU (Debian trixie rootfs, GBs; see docs/hf-cpu.md)")
    build.add_argument("--rebuild", action="store_true", help="rebuild the runtime image even when tagged")
    build.add_argument("--rebuild-rootfs", action="store_true", help="also remake the base rootfs image")
    build.add_argument("--runtime-base", metavar="REF",
                       help="make the rootfs FROM this digest-pinned debian:bookworm-slim@sha256:... "
                            "(machines that can pull) instead of debootstrap")
    sub.add_parser("ls", help="list rootfs and runtime images the builder made on this engine")
    for p in (fetch, build, sub.choices["ls"]):
        p.add_argument("--cache-dir", help="cache folder (default: $LMI_BUILD_CACHE or the user cache dir)")


def run(args: argparse.Namespace) -> int:
    if args.action == "fetch":
        from builder.console import info
        from builder.runtime import maven

        jar = maven.fetch_jar(cache_dir=args.cache_dir, refresh=args.refresh)
        info(f"{jar.coordinate}: {jar.path} ({'fetched' if jar.fetched else 'cached'}, sha1 {jar.sha1})")
        _emit(jar.model_dump(mode="json"))
        return 0
    if args.action == "build" and args.variant == "hf":
        from builder.console import info
        from builder.diagnostics import UsageError
        from builder.runtime.hf import ensure_hf_runtime

        if args.runtime_base:
            raise UsageError("--runtime-base applies to the default variant only (the hf variant's rootfs is "
                             "Debian trixie, made with debootstrap)")
        image = ensure_hf_runtime(args.cache_dir, rebuild=args.rebuild, rebuild_rootfs=args.rebuild_rootfs)
        info(f"{image.ref} {'built' if image.built else 'already built (cached)'}")
        _emit(image.model_dump(mode="json"))
        return 0
    if args.action == "build":
        from builder.engine import docker_client
        from builder.runtime.devcpu import ensure_devcpu_runtime
        from builder.runtime.rootfs import ensure_rootfs_image

        client = docker_client("runtime")
        if args.rebuild_rootfs:
            ensure_rootfs_image(client, cache_dir=args.cache_dir, rebuild=True, runtime_base=args.runtime_base)
        image = ensure_devcpu_runtime(args.cache_dir, rebuild=args.rebuild or args.rebuild_rootfs,
                                      client=client, runtime_base=args.runtime_base)
        from builder.console import info

        info(f"{image.ref} {'built' if image.built else 'already built (cached)'}")
        _emit(image.model_dump(mode="json"))
        return 0
    from builder import labels as L
    from builder.engine import docker_client

    client = docker_client("runtime")
    rows = []
    for img in client.api.images(filters={"label": [f"{L.MANAGED}=true"]}):
        labels = img.get("Labels") or {}
        if labels.get(L.ROLE) in ("runtime", "rootfs"):
            rows.append({"tags": img.get("RepoTags") or [], "id": img["Id"], "role": labels.get(L.ROLE),
                         "djl_python_version": labels.get(L.DJL_PYTHON_VERSION),
                         "size_mb": round(img.get("Size", 0) / 1e6, 1)})
    _emit(rows)
    return 0


def _emit(doc) -> None:
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")
