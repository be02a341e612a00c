"""The recipe's ``publish:`` section -> targets and tag templates.

Shape: ``{ecr: {account, region, repository, lifecycle_policy?}, registry: "host:port/repo"?,
tags: [templates]?}``. Accepts the recipe's typed ``publish`` model or the same shape as a plain dict.
"""

from __future__ import annotations

from pathlib import Path
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
    unknown = set(publish) - {"ecr", "registry", "tags", "s3"}  # s3: builder/publish/s3_publish.py
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


def publish_from_recipe(image_ref: str, recipe: Any, *, registry: str | None = None, skip_smoke: bool = False,
                        allow_dev_runtime: bool = False, cache_dir: str | Path | None = None,
                        smoke_status: str | None = None):
    """The build's publish of a local image: targets and tag templates from ``recipe.publish`` plus
    ``registry`` (``--registry``). The smoke ledger, not ``smoke_status``, decides the gate (it survives
    processes); ``smoke_status`` only sharpens the refusal message."""
    from builder.publish.models import PublishOptions
    from builder.publish.publisher import publish_image

    targets, templates = targets_from_recipe(getattr(recipe, "publish", None))
    if registry and all(t.registry != registry for t in targets):
        try:
            targets.append(PublishTarget(registry=registry))
        except ValidationError as exc:
            raise BuilderError(f"--registry {registry}: {exc.errors()[0]['msg']}", stage="publish") from None
    if not targets:
        raise BuilderError("--push given but the recipe has no publish: section and no --registry",
                           stage="publish", hint="add publish: {ecr: {...}} or registry: to the recipe")
    options = PublishOptions(tags=templates, skip_smoke=skip_smoke, allow_dev_runtime=allow_dev_runtime,
                             cache_dir=str(cache_dir) if cache_dir else None)
    try:
        return publish_image(image_ref, targets, options)
    except BuilderError as exc:
        if smoke_status and smoke_status != "passed" and "smoke" in str(exc):
            exc.hint = (exc.hint or "") + f" (this build's smoke stage: {smoke_status})"
        raise
