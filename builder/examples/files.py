"""What both example models write with: the destination check and atomic writers."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.numpy

from builder.diagnostics import BuilderError


def prepare_dest(dest: str | os.PathLike, names: list[str], *, force: bool) -> Path:
    """The folder an example model is written to; refuses to overwrite ``names`` there unless ``force``."""
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise BuilderError(f"{dest} exists and is not a folder", stage="example-model")
    if dest.is_dir() and not force:
        clash = [n for n in names if (dest / n).exists()]
        if clash:
            raise BuilderError(f"{dest} already holds {', '.join(clash)}", stage="example-model",
                               hint="pass --force to overwrite, or choose another folder")
    dest.mkdir(parents=True, exist_ok=True)
    return dest


def write_json_docs(dest: Path, docs: dict[str, Any], *, sort_keys: bool | set[str] = False) -> list[Path]:
    """Write each ``name: document`` as indented JSON (atomically); ``sort_keys``: all, or these names."""
    written = []
    for name, doc in docs.items():
        path = dest / name
        tmp = path.with_name(f".{name}.tmp")
        sort = sort_keys if isinstance(sort_keys, bool) else name in sort_keys
        tmp.write_text(json.dumps(doc, indent=2, sort_keys=sort) + "\n")
        os.replace(tmp, path)
        written.append(path)
    return written


def write_safetensors(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> None:
    """``tensors`` as a safetensors file (the package's numpy writer, no torch), written atomically.

    At most one metadata entry: safetensors (0.8 and earlier, safetensors/safetensors#584) keeps
    ``__metadata__`` in a hash map and writes several entries in a different order in each process,
    and the committed examples must be byte-for-byte what ``lmi-build example-model`` writes.
    """
    if metadata is not None and len(metadata) > 1:
        raise ValueError(f"one metadata entry at most (safetensors orders several at random): {sorted(metadata)}")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(safetensors.numpy.save(tensors, metadata=metadata))
    os.replace(tmp, path)
