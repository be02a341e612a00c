"""What both example models write with: the destination check and atomic writers."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

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
    """The safetensors layout, by hand (little-endian, C order, header padded to 8 bytes)."""
    dtypes = {np.dtype("float32"): "F32", np.dtype("float16"): "F16", np.dtype("int64"): "I64",
              np.dtype("int32"): "I32"}
    header: dict = {"__metadata__": metadata or {}}
    blobs, offset = [], 0
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name])
        data = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": dtypes[arr.dtype], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(struct.pack("<Q", len(raw)))
        fh.write(raw)
        for blob in blobs:
            fh.write(blob)
    os.replace(tmp, path)
