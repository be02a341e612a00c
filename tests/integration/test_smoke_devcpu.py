"""Smoke tests against real containers on the dev-cpu runtime (real djl_python handlers behind the
DJL Serving HTTP contract). Each test builds a tiny model image FROM the runtime and removes it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from builder import labels as L
from builder import ledger
from builder.smoke import SmokeSettings, smoke_test
from tests.support.smoke_support import HANDLERS, run_containers

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "recipes" / "examples" / "quickstart" / "model.py"


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("LMI_BUILD_CACHE", str(d))
    return d


def _smoke(client, image, cache, tmp_path, **kw):
    kw.setdefault("mode", "always")
    kw.setdefault("accelerators", "auto")
    result = smoke_test(image, docker_client=client, log_dir=tmp_path / "logs", cache_dir=cache, **kw)
    assert run_containers(client, result.run_id) == [], "the smoke container must be removed"
    return result


def _check(result, name):
    return next(c for c in result.checks if c.name == name)


def test_quickstart_passes_after_load_delay(docker_client, make_image, cache, tmp_path):
    image = make_image(QUICKSTART, example_model=True, smoke={"min_tokens": 4, "expect_regex": r"\w+",
                                                              "concurrent_requests": 3})
    result = _smoke(docker_client, image, cache, tmp_path,
                    overrides=SmokeSettings(env={"LMI_DEV_LOAD_DELAY_S": "3"}))
    assert result.status == "passed", result.reason
    assert [c.name for c in result.checks] == ["ready", "generate", "expect-regex", "min-tokens", "generate-stream",
                                              "expect-regex-stream", "min-tokens-stream", "concurrent"]
    assert result.accelerators == "none"
    assert result.metrics.time_to_ready_s >= 3  # connection refused during the delay = still loading
    assert result.metrics.stream_tokens == 8 and result.metrics.stream_tokens_per_s > 0
    assert "finish_reason length" in _check(result, "generate").detail
    assert "application/jsonlines" in _check(result, "generate-stream").detail
    outcome = ledger.lookup(result.image_id, cache)
    assert outcome is not None and outcome.status == "passed" and outcome.accelerators == "none"
    assert Path(result.log_path).read_text().count("Loading model") >= 1


def test_echo_handler_without_details_passes(docker_client, make_image, cache, tmp_path):
    result = _smoke(docker_client, make_image(HANDLERS / "echo.py"), cache, tmp_path)
    assert result.status == "passed", result.reason
    assert "xof nworb kciuq eht" in _check(result, "generate").detail


def test_ping_500_fails_at_once(docker_client, make_image, cache, tmp_path):
    result = _smoke(docker_client, make_image(HANDLERS / "echo.py"), cache, tmp_path,
                    overrides=SmokeSettings(env={"LMI_DEV_PING_STATUS": "500"}))
    assert result.status == "failed"
    ready = _check(result, "ready")
    assert not ready.ok and "500" in ready.detail and "Unhealthy" in ready.detail
    assert result.seconds < 50  # not the 60 s deadline: 500 is final
    assert ledger.lookup(result.image_id, cache).status == "failed"


def test_handler_failing_to_load_reports_exit_and_traceback(docker_client, make_image, cache, tmp_path, capsys):
    result = _smoke(docker_client, make_image(HANDLERS / "fail_load.py"), cache, tmp_path)
    assert result.status == "failed"
    assert "exit code 1" in _check(result, "ready").detail
    log = Path(result.log_path).read_text()
    assert "weights are corrupt (test handler)" in log and "Traceback" in log
    assert "weights are corrupt (test handler)" in capsys.readouterr().err  # the printed log tail


def test_handler_raising_on_request_reports_server_body(docker_client, make_image, cache, tmp_path):
    result = _smoke(docker_client, make_image(HANDLERS / "raise_on_request.py"), cache, tmp_path)
    assert result.status == "failed"
    gen = _check(result, "generate")
    assert not gen.ok and "HTTP 424" in gen.detail and "handler exploded on request" in gen.detail
    assert not _check(result, "generate-stream").ok


@pytest.mark.parametrize("handler, check, words", [
    ("empty_text.py", "generate", "generated_text is empty"),
    ("error_finish.py", "generate", "finish_reason is 'error'"),
    ("malformed_jsonlines.py", "generate-stream", "is not JSON"),
])
def test_bad_answers_fail(docker_client, make_image, cache, tmp_path, handler, check, words):
    result = _smoke(docker_client, make_image(HANDLERS / handler), cache, tmp_path)
    assert result.status == "failed"
    c = _check(result, check)
    assert not c.ok and words in c.detail, c.detail


def test_hang_while_loading_hits_the_deadline(docker_client, make_image, cache, tmp_path):
    result = _smoke(docker_client, make_image(HANDLERS / "echo.py"), cache, tmp_path,
                    overrides=SmokeSettings(env={"LMI_DEV_HANG": "load"}, readiness_timeout_s=4))
    assert result.status == "failed"
    ready = _check(result, "ready")
    assert "not ready within 4 s" in ready.detail and "connection refused" in ready.detail


def test_gpu_target_without_gpu_runtime_is_skipped_or_fails(docker_client, make_image, cache, tmp_path):
    if "nvidia" in json.dumps(docker_client.info().get("Runtimes", {})):
        pytest.skip("this engine has an NVIDIA runtime: the no-GPU path cannot be exercised here")
    image = make_image(HANDLERS / "echo.py", target_kind="gpu")
    auto = _smoke(docker_client, image, cache, tmp_path, mode="auto")
    assert auto.status == "skipped" and "no GPU runtime" in auto.reason, auto.reason
    assert ledger.lookup(auto.image_id, cache).status == "skipped"  # recorded, and never "passed"
    always = _smoke(docker_client, image, cache, tmp_path, mode="always")
    assert always.status == "failed" and "no GPU runtime" in always.reason
    # --accelerators none runs it without device requests, and says so
    none = _smoke(docker_client, image, cache, tmp_path, mode="always", accelerators="none")
    assert none.status == "passed" and none.accelerators == "none"


def test_never_mode_skips_without_starting(docker_client, make_image, cache, tmp_path):
    result = _smoke(docker_client, make_image(HANDLERS / "echo.py"), cache, tmp_path, mode="never")
    assert result.status == "skipped" and result.checks == []
    assert ledger.lookup(result.image_id, cache) is None


def _smoke_containers(client, pid: int) -> list[dict]:
    from builder.smoke.container import OWNER_PID

    return client.api.containers(all=True, filters={"label": [f"{L.ROLE}=smoke", f"{OWNER_PID}={pid}"]})


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_during_readiness_leaves_no_container(docker_client, make_image, cache, tmp_path, sig):
    image = make_image(HANDLERS / "echo.py")
    env = {**os.environ, "LMI_BUILD_CACHE": str(cache), "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "builder", "smoke", image, "--env", "LMI_DEV_HANG=load",
                             "--readiness-timeout", "120"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = _smoke_containers(docker_client, proc.pid)
            if found and found[0]["State"] == "running":
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.2)
        else:
            pytest.fail("the smoke container never started")
        run_id = found[0]["Labels"][L.SMOKE_RUN]
        time.sleep(1.0)  # inside the readiness wait
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err.decode()
    assert run_containers(docker_client, run_id) == []
    assert b"Traceback" not in err


def test_sweep_removes_leftovers_of_dead_runs_only(docker_client, make_image, cache, tmp_path):
    from builder.smoke.container import OWNER_HOST, OWNER_PID

    image = make_image(HANDLERS / "echo.py")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = dead.stdout.strip()
    run_dead, run_live = uuid.uuid4().hex[:12], uuid.uuid4().hex[:12]
    import socket

    made = []
    for run_id, pid in ((run_dead, dead_pid), (run_live, str(os.getpid()))):
        made.append(docker_client.api.create_container(image, labels={
            L.MANAGED: "true", L.ROLE: "smoke", L.SMOKE_RUN: run_id, OWNER_PID: pid,
            OWNER_HOST: socket.gethostname()})["Id"])
    try:
        env = {**os.environ, "LMI_BUILD_CACHE": str(cache), "PYTHONPATH": str(REPO)}
        out = subprocess.run([sys.executable, "-m", "builder", "smoke", "--sweep"], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert run_containers(docker_client, run_dead) == []
        assert len(run_containers(docker_client, run_live)) == 1  # its owner (this process) is alive
    finally:
        for cid in made:
            try:
                docker_client.api.remove_container(cid, force=True)
            except Exception:
                pass
