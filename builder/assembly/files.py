"""The configuration files of a model image, as bytes: ``serving.properties`` plus the handler files.

Both assemblers and the S3 layout (``builder.publish.s3_layout``) put these same bytes beside the
model under ``/opt/ml/model``; they are read here once (they are small), which pins what is baked.
"""

from __future__ import annotations

from pathlib import Path

from builder.assembly.layers import check_relative
from builder.diagnostics import BuilderError
from builder.lmi.properties import dumps

STAGE = "bake"


def config_files(resolved, extra_files: dict[str, Path]) -> dict[str, bytes]:
    """serving.properties plus the handler files (read here: they are small, and this pins their bytes)."""
    files: dict[str, bytes] = {"serving.properties": dumps(resolved.properties).encode()}
    for name, src in sorted(extra_files.items()):
        rel = check_relative(name, "handler file")
        if rel == "serving.properties":
            raise BuilderError("a handler file may not be named serving.properties (it is generated)", stage=STAGE)
        try:
            files[rel] = Path(src).read_bytes()
        except OSError as exc:
            raise BuilderError(f"handler file {src} cannot be read: {exc}", stage=STAGE) from None
    return files


__all__ = ["config_files"]
