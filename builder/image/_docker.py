"""The bake's call of the one engine build (builder.engine.build), kept under its old name until
builder/image/bake.py calls ``builder.engine.build`` itself (issue 13; Helper C owns bake.py).

Nothing else may import this module; it holds no logic of its own.
"""

from __future__ import annotations

from collections.abc import Iterable

from builder.engine import BuildOutcome
from builder.engine import build as _build

STAGE = "bake"

__all__ = ["BuildOutcome", "build"]


def build(client, chunks: Iterable[bytes], *, total: int, tag: str | None, nocache: bool, what: str,
          labels: dict[str, str] | None = None, show_progress: bool = True,
          made: list[str] | None = None) -> BuildOutcome:
    """``what`` is the image's name without an article (``"model image"``)."""
    return _build(client, chunks, what=f"the {what}", stage=STAGE, tag=tag, labels=labels, total=total,
                  nocache=nocache, show_progress=show_progress, echo_steps=True, made=made)
