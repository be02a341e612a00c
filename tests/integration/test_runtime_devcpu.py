"""The dev-cpu runtime: cached builds, and real djl_python handlers served under DJL's HTTP contract."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import requests

from tests.support.docker_fixtures import free_port, quickstart_handler_path, wait_http

pytestmark = pytest.mark.docker

HANDLERS = Path(__file__).parent / "handlers"


def _model_dir(tmp_path: Path, handler: Path | str, *, example: bool = False, props: str = "") -> Path:
    d = tmp_path / "model"
    d.mkdir()
    if example:
        from builder.examples.quickstart import write_example_model

        write_example_model(d)
    shutil.copy(handler, d / "model.py")
    if props:
        (d / "serving.properties").write_text(props)
    d.chmod(0o755)
    return d


def _serve(run_container, runtime, model_dir: Path, **env):
    port = free_port()
    env = {"SERVING_INFERENCE_ADDRESS": f"http://127.0.0.1:{port}", **{k: str(v) for k, v in env.items()}}
    container = run_container(runtime.ref, env=env, mounts={str(model_dir): runtime.model_dir})
    return container, f"http://127.0.0.1:{port}"


def test_runtime_build_is_cached(devcpu_runtime, docker_client, monkeypatch):
    from builder import engine
    from builder.runtime import devcpu, maven, rootfs

    def forbidden(*a, **k):
        raise AssertionError("a cached runtime build must not do this")

    # A second call must not debootstrap, call mvn or docker build.
    monkeypatch.setattr(rootfs, "_debootstrap_import", forbidden)
    monkeypatch.setattr(maven, "_mvn_copy", forbidden)
    monkeypatch.setattr(engine, "build", forbidden)
    again = devcpu.ensure_devcpu_runtime(client=docker_client)
    assert again.built is False
    assert again.ref == devcpu_runtime.ref and again.image_id == devcpu_runtime.image_id
    labels = docker_client.api.inspect_image(again.ref)["Config"]["Labels"]
    assert labels["dev.lmi-builder.dev-runtime"] == "true"
    assert labels["dev.lmi-builder.role"] == "runtime"
    assert labels["dev.lmi-builder.djl-python.version"] == "0.34.0"
    assert labels["dev.lmi-builder.inputs.digest"] == again.inputs_digest


def test_quickstart_served_with_djl_contract(devcpu_runtime, run_container, tmp_path):
    model = _model_dir(tmp_path, quickstart_handler_path(), example=True,
                       props="engine=Python\noption.model_loading_timeout=120\n")
    container, base = _serve(run_container, devcpu_runtime, model, LMI_DEV_LOAD_DELAY_S=2)
    status, seen = wait_http(f"{base}/ping", 60, container=container)
    assert status == 200
    assert "refused" in seen, "the port must stay closed while the model loads"
    assert requests.get(f"{base}/ping", timeout=5).json() == {"model": {"status": "Healthy"}}

    body = {"inputs": "What is Deep Learning?", "parameters": {"max_new_tokens": 6, "details": True}}
    r = requests.post(f"{base}/invocations", json=body, timeout=30)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    answer = r.json()
    assert answer["details"]["finish_reason"] == "length"
    assert answer["details"]["generated_tokens"] == 6
    assert answer["generated_text"] == "".join(t["text"] for t in answer["details"]["tokens"])
    assert answer["generated_text"].strip()
    again = requests.post(f"{base}/invocations", json=body, timeout=30).json()
    assert again == answer  # deterministic

    r = requests.post(f"{base}/invocations", json={**body, "stream": True}, timeout=30, stream=True)
    assert r.status_code == 200 and r.headers["content-type"] == "application/jsonlines"
    lines = [json.loads(x) for x in r.iter_lines() if x]
    assert len(lines) == 6 and all("token" in x for x in lines)
    assert lines[-1]["generated_text"] == answer["generated_text"]
    assert lines[-1]["details"]["finish_reason"] == "length"

    models = requests.get(f"{base}/models", timeout=5).json()
    assert models["models"][0]["modelName"] == "model"
    logs = container.logs().decode()
    assert '"POST /invocations HTTP/1.1" 200' in logs


def test_handler_raising_gives_lmi_424(devcpu_runtime, run_container, tmp_path):
    container, base = _serve(run_container, devcpu_runtime, _model_dir(tmp_path, HANDLERS / "raise_on_request.py"))
    assert wait_http(f"{base}/ping", 60, container=container)[0] == 200
    r = requests.post(f"{base}/invocations", json={"inputs": "x"}, timeout=30)
    assert r.status_code == 424
    assert r.json() == {"code": 424, "message": "invoke handler failure", "error": "handler exploded on request"}
    assert "ValueError: handler exploded on request" in container.logs().decode()


def test_memory_error_gives_507(devcpu_runtime, run_container, tmp_path):
    container, base = _serve(run_container, devcpu_runtime, _model_dir(tmp_path, HANDLERS / "oom.py"))
    assert wait_http(f"{base}/ping", 60, container=container)[0] == 200
    assert requests.post(f"{base}/invocations", json={"inputs": "x"}, timeout=30).status_code == 507


def test_load_failure_exits_nonzero_with_traceback(devcpu_runtime, run_container, tmp_path):
    container, base = _serve(run_container, devcpu_runtime, _model_dir(tmp_path, HANDLERS / "fail_load.py"))
    result = container.wait(timeout=60)
    assert result["StatusCode"] != 0
    logs = container.logs().decode()
    assert "Traceback" in logs and "RuntimeError: weights are corrupt (test handler)" in logs
    assert "_load_weights" in logs  # the handler's own frames, not only ours


def test_ping_status_knob_and_routes(devcpu_runtime, run_container, tmp_path):
    container, base = _serve(run_container, devcpu_runtime, _model_dir(tmp_path, HANDLERS / "echo.py"),
                             LMI_DEV_PING_STATUS=500)
    assert wait_http(f"{base}/ping", 60, container=container)[0] == 500
    assert requests.get(f"{base}/nope", timeout=5).status_code == 404
    assert requests.get(f"{base}/invocations", timeout=5).status_code == 405
    assert requests.post(f"{base}/invocations", data=b"", timeout=5).status_code == 400
    r = requests.post(f"{base}/predictions/model", json={"inputs": "abc"}, timeout=5)
    assert r.status_code == 200 and r.json() == {"generated_text": "cba"}


def test_env_options_reach_handler_and_file_wins(devcpu_runtime, run_container, tmp_path):
    handler = tmp_path / "props.py"
    handler.write_text(
        "from djl_python import Output\n_props = {}\n"
        "def handle(inputs):\n"
        "    if inputs.is_empty():\n        _props.update(inputs.get_properties()); return None\n"
        "    return Output().add_as_json({k: _props.get(k) for k in ('rolling_batch', 'dtype', 'entryPoint')})\n")
    model = _model_dir(tmp_path, handler, props="option.rolling_batch=disable\noption.dtype : fp32\n")
    container, base = _serve(run_container, devcpu_runtime, model, OPTION_ROLLING_BATCH="vllm",
                             OPTION_DTYPE="fp16", OPTION_ENTRYPOINT="model.py")
    assert wait_http(f"{base}/ping", 60, container=container)[0] == 200
    got = requests.post(f"{base}/invocations", json={"inputs": "x"}, timeout=10).json()
    assert got == {"rolling_batch": "disable", "dtype": "fp32", "entryPoint": "model.py"}
