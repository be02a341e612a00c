"""Layer blobs for registry assembly: streamed straight from the source files into the upload.

The tar bytes come from ``builder.image.layers`` (the same deterministic tars the Docker bake uses).
A layer's digest is remembered under a key made of every entry's name, mode, size and the source
file's identity (path, size, mtime_ns, inode), so an unchanged layer is recognised by ``stat`` alone:
a config-only rebuild reads no weight bytes at all (DESIGN.md "Performance facts").

Compression ``none`` (default): blob digest == diff_id, one sha256 pass, and byte-identical output on
every machine (no dependency on the zlib version). ``gzip``: deterministic (mtime 0, fixed level);
the compressed blob is kept in the cache so an unchanged layer is never compressed twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from builder.image.layers import CHUNK, Layer, iter_entries_tar, layer_items

Compression = Literal["none", "gzip"]
FORMAT = "registry-layer-v1"
GZIP_LEVEL = 1  # weights hardly compress; level 1 keeps the CPU cost down (docs: measured)
MEDIA = {"none": "application/vnd.oci.image.layer.v1.tar", "gzip": "application/vnd.oci.image.layer.v1.tar+gzip"}


class LayerBlob(BaseModel):
    digest: str  # of the blob as uploaded
    diff_id: str  # of the uncompressed tar
    size: int
    media_type: str


def layer_key(layer: Layer, compression: Compression) -> str:
    """Cheap identity of a layer's bytes: names, modes, sizes and source file identities (no reads)."""
    h = hashlib.sha256(f"{FORMAT}|{compression}|{GZIP_LEVEL}|{layer.kind}\n".encode())
    for arcname, entry in layer_items(layer):
        ident = "dir"
        if entry.source is not None:
            st = os.stat(entry.source)
            ident = f"{os.path.abspath(entry.source)}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}|{st.st_dev}"
        h.update(f"{arcname}\0{entry.mode:o}\0{entry.size}\0{ident}\n".encode())
    return h.hexdigest()


class LayerMemo:
    """``<cache>/registry/layers/<key>.json`` -> LayerBlob; gzip blobs in ``<cache>/registry/blobs``."""

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

    def blob_path(self, digest: str) -> Path | None:
        if self.root is None:
            return None
        return self.root / "blobs" / digest.replace(":", "-")


class LayerStream:
    """Iterate to get the blob bytes; afterwards ``result()`` has digest, diff_id and size.

    ``spool``: a function of the blob digest giving a path; the blob is also written there
    (temporary name, renamed once complete and its digest known)."""

    def __init__(self, layer: Layer, compression: Compression, *, spool: Callable[[str], Path | None] | None = None,
                 progress: Callable[[int], None] | None = None):
        self.layer = layer
        self.compression = compression
        self.spool = spool
        self.progress = progress
        self._diff = hashlib.sha256()
        self._blob = hashlib.sha256()
        self._size = 0
        self._done = False

    def _emit(self, data: bytes, spool_fh) -> bytes:
        self._blob.update(data)
        self._size += len(data)
        if spool_fh is not None:
            spool_fh.write(data)
        if self.progress:
            self.progress(self._size)
        return data

    def __iter__(self) -> Iterator[bytes]:
        spool_fh = None
        tmp = None
        where = self.spool("sha256:") if self.spool is not None else None
        if where is not None:
            where.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=where.parent, prefix=".tmp-blob-")
            spool_fh = os.fdopen(fd, "wb")
        try:
            comp = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31) if self.compression == "gzip" else None
            buf = bytearray()
            for chunk in iter_entries_tar(layer_items(self.layer)):
                self._diff.update(chunk)
                if comp is not None:
                    chunk = comp.compress(chunk)
                buf += chunk
                if len(buf) >= CHUNK:  # tar headers come in 512-byte pieces: send MiB-sized chunks
                    yield self._emit(bytes(buf), spool_fh)
                    buf.clear()
            if comp is not None:
                buf += comp.flush()
            if buf:
                yield self._emit(bytes(buf), spool_fh)
            self._done = True
        finally:
            if spool_fh is not None:
                spool_fh.close()
                final = self.spool("sha256:" + self._blob.hexdigest()) if self._done and self.spool else None
                if final is not None and tmp:
                    os.replace(tmp, final)
                elif tmp:
                    os.unlink(tmp)

    def result(self) -> LayerBlob:
        assert self._done, "stream not fully consumed"
        return LayerBlob(digest="sha256:" + self._blob.hexdigest(), diff_id="sha256:" + self._diff.hexdigest(),
                         size=self._size, media_type=MEDIA[self.compression])


def file_chunks(path: Path, progress: Callable[[int], None] | None = None) -> Iterator[bytes]:
    done = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            done += len(chunk)
            if progress:
                progress(done)
            yield chunk


def canonical_json(data: object) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
