"""Typed results of the compile stage."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel


class CompileResult(BaseModel):
    status: Literal["compiled", "cached", "skipped"]
    reason: str = ""  # why skipped (or "cache hit ...")
    dir: Path | None = None  # compiled artifacts to bake in place of the model folder
    cache_key: str | None = None
    toolchain: dict[str, str] = {}  # e.g. {"tensorrt_llm": "0.21.0", "arch": "sm_86"}; image labels
    seconds: float | None = None  # compile duration (of the run that made the entry)
    properties_overrides: dict[str, str] = {}  # what serving.properties needs to load dir without recompiling
    marker: str | None = None
    origin: Literal["local", "remote", "built"] | None = None  # where the entry came from (None: skipped)
    remote: dict = {}  # --cache-remote: uri, bytes/objects moved, upload outcome


class Gpu(BaseModel):
    name: str
    compute_capability: str  # "8.6"
    memory_bytes: int

    @property
    def arch(self) -> str:
        return "sm_" + self.compute_capability.replace(".", "")


class HostAccelerators(BaseModel):
    gpus: list[Gpu] = []
    neuron_devices: list[str] = []
    nvidia_smi: str | None = None  # path, None when absent
    note: str = ""  # why detection found nothing (nvidia-smi error text)
