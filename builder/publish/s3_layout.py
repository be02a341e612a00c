"""What goes under an S3 prefix for the stock LMI image: the ``/opt/ml/model`` tree of the model
image, uncompressed (reference/lmi-runtime.md §13; the seed guide: ``serving.properties`` "alongside
your model artifacts (under the same prefix)" with ``option.model_id`` left out).

The layout is the bake stage's own plan (``builder.assembly.layers.plan_sources`` and
``builder.assembly.files.config_files``), so an S3 prefix and a model image hold the same files with the
same bytes: model files, compiled artifacts replacing same-named model files, then
``serving.properties`` and the handler files.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from builder.artifacts.hashing import sha256_file  # one file hasher for cache, remote and S3
from builder.diagnostics import BuilderError

STAGE = "publish"
CONFIG = "serving.properties"
CHUNK = 8 << 20


class LayoutFile(BaseModel):
    """One object of the layout: ``name`` is its key below the prefix."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str
    size: int
    sha256: str
    path: Path | None = None  # a file on disk (model, compiled) ...
    data: bytes | None = None  # ... or bytes made here (serving.properties, handler files)
    kind: str = "model"  # "model" | "compiled" | "config": config objects go last

    def open(self):
        import io

        return io.BytesIO(self.data) if self.data is not None else open(self.path, "rb")


def layout_for_build(resolved, *, model_dir: Path | None, compiled_dir: Path | None,
                     extra_files: dict[str, Path], known_sha256: dict[str, str] | None = None) -> list[LayoutFile]:
    """The prefix's files for a build. ``known_sha256``: digests the artifact cache already has for
    ``model_dir``'s files (name -> sha256), so a 1 GiB model is not read again only to be compared."""
    from builder.assembly.files import config_files
    from builder.assembly.layers import plan_sources

    check_properties(resolved.properties)
    if model_dir is None:
        raise BuilderError("publish.s3 needs the model files, and this build fetched none (model.bake is false)",
                           stage=STAGE, hint="set model.bake: true (the default): the S3 prefix then holds the "
                                             "weights and serving.properties without option.model_id")
    config = config_files(resolved, extra_files)
    model, compiled = plan_sources(model_dir, compiled_dir, {n: (Path(), len(b), 0o644) for n, b in config.items()})
    known = known_sha256 or {}
    out: list[LayoutFile] = []
    for kind, files in (("model", model), ("compiled", compiled)):
        for name, (path, size, _mode) in sorted(files.items()):
            digest = known.get(name) if kind == "model" else None
            out.append(LayoutFile(name=name, size=size, sha256=digest or sha256_file(path), path=path, kind=kind))
    for name, data in sorted(config.items()):
        out.append(LayoutFile(name=name, size=len(data), sha256=hashlib.sha256(data).hexdigest(), data=data,
                              kind="config"))
    return out


def layout_from_dir(root: Path) -> list[LayoutFile]:
    """Every regular file under ``root`` (an image's extracted /opt/ml/model), config files last."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fn in sorted(filenames):
            path = Path(dirpath) / fn
            if path.is_symlink() or not path.is_file():
                continue
            name = path.relative_to(root).as_posix()
            out.append(LayoutFile(name=name, size=path.stat().st_size, sha256=sha256_file(path), path=path,
                                  kind="config" if name == CONFIG else "model"))
    if not any(f.name == CONFIG for f in out):
        raise BuilderError(f"{root}: no {CONFIG} at the root of /opt/ml/model", stage=STAGE,
                           hint="publish --s3 takes an image built by lmi-build (its /opt/ml/model holds the layout)")
    props = (root / CONFIG).read_text(encoding="iso-8859-1")
    check_properties({line.split("=", 1)[0].strip(): "" for line in props.splitlines()
                      if "=" in line and not line.lstrip().startswith(("#", "!"))})
    return out


def check_properties(properties: dict[str, str]) -> None:
    """LMI loads /opt/ml/model only when ``option.model_id`` is absent: with it, the prefix's weights
    would be ignored and the model fetched from wherever model_id points."""
    if "option.model_id" in properties:
        raise BuilderError("publish.s3: serving.properties would set option.model_id, so LMI would not load the "
                           "files under the prefix (/opt/ml/model)", stage=STAGE,
                           hint="remove serving.option.model_id and keep model.bake: true")
