"""docker pull (base images, assembled images for smoke) ends by a deadline that follows the announced
bytes and by a stall limit; in-band errors name the image (issue 15, Deliver 3)."""

from __future__ import annotations

import threading
import time

import pytest

from builder.diagnostics import BuilderError
from builder.engine import pull
from builder.registry.deadlines import NetBudget


class _Api:
    def __init__(self, events):
        self.events = events

    def pull(self, repository, tag, stream, decode, **kwargs):
        return self.events()


class _Client:
    def __init__(self, events):
        self.api = _Api(events)


def _forever_silent():
    yield {"status": "Pulling fs layer", "id": "a"}
    threading.Event().wait(30)  # a registry that never sends another byte


def _slow_progress():
    while True:  # progress forever, but only 10 bytes announced: the overall budget runs out
        yield {"status": "Downloading", "id": "a", "progressDetail": {"current": 1, "total": 10}}
        time.sleep(0.05)


@pytest.mark.timeout(10)
def test_a_silent_stream_is_cut_at_the_floor() -> None:
    start = time.monotonic()
    with pytest.raises(BuilderError, match=r"pulling base image x did not finish within 0.5 s"):
        pull(_Client(_forever_silent), "x", "latest", what="base image x", stage="bake",
             budget=NetBudget(floor_s=0.5, rate_bps=1e6))
    assert time.monotonic() - start < 3


@pytest.mark.timeout(10)
def test_endless_progress_ends_at_the_budget_of_the_announced_bytes() -> None:
    start = time.monotonic()
    with pytest.raises(BuilderError, match=r"LMI_BUILD_NET_DEADLINE_S=1 s \+ 10 B"):
        pull(_Client(_slow_progress), "x", "latest", what="image x", stage="smoke",
             budget=NetBudget(floor_s=1.0, rate_bps=1e6))
    assert time.monotonic() - start < 4


def test_in_band_error_names_the_image() -> None:
    def events():
        yield {"status": "Pulling"}
        yield {"errorDetail": {"message": "manifest unknown"}, "error": "manifest unknown"}

    with pytest.raises(BuilderError, match="pulling image y failed: manifest unknown"):
        pull(_Client(events), "y", "sha256:" + "0" * 64, what="image y", stage="smoke")


def test_a_normal_pull_returns() -> None:
    def events():
        yield {"status": "Downloading", "id": "a", "progressDetail": {"current": 5, "total": 5}}
        yield {"status": "Status: Downloaded newer image"}

    pull(_Client(events), "z", "latest", what="image z", stage="bake")


def test_an_sdk_error_at_the_start_is_a_builder_error() -> None:
    import docker.errors

    class Refusing:
        def pull(self, *args, **kwargs):
            raise docker.errors.NotFound("404 Client Error: repository not found")

    class Client:
        api = Refusing()

    with pytest.raises(BuilderError, match="pulling image w failed: 404 Client Error") as info:
        pull(Client(), "w", "latest", what="image w", stage="smoke", auth_config={}, hint="log in")
    assert info.value.hint == "log in"
