"""argparse types shared by the commands (modules starting with '_' are not commands)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def positive(unit: str, example: str) -> Callable[[str], float]:
    """A positive, finite number of ``unit``: -1, 0, nan and inf would mean 'at once' or 'never'."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number of {unit}: {text!r}") from None
        if not math.isfinite(value) or value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r}: give a number of {unit} > 0 (e.g. {example})")
        return value

    return parse
