"""Publish against a real local registry (Debian docker-registry): plain, htpasswd, idempotent
re-publish, cut-off pushes. reference/containers-and-registries.md §4, §5."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid

import pytest
import requests

from builder import labels, ledger
from builder.diagnostics import BuilderError
from builder.publish import PublishOptions, PublishTarget, publish_image
from builder.publish.registry_api import MANIFEST_TYPES

pytestmark = [pytest.mark.docker, pytest.mark.registry]

HASH = "ab12cd34ef56" + "0" * 52


def _labels(name="tiny-llm", **extra):
    recipe = {"name": name, "serving": {"properties": {"option.model_loading_timeout": "900"}},  # as resolve.to_json()
              "target": {"instance_type": "ml.g5.xlarge"}}
    return {labels.RECIPE_NAME: name, labels.RECIPE_HASH: HASH, labels.LMI_VERSION: "0.29.0",
            labels.INPUTS_DIGEST: "sha256:" + HASH, labels.INPUTS_JSON: "{}",
            labels.TARGET_INSTANCE: "ml.g5.xlarge", labels.RECIPE_JSON: json.dumps(recipe), **extra}


def _passed(image_id, cache):
    ledger.record(ledger.SmokeOutcome(image_id=image_id, status="passed"), cache)


def _head(host, repo, tag, auth=None):
    r = requests.head(f"http://{host}/v2/{repo}/manifests/{tag}", headers={"Accept": MANIFEST_TYPES},
                      auth=auth, timeout=5)
    return r.headers.get("Docker-Content-Digest") if r.status_code == 200 else None


def _repo():
    return f"test/pub-{uuid.uuid4().hex[:8]}"


def _cli(args, cache, stdin=None, env_extra=None):
    import os

    env = {**os.environ, "LMI_BUILD_CACHE": str(cache), "NO_COLOR": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "builder", "publish", *args], input=stdin,
                          capture_output=True, text=True, env=env, timeout=120)


def test_publish_to_plain_registry_and_verify(local_registry, test_images, tmp_path):
    image_id = test_images.make(labels=_labels())
    _passed(image_id, tmp_path)
    repo = _repo()
    res = publish_image(image_id, [PublishTarget(registry=f"{local_registry.host}/{repo}")],
                        PublishOptions(cache_dir=str(tmp_path), tags=["v-{lmi_version}", "{recipe_hash12}"]))
    t = res.targets[0]
    assert t.tags_pushed == ["tiny-llm-ab12cd34ef56", "v-0.29.0", "ab12cd34ef56"]
    assert t.verified and res.smoke == "passed"
    for tag in t.tags_pushed:
        assert _head(local_registry.host, repo, tag) == t.digest
    assert t.pinned == f"{local_registry.host}/{repo}@{t.digest}"
    assert t.deploy.ContainerStartupHealthCheckTimeoutInSeconds == 900
    assert t.deploy.instance_type == "ml.g5.xlarge"


def test_republish_is_idempotent_and_uploads_nothing(local_registry, test_images, tmp_path):
    image_id = test_images.make(payload_bytes=512 * 1024, labels=_labels())
    _passed(image_id, tmp_path)
    repo = _repo()
    target = [PublishTarget(registry=f"{local_registry.host}/{repo}")]
    mark = local_registry.log_mark()
    first = publish_image(image_id, target, PublishOptions(cache_dir=str(tmp_path)))
    time.sleep(0.2)  # access log is written after the response
    assert local_registry.blob_uploads(mark, repo) >= 2  # layer + config
    mark = local_registry.log_mark()
    second = publish_image(image_id, target, PublishOptions(cache_dir=str(tmp_path)))
    time.sleep(0.2)
    assert local_registry.blob_uploads(mark, repo) == 0
    assert second.targets[0].tags_pushed == []
    assert second.targets[0].tags_skipped == ["tiny-llm-ab12cd34ef56"]
    assert second.targets[0].digest == first.targets[0].digest and second.targets[0].verified


def test_tag_at_other_digest_is_refused_then_forced(local_registry, test_images, tmp_path):
    a = test_images.make(labels=_labels())
    b = test_images.make(labels=_labels())  # same recipe labels, different content
    for i in (a, b):
        _passed(i, tmp_path)
    repo = _repo()
    target = [PublishTarget(registry=f"{local_registry.host}/{repo}")]
    da = publish_image(a, target, PublishOptions(cache_dir=str(tmp_path))).targets[0].digest
    with pytest.raises(BuilderError) as err:
        publish_image(b, target, PublishOptions(cache_dir=str(tmp_path)))
    assert da in str(err.value) and "already points at" in str(err.value)
    assert _head(local_registry.host, repo, "tiny-llm-ab12cd34ef56") == da  # untouched
    db = publish_image(b, target, PublishOptions(cache_dir=str(tmp_path), force=True)).targets[0].digest
    assert db != da and _head(local_registry.host, repo, "tiny-llm-ab12cd34ef56") == db


def test_gate_refuses_untested_failed_and_dev_runtime(local_registry, test_images, tmp_path):
    repo = _repo()
    target = [PublishTarget(registry=f"{local_registry.host}/{repo}")]
    untested = test_images.make(labels=_labels())
    with pytest.raises(BuilderError, match="no smoke-test result"):
        publish_image(untested, target, PublishOptions(cache_dir=str(tmp_path)))
    failed = test_images.make(labels=_labels())
    ledger.record(ledger.SmokeOutcome(image_id=failed, status="failed", reason="ping 500"), tmp_path)
    with pytest.raises(BuilderError, match="did not pass.*ping 500"):
        publish_image(failed, target, PublishOptions(cache_dir=str(tmp_path)))
    dev = test_images.make(labels=_labels(**{labels.DEV_RUNTIME: "true"}))
    _passed(dev, tmp_path)
    with pytest.raises(BuilderError, match="development runtime") as err:
        publish_image(dev, target, PublishOptions(cache_dir=str(tmp_path)))
    assert "--allow-dev-runtime" in err.value.describe()
    assert _head(local_registry.host, repo, "tiny-llm-ab12cd34ef56") is None  # nothing went out
    res = publish_image(untested, target, PublishOptions(cache_dir=str(tmp_path), skip_smoke=True))
    assert res.smoke_gate_skipped and res.smoke.startswith("not-checked")
    res = publish_image(dev, [PublishTarget(registry=f"{local_registry.host}/{_repo()}")],
                        PublishOptions(cache_dir=str(tmp_path), allow_dev_runtime=True))
    assert res.dev_runtime and res.targets[0].verified


def test_cli_htpasswd_good_and_bad_credentials(auth_registry, test_images, tmp_path, isolated_docker_config):
    image_id = test_images.make(labels=_labels())
    _passed(image_id, tmp_path)
    repo = _repo()
    dest = f"{auth_registry.host}/{repo}"
    report = tmp_path / "bad.json"
    bad_pw = "wrong-" + uuid.uuid4().hex
    proc = _cli([image_id, "--registry", dest, "--username", auth_registry.username, "--password-stdin",
                 "--report", str(report)], tmp_path, stdin=bad_pw + "\n")
    assert proc.returncode == 1, proc.stderr
    assert "unauthorized" in proc.stderr.lower() or "401" in proc.stderr
    assert "Traceback" not in proc.stderr
    for text in (proc.stdout, proc.stderr, report.read_text()):
        assert bad_pw not in text
    assert json.loads(report.read_text())["status"] == "failed"
    assert _head(auth_registry.host, repo, "tiny-llm-ab12cd34ef56",
                 auth=(auth_registry.username, auth_registry.password)) is None

    # no credentials at all
    proc = _cli([image_id, "--registry", dest], tmp_path)
    assert proc.returncode == 1 and "credentials" in proc.stderr.lower(), proc.stderr

    good = tmp_path / "good.json"
    proc = _cli([image_id, "--registry", dest, "--username", auth_registry.username, "--password-stdin",
                 "--report", str(good)], tmp_path, stdin=auth_registry.password + "\n")
    assert proc.returncode == 0, proc.stderr
    for text in (proc.stdout, proc.stderr, good.read_text()):
        assert auth_registry.password not in text
    result = json.loads(good.read_text())
    digest = result["targets"][0]["digest"]
    assert proc.stdout.strip() == f"{dest}@{digest}"
    assert _head(auth_registry.host, repo, "tiny-llm-ab12cd34ef56",
                 auth=(auth_registry.username, auth_registry.password)) == digest


def test_credentials_from_docker_config(auth_registry, test_images, tmp_path, isolated_docker_config):
    import base64

    raw = base64.b64encode(f"{auth_registry.username}:{auth_registry.password}".encode()).decode()
    (isolated_docker_config / "config.json").write_text(json.dumps({"auths": {auth_registry.host: {"auth": raw}}}))
    image_id = test_images.make(labels=_labels())
    _passed(image_id, tmp_path)
    repo = _repo()
    res = publish_image(image_id, [PublishTarget(registry=f"{auth_registry.host}/{repo}")],
                        PublishOptions(cache_dir=str(tmp_path)))
    assert res.targets[0].verified
    assert auth_registry.password not in res.model_dump_json()


@pytest.mark.slow
def test_registry_stopped_mid_push_is_reported_and_retried(restartable_registry, fault_proxy, test_images,
                                                            tmp_path, capsys):
    """Stop the registry while a 4 MB layer is uploading (throttled proxy), restart it a second later:
    the engine's retry is reported, the publish completes and is verified."""
    proxy = fault_proxy(throttle_bps=2_000_000)
    image_id = test_images.make(payload_bytes=4_000_000, labels=_labels())
    _passed(image_id, tmp_path)
    repo = _repo()
    stopped = threading.Event()

    def cut():
        assert proxy.upload_started.wait(60)
        time.sleep(0.5)
        restartable_registry.stop()
        stopped.set()
        time.sleep(1.0)
        restartable_registry.start()

    th = threading.Thread(target=cut, daemon=True)
    th.start()
    res = publish_image(image_id, [PublishTarget(registry=f"{proxy.host}/{repo}")],
                        PublishOptions(cache_dir=str(tmp_path)))
    th.join(30)
    assert stopped.is_set()
    t = res.targets[0]
    assert t.engine_retries >= 1 and t.verified
    assert "interrupted" in capsys.readouterr().err
    assert _head(restartable_registry.host, repo, "tiny-llm-ab12cd34ef56") == t.digest


