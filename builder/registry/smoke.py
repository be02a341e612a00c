"""Pull a registry-assembled image into the local engine by digest, for the smoke test only.

The smoke stage then runs ``HOST/REPO@sha256:...`` (the same digest publish moves a tag to).
Credentials go to the engine in the API call's ``auth_config``, never in argv or on disk;
errors in the pull stream are in-band and checked (containers-and-registries.md §4).
"""

from __future__ import annotations

from typing import Any

from builder import console
from builder.credentials import Credentials
from builder.diagnostics import BuilderError
from builder.registry import reference

STAGE = "smoke"


def pull_for_smoke(pinned: str, *, credentials: Credentials | None = None, docker: Any = None) -> str:
    """Pull ``pinned`` (HOST/REPO@sha256:...); returns the local image id. The engine keeps the
    image under its ``RepoDigests`` entry, so the smoke stage can run ``pinned`` itself."""
    ref = reference.parse(pinned, what="image")
    if ref.digest is None:
        raise BuilderError(f"{pinned} is not pinned by digest", stage=STAGE)
    if docker is None:
        from builder.engine import docker_client

        docker = docker_client(STAGE)
    auth = credentials.auth_config() if credentials is not None else None  # None: Docker's config (engine.pull)
    console.step(f"pull {pinned} into the local engine (smoke test only)")
    from builder.engine import pull

    pull(docker, ref.name, ref.digest, what=pinned, stage=STAGE, auth_config=auth)
    image = docker.images.get(pinned)
    if pinned not in (image.attrs.get("RepoDigests") or []):
        raise BuilderError(f"the engine does not list {pinned} after the pull", stage=STAGE)
    return image.id


def remove_pulled(pinned: str, *, docker: Any = None) -> None:
    """Remove the ``repo@digest`` reference the pull created (and the image if nothing else uses it)."""
    import docker as docker_sdk

    if docker is None:
        from builder.engine import docker_client

        docker = docker_client(STAGE)
    try:
        docker.images.remove(pinned)
    except docker_sdk.errors.APIError:
        pass
