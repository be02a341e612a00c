"""Which local image a recipe file was last built to: for ``smoke``/``serve``/``predict`` given a recipe.

The tag (``<name>:<image-digest-12>``) depends on the model and handler files and the base, not on the recipe
alone, so it is looked up by the labels the bake writes (builder/labels.py), not computed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from builder import labels


def image_for_recipe(path: str | os.PathLike, client: Any = None) -> str:
    """The engine's model images labelled with this recipe's name and hash, the most recently tagged first
    (a build that reuses an image tags it again)."""
    from builder.diagnostics import UsageError
    from builder.lmi.resolve import resolve
    from builder.recipe import load_or_raise

    loaded = load_or_raise(Path(path))
    resolved = resolve(loaded.recipe)
    if client is None:
        from builder.engine import docker_client

        client = docker_client("smoke")
    name = resolved.recipe.name
    found = client.api.images(filters={"label": [f"{labels.RECIPE_HASH}={resolved.recipe_hash}",
                                                 f"{labels.RECIPE_NAME}={name}", f"{labels.ROLE}=model"]})
    candidates = []
    for image in found:
        ours = sorted(t for t in image.get("RepoTags") or [] if t.startswith(f"{name}:"))
        if ours:
            attrs = client.api.inspect_image(image["Id"])
            when = (attrs.get("Metadata") or {}).get("LastTagTime") or attrs.get("Created") or ""
            candidates.append((instant(when), ours[0]))
    if not candidates:
        raise UsageError(f"{path}: no local image built from this recipe (recipe hash {resolved.recipe_hash[:12]})",
                         hint=f"build it first: lmi-build build {path}")
    return max(candidates)[1]


def instant(text: str) -> tuple[str, str]:
    """An engine timestamp (RFC 3339, UTC, 0-9 fraction digits) as a key that sorts by time."""
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?", text)
    return (m.group(1), (m.group(2) or "").ljust(9, "0")) if m else ("", "")
