"""``lmi-build smoke``: run a built image like an LMI endpoint and judge its answers."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "smoke"
HELP = "smoke-test a built image: start it, wait for /ping, send generation requests, judge, clean up"
DESCRIPTION = (
    "Start IMAGE (or the image a RECIPE builds) on a 127.0.0.1 port with host networking, wait for "
    "/ping with LMI's semantics (connection refused = loading, 500 or exit = failed), send a "
    "non-streaming and a streaming generation request in LMI's schema, check the answers, record "
    "the outcome for 'publish', and remove the container on every way out. Prompt, deadlines and "
    "target come from the image's labels. Exit 0 passed, 1 failed, 3 skipped (nothing was tested). "
    "'--sweep' removes smoke containers that a crashed run left behind."
)

EXIT_SKIPPED = 3


def configure(p: argparse.ArgumentParser) -> None:
    from builder.smoke.cli_args import add_image_argument, add_runtime_options

    add_image_argument(p, required=False)
    p.add_argument("--smoke", choices=["auto", "always", "never"], default="auto",
                   help="auto (default): SKIP when the target's accelerators are missing here; always: "
                        "fail then; never: skip")
    add_runtime_options(p)
    p.add_argument("--log-dir", type=Path, default=None, help="keep the full container log here")
    p.add_argument("--report", type=Path, default=None, help="write the result as JSON to this file")
    p.add_argument("--readiness-timeout", type=float, default=None, metavar="S",
                   help="override smoke.readiness_timeout_s")
    p.add_argument("--sweep", action="store_true",
                   help="remove smoke/serve/predict containers left by runs whose process is gone, then exit")
    p.add_argument("--force", action="store_true", help="with --sweep: also containers of live runs")


def run(args: argparse.Namespace) -> int:
    from builder import console
    from builder.diagnostics import UsageError
    from builder.engine import docker_client
    from builder.smoke.cli_args import check_port, parse_env, resolve_image
    from builder.smoke.models import SmokeSettings
    from builder.smoke.run import smoke_test

    if args.sweep:
        from builder.smoke.container import sweep

        if args.image:
            raise UsageError("--sweep takes no IMAGE")
        removed = sweep(docker_client("smoke"), force=args.force)
        console.info(f"removed {len(removed)} leftover smoke container(s)"
                     + (": " + ", ".join(c[:12] for c in removed) if removed else ""))
        return 0
    if not args.image:
        raise UsageError("give an IMAGE (or RECIPE) to smoke-test, or --sweep")
    check_port(args.port)
    overrides = SmokeSettings()
    env = parse_env(args.env)
    if env:
        overrides.env = env
    if args.readiness_timeout is not None:
        if args.readiness_timeout <= 0:
            raise UsageError("--readiness-timeout must be positive")
        overrides.readiness_timeout_s = args.readiness_timeout
    image = resolve_image(args.image)
    from builder.multi.smoke import multi_smoke_command

    multi = multi_smoke_command(image, args)  # a multi-model image: one generate per model (docs/multi-model.md)
    if multi is not None:
        return multi
    result = smoke_test(image, mode=args.smoke, accelerators=args.accelerators, log_dir=args.log_dir,
                        docker_client=docker_client("smoke"), port=args.port, overrides=overrides)
    if args.report:
        from builder.atomic import write_report

        write_report(args.report, result.model_dump_json(indent=2) + "\n", stage="smoke")
    return 0 if result.status == "passed" else EXIT_SKIPPED if result.status == "skipped" else 1
