"""Layer plan and deterministic layer tars for ``/opt/ml/model`` (reference/lmi-runtime.md §13).

Shared by the Docker bake and the registry-native assembler: both turn the same plan into the same
layers. Order follows how often things change (STYLE.md: fixed sections in cache order): large weights
files first, one layer each, then the small model files as one layer, then compiled artifacts, and the
configuration (``serving.properties``, handler files, metadata) last. A layer's bytes depend only on
file names and contents: sorted entries, fixed mtime, uid/gid 0, empty owner names, normalised modes,
PAX format. So an unchanged file keeps its layer digest whatever else changes.

Layer budget (docs/image.md "Layer budget"): the overlay filesystem refuses an image of more than about
127 layers ("max depth exceeded", moby/buildkit#3067, containers/storage#489) and ECR a layer over
52,000 MiB. The image (base + ours) is kept within ``TOTAL_LAYERS`` = 120; when the large files
outnumber the layers left, consecutive files in natural name order (shards of one model together)
share a layer, packed to the smallest size step that fits, each layer at most ``MAX_LAYER_BYTES``.
The plan is a function of names and sizes alone (no file is read), so the same files give the same plan.
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

MiB = 1 << 20
GiB = 1 << 30
OVERLAY_MAX_LAYERS = 127  # overlay's lower-dir limit: more and the container does not start (buildkit#3067)
TOTAL_LAYERS = 120  # our target for base + ours: 7 spare for layers a user adds FROM the image
RESERVED_BASE_LAYERS = 60  # planned for as if the base had at least this many (LMI bases have dozens), so a
#                            base upgrade within it leaves the grouping, and every weights layer digest, as it was
MIN_OWN_LAYERS = 8  # config + small files + a few weights groups, whatever the base
ECR_MAX_LAYER_BYTES = 52_000 * MiB  # ECR service quota "layer size"
# the file bytes a layer may hold: ECR's limit less 800 MiB (1.5 %) for tar headers and padding (about
# 1.5 KiB a file) and gzip framing (stored blocks: 5 bytes per 64 KiB, 0.008 %), so the blob stays under it
MAX_LAYER_BYTES = 50 * GiB


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


class LayerLimitError(BuilderError):
    """A file too large for one layer, or a model too large for the layer budget (named, with the limit)."""

    def __init__(self, message: str, *, file: str | None = None, hint: str | None = None):
        super().__init__(message, stage=STAGE, hint=hint)
        self.file = file


@dataclass(frozen=True)
class LayerGroup:
    """One planned layer before any source is attached: its kind, name and files (relative names)."""

    name: str
    kind: LayerKind
    files: tuple[str, ...]


def own_layer_budget(base_layers: int | None) -> int:
    """How many layers we may add on a base of ``base_layers`` (None: unknown, taken as RESERVED_BASE_LAYERS).

    ``TOTAL_LAYERS - max(base, RESERVED_BASE_LAYERS)``, at least ``MIN_OWN_LAYERS``; a base so deep that
    even the minimum would pass the overlay's limit is an error (squash the base)."""
    base = max(base_layers or 0, RESERVED_BASE_LAYERS)
    own = max(MIN_OWN_LAYERS, TOTAL_LAYERS - base)
    if base_layers is not None and base_layers + MIN_OWN_LAYERS > OVERLAY_MAX_LAYERS:
        raise LayerLimitError(f"the base image has {base_layers} layers: with the model's {MIN_OWN_LAYERS} the image "
                              f"would pass the overlay filesystem's {OVERLAY_MAX_LAYERS}-layer limit",
                              hint="use a base with fewer layers (squash it) or a published LMI image")
    return own


def human_bytes(n: int) -> str:
    if n >= GiB:
        return f"{n / GiB:.1f} GiB"
    return f"{n / MiB:.1f} MiB" if n >= MiB else f"{n / 1024:.1f} KiB"


def _limit_text(limit: int) -> str:
    return f"{human_bytes(limit)} ({limit // MiB:,} MiB)"


