"""Ahead-of-time compilation (TensorRT-LLM engines, Neuron artifacts), run in the target runtime's own
toolchain. Entry point: ``compile_artifacts``; see docs/artifacts-and-compile.md."""

from __future__ import annotations

from builder.compile.models import CompileResult
from builder.compile.run import compile_artifacts, compile_cache_key

__all__ = ["CompileResult", "compile_artifacts", "compile_cache_key"]
