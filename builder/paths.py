"""Where things live: the repository's data folders and the shared cache."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent


def images_dir() -> Path:
    """Dockerfile templates (``images/<family>/Dockerfile.j2``)."""
    override = os.environ.get("LMI_BUILD_IMAGES_DIR")
    return Path(override) if override else REPO_DIR / "images"


def cache_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The one content-addressed cache: ``--cache-dir`` > ``LMI_BUILD_CACHE`` > user cache dir."""
    if explicit:
        return Path(explicit).expanduser().resolve()
    env = os.environ.get("LMI_BUILD_CACHE")
    if env:
        return Path(env).expanduser().resolve()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("lmi-builder"))
