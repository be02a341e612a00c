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


def publish_from_recipe(image_ref: str, recipe: Any, opts: Any, *, smoke_status: str | None = None):
    """Pipeline entry: targets and tag templates from ``recipe.publish`` plus ``opts.registry``;
    gate flags and cache from the build options. The smoke ledger, not ``smoke_status``, decides the
    gate (it survives processes); ``smoke_status`` only sharpens the refusal message."""
    from builder.publish.models import PublishOptions
    from builder.publish.publisher import publish_image

    targets, templates = targets_from_recipe(getattr(recipe, "publish", None))
    extra = getattr(opts, "registry", None)
    if extra and all(t.registry != extra for t in targets):
        try:
            targets.append(PublishTarget(registry=extra))
        except ValidationError as exc:
            raise BuilderError(f"--registry {extra}: {exc.errors()[0]['msg']}", stage="publish") from None
    if not targets:
        raise BuilderError("--push given but the recipe has no publish: section and no --registry",
                           stage="publish", hint="add publish: {ecr: {...}} or registry: to the recipe")
    cache = getattr(opts, "cache_dir", None)
    options = PublishOptions(
        tags=templates, skip_smoke=bool(getattr(opts, "skip_smoke", False)),
        allow_dev_runtime=bool(getattr(opts, "allow_dev_runtime", False)),
        cache_dir=str(cache) if cache else None, git_sha=getattr(opts, "git_sha", None),
        ecr_registry_host=getattr(opts, "registry_host", None))
    try:
        return publish_image(image_ref, targets, options)
    except BuilderError as exc:
        if smoke_status and smoke_status != "passed" and "smoke" in str(exc):
            exc.hint = (exc.hint or "") + f" (this build's smoke stage: {smoke_status})"
        raise
