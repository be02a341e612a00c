"""Model sources: Hugging Face Hub at a pinned revision, an S3 prefix, a local folder.

``fetch_model`` returns a folder holding exactly the files to bake plus their digests. Hub and S3
files land in the content-addressed cache (``builder.artifacts.cache``); a local folder is used in
place when it holds nothing else, otherwise a snapshot of hard links is made in the cache.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from builder.artifacts.cache import ArtifactCache
from builder.artifacts.manifests import cached_artifacts, commit_artifacts
from builder.artifacts.models import FileEntry, ModelArtifacts, content_digest
from builder.artifacts.s3 import fetch_s3
from builder.artifacts.selection import patterns, select
from builder.console import info, step, warn
from builder.diagnostics import BuilderError
from builder.paths import cache_dir as default_cache_dir
from builder.recipe.model import Recipe

STAGE = "fetch"
FULL_SHA = re.compile(r"^[0-9a-f]{40}$")


def fetch_model(recipe: Recipe, base_dir: Path, *, cache_dir: Path | None = None,
                cache_remote: str | None = None) -> ModelArtifacts:
    from builder.artifacts.remote import remote_from

    cache = ArtifactCache(cache_dir or default_cache_dir(), remote=remote_from(cache_remote))
    src = recipe.model
    trust = bool(src.trust_remote_code)
    try:
        if src.path is not None:
            result = _fetch_local(cache, Path(base_dir), src.path, trust)
        elif src.s3 is not None:
            result = fetch_s3(cache, src.s3, trust)
        else:
            assert src.id is not None
            result = _fetch_hub(cache, src.id, src.revision, trust)
    finally:
        cache.memo.save()
    size_mb = result.total_bytes / 1e6
    info(f"model {result.source}: {len(result.files)} files, {size_mb:.1f} MB, {result.digest[:19]}"
         + (" (cached)" if result.cached else ""))
    return result


# ------------------------------------------------------------------------- local folder
def local_files(root: Path) -> dict[str, Path]:
    """name -> real path of every file under ``root``; a symlink must resolve inside ``root``."""
    out: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for fn in filenames:
            if fn.startswith("."):
                continue
            p = Path(dirpath) / fn
            real = p.resolve()
            name = p.relative_to(root).as_posix()
            if not real.is_relative_to(root):
                raise BuilderError(f"{p}: symlink points outside the model folder ({real})", stage=STAGE,
                                   hint="copy the file into the folder; model folders must be self-contained")
            if real.is_file():
                out[name] = real
    return out


def _fetch_local(cache: ArtifactCache, base_dir: Path, path: str, trust: bool) -> ModelArtifacts:
    folder = (base_dir / path)
    if not folder.is_dir():
        raise BuilderError(f"model.path {path!r}: no such folder ({folder})", stage=STAGE,
                           hint="model.path is relative to the recipe file")
    root = folder.resolve()
    available = local_files(root)
    chosen, warnings = select(available, trust_remote_code=trust)
    for w in warnings:
        warn(f"{path}: {w}")
    before = cache.memo.hashed
    files = [FileEntry(name=n, size=available[n].stat().st_size, sha256=cache.memo.digest(available[n]))
             for n in chosen]
    digest = content_digest(files)
    cached = cache.memo.hashed == before
    if set(chosen) == set(available):
        folder_out = root
    else:  # extra files in the folder: bake a snapshot holding only what the runtime needs
        with cache.locked():
            folder_out = cache.snapshot(digest, files, {n: available[n] for n in chosen})
    return ModelArtifacts(dir=folder_out, files=files, digest=digest, source=f"path:{root}", source_kind="path",
                          cached=cached)


# ------------------------------------------------------------------------- Hugging Face Hub
def _token() -> str | bool:
    # Only HF_TOKEN from the environment: never a token file, never logged or recorded (§17.9).
    return os.environ.get("HF_TOKEN") or False


def _fetch_hub(cache: ArtifactCache, repo_id: str, revision: str | None, trust: bool) -> ModelArtifacts:
    rev = revision or "main"
    if FULL_SHA.match(rev):  # pinned: a complete manifest answers without touching the Hub
        hit = cached_artifacts(cache, f"hub:{repo_id}@{rev}")
        if hit:
            return hit
    with cache.locked():
        snapshot = _hub_download(repo_id, rev, trust)
        sha = snapshot.name  # .../snapshots/<commit sha>: the branch or tag resolved
        if revision and not FULL_SHA.match(revision):
            info(f"model.revision {revision!r} of {repo_id} resolved to {sha} (pin it in the recipe)")
        key = f"hub:{repo_id}@{sha}"
        hit = cached_artifacts(cache, key, remote=False)  # downloaded already: not again from the remote
        if hit:
            return hit
        available = local_files_any(snapshot)
        chosen, warnings = select(available, trust_remote_code=trust)
        for w in warnings:
            warn(f"{repo_id}@{sha[:12]}: {w}")
        files = []
        for n in chosen:
            real = available[n]
            files.append(FileEntry(name=n, size=real.stat().st_size, sha256=cache.memo.digest(real)))
            cache.put_blob(real, files[-1].sha256)
        return commit_artifacts(cache, key, f"hub:{repo_id}", "hub", sha, files, {})


def local_files_any(root: Path) -> dict[str, Path]:
    """Like ``local_files`` for the HF cache, whose snapshot entries are symlinks into ``../../blobs``."""
    out: dict[str, Path] = {}
    for p in root.rglob("*"):
        if p.is_file():
            out[p.relative_to(root).as_posix()] = p.resolve()
    return out


def _hub_download(repo_id: str, rev: str, trust: bool) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    step(f"fetching {repo_id}@{rev} from the Hugging Face Hub")
    first = patterns(trust_remote_code=trust, pickles=False)
    try:
        path = Path(snapshot_download(repo_id, revision=rev, allow_patterns=first, token=_token()))
        names = [p.name for p in path.iterdir()]
        if not any(n.endswith(".safetensors") for n in names):
            # §17: pickles only when no safetensors exist; a second, narrower call
            path = Path(snapshot_download(repo_id, revision=rev, token=_token(),
                                          allow_patterns=patterns(trust_remote_code=trust, pickles=True)))
    except GatedRepoError:
        raise BuilderError(f"{repo_id} is gated: access denied", stage=STAGE,
                           hint="accept the model's licence on the Hub and export HF_TOKEN") from None
    except RepositoryNotFoundError:
        raise BuilderError(f"{repo_id}: no such model on the Hub (or it is private)", stage=STAGE,
                           hint="check model.id; private models need HF_TOKEN") from None
    except RevisionNotFoundError:
        raise BuilderError(f"{repo_id}: revision {rev!r} not found", stage=STAGE,
                           hint="model.revision must be a commit sha, branch or tag of the repository") from None
    except LocalEntryNotFoundError as exc:
        raise BuilderError(f"{repo_id}@{rev} is not in the local Hugging Face cache and the Hub cannot be "
                           f"reached ({type(exc).__name__})", stage=STAGE,
                           hint="unset HF_HUB_OFFLINE or fetch the model once on a connected machine") from None
    except OSError as exc:
        raise BuilderError(f"{repo_id}@{rev}: download failed: {exc}", stage=STAGE) from None
    return path
