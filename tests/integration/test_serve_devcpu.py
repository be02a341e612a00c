"""``lmi-build serve`` / ``predict`` against real dev-cpu containers, run as the user would (CLI
in a subprocess)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from builder import labels as L
from builder.smoke.container import SERVE_IMAGE
from tests.support.smoke_support import HANDLERS

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "recipes" / "examples" / "quickstart" / "model.py"


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "builder", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _serve_containers(client, image_id: str) -> list[dict]:
    return client.api.containers(all=True, filters={"label": [f"{L.ROLE}=serve", f"{SERVE_IMAGE}={image_id}"]})


def test_serve_then_predict_reuses_it_and_ctrl_c_removes_it(docker_client, make_image):
    image = make_image(QUICKSTART, example_model=True)
    image_id = docker_client.api.inspect_image(image)["Id"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "builder", "serve", image], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()  # printed once /ping answered 200
        assert url.startswith("http://127.0.0.1:"), proc.stderr.read() if proc.poll() is not None else url
        assert len(_serve_containers(docker_client, image_id)) == 1

        out = _cli("predict", image, "--data", '{"inputs": "the quick brown fox", "parameters": {"max_new_tokens": 4}}')
        assert out.returncode == 0, out.stderr
        assert "using the running serve container" in out.stderr
        assert json.loads(out.stdout)["generated_text"].strip()
        assert len(_serve_containers(docker_client, image_id)) == 1  # no second container

        out = _cli("predict", image, "--data", '{"inputs": "fox", "parameters": {"max_new_tokens": 3}, "stream": true}')
        lines = [json.loads(x) for x in out.stdout.splitlines()]
        assert out.returncode == 0 and len(lines) == 3 and "generated_text" in lines[-1]

        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "curl -s http://127.0.0.1:" in err and "/invocations" in err
    assert "Loading model" in err  # the server log was streamed
    assert _serve_containers(docker_client, image_id) == []


def test_predict_without_serve_uses_a_temporary_container(docker_client, make_image):
    image = make_image(HANDLERS / "echo.py")
    image_id = docker_client.api.inspect_image(image)["Id"]
    out = _cli("predict", image, "--data", '{"inputs": "abc"}')
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"generated_text": "cba"}
    assert _serve_containers(docker_client, image_id) == []


def test_predict_reports_server_error_body(docker_client, make_image):
    image = make_image(HANDLERS / "raise_on_request.py")
    out = _cli("predict", image, "--data", '{"inputs": "abc"}')
    assert out.returncode == 1
    assert "handler exploded on request" in out.stdout and "HTTP 424" in out.stderr


def test_serve_of_a_model_that_fails_to_load(docker_client, make_image):
    image = make_image(HANDLERS / "fail_load.py")
    out = _cli("serve", image)
    assert out.returncode == 1
    assert "exit code 1" in out.stderr and "weights are corrupt (test handler)" in out.stderr
    assert f'File "{REPO / "builder"}' not in out.stderr  # the handler's traceback, never ours
    image_id = docker_client.api.inspect_image(image)["Id"]
    assert _serve_containers(docker_client, image_id) == []


def test_cli_usage_errors(docker_client, make_image):
    out = _cli("predict", "no-such-image:never", "--data", '{"inputs": "x"}')
    assert out.returncode == 1 and "no image 'no-such-image:never'" in out.stderr and "Traceback" not in out.stderr
    out = _cli("smoke", "missing.yaml")
    assert out.returncode == 2 and "no such recipe file" in out.stderr
    out = _cli("smoke", "img", "--env", "1BAD=x")
    assert out.returncode == 2 and "KEY=VALUE" in out.stderr
    out = _cli("smoke")
    assert out.returncode == 2