def test_5xx_on_manifest_put_is_retried_by_us(restartable_registry, fault_proxy, test_images, tmp_path, capsys):
    proxy = fault_proxy()
    image_id = test_images.make(labels=_labels())
    _passed(image_id, tmp_path)
    repo = _repo()
    proxy.fail_with(b"PUT /v2/" + repo.encode() + b"/manifests/", 503)  # the engine does not retry these
    res = publish_image(image_id, [PublishTarget(registry=f"{proxy.host}/{repo}")],
                        PublishOptions(cache_dir=str(tmp_path), retry_backoff_s=0.1))
    assert proxy.fired == ["fail"]
    assert res.targets[0].verified and res.targets[0].push_attempts == 2
    assert "attempt 1/3" in capsys.readouterr().err


def test_5xx_forever_fails_with_registry_message(restartable_registry, fault_proxy, test_images, tmp_path):
    proxy = fault_proxy()
    image_id = test_images.make(labels=_labels())
    _passed(image_id, tmp_path)
    repo = _repo()
    # let the pre-check HEAD through, then fail every manifest PUT
    for _ in range(3):
        proxy.fail_with(b"PUT /v2/" + repo.encode() + b"/manifests/", 503)
    with pytest.raises(BuilderError) as err:
        publish_image(image_id, [PublishTarget(registry=f"{proxy.host}/{repo}")],
                      PublishOptions(cache_dir=str(tmp_path), retry_backoff_s=0.05, push_attempts=3))
    assert "503" in str(err.value)
    assert proxy.fired == ["fail"] * 3
    assert _head(restartable_registry.host, repo, "tiny-llm-ab12cd34ef56") is None


def test_publish_from_recipe_pipeline_entry(local_registry, test_images, tmp_path):
    from types import SimpleNamespace

    from builder.publish import publish_from_recipe

    image_id = test_images.make(labels=_labels())
    _passed(image_id, tmp_path)
    repo = _repo()
    recipe = SimpleNamespace(publish={"registry": f"{local_registry.host}/{repo}", "tags": ["v{lmi_version}"]})
    res = publish_from_recipe(image_id, recipe, cache_dir=tmp_path, smoke_status="passed")
    assert res.targets[0].tags_pushed == ["tiny-llm-ab12cd34ef56", "v0.29.0"]
    assert res.targets[0].model_dump(mode="json")["pinned"].startswith(f"{local_registry.host}/{repo}@sha256:")
