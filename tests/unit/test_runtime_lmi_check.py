"""LMI's own validators (djl_python 0.34.0) as a second opinion."""

from __future__ import annotations

import pytest

from builder.runtime.lmi_check import extracted_djl_python, lmi_check


@pytest.fixture(autouse=True)
def _need_jar():
    if extracted_djl_python() is None:
        pytest.skip("djl_python jar not cached; run `lmi-build runtime fetch`")


def test_valid_trtllm_options():
    v = lmi_check("tensorrt-llm", {"option.model_id": "/opt/ml/model", "option.rolling_batch": "trtllm",
                                   "option.tensor_parallel_degree": "4", "option.max_rolling_batch_size": "64"})
    assert v.ok is True and v.validator == "trt_properties.TensorRtLlmProperties"
    assert v.djl_python_version == "0.34.0"


def test_trtllm_rejects_vllm_rolling_batch():
    v = lmi_check("trtllm", {"model_id": "/opt/ml/model", "rolling_batch": "vllm"})
    assert v.ok is False and any("rolling_batch" in e for e in v.errors)


def test_streaming_with_dynamic_batching_is_rejected():
    v = lmi_check("hf", {"model_id": "m", "rolling_batch": "disable", "enable_streaming": "true",
                         "batch_size": "4"})
    assert v.ok is False and "cannot enable streaming for dynamic batching" in " ".join(v.errors)


def test_lmi_dist_needs_mpi():
    assert lmi_check("lmi-dist", {"model_id": "m", "rolling_batch": "lmi-dist"}).ok is False
    assert lmi_check("lmi-dist", {"model_id": "m", "rolling_batch": "lmi-dist", "mpi_mode": "true"}).ok is True


def test_without_the_jar_says_how_to_get_it(tmp_path):
    v = lmi_check("hf", {"model_id": "m"}, cache_dir=tmp_path)
    assert v.ok is None and "lmi-build runtime fetch" in v.message
