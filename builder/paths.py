"""Where things live: the repository's data folders and the shared cache."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent


def images_dir() -> Path:
    """Dockerfile templates (``images/<family>/Dockerfile.j2``): the checkout's ``images/`` (editable
    install), else the copy a wheel carries as ``builder/_images``."""
    override = os.environ.get("LMI_BUILD_IMAGES_DIR")
    if override:
        return Path(override)
    checkout = REPO_DIR / "images"
    return checkout if checkout.is_dir() else PACKAGE_DIR / "_images"


def cache_dir_arg(text: str) -> Path:
    """argparse ``type`` of every ``--cache-dir``: ``Path("")`` is ``.``, so an empty value (an unset
    variable in CI: ``--cache-dir "$CACHE"``) would put caches in the working directory."""
    import argparse

    if not text.strip():
        raise argparse.ArgumentTypeError("empty folder name; give a folder, or leave --cache-dir out for "
                                         "LMI_BUILD_CACHE or the user cache dir")
    return Path(text)


def cache_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The one content-addressed cache: ``--cache-dir`` > ``LMI_BUILD_CACHE`` > user cache dir."""
    if isinstance(explicit, str) and not explicit.strip():  # "" is not "unset": None is
        from builder.diagnostics import UsageError

        raise UsageError("--cache-dir is blank; give a folder, or leave it out")
    if explicit:
        return Path(explicit).expanduser().resolve()
    env = os.environ.get("LMI_BUILD_CACHE")
    if env:
        return Path(env).expanduser().resolve()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("lmi-builder"))
