"""One place that decides how output looks: rich on a terminal, plain lines in CI.

Library code reports through these helpers (never print) so the CLI and tests can capture it.
Everything goes to stderr; stdout is reserved for machine-readable answers (JSON, pinned refs).
"""

from __future__ import annotations

import os
import sys

from rich.console import Console

_console: Console | None = None


def console() -> Console:
    global _console
    if _console is None:
        _console = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False,  # ':x' in a ref is text
                           force_terminal=None if sys.stderr.isatty() else False,
                           no_color="NO_COLOR" in os.environ)
    return _console


def step(message: str) -> None:
    console().print(f"[bold cyan]==>[/] {message}", markup=True)


def info(message: str) -> None:
    console().print(message, markup=False)


def warn(message: str) -> None:
    console().print(f"[yellow]warning:[/] {_escape(message)}", markup=True)


def error(message: str) -> None:
    console().print(f"[bold red]error:[/] {_escape(message)}", markup=True)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