def _natural(name: str) -> tuple:
    """Sort key: digit runs as numbers, so pytorch_model-2.bin comes before pytorch_model-10.bin; the
    name itself breaks ties (a01 / a1), so the order never depends on the order files were listed in."""
    parts = re.split(r"([0-9]+)", name)  # text, number, text, ...: like compares with like
    return tuple(int(t) if i % 2 else t for i, t in enumerate(parts)), name


def _family(name: str) -> str:
    """Files that differ only in their numbers (the shards of one checkpoint) are one family."""
    return re.sub(r"[0-9]+", "#", name)


def _pack(names: list[str], sizes: dict[str, int], cap: int, families: bool) -> list[list[str]]:
    """Consecutive runs of ``names`` of at most ``cap`` bytes (greedy: the fewest runs for ``cap``);
    with ``families``, a new run also starts where the family changes."""
    runs: list[list[str]] = []
    cur: list[str] = []
    total = 0
    for n in names:
        if cur and (total + sizes[n] > cap or (families and _family(n) != _family(cur[-1]))):
            runs.append(cur)
            cur, total = [], 0
        cur.append(n)
        total += sizes[n]
    if cur:
        runs.append(cur)
    return runs


def _count(lists: list[list[str]], sizes: dict[str, int], cap: int, families: bool) -> int:
    return sum(len(_pack(names, sizes, cap, families)) for names in lists)


