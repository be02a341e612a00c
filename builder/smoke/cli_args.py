"""Argument helpers shared by ``smoke``, ``serve`` and ``predict``: an IMAGE argument that may also
be a recipe file (resolved to the tag it builds, ``builder.image.lookup.image_for_recipe``), and
repeatable ``--env KEY=VALUE`` / ``--env KEY`` (the value from lmi-build's own environment, as
``docker run -e KEY`` does, so a secret never sits in argv where the process list shows it)."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

from builder.diagnostics import UsageError
from builder.secrets import SECRET_NAME_RE

_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def add_image_argument(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    parser.add_argument("image", metavar="IMAGE|RECIPE", nargs=None if required else "?",
                        help="image reference or id, or a recipe file (its built tag is used)")


def add_runtime_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--accelerators", choices=["auto", "none"], default="auto",
                        help="auto: the devices the image's target needs (all GPUs / /dev/neuron*); "
                             "none: no device requests (CPU-capable runtimes such as dev-cpu)")
    parser.add_argument("--port", type=int, default=None,
                        help="127.0.0.1 port the server listens on (host networking; default: a free one)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY[=VALUE]",
                        help="extra container environment (repeatable); adds to the recipe's smoke.env. KEY "
                             "alone takes the value from this environment (use that for secrets such as "
                             "HF_TOKEN: a KEY=VALUE secret on the command line is refused)")


def resolve_image(text: str) -> str:
    path = Path(text)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise UsageError(f"{text}: no such recipe file")
        from builder.multi import is_multi_file

        if is_multi_file(path):
            from builder.multi.image import image_for_multi

            return image_for_multi(path)
        from builder.image.lookup import image_for_recipe

        return image_for_recipe(path)
    return text


def parse_env(pairs: list[str], environ: dict[str, str] | None = None) -> dict[str, str]:
    environ = os.environ if environ is None else environ
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not _ENV_KEY.match(key):
            raise UsageError(f"--env {key!r}: expected KEY=VALUE or KEY with KEY a shell variable name")
        if not sep:
            if key not in environ:
                raise UsageError(f"--env {key}: {key} is not set in this environment",
                                 hint=f"export {key}=... first, or give --env {key}=VALUE")
            value = environ[key]
        elif SECRET_NAME_RE.search(key):
            # The value would be in argv, visible to every user in the process list and in shell history.
            raise UsageError(f"--env {key}=...: a secret's value on the command line is visible in the process "
                             "list", hint=f"export {key} and pass --env {key} (the value is read from the "
                                          "environment)")
        env[key] = value
    return env


def check_port(port: int | None) -> int | None:
    if port is not None and not 1 <= port <= 65535:
        raise UsageError(f"--port {port}: expected 1..65535")
    return port
