"""``lmi-build serve``: run an image as a local endpoint on 127.0.0.1 until Ctrl-C."""

from __future__ import annotations

import argparse
import time

NAME = "serve"
HELP = "run an image as a local endpoint on 127.0.0.1 (Ctrl-C stops and removes it)"
DESCRIPTION = (
    "Start IMAGE (or the image a RECIPE builds) with host networking on a 127.0.0.1 port, print the "
    "URL and a ready-to-paste curl line once /ping answers 200, stream the server log, and remove "
    "the container on Ctrl-C. 'lmi-build predict' reuses a running serve container of the same image."
)


def configure(p: argparse.ArgumentParser) -> None:
    from builder.smoke.cli_args import add_image_argument, add_runtime_options

    add_image_argument(p)
    add_runtime_options(p)
    p.add_argument("--readiness-timeout", type=float, default=None, metavar="S",
                   help="give up when /ping is not 200 after S seconds (default: from the image)")


def run(args: argparse.Namespace) -> int:
    from builder import console
    from builder.engine import docker_client
    from builder.smoke.cli_args import check_port, parse_env, resolve_image
    from builder.smoke.container import interruptible
    from builder.smoke.image_info import inspect_image
    from builder.smoke.serving import make_server, pick_port

    check_port(args.port)
    env = parse_env(args.env)
    client = docker_client("smoke")
    info = inspect_image(client, resolve_image(args.image))
    port = pick_port(args.port)
    box = make_server(client, info, accelerators=args.accelerators, port=port, env=env)
    try:
        with interruptible():
            _serve(box, info, args.readiness_timeout)
    except KeyboardInterrupt:  # Ctrl-C is how a serve session ends: not an error
        console.info("stopped")
    return 0


def _serve(box, info, readiness_timeout: float | None) -> None:
    from builder import console
    from builder.diagnostics import BuilderError
    from builder.smoke.serving import curl_line, follow_logs, wait_until_ready

    try:
        box.start()
        console.step(f"serving {info.ref} as {box.name} on {box.url} (Ctrl-C stops and removes it)")
        follow_logs(box)
        seconds = wait_until_ready(box, info, deadline_s=readiness_timeout)
        print(box.url, flush=True)  # stdout: the one machine-readable answer
        console.step(f"ready after {seconds:.1f} s: {box.url}")
        from builder.multi.smoke import curl_lines

        for line in curl_lines(box.url, info) or [curl_line(box.url, info.settings.prompt,
                                                            info.settings.max_new_tokens)]:
            console.info(line)
        while True:
            running, code, status = box.state()
            if not running:
                raise BuilderError(f"the server {status} with exit code {code}", stage="serve")
            time.sleep(0.5)
    finally:
        box.remove()
        console.info(f"removed container {box.name}")
