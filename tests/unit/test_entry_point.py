"""The handler LMI picks when a recipe names none, per release, as PyModel.java of each branch decides
it (v15 0.33.0-dlc:188, v16 0.34.0-dlc:188, v17+ 0.35.0-dlc:190) and pinned in the render."""

from __future__ import annotations

from typing import Any

import pytest

from builder.lmi.resolve import resolve
from builder.recipe.model import Recipe

ASYNC = "djl_python.lmi_vllm.vllm_async_service"
HF = "djl_python.huggingface"
SHA = "0123456789abcdef0123456789abcdef01234567"


def _recipe(version: str, **option: Any) -> Recipe:
    return Recipe.model_validate({
        "name": "t", "model": {"id": "org/m", "revision": SHA}, "container": {"family": "lmi", "version": version},
        "target": {"instance_type": "ml.g6.12xlarge"}, "serving": {"engine": "Python", "option": option}})


@pytest.mark.parametrize(("version", "option", "expected"), [
    # v15: the vLLM image runs the async service whatever rolling_batch says (async_mode forced on)
    ("lmi-15.0.0", {"rolling_batch": "vllm"}, ASYNC),
    ("lmi-15.0.0", {"rolling_batch": "disable"}, ASYNC),
    # v16: djl_python.huggingface, async_mode or not
    ("lmi-16.0.0", {"rolling_batch": "auto"}, HF),
    ("lmi-16.0.0", {"rolling_batch": "disable", "async_mode": True}, HF),
    # v17 on: async service with async_mode, and auto means disable + async for text generation
    ("lmi-17.0.0", {"rolling_batch": "disable", "async_mode": True}, ASYNC),
    ("lmi-27.0.0", {"rolling_batch": "auto"}, ASYNC),
    ("lmi-27.0.0", {"rolling_batch": "vllm"}, HF),
    ("lmi-27.0.0", {"rolling_batch": "disable"}, HF),
    # v11: huggingface for vllm and for auto
    ("lmi-11.0.0", {"rolling_batch": "auto"}, HF),
    ("lmi-11.0.0", {"rolling_batch": "vllm"}, HF),
    # an explicit entryPoint always wins
    ("lmi-15.0.0", {"rolling_batch": "vllm", "entryPoint": HF}, HF),
])
def test_entry_point_per_release(version: str, option: dict[str, Any], expected: str) -> None:
    resolved = resolve(_recipe(version, **option))
    assert resolved.entry_point == expected
    assert resolved.properties["option.entryPoint"] == expected
