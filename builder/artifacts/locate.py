"""Find a recipe's model on this machine without downloading anything (for ``inspect``)."""

from __future__ import annotations

from pathlib import Path

from builder.artifacts.cache import ArtifactCache
from builder.diagnostics import BuilderError
from builder.recipe.model import Recipe


def local_model_dir(recipe: Recipe, base_dir: Path, cache_dir: Path) -> tuple[Path, str]:
    """(folder, description) of the model if it is local or already cached; BuilderError otherwise."""
    src = recipe.model
    if src.path is not None:
        folder = (base_dir / src.path).resolve()
        if not folder.is_dir():
            raise BuilderError(f"model.path {src.path!r}: no such folder ({folder})", stage="inspect")
        return folder, f"local folder {folder}"
    cache = ArtifactCache(cache_dir)
    source = f"hub:{src.id}" if src.id else src.s3 or ""
    if source.startswith("s3://") and not source.endswith("/"):
        source += "/"
    candidates = [(p.stat().st_mtime, m) for p, m in cache.all_manifests() if m.source == source]
    if src.id and src.revision:
        pinned = [c for c in candidates if c[1].revision == src.revision]
        candidates = pinned or [c for c in candidates if len(src.revision) < 40]
    candidates = [c for c in candidates if all(cache.has_blob(f) for f in c[1].files)]
    if not candidates:
        what = f"{src.id}@{src.revision or 'main'}" if src.id else source
        raise BuilderError(f"model {what} is not available locally (not in the cache {cache.root})",
                           stage="inspect",
                           hint="inspect reads only local or cached models; fetch it first (a build does), "
                                "or point model.path at a local copy")
    m = max(candidates, key=lambda c: c[0])[1]
    with cache.locked():
        folder = cache.snapshot(m.digest, m.files, {f.name: cache.blob(f.sha256) for f in m.files})
    return folder, f"cached {m.source}" + (f"@{m.revision}" if m.revision else "")
