"""Typed inputs and outputs of the smoke stage (pydantic v2 at the boundary)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SmokeMode = Literal["auto", "always", "never"]
AcceleratorsMode = Literal["auto", "none"]
SmokeStatus = Literal["passed", "failed", "skipped"]
TargetKind = Literal["gpu", "neuron", "cpu"]

# The LMI GPU images set MODEL_LOADING_TIMEOUT=1200; PyModel's code default is 240
# (reference/lmi-runtime.md §5, §12, §17.3). The readiness deadline adds a margin on top.
DEFAULT_LOADING_TIMEOUT_S = {"dev-cpu": 240, "cpu": 240}
IMAGE_LOADING_TIMEOUT_S = 1200
READINESS_MARGIN_S = 60


class SmokeSettings(BaseModel):
    """The recipe's ``smoke`` section as baked into the image's ``dev.lmi-builder.smoke`` label,
    plus ``model_loading_timeout``. As ``overrides`` only the fields set explicitly win."""

    model_config = ConfigDict(extra="ignore")

    enabled: bool = True
    prompt: str = "What is Deep Learning?"
    max_new_tokens: int = Field(32, gt=0)
    expect_regex: str | None = None
    min_tokens: int | None = Field(None, ge=0)
    concurrent_requests: int = Field(0, ge=0)
    readiness_timeout_s: float | None = Field(None, gt=0)
    request_timeout_s: float = Field(300, gt=0)
    shm_size: str = "2g"
    env: dict[str, str] = Field(default_factory=dict)
    model_loading_timeout: int | None = Field(None, ge=0)  # 0 (as the bake stage writes "unset") = unknown
    # why the streaming request does not apply to this configuration (None: it does); from the labels
    stream_not_applicable: str | None = None

    def merged(self, overrides: SmokeSettings | None) -> SmokeSettings:
        if overrides is None:
            return self
        update = {k: getattr(overrides, k) for k in overrides.model_fields_set}
        if "env" in update:  # env overrides add to (and win over) the recipe's env
            update["env"] = {**self.env, **overrides.env}
        return self.model_copy(update=update)

    def readiness_deadline_s(self, family: str | None) -> float:
        if self.readiness_timeout_s:
            return float(self.readiness_timeout_s)
        loading = self.model_loading_timeout or DEFAULT_LOADING_TIMEOUT_S.get(family or "", IMAGE_LOADING_TIMEOUT_S)
        return float(loading + READINESS_MARGIN_S)

    def readiness_deadline_label(self, family: str | None) -> str:
        """What set ``readiness_deadline_s``, named in the failure message."""
        if self.readiness_timeout_s:
            return "smoke.readiness_timeout_s"
        if self.model_loading_timeout:
            return f"option.model_loading_timeout + {READINESS_MARGIN_S} s"
        return f"default model loading timeout + {READINESS_MARGIN_S} s"


class Check(BaseModel):
    name: str
    ok: bool
    detail: str = ""


class SmokeMetrics(BaseModel):
    time_to_ready_s: float | None = None
    first_request_latency_s: float | None = None
    generated_tokens: int | None = None
    stream_time_to_first_token_s: float | None = None
    stream_tokens: int | None = None
    stream_tokens_per_s: float | None = None
    concurrent_requests: int | None = None
    concurrent_wall_s: float | None = None
    peak_memory_bytes: int | None = None
    peak_memory_source: str | None = None  # "docker stats max_usage" | "cgroup memory.peak" | ...


class SmokeResult(BaseModel):
    status: SmokeStatus
    reason: str = ""
    image: str = ""
    image_id: str = ""
    run_id: str = ""
    accelerators: str = "none"  # "gpu" | "neuron" | "none": what the container actually got
    port: int | None = None
    checks: list[Check] = Field(default_factory=list)
    metrics: SmokeMetrics = Field(default_factory=SmokeMetrics)
    log_path: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "passed"
