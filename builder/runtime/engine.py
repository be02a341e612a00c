"""The few Docker engine calls the runtime stage makes, with every failure turned into a BuilderError.

Low-level SDK calls are used so that every build event can be checked for ``error``/``errorDetail``
(the SDK reports build failures in-band; containers-and-registries.md).
"""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Callable, Iterable

from builder.diagnostics import BuilderError

STAGE = "runtime"


def docker_client():
    """A client for the local engine, or a BuilderError saying why there is none."""
    from builder.engine import docker_client as _client

    return _client(STAGE)


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


def image_id(client, ref: str) -> str | None:
    """The image id of ref, or None when the engine has no such image."""
    import docker.errors

    try:
        return client.api.inspect_image(ref)["Id"]
    except docker.errors.ImageNotFound:
        return None


def tar_context(files: dict[str, bytes], *, mode: int = 0o644) -> io.BytesIO:
    """A deterministic build context (fixed mtimes/owners) from {path: bytes}."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            data = files[name]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o755 if name.endswith(".sh") else mode
            info.uid = info.gid = 0
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def build(client, context: io.BytesIO, tag: str, *, labels: dict[str, str], network_mode: str | None = None,
          log: Callable[[str], None] | None = None, nocache: bool = False) -> str:
    """``docker build`` (legacy builder) of a tar context; returns the image id. Every event is checked."""
    events: Iterable[dict] = client.api.build(
        fileobj=context, custom_context=True, encoding=None, tag=tag, labels=labels, rm=True,
        forcerm=True, decode=True, network_mode=network_mode, pull=False, nocache=nocache)
    tail: list[str] = []
    built_id = None
    for event in events:
        if "error" in event or "errorDetail" in event:
            detail = event.get("errorDetail", {}).get("message") or event.get("error")
            raise BuilderError(f"docker build of {tag} failed: {detail}\n" + "".join(tail[-15:]),
                               stage=STAGE)
        text = event.get("stream")
        if text:
            tail.append(text)
            if log:
                log(text.rstrip("\n"))
        aux = event.get("aux")
        if isinstance(aux, dict) and aux.get("ID"):
            built_id = aux["ID"]
    ident = image_id(client, tag)
    if ident is None or (built_id and ident != built_id):
        raise BuilderError(f"docker build of {tag} ended without tagging an image", stage=STAGE)
    return ident


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
