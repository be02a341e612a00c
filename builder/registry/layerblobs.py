"""Layer blobs for registry assembly: streamed straight from the source files into the upload.

The tar bytes come from ``builder.assembly.layers`` (the same deterministic tars the Docker bake uses).
A layer's digest is remembered under a key made of every entry's name, mode, size and the source
file's identity (path, size, mtime_ns, inode), so an unchanged layer is recognised by ``stat`` alone:
a config-only rebuild reads no weight bytes at all (DESIGN.md "Performance facts").

Compression ``gzip`` (default): a gzip stream of stored deflate blocks written by ``StoredGzip``
(chosen by measurement over zlib 0/1, isal and zlib-ng: docs/registry-assembly.md, "Manifest format
and layer compression"). Docker v2 schema 2 layers must be gzip (SageMaker, crane validate); the blob digest differs
from the diff_id (sha256 of the uncompressed tar, in the config), both learnt in the one pass.
``none``: the uncompressed tar (blob digest == diff_id), only for OCI manifests.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from builder.assembly.layers import CHUNK, Layer, iter_entries_tar, layer_items, tar_header

Compression = Literal["gzip", "none"]
FORMAT = "registry-layer-v1"
GZIP_ENCODER = "stored-v1"  # what "gzip" means: part of every layer key and of the recorded inputs


class LayerBlob(BaseModel):
    digest: str  # of the blob as uploaded (compressed)
    diff_id: str  # of the uncompressed tar (the config's rootfs.diff_ids)
    size: int  # of the blob as uploaded
    compression: Compression = "gzip"


def layer_key(layer: Layer, compression: Compression) -> str:
    """Cheap identity of a layer's bytes: names, modes, sizes and source file identities (no reads)."""
    encoder = GZIP_ENCODER if compression == "gzip" else "none"
    h = hashlib.sha256(f"{FORMAT}|{encoder}|{layer.kind}\n".encode())
    for arcname, entry in layer_items(layer):
        ident = "dir"
        if entry.source is not None:
            st = os.stat(entry.source)
            ident = f"{os.path.abspath(entry.source)}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}|{st.st_dev}"
        h.update(f"{arcname}\0{entry.mode:o}\0{entry.size}\0{ident}\n".encode())
    return h.hexdigest()


class LayerMemo:
    """``<cache>/registry/layers/<key>.json`` -> LayerBlob (digests only: no blob is kept, re-encoding
    stored blocks costs no more than reading a kept copy, and a copy would double the disk a model needs)."""

    def __init__(self, root: Path | None):
        self.root = Path(root) / "registry" if root is not None else None

    def get(self, key: str) -> LayerBlob | None:
        if self.root is None:
            return None
        try:
            return LayerBlob.model_validate_json((self.root / "layers" / f"{key}.json").read_text())
        except (OSError, ValueError):
            return None

    def put(self, key: str, blob: LayerBlob) -> None:
        if self.root is None:
            return
        folder = self.root / "layers"
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        with os.fdopen(fd, "w") as fh:
            fh.write(blob.model_dump_json())
        os.replace(tmp, folder / f"{key}.json")  # atomic: never a half-written entry


