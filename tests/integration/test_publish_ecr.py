"""Publish to ECR: control plane on moto, image bytes to the local registry (never to moto),
containers-and-registries.md §6, §7. Never asserts on moto digests or exception names (§6.3)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid

import pytest

from builder import labels, ledger
from builder.diagnostics import BuilderError
from builder.publish import PublishOptions, PublishTarget, publish_image, targets_from_recipe

pytestmark = [pytest.mark.docker, pytest.mark.registry]

ACCOUNT = "123456789012"
HASH = "feedbeef0123" + "1" * 52
POLICY = {"rules": [{"rulePriority": 1, "description": "untagged after 7 days",
                     "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed",
                                   "countUnit": "days", "countNumber": 7},
                     "action": {"type": "expire"}}]}


def _image(test_images, tmp_path):
    image_id = test_images.make(labels={labels.RECIPE_NAME: "tiny-ecr", labels.RECIPE_HASH: HASH,
                                        labels.INPUTS_DIGEST: "sha256:" + HASH, labels.INPUTS_JSON: "{}",
                                        labels.LMI_VERSION: "0.29.0"})
    ledger.record(ledger.SmokeOutcome(image_id=image_id, status="passed"), tmp_path)
    return image_id


def _repo_name():
    return f"lmi/tiny-{uuid.uuid4().hex[:8]}"


def _fake_manifest() -> str:
    def d(x):
        return "sha256:" + hashlib.sha256(x.encode()).hexdigest()

    return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                       "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 10,
                                  "digest": d("cfg" + uuid.uuid4().hex)},
                       "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                                   "size": 20, "digest": d("layer" + uuid.uuid4().hex)}]})


def test_ecr_publish_creates_repo_and_verifies(ecr_mock, local_registry, test_images, tmp_path):
    image_id = _image(test_images, tmp_path)
    name = _repo_name()
    targets, templates = targets_from_recipe(
        {"ecr": {"account": ACCOUNT, "region": "us-west-2", "repository": name, "lifecycle_policy": POLICY},
         "tags": ["lmi-{lmi_version}-{recipe_hash12}"]})
    res = publish_image(image_id, targets, PublishOptions(cache_dir=str(tmp_path), tags=templates,
                                                          ecr_registry_host=local_registry.host))
    t = res.targets[0]
    assert t.verified and t.tags_pushed == ["tiny-ecr-feedbeef0123", "lmi-0.29.0-feedbeef0123"]
    assert t.pinned == f"{local_registry.host}/{name}@{t.digest}"
    assert t.ecr_repository_created is True
    assert t.ecr_repository_uri == f"{ACCOUNT}.dkr.ecr.us-west-2.amazonaws.com/{name}"
    repo = ecr_mock.describe_repositories(repositoryNames=[name])["repositories"][0]
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["imageScanningConfiguration"]["scanOnPush"] is True
    assert repo["encryptionConfiguration"]["encryptionType"] == "AES256"
    got = ecr_mock.get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"]
    assert json.loads(got) == POLICY
    # token is a secret: not in the result
    assert "auth-token" not in res.model_dump_json()

    # second run: repository exists, tags already at this digest -> nothing pushed
    again = publish_image(image_id, targets, PublishOptions(cache_dir=str(tmp_path), tags=templates,
                                                            ecr_registry_host=local_registry.host))
    assert again.targets[0].tags_pushed == [] and again.targets[0].ecr_repository_created is False
    assert again.targets[0].digest == t.digest


def test_ecr_immutable_tag_conflict(ecr_mock, local_registry, test_images, tmp_path):
    image_id = _image(test_images, tmp_path)
    name = _repo_name()
    ecr_mock.create_repository(repositoryName=name, imageTagMutability="IMMUTABLE")
    ecr_mock.put_image(repositoryName=name, imageManifest=_fake_manifest(), imageTag="tiny-ecr-feedbeef0123")
    target = [PublishTarget(ecr={"account": ACCOUNT, "region": "us-west-2", "repository": name})]
    opts = PublishOptions(cache_dir=str(tmp_path), ecr_registry_host=local_registry.host)
    with pytest.raises(BuilderError) as err:
        publish_image(image_id, target, opts)
    msg = str(err.value)
    assert "already points at sha256:" in msg and "IMMUTABLE" in msg and image_id in msg
    # --force does not move tags in an IMMUTABLE repository
    with pytest.raises(BuilderError, match="IMMUTABLE"):
        publish_image(image_id, target, opts.model_copy(update={"force": True}))


def test_ecr_retag_handles_both_conflict_exception_names(ecr_mock):
    from builder.publish.ecr import EcrControl, ImmutableTagError

    name = _repo_name()
    ecr_mock.create_repository(repositoryName=name, imageTagMutability="IMMUTABLE")
    first = ecr_mock.put_image(repositoryName=name, imageManifest=_fake_manifest(), imageTag="a")
    other = ecr_mock.put_image(repositoryName=name, imageManifest=_fake_manifest(), imageTag="b")
    ctl = EcrControl(ACCOUNT, "us-west-2", client=ecr_mock)
    digest = first["image"]["imageId"]["imageDigest"]
    ctl.retag(name, digest, "c")  # new tag on an existing image: no bytes move
    assert ctl.tag_digest(name, "c") == digest
    ctl.retag(name, digest, "c")  # same tag, same image: idempotent
    with pytest.raises(ImmutableTagError):
        ctl.retag(name, other["image"]["imageId"]["imageDigest"], "a")


def test_cli_ecr_via_moto_server(moto_ecr_server, local_registry, test_images, tmp_path):
    image_id = _image(test_images, tmp_path)
    name = _repo_name()
    report = tmp_path / "r.json"
    env = {**os.environ, "LMI_BUILD_CACHE": str(tmp_path), "NO_COLOR": "1"}
    proc = subprocess.run([sys.executable, "-m", "builder", "publish", image_id, "--ecr-account", ACCOUNT,
                           "--ecr-region", "us-west-2", "--ecr-repository", name,
                           "--registry-host", local_registry.host, "--report", str(report)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(report.read_text())
    assert result["targets"][0]["verified"] is True
    assert proc.stdout.strip() == result["targets"][0]["pinned"]
    assert "auth-token" not in proc.stderr + proc.stdout + report.read_text()
    import boto3

    repos = boto3.client("ecr", region_name="us-west-2").describe_repositories()["repositories"]
    assert name in [r["repositoryName"] for r in repos]  # the child process talked to moto_server
