"""Read safetensors headers only: 8-byte little-endian length, then that many bytes of JSON.

No torch, no weights loaded: a 16 GB model is sized by reading a few kilobytes.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

from pydantic import BaseModel

MAX_HEADER = 100 << 20  # the format's own limit is 100 MB
DTYPE_BYTES = {"F64": 8, "I64": 8, "U64": 8, "F32": 4, "I32": 4, "U32": 4, "F16": 2, "BF16": 2, "I16": 2,
               "U16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "I8": 1, "U8": 1, "BOOL": 1}


class TensorInfo(BaseModel):
    name: str
    dtype: str
    shape: list[int]
    nbytes: int

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


class HeaderError(ValueError):
    pass


def read_header(path: Path) -> list[TensorInfo]:
    with open(path, "rb") as fh:
        raw = fh.read(8)
        if len(raw) != 8:
            raise HeaderError(f"{path.name}: shorter than a safetensors header")
        (n,) = struct.unpack("<Q", raw)
        if n > MAX_HEADER:
            raise HeaderError(f"{path.name}: header length {n} is not plausible (not a safetensors file?)")
        blob = fh.read(n)
    try:
        header = json.loads(blob)
    except ValueError as exc:
        raise HeaderError(f"{path.name}: header is not JSON ({exc})") from None
    out = []
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        begin, end = meta["data_offsets"]
        out.append(TensorInfo(name=name, dtype=meta["dtype"], shape=list(meta["shape"]), nbytes=end - begin))
    return out
