"""The recipe's ``publish:`` section -> targets and tag templates.

Shape: ``{ecr: {account, region, repository, lifecycle_policy?}, registry: "host:port/repo"?,
tags: [templates]?}``. Accepts a plain dict (or a pydantic model with ``model_dump``) until the typed
recipe model is wired in.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from builder.diagnostics import BuilderError
from builder.publish.models import PublishTarget


def targets_from_recipe(publish: Any) -> tuple[list[PublishTarget], list[str]]:
    if publish is None:
        return [], []
    if hasattr(publish, "model_dump"):
        publish = publish.model_dump(exclude_none=True)
    if not isinstance(publish, dict):
        raise BuilderError("recipe 'publish' must be a mapping", stage="publish")
    unknown = set(publish) - {"ecr", "registry", "tags"}
    if unknown:
        raise BuilderError(f"recipe publish: unknown key(s) {sorted(unknown)} (expected ecr, registry, tags)",
                           stage="publish")
    targets: list[PublishTarget] = []
    try:
        if publish.get("ecr") is not None:
            targets.append(PublishTarget(ecr=publish["ecr"]))
        if publish.get("registry") is not None:
            targets.append(PublishTarget(registry=publish["registry"]))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise BuilderError(f"recipe publish{'.' + where if where else ''}: {first['msg']}",
                           stage="publish") from None
    tags = publish.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise BuilderError("recipe publish.tags must be a list of strings", stage="publish")
    return targets, list(tags)
