"""Typed boundary of the publish stage: targets, options, results (pydantic v2)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from builder.recipe.model import (
    EcrTarget,  # one ECR schema: the recipe's publish.ecr is also the CLI's --ecr-*
)


class PublishTarget(BaseModel):
    """Exactly one of ``registry`` (``host[:port]/repo``, any OCI registry) or ``ecr``."""

    model_config = ConfigDict(extra="forbid")

    registry: str | None = None
    ecr: EcrTarget | None = None

    @model_validator(mode="after")
    def _one(self) -> PublishTarget:
        if (self.registry is None) == (self.ecr is None):
            raise ValueError("a publish target needs exactly one of 'registry' or 'ecr'")
        if self.registry is not None:
            split_registry(self.registry)
        return self

    def describe(self) -> str:
        if self.ecr:
            return f"ecr {self.ecr.account}/{self.ecr.region}/{self.ecr.repository}"
        return str(self.registry)


def split_registry(ref: str) -> tuple[str, str]:
    """``host[:port]/repo/path`` -> (host[:port], repo/path), by the one reference grammar
    (builder.registry.reference); ValueError (pydantic's validators re-raise it located)."""
    from builder.diagnostics import UsageError
    from builder.registry.reference import parse

    if "@" in ref.partition("/")[2]:
        raise ValueError(f"registry target {ref!r} must not carry a tag or digest; use --tag")
    try:
        parsed = parse(ref, what="registry target", allow_tag=False)
    except UsageError as exc:
        raise ValueError(str(exc)) from None
    return parsed.host, parsed.repo


class PublishOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tags: list[str] = Field(default_factory=list)  # templates, see builder.publish.tags
    default_tag: bool = True  # <name>-<image-digest12>, when the image carries an inputs digest
    skip_smoke: bool = False
    allow_dev_runtime: bool = False
    force: bool = False  # move a tag on a MUTABLE registry/repository
    username: str | None = None
    password: SecretStr | None = None
    cache_dir: str | None = None
    git_sha: str | None = None
    ecr_registry_host: str | None = None  # where ECR image bytes go (tests: the local registry)
    push_attempts: int = 3
    retry_backoff_s: float = 2.0
    docker_config: str | None = None  # directory holding config.json; default $DOCKER_CONFIG or ~/.docker


class DeployHints(BaseModel):
    instance_type: str | None = None
    model_loading_timeout_s: int | None = None
    model_loading_timeout_source: str | None = None
    # SageMaker CreateEndpointConfig ProductionVariant field; must be >= model_loading_timeout
    # (reference/lmi-runtime.md §17.6)
    ContainerStartupHealthCheckTimeoutInSeconds: int | None = None
    notes: list[str] = Field(default_factory=list)


class TargetResult(BaseModel):
    target: str
    repository: str  # host/repo the bytes went to
    digest: str
    pinned: str  # repository@sha256:...
    tags_pushed: list[str] = Field(default_factory=list)
    tags_skipped: list[str] = Field(default_factory=list)  # already at this digest
    verified: bool
    verified_by: str
    engine_retries: int = 0  # "Retrying in N seconds" layer events seen
    push_attempts: int = 0
    ecr_repository_uri: str | None = None
    ecr_repository_created: bool | None = None
    deploy: DeployHints = Field(default_factory=DeployHints)


class PublishResult(BaseModel):
    status: Literal["published", "failed"] = "published"
    image_ref: str
    image_id: str
    recipe_name: str | None = None
    recipe_hash: str | None = None
    lmi_version: str | None = None
    smoke: str  # passed | not-checked (--skip-smoke)
    smoke_gate_skipped: bool = False
    dev_runtime: bool = False
    targets: list[TargetResult] = Field(default_factory=list)
    error: str | None = None
