"""Each model's files (the single-model S3 layout: weights, handler files, serving.properties
without option.model_id) and the deterministic ``model.tar.gz`` a Multi-Model Endpoint loads."""

from __future__ import annotations

import gzip
import hashlib
import os
import tarfile
from dataclasses import dataclass, replace
from pathlib import Path

from builder import console
from builder.diagnostics import BuilderError
from builder.multi.loader import LoadedMulti, make_view
from builder.publish.s3_layout import LayoutFile

STAGE = "mme"
TAR_MODE, DIR_MODE = 0o644, 0o755
GZIP_LEVEL = 6  # fixed: the same zlib at the same level gives the same bytes
CHUNK = 1 << 20


@dataclass(frozen=True)
class ModelPlan:
    """One model of a multi-model recipe, resolved (and, after ``fetch``, with its files)."""

    name: str
    index: int
    view: object  # LoadedRecipe
    resolved: object  # Resolved
    artifacts: object | None = None  # ModelArtifacts once fetched (None: bake is false)

    @property
    def extra_files(self) -> dict[str, Path]:
        from builder.recipe.files import handler_files  # the single-model rule for handler files, reused

        return handler_files(self.view.recipe, self.view.base_dir)

    def layout(self) -> list[LayoutFile]:
        """The files of this model's folder, sorted by name (config files included)."""
        from builder.publish.s3_layout import layout_for_build

        if self.artifacts is None:  # bake false: serving.properties (with model_id) and handler files only
            from builder.assembly.files import config_files

            return [LayoutFile(name=n, size=len(b), sha256=hashlib.sha256(b).hexdigest(), data=b, kind="config")
                    for n, b in sorted(config_files(self.resolved, self.extra_files).items())]
        known = {f.name: f.sha256 for f in self.artifacts.files}
        files = layout_for_build(self.resolved, model_dir=self.artifacts.dir, compiled_dir=None,
                                 extra_files=self.extra_files, known_sha256=known)
        return sorted(files, key=lambda f: f.name)


def plan_models(loaded: LoadedMulti) -> list[ModelPlan]:
    """Resolve every model (the recipe is valid: ``validate_multi`` passed)."""
    from builder.lmi.resolve import resolve

    plans = []
    for i, entry in enumerate(loaded.recipe.models):
        view = make_view(loaded, i)
        if view.recipe is None:
            raise BuilderError(f"models[{i}] '{entry.name}' is not valid; run lmi-build validate", stage=STAGE)
        plans.append(ModelPlan(entry.name, i, view, resolve(view.recipe)))
    return plans


def fetch(plans: list[ModelPlan], *, cache_dir: Path | None = None, cache_remote: str | None = None) -> list[ModelPlan]:
    """The plans with their fetched files (new values; the plans given are not changed)."""
    from builder.artifacts.sources import fetch_model

    fetched = []
    for plan in plans:
        if plan.view.recipe.model.bake:
            console.step(f"fetch model {plan.name} ({plan.view.recipe.model.source_kind})")
            plan = replace(plan, artifacts=fetch_model(plan.view.recipe, plan.view.base_dir, cache_dir=cache_dir,
                                                       cache_remote=cache_remote))
        fetched.append(plan)
    return fetched


# ------------------------------------------------------------------ deterministic tar.gz

def _entries(files: list[LayoutFile]) -> list[tuple[str, LayoutFile | None]]:
    """Every file and every parent folder, sorted by name (folders as ``None``)."""
    names: dict[str, LayoutFile | None] = {}
    for f in files:
        parts = f.name.split("/")
        if any(p in ("", ".", "..") for p in parts) or f.name.startswith("/"):
            raise BuilderError(f"unsafe file name in the model layout: {f.name!r}", stage=STAGE)
        for k in range(1, len(parts)):
            names.setdefault("/".join(parts[:k]), None)
        names[f.name] = f
    return sorted(names.items())


def _info(name: str, *, size: int, is_dir: bool) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name + ("/" if is_dir else ""))
    info.type = tarfile.DIRTYPE if is_dir else tarfile.REGTYPE
    info.size = 0 if is_dir else size
    info.mode = DIR_MODE if is_dir else TAR_MODE
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_tar_gz(files: list[LayoutFile], dest: Path) -> str:
    """Write ``dest`` (atomically) and return its sha256: sorted entries, mtime/uid/gid 0, fixed modes,
    PAX format, gzip header without a name and with mtime 0 -- the same files give the same bytes."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as raw:
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=GZIP_LEVEL) as gz, \
                    tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for name, f in _entries(files):
                    if f is None:
                        tar.addfile(_info(name, size=0, is_dir=True))
                        continue
                    with f.open() as src:
                        tar.addfile(_info(name, size=f.size, is_dir=False), src)
        os.replace(tmp, dest)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise BuilderError(f"cannot write {dest}: {exc.strerror or exc}", stage=STAGE) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    h = hashlib.sha256()
    with open(dest, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def tar_bytes(files: list[LayoutFile]) -> bytes:
    """The same archive in memory (tests, small models)."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.tar.gz"
        write_tar_gz(files, path)
        return path.read_bytes()


__all__ = ["ModelPlan", "fetch", "plan_models", "tar_bytes", "write_tar_gz"]
