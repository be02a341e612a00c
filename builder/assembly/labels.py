"""Labels of a model image, the same from both assemblers (Docker bake and registry assembly).

``org.opencontainers.image.created`` is the one value that could make every build a new image: it
is derived from the inputs, not the clock (docs/image.md): ``AssemblyRequest.created`` >
``SOURCE_DATE_EPOCH`` > the last git commit of the recipe file > ``1970-01-01T00:00:00Z``. So a
no-change rebuild produces the same labels, hits the engine's cache and keeps the image id.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from builder import __version__
from builder import labels as L
from builder.assembly.identity import ImageIdentity

OCI = "org.opencontainers.image"
EPOCH = "1970-01-01T00:00:00Z"


def _git(recipe_file: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=recipe_file.resolve().parent, capture_output=True, text=True,
                             timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    text = out.stdout.strip()
    return text if out.returncode == 0 and text else None


def _clean_in_git(recipe_file: Path) -> bool:
    status = _git(recipe_file, "status", "--porcelain", "--", recipe_file.name)
    return status is None and _git(recipe_file, "rev-parse", "--git-dir") is not None


def provenance(recipe_file: Path | None, created: str | None, recipe_hash: str) -> dict[str, str]:
    """created / revision / source, from the recipe file's git history when it is committed and clean."""
    committed = recipe_file is not None and recipe_file.exists() and _clean_in_git(recipe_file)
    if created is None and os.environ.get("SOURCE_DATE_EPOCH", "").isdigit():
        created = datetime.fromtimestamp(int(os.environ["SOURCE_DATE_EPOCH"]), timezone.utc) \
            .strftime("%Y-%m-%dT%H:%M:%SZ")
    revision = None
    source = None
    if committed:
        assert recipe_file is not None
        line = _git(recipe_file, "log", "-1", "--format=%H %ct", "--", recipe_file.name)
        if line:
            sha, ts = line.split()
            revision = sha
            if created is None:
                created = datetime.fromtimestamp(int(ts), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        remote = _git(recipe_file, "config", "--get", "remote.origin.url")
        if remote and "@" not in remote.split("//", 1)[-1].split("/", 1)[0]:  # never a URL with credentials
            source = remote
    return {
        f"{OCI}.created": created or EPOCH,
        f"{OCI}.revision": revision or f"recipe-sha256:{recipe_hash}",
        f"{OCI}.source": source or (f"recipe:{recipe_file.name}" if recipe_file else "lmi-builder"),
    }


def _json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def smoke_document(resolved) -> dict[str, Any]:
    """The recipe's smoke settings plus the deadlines LMI will use (the ``dev.lmi-builder.smoke`` label; the
    build's smoke stage reads the same value typed, builder.smoke.image_info.describe)."""
    props = resolved.properties
    smoke = resolved.recipe.smoke.model_dump(mode="json")
    smoke["model_loading_timeout"] = int(props.get("option.model_loading_timeout", 0) or 0)
    smoke["predict_timeout"] = int(props.get("option.predict_timeout", 0) or 0)
    return smoke


def model_labels(resolved, *, base_ref: str, base_digest: str, model_digest: str | None,
                 compile_labels: dict[str, Any] | None, recipe_file: Path | None,
                 created: str | None, identity: ImageIdentity | None = None) -> dict[str, str]:
    recipe = resolved.recipe
    smoke = smoke_document(resolved)
    out = {
        **provenance(recipe_file, created, resolved.recipe_hash),
        # the tag's 12 hex: the image inputs digest, or the recipe hash when none was computed
        f"{OCI}.version": identity.hex12 if identity else resolved.recipe_hash[:12],
        f"{OCI}.title": recipe.name,
        f"{OCI}.base.name": base_ref,
        f"{OCI}.base.digest": base_digest,
        L.MANAGED: "true",
        L.BUILDER_VERSION: __version__,
        L.RECIPE_NAME: recipe.name,
        L.RECIPE_HASH: resolved.recipe_hash,
        L.RECIPE_JSON: _json(resolved.to_json()),
        L.MODEL_ID: recipe.model.id or recipe.model.s3 or recipe.model.path or "",
        L.MODEL_REVISION: recipe.model.revision or "",
        L.MODEL_DIGEST: model_digest or "",
        L.LMI_VERSION: resolved.release.version,
        L.LMI_FAMILY: resolved.release.family,
        L.TARGET_INSTANCE: resolved.instance.name,
        L.TARGET_ARCH: str(resolved.instance.arch or resolved.instance.kind),
        L.SMOKE: _json(smoke),
        L.ROLE: "model",
    }
    if identity is not None:
        out[L.INPUTS_DIGEST] = identity.digest
        out[L.INPUTS_JSON] = identity.label_json()
    if compile_labels:
        out[L.COMPILE] = _json({"arch": resolved.instance.arch, **(compile_labels or {})})
    if resolved.release.family == "dev-cpu":
        out[L.DEV_RUNTIME] = "true"  # a development runtime, says so (DESIGN.md)
    return out


__all__ = ["EPOCH", "OCI", "model_labels", "provenance"]
