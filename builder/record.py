"""The build record: what a build did, machine-readable (``--report FILE``, JSON).

Every stage appends a ``StageRecord``; a stage that did not run says ``skipped`` and why, never
``passed``. Secrets are never put here (tests check the serialized record).
"""

from __future__ import annotations

import errno
import json
import os
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from builder import __version__
from builder.atomic import atomic_open

StageStatus = Literal["passed", "failed", "skipped", "cached"]


class StageRecord(BaseModel):
    name: str
    status: StageStatus
    seconds: float = 0.0
    reason: str = ""  # why skipped / failed
    details: dict[str, Any] = Field(default_factory=dict)


class BuildRecord(BaseModel):
    builder_version: str = __version__
    started_at: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat())
    recipe_file: str = ""
    recipe_hash: str = ""
    inputs: dict[str, Any] = Field(default_factory=dict)  # every input that goes into the image
    resolved: dict[str, Any] = Field(default_factory=dict)
    stages: list[StageRecord] = Field(default_factory=list)
    image: dict[str, Any] = Field(default_factory=dict)  # id, tags, base digest, layers
    published: list[dict[str, Any]] = Field(default_factory=list)
    ok: bool = False
    failed_stage: str | None = None

    def stage(self, name: str) -> StageRecord | None:
        return next((s for s in self.stages if s.name == name), None)

    @contextmanager
    def timed(self, name: str):
        """Run a stage: ``with record.timed("bake") as st: st.details[...] = ...``.

        The stage is ``passed`` unless the body sets another status; an exception marks it failed."""
        st = StageRecord(name=name, status="passed")
        self.stages.append(st)
        start = time.monotonic()
        try:
            yield st
        except OSError as exc:  # a disk or network error: the stage and the path, one line (issue 15 item 8)
            from builder.atomic import os_error_message
            from builder.diagnostics import BuilderError

            text, hint = os_error_message(exc)
            st.status, st.reason, self.failed_stage = "failed", st.reason or text, name
            raise BuilderError(text, stage=name, hint=hint) from exc
        except BaseException as exc:
            st.status = "failed"
            st.reason = st.reason or (str(exc) or type(exc).__name__)
            self.failed_stage = name
            raise
        finally:
            st.seconds = round(time.monotonic() - start, 3)

    def write(self, path: str | os.PathLike) -> Path:
        """Atomic; on failure nothing is left beside ``path`` and the OSError names ``path``."""
        target = Path(path)
        if target.is_dir():  # os.replace would name the temporary, not what the user asked for
            raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", str(target))
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(target, prefix=".tmp-record-") as fh:
            json.dump(self.model_dump(mode="json"), fh, indent=2, sort_keys=False)
            fh.write("\n")
        return target
