"""``lmi-build predict``: send one request to an image (a running ``serve`` container, or a
temporary one) and print the answer."""

from __future__ import annotations

import argparse
import sys

from builder.commands._args import positive

NAME = "predict"
HELP = "send one request to an image and print the answer (reuses a running 'lmi-build serve')"
DESCRIPTION = (
    "POST --data to /invocations of IMAGE (or the image a RECIPE builds). If 'lmi-build serve' runs "
    "that image, its container answers; otherwise a temporary container is started on 127.0.0.1, "
    "waited for (/ping 200) and removed afterwards. The answer goes to stdout (streamed line by line "
    "for application/jsonlines). Exit 1 when the server answers 4xx/5xx."
)


def configure(p: argparse.ArgumentParser) -> None:
    from builder.smoke.cli_args import add_image_argument, add_runtime_options

    add_image_argument(p)
    p.add_argument("--data", "-d", required=True, metavar="JSON|@FILE",
                   help='request body, e.g. \'{"inputs": "What is Deep Learning?", "parameters": '
                        '{"max_new_tokens": 32}}\'')
    p.add_argument("--timeout", type=_seconds, default=300, metavar="S",
                   help="deadline for the whole answer, connect to last byte (default 300)")
    p.add_argument("--new", action="store_true", help="always start a temporary container")
    p.add_argument("--model", metavar="NAME", help="multi-model image: the model to ask (POST /predictions/NAME; "
                   "docs/multi-model.md)")
    add_runtime_options(p)


MAX_DATA_BYTES = 16 << 20  # a request body; far above any prompt, far below what would hurt


_seconds = positive("seconds", "300")  # requests reads -1 or 0 as 'fail at once', nan as never


def _data_text(text: str) -> str:
    """``--data @FILE`` read here, bounded and regular files only (``/dev/zero`` or a FIFO would
    never end); inline JSON as is."""
    if not text.startswith("@"):
        return text
    from builder.diagnostics import UsageError
    from builder.userfile import InputFileError, read_text

    try:
        body = read_text(text[1:], limit=MAX_DATA_BYTES, what="request body file")
    except InputFileError as exc:
        raise UsageError(f"--data {text}: {exc.message}") from None
    if body.startswith("@"):  # parse_data would read it as one more @FILE
        raise UsageError(f"--data {text}: the file holds '@...', not JSON")
    return body


def run(args: argparse.Namespace) -> int:
    from builder import console
    from builder.engine import docker_client
    from builder.smoke.cli_args import check_port, parse_env, resolve_image
    from builder.smoke.container import interruptible
    from builder.smoke.image_info import inspect_image
    from builder.smoke.serving import find_running, make_server, parse_data, pick_port, send, wait_until_ready

    check_port(args.port)
    data = parse_data(_data_text(args.data))
    env = parse_env(args.env)
    client = docker_client("smoke")
    info = inspect_image(client, resolve_image(args.image))
    from builder.multi.smoke import predict_path

    path = predict_path(info, getattr(args, "model", None))

    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    running = None if args.new else find_running(client, info.image_id)
    if running is not None:
        cid, port = running
        console.info(f"using the running serve container {cid[:12]} on http://127.0.0.1:{port}")
        status = send(f"http://127.0.0.1:{port}", data, timeout=args.timeout, write=write, path=path)
    else:
        box = make_server(client, info, accelerators=args.accelerators, port=pick_port(args.port), env=env,
                          ephemeral=True)
        with interruptible():
            try:
                box.start()
                console.info(f"started {box.name} on {box.url}; waiting for /ping")
                wait_until_ready(box, info)
                status = send(box.url, data, timeout=args.timeout, write=write, path=path)
            finally:
                box.remove()
    if status >= 400:
        console.error(f"the server answered HTTP {status}")
        return 1
    return 0