class LayerStream:
    """Iterate to get the blob bytes; afterwards ``result()`` has digest, diff_id and size."""

    def __init__(self, layer: Layer, compression: Compression, *, progress: Callable[[int], None] | None = None):
        self.layer = layer
        self.compression = compression
        self.progress = progress
        self._diff = hashlib.sha256()
        self._blob = hashlib.sha256()
        self._size = 0
        self._done = False

    def _emit(self, data: bytes) -> bytes:
        self._blob.update(data)
        self._size += len(data)
        if self.progress:
            self.progress(self._size)
        return data

    def __iter__(self) -> Iterator[bytes]:
        comp = StoredGzip() if self.compression == "gzip" else None
        pending: list[bytes] = []
        size = 0
        for chunk in iter_entries_tar(layer_items(self.layer)):
            self._diff.update(chunk)
            out = comp.compress(chunk) if comp is not None else chunk
            if out:
                pending.append(out)
                size += len(out)
            if size >= CHUNK:  # tar headers come in 512-byte pieces: send MiB-sized chunks
                # a file's MiB chunk passes through as it is: no copy of the weight bytes here
                yield self._emit(pending[0] if len(pending) == 1 else b"".join(pending))
                pending, size = [], 0
        if comp is not None:
            pending.append(comp.flush())
        if pending:
            yield self._emit(b"".join(pending))
        self._done = True

    def expected_size(self) -> int:
        """The blob's size, known before a byte is read (tar headers are made, files only stat'ed): the
        upload sends it with ``Content-Length`` rather than chunked framing, which would copy each chunk.
        A file that changed size is caught while streaming (``iter_entries_tar``)."""
        tar = 2 * 512
        for arcname, entry in layer_items(self.layer):
            tar += len(tar_header(arcname, size=entry.size, mode=entry.mode, is_dir=entry.source is None))
            if entry.source is not None:
                tar += -(-entry.size // 512) * 512
        if self.compression != "gzip":
            return tar
        return StoredGzip.size_for(tar)

    def result(self) -> LayerBlob:
        assert self._done, "stream not fully consumed"
        return LayerBlob(digest="sha256:" + self._blob.hexdigest(), diff_id="sha256:" + self._diff.hexdigest(),
                         size=self._size, compression=self.compression)


class StoredGzip:
    """A gzip stream of stored (uncompressed) deflate blocks, written here rather than by zlib.

    Why: the encoders that shrink bf16 weights (by ~20%: isal 1, zlib 1) run below the rate a registry
    takes an upload, random weights do not shrink at all, and stored blocks cost a crc32 pass and a
    copy (docs/registry-assembly.md, "Manifest format and layer compression").
    Writing the blocks ourselves makes the bytes a function of the input alone (block boundaries at
    fixed 65,535-byte offsets, never of how the input was chunked, nor of the zlib version), so the
    digest is the same on every machine. RFC 1952 header with mtime 0, no file name, XFL 0, OS 255;
    RFC 1951 non-final stored blocks; an empty final stored block; crc32 and size mod 2**32."""

    BLOCK = 0xFFFF
    HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    _BLOCK_HEAD = b"\x00" + struct.pack("<HH", 0xFFFF, 0)  # BFINAL=0, BTYPE=00, LEN, NLEN

    def __init__(self) -> None:
        self._crc = 0
        self._size = 0
        self._pending = b""
        self._started = False

    def compress(self, data: bytes) -> bytes:
        out: list[bytes | memoryview] = []
        if not self._started:
            out.append(self.HEADER)
            self._started = True
        self._crc = zlib.crc32(data, self._crc)
        self._size += len(data)
        view = memoryview(data)
        at = 0
        if self._pending:  # complete the block begun by the previous call (no copy of the rest)
            at = min(self.BLOCK - len(self._pending), len(data))
            self._pending += bytes(view[:at])
            if len(self._pending) < self.BLOCK:
                return b"".join(out)
            out += [self._BLOCK_HEAD, self._pending]
            self._pending = b""
        end = at + (len(data) - at) // self.BLOCK * self.BLOCK
        for i in range(at, end, self.BLOCK):
            out += [self._BLOCK_HEAD, view[i:i + self.BLOCK]]
        self._pending = bytes(view[end:])
        return b"".join(out)

    @classmethod
    def size_for(cls, n: int) -> int:
        """Length of the stream for ``n`` input bytes: header, 5 bytes per full or partial block,
        the data, the empty final block, crc32 + size."""
        full, rest = divmod(n, cls.BLOCK)
        return len(cls.HEADER) + full * (5 + cls.BLOCK) + (5 + rest if rest else 0) + 5 + 8

    def flush(self) -> bytes:
        out = [] if self._started else [self.HEADER]
        self._started = True
        if self._pending:
            n = len(self._pending)
            out += [b"\x00" + struct.pack("<HH", n, n ^ 0xFFFF), self._pending]
            self._pending = b""
        out.append(b"\x01\x00\x00\xff\xff")  # the final block: stored, empty
        out.append(struct.pack("<II", self._crc & 0xFFFFFFFF, self._size & 0xFFFFFFFF))
        return b"".join(out)


def canonical_json(data: object) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
