"""The engine connection and the small inspect/remove helpers every stage uses."""

from __future__ import annotations

import time
from collections.abc import Callable

from builder.diagnostics import BuilderError


def _from_env(timeout: int):
    # the only docker.from_env() of the package: every stage gets its client from here
    import docker

    return docker.from_env(timeout=timeout)


def docker_client(stage: str, *, timeout: int = 600):
    """A pinged client for the local engine, or a BuilderError (naming ``stage``) saying why there is none.

    The client's own copy of Docker's config is builder.credentials' (helpers cut at 30 s): docker-py
    sends it with every build (``X-Registry-Config``) and would run each credential helper untimed."""
    from builder.credentials import sdk_auth_config

    try:
        client = _from_env(timeout)
        client.ping()
    except Exception as exc:  # the SDK raises several unrelated types here
        # the SDK reads Docker's config.json while it makes the client: a broken auth entry surfaces here as a
        # bare ValueError, which is the config's fault, not the engine's; say which file and which entry
        sdk_auth_config(stage=stage)  # raises the located error when the config is what failed
        raise BuilderError(f"no Docker engine reachable: {exc}", stage=stage,
                           hint="start dockerd (bash scripts/bootstrap.sh) or set DOCKER_HOST") from None
    try:
        client.api._auth_configs = sdk_auth_config(stage=stage)  # the attribute docker-py's build reads
    except BuilderError:  # a config we cannot read: the SDK read it as empty; only a registry call needs it
        pass
    return client


def engine_version(timeout: int = 5) -> tuple[str | None, str]:
    """(version, why): the engine's version, or None and the exception's class name (``doctor``)."""
    try:
        return str(_from_env(timeout).version().get("Version", "?")), ""
    except Exception as exc:  # any failure: no engine reachable
        return None, exc.__class__.__name__


def registry_auth(repository: str, *, stage: str) -> dict[str, str]:
    """The ``auth_config`` of a pull or push of ``repository`` when the caller has none: Docker's config
    through builder.credentials (its helpers cut at 30 s), ``{}`` (anonymous) when it has nothing.
    Never None: with None the SDK reads the config and runs the helper itself, without a timeout."""
    from builder.credentials import from_docker_config, registry_host

    creds = from_docker_config(registry_host(repository) or "docker.io", stage=stage)  # Hub: docker.io
    return creds.auth_config() if creds else {}


def image_id(client, ref: str) -> str | None:
    """The image id of ``ref`` (tag, ``repo@digest`` or id), or None when the engine has no such image."""
    import docker.errors

    try:
        return client.api.inspect_image(ref)["Id"]
    except docker.errors.ImageNotFound:
        return None


def ensure_image(client, ref: str, *, lock: str, cache_dir, rebuild: bool,
                 make: Callable[[], str]) -> tuple[str, bool]:
    """(image id, built): the image tagged ``ref`` (tags carry the inputs digest), made by ``make``
    only when missing or ``rebuild``. A file lock in the cache serialises makers, so a second
    concurrent caller finds the tag instead of building it again."""
    from filelock import FileLock

    from builder.paths import cache_dir as _cache_dir

    lock_dir = _cache_dir(cache_dir) / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock_dir / f"{lock}.lock")):
        existing = image_id(client, ref)
        if existing and not rebuild:
            return existing, False
        return make(), True


def wait_removed(client, container_id: str, timeout: float = 10.0) -> None:
    """Force-remove a container (ours) and wait until the engine forgets it."""
    import docker.errors

    deadline = time.monotonic() + timeout
    try:
        client.api.remove_container(container_id, force=True)
    except docker.errors.NotFound:
        return
    while time.monotonic() < deadline:
        try:
            client.api.inspect_container(container_id)
        except docker.errors.NotFound:
            return
        time.sleep(0.1)
