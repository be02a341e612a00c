"""Reading what a smoke test needs from image labels; device plans; result recording."""

from __future__ import annotations

import json

import pytest

from builder import labels as L
from builder import ledger
from builder.diagnostics import BuilderError
from builder.smoke.container import (
    DevicePlan,
    ManagedContainer,
    NoAcceleratorError,
    is_no_gpu_runtime,
    plan_devices,
)
from builder.smoke.image_info import parse_labels
from builder.smoke.models import SmokeResult, SmokeSettings
from builder.smoke.run import _record


def test_labels_give_settings_target_and_family():
    labels = {L.SMOKE: json.dumps({"prompt": "p", "max_new_tokens": 4, "env": {"A": "1"}, "shm_size": "8g",
                                   "model_loading_timeout": 1800}),
              L.RECIPE_JSON: json.dumps({"target": {"kind": "gpu", "devices": 4}}), L.LMI_FAMILY: "tensorrt-llm"}
    info = parse_labels("img", "sha256:" + "a" * 64, labels, {"8080/tcp": {}})
    assert info.settings.prompt == "p" and info.settings.shm_size == "8g" and info.settings.env == {"A": "1"}
    assert info.target_kind == "gpu" and info.devices == 4 and info.family == "tensorrt-llm"
    assert info.settings.readiness_deadline_s(info.family) == 1860  # model loading timeout + margin


def test_deadline_defaults():
    assert SmokeSettings(readiness_timeout_s=90).readiness_deadline_s("lmi") == 90
    assert SmokeSettings().readiness_deadline_s("lmi") == 1200 + 60  # the LMI images' MODEL_LOADING_TIMEOUT
    assert SmokeSettings().readiness_deadline_s("dev-cpu") == 240 + 60  # PyModel's code default


def test_loading_timeout_from_recipe_serving_option():
    labels = {L.RECIPE_JSON: json.dumps({"serving": {"properties": {"option.model_loading_timeout": "600"}}}),
              L.SMOKE: json.dumps({"model_loading_timeout": 0, "predict_timeout": 0})}  # 0: the baker's "unset"
    info = parse_labels("i", "sha256:x", labels)
    assert info.settings.model_loading_timeout == 600 and info.settings.readiness_deadline_s(None) == 660


def test_unlabelled_image_and_bad_json():
    info = parse_labels("i", "sha256:x", {L.RECIPE_JSON: "{not json"})
    assert info.target_kind is None and info.settings == SmokeSettings() and "not valid JSON" in info.warnings[0]


def test_bad_smoke_label_is_a_located_error():
    with pytest.raises(BuilderError, match="max_new_tokens"):
        parse_labels("i", "sha256:x", {L.SMOKE: json.dumps({"max_new_tokens": -1})})


def test_overrides_win_only_where_set():
    base = SmokeSettings(prompt="p", env={"A": "1", "B": "2"}, readiness_timeout_s=100)
    merged = base.merged(SmokeSettings(env={"B": "3"}))
    assert merged.prompt == "p" and merged.readiness_timeout_s == 100 and merged.env == {"A": "1", "B": "3"}


def test_device_plans(tmp_path):
    assert plan_devices("gpu", "none").kind == "none"
    assert plan_devices("cpu", "auto").kind == "none"
    assert plan_devices(None, "auto").kind == "none"
    gpu = plan_devices("gpu", "auto")
    assert gpu.kind == "gpu" and gpu.device_requests[0]["Count"] == -1
    assert gpu.device_requests[0]["Capabilities"] == [["gpu"]]
    with pytest.raises(NoAcceleratorError, match="no /dev/neuron"):
        plan_devices("neuron", "auto", neuron_glob=str(tmp_path / "neuron*"))
    for i in range(2):
        (tmp_path / f"neuron{i}").touch()
    neuron = plan_devices("neuron", "auto", 2, neuron_glob=str(tmp_path / "neuron*"))
    assert neuron.devices == [f"{tmp_path}/neuron0:{tmp_path}/neuron0:rwm", f"{tmp_path}/neuron1:{tmp_path}/neuron1:rwm"]


def test_no_gpu_runtime_message():
    assert is_no_gpu_runtime(Exception('could not select device driver "" with capabilities: [[gpu]]'))
    assert not is_no_gpu_runtime(Exception("no such image"))


class _FakeContainers:
    def __init__(self, error=None):
        self.kwargs = None
        self.error = error

    def create(self, image, **kw):
        self.kwargs = kw
        outer = self

        class C:
            id = "c1"

            def start(self):
                if outer.error:
                    raise outer.error

        return C()


