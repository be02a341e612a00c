"""What ``lmi-build build`` was asked to do (``BuildOptions``), and which combinations cannot work.

Made once by the build command, carried by the ``RunContext``; the stages read it, nothing writes it.
Combinations that cannot work are usage errors before any stage runs, not after the fetch and the bake.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from builder.diagnostics import BuilderError, UsageError

SmokeMode = Literal["auto", "always", "never"]


class BuildOptions(BaseModel):
    model_config = ConfigDict(frozen=True)

    recipe: Path
    report: Path | None = None
    cache_dir: Path | None = None
    base_image: str | None = None
    allow_unpinned_base: bool = False
    no_cache: bool = False
    pull: bool = False
    tags: list[str] = Field(default_factory=list)
    smoke: SmokeMode = "auto"
    force_smoke: bool = False
    accelerators: Literal["auto", "none"] = "auto"
    push: bool = False
    registry: str | None = None
    assembler: Literal["docker", "registry"] = "docker"
    manifest_format: Literal["docker", "oci"] = "docker"  # registry assembler (builder/registry/manifest.py)
    compile_executor: Literal["docker", "local"] | None = None
    skip_smoke: bool = False
    allow_dev_runtime: bool = False
    lmi_check: bool = False
    cache_remote: str | None = None  # s3://bucket/prefix/ behind the caches (None: LMI_BUILD_CACHE_REMOTE)
    s3: str | None = None  # S3 artifacts for the stock image (builder/publish/s3_publish.py)
    s3_prune: bool = False


# docker-assembler options the registry assembler has no use for: said, not dropped quietly
_DOCKER_ONLY = (
    ("--pull", "pull", "the base's manifest is read from its registry on every build"),
    ("--no-cache", "no_cache", "there is no build cache to bypass; only blobs the registry already holds (by digest) "
                               "are skipped"),
    ("--allow-unpinned-base", "allow_unpinned_base", "a registry base is pinned by the digest its registry answers"),
)


def check_options(opts: BuildOptions) -> None:
    """Single-model builds: option combinations that cannot work."""
    if opts.assembler == "registry" and not opts.registry:
        raise UsageError("--assembler registry needs --registry HOST[:PORT]/REPO")
    _check_report(opts)
    if opts.manifest_format != "docker" and opts.assembler != "registry":
        raise UsageError(f"--manifest-format {opts.manifest_format} needs --assembler registry "
                         "(docker push writes Docker v2 schema 2 manifests)")
    _check_targets(opts)
    if opts.tags and opts.assembler == "registry":  # never dropped without a word
        raise UsageError("--tag names local image tags, and --assembler registry makes no local image",
                         hint="tag the registry image with publish.tags in the recipe (moved at --push), or build "
                              "with the docker assembler")
    if opts.assembler == "registry":
        for flag, on, why in _DOCKER_ONLY:
            if getattr(opts, on):
                from builder import console

                console.warn(f"{flag} has no effect with --assembler registry: {why}")
    if opts.tags and opts.assembler == "docker":
        from builder.image.bake import check_tags

        try:
            check_tags(opts.tags)
        except BuilderError as exc:
            raise UsageError(str(exc), hint=exc.hint) from None


def check_multi_options(opts: BuildOptions) -> None:
    """Multi-model builds (docs/multi-model.md): what only the single-model path has is refused, not ignored."""
    if opts.assembler == "registry":
        # the registry assembler builds one model's layer plan; a store of several model folders is baked by
        # the docker engine and pushed by the publisher instead
        raise UsageError("--assembler registry: not available for multi-model recipes (the registry assembler "
                         "lays out one model; docs/multi-model.md)",
                         hint="build with the default docker assembler and publish with --push (publish.ecr, "
                              "publish.registry or --registry)")
    unsupported = [flag for flag, on in (("--tag", bool(opts.tags)),
                                         ("--compile-executor", bool(opts.compile_executor)),
                                         ("--lmi-check", opts.lmi_check)) if on]
    if unsupported:
        raise UsageError(f"{', '.join(unsupported)}: not available for multi-model recipes yet (docs/multi-model.md)",
                         hint="build with the docker engine; publish with --push (image and/or --s3 archives)")
    _check_targets(opts)
    _check_report(opts)


def _check_report(opts: BuildOptions) -> None:
    if opts.report is not None and opts.report.is_dir():
        raise UsageError(f"--report {opts.report} is a folder; give the file the build record is written to",
                         hint=f"e.g. --report {opts.report / 'build-record.json'}")


def _check_targets(opts: BuildOptions) -> None:
    if opts.registry:
        from builder.publish.models import split_registry

        try:
            split_registry(opts.registry)
        except ValueError as exc:
            raise UsageError(f"--registry: {exc}") from None
    if opts.s3:
        from builder.publish.s3_publish import check_uri

        check_uri(opts.s3)
