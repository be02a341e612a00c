"""Runs stages in order: fills each one's inputs from earlier results, times it and records it in the build
record (passed / cached / skipped with the reason / failed). It owns nothing else."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from builder.record import BuildRecord
from builder.stages.base import Stage, StageResult


def run_stages(ctx: Any, stages: Iterable[Stage], record: BuildRecord,
               results: dict[str, StageResult]) -> dict[str, StageResult]:
    """``results`` is filled as stages finish, so a caller that catches a failure still has what ran."""
    for stage in stages:
        inputs = stage.inputs(**{name: results[name] for name in stage.inputs.model_fields})
        with record.timed(stage.name) as st:
            try:
                result = stage.run(ctx, inputs)
            except BaseException as exc:
                st.details.update(getattr(exc, "details", None) or {})
                raise
            st.status, st.reason = result.status, result.reason
            st.details.update(result.details)
        results[stage.produces] = result
    return results
