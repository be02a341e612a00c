"""One place that decides how output looks: rich on a terminal, plain lines in CI.

Library code reports through these helpers (never print) so the CLI and tests can capture it.
Everything goes to stderr; stdout is reserved for machine-readable answers (JSON, pinned refs).
"""

from __future__ import annotations

import os
import re
import sys

from rich.console import Console

# What a terminal acts on rather than shows: C0 controls (but newline and tab), DEL, C1 controls,
# Unicode line/paragraph separators and bidi overrides. Text from a user (a path, a key, a value)
# holding one of them could clear the screen, rewrite a line ("1 recipe(s): 1 valid") or reorder
# what is shown, so it is printed as a visible escape instead.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CONTROL_OR_NL = re.compile(_CONTROL.pattern[:-1] + "\n\t]")

_console: Console | None = None


def console() -> Console:
    global _console
    if _console is None:
        _console = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False,  # ':x' in a ref is text
                           force_terminal=None if sys.stderr.isatty() else False,
                           no_color="NO_COLOR" in os.environ)
    return _console


def printable(text: str, *, newlines: bool = True) -> str:
    """``text`` with every terminal control written as ``\\xNN``/``\\uNNNN`` (``newlines``: keep
    newline and tab, for multi-line messages; False for one field such as a path)."""
    pattern = _CONTROL if newlines else _CONTROL_OR_NL

    def show(m: re.Match[str]) -> str:
        code = ord(m.group())
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return pattern.sub(show, text)


def step(message: str) -> None:
    from rich.markup import escape

    console().print(f"[bold cyan]==>[/] {escape(printable(message, newlines=False))}", markup=True)


def info(message: str) -> None:
    console().print(printable(message), markup=False)


def warn(message: str) -> None:
    console().print(f"[yellow]warning:[/] {_escape(message)}", markup=True)


def error(message: str) -> None:
    console().print(f"[bold red]error:[/] {_escape(message)}", markup=True)


def _escape(text: str) -> str:
    """Markup-escaped, controls shown, and every further line indented (a hint): a newline in an
    echoed path cannot start a line of its own that reads like tool output."""
    from rich.markup import escape

    lines = printable(text).split("\n")
    return escape("\n".join([lines[0], *(ln if ln.startswith(" ") else "  " + ln for ln in lines[1:])]))
