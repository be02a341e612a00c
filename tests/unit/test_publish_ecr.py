from __future__ import annotations

import base64
import stat
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.stub import Stubber

from builder.publish import ecr


@pytest.mark.parametrize("region,host", [
    ("us-west-2", "123456789012.dkr.ecr.us-west-2.amazonaws.com"),
    ("cn-north-1", "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"),
    ("us-gov-west-1", "123456789012.dkr.ecr.us-gov-west-1.amazonaws.com"),
])
def test_registry_host_per_partition(region, host):
    assert ecr.registry_host("123456789012", region) == host


def _stubbed(monkeypatch, expires_in_s: float, calls: int):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("ecr", region_name="eu-west-1")
    stub = Stubber(client)
    token = base64.b64encode(b"AWS:s3cr3t-token").decode()
    for _ in range(calls):
        stub.add_response("get_authorization_token", {"authorizationData": [{
            "authorizationToken": token, "proxyEndpoint": "https://x",
            "expiresAt": datetime.now(timezone.utc) + timedelta(seconds=expires_in_s)}]},
            {"registryIds": ["210987654321"]})
    stub.activate()
    return client, stub


def test_token_cached_in_memory_until_margin(monkeypatch):
    ecr._TOKENS.clear()
    client, stub = _stubbed(monkeypatch, 12 * 3600, calls=1)
    ctl = ecr.EcrControl("210987654321", "eu-west-1", client=client)
    assert ctl.auth_config() == {"username": "AWS", "password": "s3cr3t-token"}
    assert ctl.auth_config()["password"] == "s3cr3t-token"  # no second call: Stubber would fail
    stub.assert_no_pending_responses()


def test_token_near_expiry_is_refreshed(monkeypatch):
    ecr._TOKENS.clear()
    client, stub = _stubbed(monkeypatch, 60, calls=2)  # inside the 15 min margin
    ctl = ecr.EcrControl("210987654321", "eu-west-1", client=client)
    ctl.auth_config()
    ctl.auth_config()
    stub.assert_no_pending_responses()


def test_token_file_cache_is_private(monkeypatch, tmp_path):
    ecr._TOKENS.clear()
    monkeypatch.setenv("LMI_BUILD_ECR_TOKEN_CACHE", "1")
    client, _ = _stubbed(monkeypatch, 12 * 3600, calls=1)
    ecr.EcrControl("210987654321", "eu-west-1", client=client, cache_dir=tmp_path).auth_config()
    files = list((tmp_path / "ecr-tokens").glob("*.json"))
    assert len(files) == 1 and stat.S_IMODE(files[0].stat().st_mode) == 0o600
    ecr._TOKENS.clear()  # a new process: served from the file, no API call
    client2, stub2 = _stubbed(monkeypatch, 12 * 3600, calls=0)
    got = ecr.EcrControl("210987654321", "eu-west-1", client=client2, cache_dir=tmp_path).auth_config()
    assert got["password"] == "s3cr3t-token"
    stub2.assert_no_pending_responses()


def test_moto_repository_and_missing_credentials(ecr_mock, monkeypatch):
    ctl = ecr.EcrControl("123456789012", "us-west-2", client=ecr_mock)
    repo = ctl.ensure_repository("lmi/unit")
    assert repo.created and repo.mutability == "IMMUTABLE"
    assert ctl.ensure_repository("lmi/unit").created is False
    assert ctl.tag_digest("lmi/unit", "nope") is None
    assert ctl.auth_config()["username"] == "AWS"