class _FakeClient:
    def __init__(self, error=None):
        self.containers = _FakeContainers(error)


def test_container_is_created_then_started_with_labels_env_init_and_host_network():
    client = _FakeClient()
    box = ManagedContainer(client, "sha256:img", run_id="r1", role="smoke", port=18080, env={"X": "1"},
                           shm_size="4g", plan=plan_devices("gpu", "auto"))
    box.start()
    kw = client.containers.kwargs
    assert kw["init"] is True and kw["network_mode"] == "host" and kw["shm_size"] == "4g"
    assert kw["labels"][L.MANAGED] == "true" and kw["labels"][L.ROLE] == "smoke" and kw["labels"][L.SMOKE_RUN] == "r1"
    assert kw["environment"]["X"] == "1"
    assert kw["environment"]["SERVING_INFERENCE_ADDRESS"] == "http://127.0.0.1:18080"
    assert kw["device_requests"] and "ports" not in kw


def test_gpu_start_error_becomes_no_accelerator():
    import docker.errors

    err = docker.errors.APIError("500", explanation='could not select device driver "" with capabilities: [[gpu]]')
    box = ManagedContainer(_FakeClient(err), "img", run_id="r", role="smoke", port=1, plan=plan_devices("gpu", "auto"))
    with pytest.raises(NoAcceleratorError, match="no GPU runtime"):
        box.start()
    assert box.container is not None  # created: the caller's cleanup removes it
    box2 = ManagedContainer(_FakeClient(err), "img", run_id="r", role="smoke", port=1, plan=DevicePlan("none"))
    with pytest.raises(BuilderError) as exc:
        box2.start()
    assert not isinstance(exc.value, NoAcceleratorError)


def _result(status, reason="r"):
    return SmokeResult(status=status, reason=reason, image_id="sha256:" + "b" * 64)


def test_ledger_skip_never_overwrites_a_pass(tmp_path):
    _record(_result("passed"), tmp_path)
    _record(_result("skipped", "no GPU runtime"), tmp_path)
    assert ledger.lookup("sha256:" + "b" * 64, tmp_path).status == "passed"
    _record(_result("failed"), tmp_path)
    assert ledger.lookup("sha256:" + "b" * 64, tmp_path).status == "failed"


def test_ledger_never_mode_records_nothing(tmp_path):
    _record(_result("skipped", "--smoke never"), tmp_path)
    assert ledger.lookup("sha256:" + "b" * 64, tmp_path) is None


def _recipe_label(props: dict[str, str]) -> dict:
    import json

    from builder import labels as L

    return {L.RECIPE_JSON: json.dumps({"serving": {"properties": props}}), L.SMOKE: "{}"}


def test_builtin_handler_without_rolling_batch_is_not_asked_to_stream():
    from builder.smoke.image_info import parse_labels

    info = parse_labels("img", "sha256:" + "a" * 64, _recipe_label(
        {"option.rolling_batch": "disable", "option.entryPoint": "djl_python.huggingface"}))
    assert "does not stream" in info.settings.stream_not_applicable


def test_streaming_is_checked_for_custom_handlers_rolling_batch_and_enable_streaming():
    from builder.smoke.image_info import parse_labels

    for props in ({"option.rolling_batch": "disable", "option.entryPoint": "model.py"},
                  {"option.rolling_batch": "vllm", "option.entryPoint": "djl_python.huggingface"},
                  {"option.rolling_batch": "disable", "option.entryPoint": "djl_python.huggingface",
                   "option.enable_streaming": "true"}):
        info = parse_labels("img", "sha256:" + "a" * 64, _recipe_label(props))
        assert info.settings.stream_not_applicable is None, props


def test_a_not_applicable_stream_check_is_reported_not_run(monkeypatch):
    from builder.smoke import checks as C
    from builder.smoke.judge import Generation
    from builder.smoke.models import Check, SmokeMetrics, SmokeSettings

    monkeypatch.setattr(C, "generate", lambda url, s: (Generation(text="x", tokens=1, checks=[Check(name="generate", ok=True)]), 0.01))
    monkeypatch.setattr(C, "generate_stream", lambda *a, **k: (_ for _ in ()).throw(AssertionError("streamed")))
    out = C.run_checks("http://127.0.0.1:1", SmokeSettings(stream_not_applicable="why"), SmokeMetrics())
    assert [c.name for c in out][-1] == "generate-stream" and out[-1].detail == "not run: why"
