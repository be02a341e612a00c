"""Argument helpers shared by ``smoke``, ``serve`` and ``predict``: an IMAGE argument that may also
be a recipe file (resolved to the tag it builds, ``builder.pipeline.image_for_recipe``), and
repeatable ``--env KEY=VALUE``."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from builder.diagnostics import UsageError

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
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra container environment (repeatable); adds to the recipe's smoke.env")


def resolve_image(text: str) -> str:
    path = Path(text)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise UsageError(f"{text}: no such recipe file")
        from builder.pipeline import image_for_recipe

        return image_for_recipe(path)
    return text


def parse_env(pairs: list[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not _ENV_KEY.match(key):
            raise UsageError(f"--env {pair!r}: expected KEY=VALUE with KEY a shell variable name")
        env[key] = value
    return env


def check_port(port: int | None) -> int | None:
    if port is not None and not 1 <= port <= 65535:
        raise UsageError(f"--port {port}: expected 1..65535")
    return port
