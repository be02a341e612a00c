"""What a stage is: a function ``(RunContext, inputs) -> result`` over frozen, typed values.

``inputs`` is the stage's own pydantic model whose fields are named after what earlier stages produced
(``recipe``, ``build``, ``model``, ``runtime``, ``compiled``, ``image``, ``smoke``); the runner fills it from
their results. A result says passed / cached / skipped (with the reason) and carries the details the build
record shows for it; a failure is an exception (``StageFailed`` when it has details to record).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from builder.diagnostics import BuilderError
from builder.record import BuildRecord


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")


class StageResult(Frozen):
    status: Literal["passed", "cached", "skipped"] = "passed"
    reason: str = ""  # why cached or skipped, in the user's terms
    details: dict[str, Any] = Field(default_factory=dict)  # the build record's details for the stage

    def into_record(self, record: BuildRecord) -> None:
        """What this result adds to the build record besides its stage row (inputs, image, published)."""


class StageFailed(BuilderError):
    """A stage that failed with details worth keeping in the record (a failed smoke test's checks)."""

    def __init__(self, message: str, *, stage: str, details: dict[str, Any], hint: str | None = None):
        super().__init__(message, stage=stage, hint=hint)
        self.details = details


@dataclass(frozen=True)
class Stage:
    name: str  # the build record's stage name
    produces: str  # the name later stages' inputs use for this result
    run: Callable[[Any, Any], StageResult]
    inputs: type[BaseModel]
