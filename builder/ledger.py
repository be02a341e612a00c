"""Smoke-test outcomes keyed by image id, so that ``publish`` can refuse an image that did not
pass (or was never tested) even in a later process: ``<cache>/smoke-results/<hex>.json``."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from builder.paths import cache_dir

SmokeStatus = Literal["passed", "failed", "skipped"]


class SmokeOutcome(BaseModel):
    image_id: str  # sha256:<hex> (the local image id == config digest)
    status: SmokeStatus
    reason: str = ""
    accelerators: str = "auto"  # "none" when run without device requests
    finished_at: str = ""


def _path(image_id: str, cache: str | os.PathLike | None) -> Path:
    hex_ = image_id.split(":", 1)[-1]
    return cache_dir(cache) / "smoke-results" / f"{hex_}.json"


def record(outcome: SmokeOutcome, cache: str | os.PathLike | None = None) -> Path:
    if not outcome.finished_at:
        outcome = outcome.model_copy(update={"finished_at": datetime.now(timezone.utc).isoformat()})
    path = _path(outcome.image_id, cache)
    path.parent.mkdir(parents=True, exist_ok=True)
    from builder.atomic import atomic_write

    return atomic_write(path, outcome.model_dump_json(indent=2))  # a failed write leaves no temporary


def lookup(image_id: str, cache: str | os.PathLike | None = None) -> SmokeOutcome | None:
    path = _path(image_id, cache)
    if not path.exists():
        return None
    return SmokeOutcome.model_validate(json.loads(path.read_text()))
