"""Publish stage: push an image that passed its smoke test to ECR or any OCI registry, verify the
digest, and return pinned ``repo@sha256:`` references. Entry point: :func:`publish_image`."""

from builder.publish.models import (
    DeployHints,
    EcrTarget,
    PublishOptions,
    PublishResult,
    PublishTarget,
    TargetResult,
)
from builder.publish.publisher import publish_image
from builder.publish.recipe import publish_from_recipe, targets_from_recipe

__all__ = ["DeployHints", "EcrTarget", "PublishOptions", "PublishResult", "PublishTarget", "TargetResult",
           "publish_from_recipe", "publish_image", "targets_from_recipe"]
