"""push_tag against a fake low-level client: in-band errors (docker-py#3161), retries, digest."""

from __future__ import annotations

import pytest

from builder.engine import PushError, classify, push_tag

D = "sha256:" + "c" * 64


class FakeAPI:
    def __init__(self, runs):
        self.runs = list(runs)
        self.calls = []

    def push(self, repo, tag, stream, decode, auth_config):
        assert stream and decode
        self.calls.append((repo, tag, auth_config))
        return iter(self.runs.pop(0))


class FakeClient:
    def __init__(self, runs):
        self.api = FakeAPI(runs)


OK = [{"status": "The push refers to repository [h/r]"}, {"status": "Pushed", "id": "l1"},
      {"status": f"t: digest: {D} size: 527"}, {"progressDetail": {}, "aux": {"Tag": "t", "Digest": D, "Size": 527}}]


def test_digest_from_aux():
    out = push_tag(FakeClient([OK]), "h/r", "t", None, attempts=1)
    assert out.digest == D and out.attempts == 1


def test_digest_from_status_line_when_no_aux():
    out = push_tag(FakeClient([OK[:3]]), "h/r", "t", None, attempts=1)
    assert out.digest == D


def test_in_band_auth_error_raises_without_retry():
    c = FakeClient([[{"status": "Preparing", "id": "l"}, {"error": "unauthorized: authentication required",
                                                          "errorDetail": {"message": "unauthorized: authentication required"}}]])
    with pytest.raises(PushError) as err:
        push_tag(c, "h/r", "t", {"username": "u", "password": "SECRET"}, attempts=3, backoff_s=0)
    assert err.value.kind == "auth" and "unauthorized" in str(err.value)
    assert "SECRET" not in err.value.describe()
    assert len(c.api.calls) == 1


def test_network_error_retried_then_ok():
    bad = [{"errorDetail": {"message": "received unexpected HTTP status: 503 Service Unavailable"}}]
    c = FakeClient([bad, OK])
    out = push_tag(c, "h/r", "t", None, attempts=3, backoff_s=0)
    assert out.attempts == 2 and out.digest == D


def test_network_error_exhausts_attempts():
    bad = [{"error": "dial tcp 127.0.0.1:1: connect: connection refused"}]
    c = FakeClient([bad, bad, bad])
    with pytest.raises(PushError) as err:
        push_tag(c, "h/r", "t", None, attempts=3, backoff_s=0)
    assert err.value.kind == "network" and len(c.api.calls) == 3
    assert "connection refused" in err.value.registry_message


def test_engine_retry_events_counted():
    run = [{"status": "Retrying in 5 seconds", "id": "l1"}, {"status": "Retrying in 4 seconds", "id": "l1"},
           *OK]
    out = push_tag(FakeClient([run]), "h/r", "t", None, attempts=1)
    assert out.engine_retries == 1


@pytest.mark.parametrize("msg,kind", [
    ("tag invalid: The image tag 'x' already exists in the 'r' repository and cannot be overwritten "
     "because the repository is immutable.", "immutable"),
    ("no basic auth credentials", "auth"),
    ("denied: requested access to the resource is denied", "auth"),
    ("An image does not exist locally with the tag: h/r", "other"),
    ("Put https://h/v2/: EOF", "network"),
])
def test_classify(msg, kind):
    assert classify(msg) == kind