def _group_big(lists: list[list[str]], sizes: dict[str, int], slots: int, limit: int,
               what: str) -> list[list[list[str]]]:
    """Runs for each list in ``lists`` using at most ``slots`` runs in all: one file each when they fit,
    else the smallest cap (a multiple of ``limit // 50``, about 1 GiB: small size changes keep the
    grouping) for which the greedy runs fit, keeping families apart where that still fits."""
    if sum(len(x) for x in lists) <= slots:
        return [[[n] for n in names] for names in lists]
    step = max(1, limit // 50)
    largest = max(sizes[n] for names in lists for n in names)
    for families in (True, False):
        if _count(lists, sizes, limit, families) > slots:
            continue
        lo, hi = -(-largest // step), limit // step  # caps lo*step .. hi*step, and limit itself
        while lo < hi:  # the count only falls as the cap grows
            mid = (lo + hi) // 2
            if _count(lists, sizes, mid * step, families) <= slots:
                hi = mid
            else:
                lo = mid + 1
        cap = min(max(lo * step, largest), limit)
        if _count(lists, sizes, cap, families) > slots:
            cap = limit
        return [_pack(names, sizes, cap, families) for names in lists]
    total = sum(sizes[n] for names in lists for n in names)
    raise LayerLimitError(f"{what}: {sum(len(x) for x in lists)} large files, {human_bytes(total)}, do not fit "
                          f"in the {slots} layers left for them with at most {_limit_text(limit)} per layer",
                          hint=f"the image may have at most {TOTAL_LAYERS} layers; use a base with fewer layers "
                               f"or fewer, larger files")


SPLIT_HINT = "split it into shards: save_pretrained(..., max_shard_size=\"5GB\") writes files of a chosen size"


def oversize_message(name: str, size: int, limit: int = MAX_LAYER_BYTES, what: str = "model") -> str:
    return (f"{what} file {name} is {size:,} bytes ({human_bytes(size)}), more than one image layer may hold: "
            f"{_limit_text(limit)} (ECR's 52,000 MiB layer limit less room for tar and gzip framing)")


def check_file_sizes(files: dict[str, int], limit: int = MAX_LAYER_BYTES, what: str = "model") -> None:
    """A file larger than one layer may hold is an error naming the file and the limit."""
    for name in sorted(files, key=_natural):
        if files[name] > limit:
            raise LayerLimitError(oversize_message(name, files[name], limit, what), file=name, hint=SPLIT_HINT)


def plan_groups(model: dict[str, int], compiled: dict[str, int], config: dict[str, int], *,
                split_threshold: int = 256 << 20, base_layers: int | None = None,
                max_layer_bytes: int = MAX_LAYER_BYTES) -> list[LayerGroup]:
    """The layer plan from names and sizes only (``{relative name: bytes}``; overrides already applied).

    Order: large weights (``>= split_threshold``), small model files, large compiled, small compiled,
    config (always one layer, last: a configuration change is a one-layer change)."""
    for what, files in (("model", model), ("compiled", compiled), ("configuration", config)):
        check_file_sizes(files, max_layer_bytes, what)
    if sum(config.values()) > max_layer_bytes:
        raise LayerLimitError(f"the configuration files total {human_bytes(sum(config.values()))}, more than "
                              f"one layer may hold ({_limit_text(max_layer_bytes)})")
    sizes = {**model, **compiled}
    kinds: list[tuple[LayerKind, dict[str, int]]] = [("weights", model), ("compiled", compiled)]
    big = [sorted((n for n, s in files.items() if s >= split_threshold), key=_natural) for _, files in kinds]
    small = [_pack(sorted(n for n, s in files.items() if s < split_threshold), files, max_layer_bytes, False)
             for _, files in kinds]
    own = own_layer_budget(base_layers)
    slots = own - 1 - sum(len(runs) for runs in small)
    grouped = _group_big(big, sizes, slots, max_layer_bytes,
                         f"model of {len(model) + len(compiled)} files") if any(big) else [[], []]
    out: list[LayerGroup] = []
    for (kind, _), runs, smalls in zip(kinds, grouped, small, strict=True):
        for run in runs:
            label = _safe(run[0]) if len(run) == 1 else f"{_safe(run[0])[:60]}-{len(run)}files"
            out.append(LayerGroup(f"{len(out):02d}-{kind}-{label}", kind, tuple(run)))
        for i, run in enumerate(smalls):
            label = ("files" if kind == "weights" else "small") + (f"-{i + 1}" if i else "")
            out.append(LayerGroup(f"{len(out):02d}-{kind}-{label}", kind, tuple(run)))
    out.append(LayerGroup(f"{len(out):02d}-config", "config", tuple(sorted(config))))
    return out


def plan_sources(model_dir: Path | None, compiled_dir: Path | None, config: dict[str, tuple[Path, int, int]]
                 ) -> tuple[dict[str, tuple[Path, int, int]], dict[str, tuple[Path, int, int]]]:
    """The model and compiled files that reach the image (``stat`` only): a compiled file with the same
    name as a model file replaces it, a config file replaces either."""
    compiled = _scan(compiled_dir, "compiled artifacts") if compiled_dir is not None else {}
    model = _scan(model_dir, "model") if model_dir is not None else {}
    for name in list(model):
        if name in compiled or name in config:
            del model[name]
    for name in list(compiled):
        if name in config:
            del compiled[name]
    return model, compiled


def plan_layers(model_dir: Path | None, compiled_dir: Path | None, config_files: dict[str, bytes] | Path, *,
                split_threshold: int = 256 << 20, blob_dir: Path | None = None, base_layers: int | None = None,
                max_layer_bytes: int = MAX_LAYER_BYTES) -> list[Layer]:
    """The layers of a model image, in order: weights, compiled, config (all under ``/opt/ml/model``).

    ``config_files``: ``{relative name: bytes}`` (written once, content-addressed, under ``blob_dir``,
    default ``<cache>/image/blobs``) or a folder whose files are the configuration. A compiled file
    with the same name as a model file replaces it (Neuron's ``config.json`` gains a ``"neuron"`` block,
    §11.3/§11.5); a config file replaces either. ``base_layers``: the base image's layer count, for
    the layer budget (None: unknown, see ``own_layer_budget``).
    """
    config = _config_sources(config_files, blob_dir)
    model, compiled = plan_sources(model_dir, compiled_dir, config)
    groups = plan_groups({n: v[1] for n, v in model.items()}, {n: v[1] for n, v in compiled.items()},
                         {n: v[1] for n, v in config.items()}, split_threshold=split_threshold,
                         base_layers=base_layers, max_layer_bytes=max_layer_bytes)
    sources = {"weights": model, "compiled": compiled, "config": config}
    return [_layer(g.name, g.kind, {n: sources[g.kind][n] for n in g.files}) for g in groups]


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
        from builder.atomic import atomic_write

        atomic_write(path, data)  # a failed write (full disk) leaves no temporary
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
