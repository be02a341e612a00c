"""The recipe: pydantic v2 models, unknown keys rejected everywhere.

Names under ``serving`` are exactly LMI's ``serving.properties`` names (reference/lmi-runtime.md §4,
§6) so that a user who knows LMI learns nothing new. Cross-field and version-aware rules live in
``builder.lmi.rules``; this module only fixes shapes and value syntax.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from builder.catalog.facts import FAMILIES as CATALOG_FAMILIES

NAME_RE = r"^[a-z0-9][a-z0-9._-]*$"
Family = Literal["lmi", "tensorrt-llm", "neuronx", "cpu", "dev-cpu"]
FAMILIES: tuple[str, ...] = CATALOG_FAMILIES  # builder/catalog/families.yaml; a test keeps Family equal
OptionValue = str | bool | int | float
SHA256_REF_RE = re.compile(r"^[^\s@]+@sha256:[0-9a-f]{64}$")


JAVA_INT_MAX = 2**31 - 1  # Integer.MAX_VALUE: LMI's Java front end reads these keys with Integer.parseInt


def _java_int(v: int) -> int:
    if not -(2**31) <= v <= JAVA_INT_MAX:
        raise ValueError(f"{v} is outside -2147483648..{JAVA_INT_MAX}, the range of Java's int; LMI reads this "
                         "key with Integer.parseInt and would fail at start")
    return v


# A server key LMI parses as a Java int. (Strict: YAML's true is not 1.)
JavaInt = Annotated[int, AfterValidator(_java_int)]


class Strict(BaseModel):
    # strict: no lax coercion of YAML values -- `true` is not the number 1, "5" is not 5, 5.0 is not 5
    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=True)


class ModelSource(Strict):
    """Where the weights come from, and what is baked beside ``serving.properties``."""

    id: str | None = Field(None, description="Hugging Face Hub model id, e.g. meta-llama/Meta-Llama-3-8B-Instruct")
    s3: str | None = Field(None, description="S3 prefix, s3://bucket/prefix/")
    path: str | None = Field(None, description="local folder, relative to the recipe file")
    revision: str | None = Field(None, description="Hub revision: a full commit sha (a branch or tag is resolved)")
    trust_remote_code: bool | None = Field(None, description="left out: false (LMI's default); true runs the model's own "
                                             "Python code (validate names the files)")
    bake: bool = Field(True, description="true: weights go into the image; false: the image downloads them at start")
    entry_point: str | None = Field(None, description="custom handler model.py, relative to the recipe file")
    files: list[str] = Field(default_factory=list, description="extra files baked beside the handler")
    requirements: str | None = Field(None, description="requirements.txt for the handler, relative to the recipe")

    @field_validator("id")
    @classmethod
    def _hub_id(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?", v):
            raise ValueError("a Hub model id looks like 'org/name' (letters, digits, '.', '_', '-')")
        return v

    @field_validator("s3")
    @classmethod
    def _s3(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\s]*)?", v):
            raise ValueError("an S3 source looks like 's3://bucket/prefix/'")
        return v

    @model_validator(mode="after")
    def _exactly_one(self) -> ModelSource:
        given = [k for k in ("id", "s3", "path") if getattr(self, k) is not None]
        if len(given) != 1:
            which = " and ".join(given) if given else "none"
            raise ValueError(f"give exactly one of model.id, model.s3, model.path (got {which})")
        return self

    @property
    def source_kind(self) -> Literal["hub", "s3", "path"]:
        return "hub" if self.id else "s3" if self.s3 else "path"


class Container(Strict):
    family: Family = Field(description="LMI container family (the DeepSpeed container of LMI <= 0.27 is 'lmi')")
    version: str = Field(description='container release known to the catalog: LMI\'s own numbering for the lmi family '
                         '(e.g. "lmi-27.0.0"), the DJL version for the others (e.g. "0.33.0"); a DJL version that '
                         'names exactly one release (e.g. "0.29.0") also works')
    image: str | None = Field(None, description="override of the runtime image; must be pinned by @sha256:")

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, v: Any) -> Any:
        if isinstance(v, float):
            raise ValueError(f'write the version as a quoted string, e.g. "{v}.0" (YAML read {v} as a number)')
        return v

    @field_validator("image")
    @classmethod
    def _pinned(cls, v: str | None) -> str | None:
        if v is not None and not SHA256_REF_RE.match(v):
            raise ValueError("container.image must be pinned by digest: REPO@sha256:<64 hex>")
        return v


class Target(Strict):
    instance_type: str = Field(description="ml.g5.12xlarge or g5.12xlarge")
    region: str | None = Field(None, description="AWS region; picks the DLC registry account")

    @field_validator("region")
    @classmethod
    def _region(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d", v):
            raise ValueError("a region looks like 'us-west-2'")
        return v


class Serving(Strict):
    """Per-model server keys (no prefix, reference §4) and the ``option.*`` mapping."""

    engine: str | None = None
    job_queue_size: JavaInt | None = None
    batch_size: JavaInt | None = None
    max_dynamic_batch_size: JavaInt | None = None
    max_batch_delay: JavaInt | None = None
    max_idle_time: JavaInt | None = None
    minWorkers: JavaInt | None = None  # LMI's own spelling
    maxWorkers: JavaInt | None = None
    load_on_devices: str | None = None
    required_memory_mb: JavaInt | None = None
    reserved_memory_mb: JavaInt | None = None
    retry_threshold: JavaInt | None = None
    log_request_metric: bool | None = None
    metrics_aggregation: JavaInt | None = None
    translatorFactory: str | None = None
    gpu_minWorkers: JavaInt | None = Field(None, alias="gpu.minWorkers")
    gpu_maxWorkers: JavaInt | None = Field(None, alias="gpu.maxWorkers")
    cpu_minWorkers: JavaInt | None = Field(None, alias="cpu.minWorkers")
    cpu_maxWorkers: JavaInt | None = Field(None, alias="cpu.maxWorkers")
    nc_minWorkers: JavaInt | None = Field(None, alias="nc.minWorkers")
    nc_maxWorkers: JavaInt | None = Field(None, alias="nc.maxWorkers")
    gpu_required_memory_mb: JavaInt | None = Field(None, alias="gpu.required_memory_mb")
    gpu_reserved_memory_mb: JavaInt | None = Field(None, alias="gpu.reserved_memory_mb")
    option: dict[str, OptionValue] = Field(default_factory=dict, description="option.* keys, without the prefix")
    pass_through: list[str] = Field(default_factory=list,
                                    description="option keys to pass even if the catalog does not know them")

    @field_validator("load_on_devices", mode="before")
    @classmethod
    def _devices_text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    def server_keys(self) -> dict[str, Any]:
        """Set server-level keys under their serving.properties names."""
        data = self.model_dump(by_alias=True, exclude_none=True, exclude={"option", "pass_through"})
        return data


class Compile(Strict):
    """Ahead-of-time compilation (TensorRT-LLM engines, Neuron artifacts)."""

    enabled: bool = False
    max_input_len: int | None = Field(None, gt=0)
    max_seq_len: int | None = Field(None, gt=0)
    max_num_tokens: int | None = Field(None, gt=0)
    max_batch_size: int | None = Field(None, gt=0)
    quantization: str | None = None
    calibration: dict[str, OptionValue] = Field(default_factory=dict)
    options: dict[str, OptionValue] = Field(default_factory=dict, description="other compile-only options")
    executor: Literal["docker", "local"] = "docker"
    timeout_s: int = Field(7200, gt=0)


class Smoke(Strict):
    enabled: bool = True
    prompt: str = "What is Deep Learning?"
    max_new_tokens: int = Field(32, gt=0, le=4096)
    expect_regex: str | None = None
    min_tokens: int | None = Field(None, ge=0)
    concurrent_requests: int = Field(0, ge=0, le=64)
    readiness_timeout_s: int | None = Field(None, gt=0, description="default: model loading timeout + margin")
    request_timeout_s: int = Field(300, gt=0)
    shm_size: str = "2g"
    env: dict[str, str] = Field(default_factory=dict)

    @field_validator("expect_regex")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return v


ECR_ACCOUNT_RE = r"^\d{12}$"
ECR_REGION_RE = r"^[a-z]{2}(?:-[a-z]+)+-\d$"
ECR_REPOSITORY_RE = r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$"


# One ECR schema: the recipe's publish.ecr and `lmi-build publish --ecr-*` (builder.publish.models.PublishTarget).
# The validators word the messages; the patterns are repeated in the JSON schema for editors, which
# a validator does not reach.
class EcrTarget(Strict):
    """An Amazon ECR repository to publish the image to."""

    account: str = Field(json_schema_extra={"pattern": ECR_ACCOUNT_RE})
    region: str = Field(json_schema_extra={"pattern": ECR_REGION_RE})
    repository: str = Field(json_schema_extra={"pattern": ECR_REPOSITORY_RE, "minLength": 2, "maxLength": 256})
    lifecycle_policy: dict[str, Any] | None = None

    @field_validator("account")
    @classmethod
    def _account(cls, v: str) -> str:
        v = v.strip()
        if not re.fullmatch(ECR_ACCOUNT_RE, v):
            raise ValueError(f"ECR account must be 12 digits, got {v!r}")
        return v

    @field_validator("region")
    @classmethod
    def _region(cls, v: str) -> str:
        if not re.fullmatch(ECR_REGION_RE, v):
            raise ValueError(f"not an AWS region name: {v!r}")
        return v

    @field_validator("repository")
    @classmethod
    def _repository(cls, v: str) -> str:
        if not (2 <= len(v) <= 256 and re.fullmatch(ECR_REPOSITORY_RE, v)):
            raise ValueError(f"ECR repository names are lower-case [a-z0-9._-/] (2-256): {v!r}")
        return v


class S3Publish(Strict):
    """Uncompressed artifacts for the stock LMI image (builder/publish/s3_publish.py)."""

    uri: str = Field(description="S3 prefix the model files and serving.properties go under: s3://bucket/prefix/")

    @field_validator("uri")
    @classmethod
    def _uri(cls, v: str) -> str:
        if not re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/([^\s]*/)?", v if v.endswith("/") else v + "/"):
            raise ValueError("publish.s3.uri looks like 's3://bucket/prefix/'")
        return v


class Publish(Strict):
    ecr: EcrTarget | None = None
    s3: S3Publish | None = None
    registry: str | None = Field(None, description="any OCI registry: HOST[:PORT]/REPO")
    tags: list[str] = Field(default_factory=list, description="tag templates: {name} {recipe_hash12} {git_sha} ...")


class Recipe(Strict):
    name: Annotated[str, StringConstraints(pattern=NAME_RE, max_length=63)]
    description: str = ""
    model: ModelSource
    container: Container
    target: Target
    serving: Serving = Field(default_factory=Serving)
    compile: Compile = Field(default_factory=Compile)
    smoke: Smoke = Field(default_factory=Smoke)
    publish: Publish = Field(default_factory=Publish)
    env: dict[str, str] = Field(default_factory=dict, description="non-secret environment baked into the image")
