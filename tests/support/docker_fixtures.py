"""Docker fixtures: the engine, the base rootfs image, the dev-cpu runtime, and labelled containers.

- ``docker_client`` (session): a docker SDK client; skips with the reason when no engine answers.
- ``rootfs_image`` (session): ref of the debootstrap bookworm image (python3 + numpy), made once
  per machine by ``builder.runtime.rootfs.ensure_rootfs_image`` and reused afterwards. Use it as
  the FROM of any test image (it cannot be pulled, it is made here).
- ``devcpu_runtime`` (session): ``builder.runtime.devcpu.RuntimeImage`` of the dev-cpu runtime.
- ``run_container`` (function): ``run_container(image, env=..., mounts=..., command=...)`` starts a
  host-network container labelled ``dev.lmi-builder.test=<run id>``, removed at teardown.
- ``make_image`` (function): labelled model images FROM the dev-cpu runtime, removed at teardown.
- ``free_port()``: a free TCP port on 127.0.0.1 (pass it as ``SERVING_INFERENCE_ADDRESS``).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from builder.smoke.container import free_port  # noqa: F401 - the one free-port helper, re-exported

TEST_LABEL = "dev.lmi-builder.test"
RUN_ID = uuid.uuid4().hex[:12]


def wait_http(url: str, deadline_s: float, *, container=None) -> tuple[int, list[str]]:
    """Poll ``url`` until it answers; returns (status, [observations]) or raises on exit/deadline.

    Observations record ``refused`` while nothing listens, so tests can assert the DJL contract
    (no HTTP while loading)."""
    import requests

    seen: list[str] = []
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            r = requests.get(url, timeout=3)
            return r.status_code, seen
        except requests.ConnectionError:
            seen.append("refused")
        if container is not None:
            container.reload()
            if container.status in ("exited", "dead"):
                raise AssertionError(f"container exited while waiting for {url}:\n"
                                     + container.logs().decode(errors="replace")[-3000:])
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {deadline_s} s")


@pytest.fixture(scope="session")
def docker_client():
    try:
        import docker

        client = docker.from_env(timeout=300)
        client.ping()
    except Exception as exc:  # any failure means: no engine to test against
        pytest.skip(f"no Docker engine: {exc}")
    yield client
    client.close()


@pytest.fixture(scope="session")
def rootfs_image(docker_client) -> str:
    from builder.diagnostics import BuilderError
    from builder.runtime.rootfs import ensure_rootfs_image

    try:
        return ensure_rootfs_image(docker_client).ref
    except BuilderError as exc:
        pytest.skip(f"cannot make the base rootfs image: {exc.describe()}")


@pytest.fixture(scope="session")
def devcpu_runtime(docker_client, rootfs_image):
    from builder.diagnostics import BuilderError
    from builder.runtime.devcpu import ensure_devcpu_runtime

    try:
        return ensure_devcpu_runtime(client=docker_client)
    except BuilderError as exc:
        pytest.skip(f"cannot build the dev-cpu runtime: {exc.describe()}")


@pytest.fixture
def made(docker_client):
    """A list a test appends the images it made to; they are removed afterwards, newest first."""
    refs: list[str] = []
    yield refs
    for ref in reversed(refs):
        try:
            docker_client.images.remove(ref)
        except Exception:  # already gone, or still used by another of ours removed later
            pass


@pytest.fixture
def run_container(docker_client) -> Iterator[Callable]:
    started = []

    def _run(image: str, *, env: dict[str, str] | None = None, mounts: dict[str, str] | None = None,
             command: list[str] | None = None, labels: dict[str, str] | None = None):
        volumes = {host: {"bind": bind, "mode": "ro"} for host, bind in (mounts or {}).items()}
        container = docker_client.containers.run(
            image, command=command, detach=True, network_mode="host", environment=env or {},
            volumes=volumes, labels={"dev.lmi-builder.managed": "true", TEST_LABEL: RUN_ID, **(labels or {})})
        started.append(container)
        return container

    yield _run
    from builder.engine import wait_removed

    for c in started:
        wait_removed(docker_client, c.id)


def quickstart_handler_path() -> str:
    from builder.paths import REPO_DIR

    return os.path.join(REPO_DIR, "recipes", "examples", "quickstart", "model.py")


@pytest.fixture
def make_image(docker_client, devcpu_runtime):
    """Labelled model images FROM the dev-cpu runtime (a handler + serving.properties), removed after the test."""
    from tests.support.smoke_support import build_model_image, remove_image

    made: list[str] = []

    def _make(handler: Path, **kw) -> str:
        tag = build_model_image(docker_client, devcpu_runtime.ref, handler, **kw)
        made.append(tag)
        return tag

    yield _make
    for tag in made:
        remove_image(docker_client, tag)


def image_tags(client) -> set[str]:
    """Every tag the engine has now (take it before a test, pass it to ``remove_images_made_since``)."""
    return {t for i in client.images.list() for t in i.tags}


def remove_images_made_since(client, before: set[str], prefixes: tuple[str, ...]) -> None:
    """Remove our (managed) images tagged since ``before`` with one of ``prefixes``; never anyone else's.
    An untagged model image whose recipe name is one of ``prefixes`` (a test's own unique name, e.g. the
    loser of a tag race) goes too: it would otherwise pin its artifacts image for every later run."""
    from builder import labels as L

    for image in client.images.list(filters={"label": f"{L.MANAGED}=true"}):
        for tag in image.tags:
            if tag not in before and tag.startswith(prefixes):
                try:
                    client.images.remove(tag)
                except Exception:  # still used by another of this test's images; removed with it
                    pass
    names = {p.rstrip(":") for p in prefixes}
    for image in client.api.images(all=True, filters={"label": f"{L.MANAGED}=true", "dangling": True}):
        if (image.get("Labels") or {}).get(L.RECIPE_NAME) in names:
            try:
                client.api.remove_image(image["Id"])
            except Exception:  # already gone with a parent, or still in use
                pass
