"""Multi-model recipes (docs/multi-model.md): several models, one container and one instance.

Kept beside the single-model code, which is unchanged: the commands ask ``is_multi_file`` and hand a
multi-model recipe to this package.
"""

from __future__ import annotations

from pathlib import Path


def is_multi_file(path: str | Path) -> bool:
    """Whether ``path`` is a YAML mapping with a top-level ``models:`` key (never raises)."""
    import re

    p = Path(path)
    try:
        # regular files only: a FIFO would block the read and /dev/zero never end; the single-model
        # loader then refuses such a path with its own located message
        if p.suffix not in (".yaml", ".yml") or not p.is_file():
            return False
    except OSError:
        return False
    try:
        with open(p, "rb") as fh:
            text = fh.read(1 << 20).decode("utf-8", errors="replace")
    except OSError:
        return False
    # a top-level key at column 0; the loader then checks the whole shape with located errors
    return re.search(r"^models\s*:", text, re.M) is not None


__all__ = ["is_multi_file"]
