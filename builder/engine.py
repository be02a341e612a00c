"""The one way the builder connects to the local Docker engine."""

from __future__ import annotations

from builder.diagnostics import BuilderError


def docker_client(stage: str, *, timeout: int = 600):
    """A pinged client for the local engine, or a BuilderError (naming ``stage``) saying why there is none."""
    try:
        import docker

        client = docker.from_env(timeout=timeout)
        client.ping()
        return client
    except Exception as exc:  # the SDK raises several unrelated types here
        raise BuilderError(f"no Docker engine reachable: {exc}", stage=stage,
                           hint="start dockerd (bash scripts/bootstrap.sh) or set DOCKER_HOST") from None
