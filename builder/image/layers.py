"""Layer plan and deterministic layer tars for ``/opt/ml/model`` (reference/lmi-runtime.md §13).

Shared by the Docker bake and the registry-native assembler: both turn the same plan into the same
layers. Order follows how often things change (STYLE.md: fixed sections in cache order): large weights
files first, one layer each, then the small model files as one layer, then compiled artifacts, and the
configuration (``serving.properties``, handler files, metadata) last. A layer's bytes depend only on
file names and contents: sorted entries, fixed mtime, uid/gid 0, empty owner names, normalised modes,
PAX format. So an unchanged file keeps its layer digest whatever else changes.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Literal

from builder.diagnostics import BuilderError

STAGE = "bake"
MODEL_ROOT = "opt/ml/model"  # §13: the default model_store; serving.properties sits beside the files
MTIME = 0  # fixed: layer digests must not depend on when a file was written
TAR_FORMAT = tarfile.PAX_FORMAT
CHUNK = 1 << 20
DIR_MODE = 0o755
FILE_MODE = 0o644
EXEC_MODE = 0o755

LayerKind = Literal["weights", "compiled", "config"]


@dataclass(frozen=True)
class LayerEntry:
    arcname: str  # posix path inside the image, no leading '/', e.g. "opt/ml/model/config.json"
    source: Path | None  # None for a directory entry
    mode: int  # 0o644 files, 0o755 dirs/executables
    size: int


@dataclass(frozen=True)
class Layer:
    name: str  # safe for a Dockerfile path: [a-z0-9._-]
    kind: LayerKind
    entries: tuple[LayerEntry, ...]

    @property
    def size(self) -> int:
        return sum(e.size for e in self.entries)

    @property
    def files(self) -> tuple[LayerEntry, ...]:
        return tuple(e for e in self.entries if e.source is not None)


def plan_layers(model_dir: Path | None, compiled_dir: Path | None, config_files: dict[str, bytes] | Path, *,
                split_threshold: int = 256 << 20, blob_dir: Path | None = None) -> list[Layer]:
    """The layers of a model image, in order: weights, compiled, config (all under ``/opt/ml/model``).

    ``config_files``: ``{relative name: bytes}`` (written once, content-addressed, under ``blob_dir``,
    default ``<cache>/image/blobs``) or a folder whose files are the configuration. A compiled file
    with the same name as a model file replaces it (Neuron's ``config.json`` gains a ``"neuron"`` block,
    §11.3/§11.5); a config file replaces either.
    """
    config = _config_sources(config_files, blob_dir)
    compiled = _scan(compiled_dir, "compiled artifacts") if compiled_dir is not None else {}
    model = _scan(model_dir, "model") if model_dir is not None else {}
    for name in list(model):
        if name in compiled or name in config:
            del model[name]
    for name in list(compiled):
        if name in config:
            del compiled[name]

    layers: list[Layer] = []
    for kind, files in (("weights", model), ("compiled", compiled)):
        big = sorted(n for n, (_, size, _) in files.items() if size >= split_threshold)
        small = sorted(n for n in files if n not in big)
        for name in big:
            layers.append(_layer(f"{len(layers):02d}-{kind}-{_safe(name)}", kind, {name: files[name]}))
        if small:
            label = "files" if kind == "weights" else "small"
            layers.append(_layer(f"{len(layers):02d}-{kind}-{label}", kind, {n: files[n] for n in small}))
    layers.append(_layer(f"{len(layers):02d}-config", "config", config))
    return layers


def _layer(name: str, kind: LayerKind, files: dict[str, tuple[Path, int, int]]) -> Layer:
    entries: dict[str, LayerEntry] = {}
    for rel, (source, size, mode) in files.items():
        arc = f"{MODEL_ROOT}/{rel}"
        for parent in _parents(arc):
            entries.setdefault(parent, LayerEntry(parent, None, DIR_MODE, 0))
        entries[arc] = LayerEntry(arc, source, mode, size)
    if not files:  # an empty config layer still creates /opt/ml/model
        for parent in (*_parents(MODEL_ROOT + "/x"),):
            entries.setdefault(parent, LayerEntry(parent, None, DIR_MODE, 0))
    return Layer(name, kind, tuple(entries[k] for k in sorted(entries)))


def _parents(arcname: str) -> list[str]:
    parts = arcname.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _safe(name: str) -> str:
    """A file name made safe for a context path named in a Dockerfile (no glob or space characters)."""
    text = re.sub(r"[^a-z0-9._-]+", "_", name.lower()).strip("._-") or "file"
    return text[:80]


def _mode(st_mode: int) -> int:
    return EXEC_MODE if st_mode & 0o111 else FILE_MODE


def check_relative(name: str, what: str) -> str:
    """A relative posix path that stays inside its folder, or a BuilderError."""
    p = PurePosixPath(name)
    if not name or p.is_absolute() or any(part in ("..", "") for part in name.split("/")) or "\\" in name \
            or any(ord(c) < 0x20 for c in name):
        raise BuilderError(f"{what}: {name!r} is not a relative path inside /opt/ml/model", stage=STAGE,
                           hint="use a plain relative name such as 'model.py' or 'sub/file.txt'")
    return p.as_posix()


def _scan(root: Path, what: str) -> dict[str, tuple[Path, int, int]]:
    """Regular files under ``root`` (symlinks followed and checked), ``{relative posix name: (path, size, mode)}``.

    Names starting with '.' are skipped: tool metadata (``.cache``, ``.git``) that §13 says does not
    count as a model, and which would otherwise change layers without changing the model."""
    root = Path(root)
    if not root.is_dir():
        raise BuilderError(f"{what} folder {root} does not exist or is not a folder", stage=STAGE)
    found: dict[str, tuple[Path, int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for fname in sorted(filenames):
            if fname.startswith("."):
                continue
            path = Path(dirpath) / fname
            rel = path.relative_to(root).as_posix()
            try:
                st = path.stat()  # follows symlinks: Hub snapshots link into ../../blobs
            except OSError as exc:
                raise BuilderError(f"{what} file {path} cannot be read: {exc}", stage=STAGE) from None
            if not stat.S_ISREG(st.st_mode):
                raise BuilderError(f"{what} entry {path} is not a regular file", stage=STAGE)
            source = path.resolve() if path.is_symlink() else path
            found[rel] = (source, st.st_size, _mode(st.st_mode))
        for d in list(dirnames):
            if (Path(dirpath) / d).is_symlink():
                raise BuilderError(f"{what} folder {Path(dirpath) / d} is a symbolic link to a folder", stage=STAGE,
                                   hint="replace it with the folder itself; only file links are followed")
    return found


def _config_sources(config: dict[str, bytes] | Path, blob_dir: Path | None) -> dict[str, tuple[Path, int, int]]:
    if isinstance(config, (str, os.PathLike)):
        return _scan(Path(config), "configuration")
    out: dict[str, tuple[Path, int, int]] = {}
    if config and blob_dir is None:
        from builder.paths import cache_dir

        blob_dir = cache_dir() / "image" / "blobs"
    for name, data in config.items():
        rel = check_relative(name, "configuration file")
        out[rel] = (write_blob(blob_dir, data), len(data), FILE_MODE)  # type: ignore[arg-type]
    return out


def write_blob(blob_dir: Path, data: bytes) -> Path:
    """Content-addressed, written once (temporary name + rename), so a rewrite never changes a path."""
    digest = hashlib.sha256(data).hexdigest()
    path = Path(blob_dir) / digest[:2] / digest
    if not path.exists() or path.stat().st_size != len(data):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{digest}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return path


# ------------------------------------------------------------------ tar writing


def tar_header(arcname: str, *, size: int, mode: int, is_dir: bool) -> bytes:
    info = tarfile.TarInfo(arcname + ("/" if is_dir and not arcname.endswith("/") else ""))
    info.type = tarfile.DIRTYPE if is_dir else tarfile.REGTYPE
    info.size = 0 if is_dir else size
    info.mode = mode
    info.mtime = MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info.tobuf(format=TAR_FORMAT, encoding="utf-8", errors="strict")


def iter_entries_tar(entries: Iterable[tuple[str, LayerEntry]], *, end: bool = True) -> Iterator[bytes]:
    """Tar stream chunks of ``(arcname, entry)``; file bytes read in 1 MiB chunks, never held whole.

    A file whose size changed since planning is an error (the layer would not match its plan)."""
    for arcname, entry in entries:
        if entry.source is None:
            yield tar_header(arcname, size=0, mode=entry.mode, is_dir=True)
            continue
        yield tar_header(arcname, size=entry.size, mode=entry.mode, is_dir=False)
        remaining = entry.size
        with open(entry.source, "rb") as fh:
            while remaining > 0:
                chunk = fh.read(min(CHUNK, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                yield chunk
            if remaining or fh.read(1):
                raise BuilderError(f"{entry.source} changed size while it was being packed", stage=STAGE,
                                   hint="do not modify model files during a build; run the build again")
        pad = (-entry.size) % tarfile.BLOCKSIZE
        if pad:
            yield b"\0" * pad
    if end:
        yield b"\0" * (2 * tarfile.BLOCKSIZE)


def layer_items(layer: Layer, prefix: str = "") -> list[tuple[str, LayerEntry]]:
    """Sorted entries with every parent directory present (optionally under ``prefix/``)."""
    items: dict[str, LayerEntry] = {}
    for entry in layer.entries:
        check_relative(entry.arcname, "layer entry")
        for parent in _parents(entry.arcname):
            items.setdefault(parent, LayerEntry(parent, None, DIR_MODE, 0))
        items[entry.arcname] = entry
    out = []
    if prefix:
        out.append((prefix, LayerEntry(prefix, None, DIR_MODE, 0)))
    for name in sorted(items):
        out.append((f"{prefix}/{name}" if prefix else name, items[name]))
    return out


def write_layer_tar(layer: Layer, fileobj: BinaryIO) -> None:
    """The layer as an uncompressed tar: its sha256 is the layer's diff_id."""
    for chunk in iter_entries_tar(layer_items(layer)):
        fileobj.write(chunk)
