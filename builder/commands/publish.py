"""``lmi-build publish IMAGE``: push a smoke-tested image to ECR and/or an OCI registry, verify it,
print the pinned ``repo@sha256:`` reference(s) on stdout."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from pydantic import SecretStr, ValidationError

from builder.diagnostics import BuilderError, UsageError

NAME = "publish"
HELP = "push a smoke-tested image to ECR or an OCI registry and verify its digest"
DESCRIPTION = (
    "Publish IMAGE (a local reference or id) under its recipe-hash tag plus any --tag, to "
    "--registry HOST[:PORT]/REPO and/or ECR (--ecr-account/--ecr-region/--ecr-repository). "
    "Refuses an image without a passed smoke test unless --skip-smoke. Prints the pinned "
    "repo@sha256:... reference of each target on stdout."
)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", metavar="IMAGE", help="local image reference or id")
    p.add_argument("--registry", action="append", default=[], metavar="HOST[:PORT]/REPO",
                   help="an OCI registry repository to publish to (repeatable)")
    p.add_argument("--ecr-account", metavar="ACCOUNT", help="12-digit AWS account of the ECR registry")
    p.add_argument("--ecr-region", metavar="REGION", help="AWS region of the ECR registry")
    p.add_argument("--ecr-repository", metavar="NAME", help="ECR repository (created if missing: "
                   "IMMUTABLE tags, scan on push, AES256)")
    p.add_argument("--ecr-lifecycle-policy", metavar="FILE", help="lifecycle policy JSON to put on the repository")
    p.add_argument("--registry-host", metavar="HOST[:PORT]",
                   default=os.environ.get("LMI_BUILD_ECR_REGISTRY_HOST"),
                   help="send ECR image bytes to this registry instead of <account>.dkr.ecr.<region>... "
                        "(tests; env LMI_BUILD_ECR_REGISTRY_HOST)")
    p.add_argument("--tag", action="append", default=[], metavar="TEMPLATE",
                   help="extra tag; variables {name} {image_digest} {image_digest12} {recipe_hash} {recipe_hash12} "
                        "{git_sha} {lmi_version}")
    p.add_argument("--no-default-tag", action="store_true", help="do not push the <name>-<image-digest12> tag")
    p.add_argument("--git-sha", metavar="SHA", help="value of {git_sha} (default: the image's "
                   "org.opencontainers.image.revision label, else `git rev-parse HEAD`)")
    p.add_argument("--username", metavar="USER", help="registry user (non-ECR); password via --password-stdin")
    p.add_argument("--password-stdin", action="store_true", help="read the registry password from stdin")
    p.add_argument("--skip-smoke", action="store_true",
                   help="publish even without a passed smoke test (the report says so)")
    p.add_argument("--allow-dev-runtime", action="store_true",
                   help="allow an image built on the dev-cpu development runtime")
    p.add_argument("--force", action="store_true",
                   help="move a tag that points at another digest (mutable registries only)")
    p.add_argument("--retries", type=int, default=3, metavar="N", help="push attempts per tag on "
                   "network errors / 5xx (default 3)")
    p.add_argument("--report", metavar="FILE", help="write the publish result (JSON) here")
    p.add_argument("--s3", metavar="s3://BUCKET/PREFIX/", help="write the image's /opt/ml/model uncompressed under "
                   "this prefix for the stock LMI image; prints the deployment (JSON) on stdout (docs/publish.md)")
    p.add_argument("--s3-prune", action="store_true", help="delete objects under the prefix that are not in the layout")
    p.add_argument("--cache-dir", metavar="DIR", help="cache (smoke ledger); default LMI_BUILD_CACHE or user cache")


def _targets(args):
    from builder.publish.models import EcrTarget, PublishTarget

    ecr_args = (args.ecr_account, args.ecr_region, args.ecr_repository)
    targets = []
    try:
        for reg in args.registry:
            targets.append(PublishTarget(registry=reg))
        if any(ecr_args):
            if not all(ecr_args):
                raise UsageError("ECR needs --ecr-account, --ecr-region and --ecr-repository together")
            policy = None
            if args.ecr_lifecycle_policy:
                try:
                    policy = json.loads(Path(args.ecr_lifecycle_policy).read_text())
                except (OSError, ValueError) as exc:
                    raise UsageError(f"--ecr-lifecycle-policy {args.ecr_lifecycle_policy}: {exc}") from None
            targets.append(PublishTarget(ecr=EcrTarget(account=args.ecr_account, region=args.ecr_region,
                                                       repository=args.ecr_repository,
                                                       lifecycle_policy=policy)))
    except ValidationError as exc:
        raise UsageError("; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())) from None
    if not targets and not getattr(args, "s3", None):
        raise UsageError("no target: give --registry HOST[:PORT]/REPO, the three --ecr-* options or --s3 URI")
    return targets


def _git_sha(args) -> str | None:
    if args.git_sha or not any("{git_sha}" in t for t in args.tag):
        return args.git_sha
    import subprocess

    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except OSError:
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def run(args) -> int:
    from builder.publish import PublishOptions, PublishResult, publish_image

    targets = _targets(args)
    if args.s3:
        from builder.publish.s3_publish import check_uri

        args.s3 = check_uri(args.s3)
    password = None
    if args.password_stdin:
        if not args.username:
            raise UsageError("--password-stdin needs --username")
        password = sys.stdin.read().rstrip("\r\n")
        if not password:
            raise UsageError("--password-stdin: nothing on stdin")
    elif args.username:
        raise UsageError("--username needs --password-stdin (passwords are never taken from argv)")
    if args.retries < 1:
        raise UsageError("--retries must be >= 1")
    options = PublishOptions(
        tags=args.tag, default_tag=not args.no_default_tag, skip_smoke=args.skip_smoke,
        allow_dev_runtime=args.allow_dev_runtime, force=args.force, username=args.username,
        password=SecretStr(password) if password is not None else None, cache_dir=args.cache_dir,
        git_sha=_git_sha(args), ecr_registry_host=args.registry_host, push_attempts=args.retries)
    if not targets:  # --s3 only
        return _publish_s3(args)
    try:
        result = publish_image(args.image, targets, options)
    except BuilderError as exc:
        if args.report:
            _write(args.report, PublishResult(status="failed", image_ref=args.image, image_id="",
                                              smoke="unknown", error=str(exc)).model_dump_json(indent=2))
        raise
    if args.report:
        _write(args.report, result.model_dump_json(indent=2))
    for t in result.targets:
        print(t.pinned)
    return _publish_s3(args) if args.s3 else 0


def _publish_s3(args) -> int:
    from builder.publish.s3_publish import publish_image_to_s3

    publication = publish_image_to_s3(args.image, args.s3, prune=args.s3_prune, skip_smoke=args.skip_smoke,
                                      cache_dir=args.cache_dir)
    text = publication.model_dump_json(indent=2)
    if args.report:
        _write(args.report, text)
    print(text)
    return 0


def _write(path: str, text: str) -> None:
    from builder.atomic import write_report

    write_report(path, text + "\n", stage="publish")  # whole or not at all; a failure is exit 1 with the path
