"""Verify that a compile produced what the runtime recognises as "already compiled" (§11.5)."""

from __future__ import annotations

import json
from pathlib import Path


def _config(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def check_marker(marker: str, out: Path) -> str | None:
    """None when ``out`` carries ``marker``, else what is missing."""
    if marker == "trtllm-build-config":
        cfg = _config(out / "config.json")
        if cfg is None:
            return "no config.json in the output (TensorRT-LLM master marker: config.json with build_config)"
        if "build_config" not in cfg:
            return "config.json has no top-level \"build_config\" key: the runtime would recompile (JIT) at start"
        return None
    if marker == "triton-repo":
        for sub in [p for p in out.rglob("*") if p.is_dir()]:
            if (sub / "config.pbtxt").is_file() and (sub / "tokenizer_config.json").is_file():
                return None
        return "no sub-directory holds both config.pbtxt and tokenizer_config.json (v0.29.0 Triton repo marker)"
    if marker == "neuron-config":
        cfg = _config(out / "config.json")
        missing = []
        if cfg is None or not isinstance(cfg.get("neuron"), dict):
            missing.append('config.json with a "neuron" block')
        for sub in ("checkpoint", "compiled"):
            if not (out / sub).is_dir() or not any((out / sub).iterdir()):
                missing.append(f"{sub}/")
        return ("missing " + ", ".join(missing)) if missing else None
    return f"unknown marker {marker!r}"
