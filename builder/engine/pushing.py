"""Push one tag with the Docker SDK and check every event.

``client.api.push(..., stream=True, decode=True)`` never raises on push failures: errors arrive
in-band with HTTP 200 (docker/docker-py#3161, containers-and-registries.md §4), so every event goes
through ``check_event``. The digest comes from ``aux.Digest`` (fallbacks: the ``<tag>: digest:
sha256:...`` status line, then the caller's registry HEAD). Network errors and 5xx answers are
retried with bounded exponential back-off (builder.retry); auth and immutability errors are not.
Every attempt together ends by one overall deadline, whose cut reaches the engine socket.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from builder import console
from builder.diagnostics import BuilderError
from builder.engine.client import image_id as local_image_id
from builder.engine.client import registry_auth
from builder.engine.events import EngineEventError, EventReader, Silent, check_event
from builder.engine.progress import Progress
from builder.registry.deadlines import NetBudget
from builder.smoke.http_deadline import Deadline

_RETRYABLE = re.compile(
    r"connection refused|connection reset|broken pipe|\bEOF\b|i/o timeout|timeout|timed out|"
    r"TLS handshake|temporarily unavailable|unexpected HTTP status: 5\d\d|\b50[0234]\b|"
    r"Service Unavailable|Bad Gateway|Internal Server Error|too many requests|\b429\b",
    re.IGNORECASE,
)
_AUTH = re.compile(r"unauthorized|authentication required|no basic auth credentials|denied|"
                   r"\b401\b|\b403\b|forbidden", re.IGNORECASE)
_IMMUTABLE = re.compile(r"already exists.*(immutable|cannot be overwritten)|"
                        r"ImageTagAlreadyExists|ImageAlreadyExists", re.IGNORECASE | re.DOTALL)
_DIGEST_LINE = re.compile(r":\s*digest:\s*(sha256:[0-9a-f]{64})")


class _Expired(Exception):
    pass


def push_deadline(size_bytes: int = 0, budget: NetBudget | None = None) -> Deadline:
    """The overall deadline of one tag's push, every attempt included: ``floor + image bytes / minimum
    rate`` (``LMI_BUILD_NET_DEADLINE_S``, ``LMI_BUILD_NET_MIN_RATE_MBPS``; builder.registry.deadlines)."""
    b = budget or NetBudget.from_env()
    return Deadline(b.seconds(size_bytes), b.label(size_bytes))


def _events(client, stream, deadline: Deadline) -> Iterator[dict]:
    """The engine's push events until ``deadline``; at the deadline the engine connection is cut."""
    reader = EventReader(client, stream, "docker-push-events")
    while True:
        try:
            item = reader.next(deadline.remaining())
        except Silent:
            reader.cut()
            raise _Expired() from None
        if item is None:
            return
        if deadline.expired():
            reader.cut()
            raise _Expired()
        yield item


class PushError(BuilderError):
    def __init__(self, message: str, *, kind: str, registry_message: str, hint: str | None = None):
        super().__init__(message, stage="publish", hint=hint)
        self.kind = kind  # "auth" | "immutable" | "network" | "deadline" | "other"
        self.registry_message = registry_message


@dataclass
class PushOutcome:
    digest: str | None
    attempts: int
    engine_retries: int


def classify(message: str) -> str:
    if _IMMUTABLE.search(message):
        return "immutable"
    if _AUTH.search(message):
        return "auth"
    if _RETRYABLE.search(message):
        return "network"
    return "other"


class _LayerProgress:
    """Per-layer progress: a bar per layer on a terminal, one line per finished layer otherwise."""

    def __init__(self, label: str):
        self.bars = Progress()
        self.label = label

    def event(self, ev: dict) -> None:
        layer, status = ev.get("id"), str(ev.get("status") or "")
        if not layer or not status:
            return
        if self.bars.shown:
            detail = ev.get("progressDetail") or {}
            self.bars.update(layer, description=f"{layer} {status}", completed=detail.get("current") or 0,
                             total=detail.get("total"))
        elif status in ("Pushed", "Layer already exists") or status.startswith("Mounted from"):
            console.info(f"  {self.label}: layer {layer}: {status}")

    def close(self) -> None:
        self.bars.close()


def push_tag(client, repository: str, tag: str, auth_config: dict[str, str] | None = None, *,
             attempts: int = 3, backoff_s: float = 2.0, size_bytes: int = 0,
             deadline: Deadline | None = None) -> PushOutcome:
    """Push ``repository:tag`` (already tagged locally); raise PushError with the registry's message.
    Every attempt ends by one overall deadline (``push_deadline(size_bytes)`` unless given)."""
    import docker

    deadline = deadline or push_deadline(size_bytes)
    if auth_config is None:
        auth_config = registry_auth(repository, stage="publish")
    engine_retries = 0
    last: PushError | None = None
    for attempt in range(1, max(1, attempts) + 1):
        progress = _LayerProgress(f"{repository}:{tag}")
        digest: str | None = None
        failure: str | None = None
        retry_noted: set[str] = set()
        try:
            stream = client.api.push(repository, tag=tag, stream=True, decode=True, auth_config=auth_config)
            for ev in _events(client, stream, deadline):
                try:
                    check_event(ev, f"push of {repository}:{tag}", stage="publish")
                except EngineEventError as exc:  # classified below: some are retried
                    failure = exc.detail
                    break
                status = str(ev.get("status") or "")
                if status.startswith("Retrying in") and ev.get("id") not in retry_noted:
                    # the engine retries a cut-off layer upload itself; say so once per burst
                    retry_noted.add(ev.get("id"))
                    engine_retries += 1
                    console.warn(f"{repository}:{tag}: upload of layer {ev.get('id')} was interrupted; "
                                 "the Docker engine retries it")
                elif status == "Pushed" and ev.get("id") in retry_noted:
                    retry_noted.discard(ev.get("id"))
                progress.event(ev)
                aux = ev.get("aux") or {}
                if aux.get("Digest"):
                    digest = aux["Digest"]
                elif m := _DIGEST_LINE.search(status):
                    digest = digest or m.group(1)
        except _Expired:
            raise PushError(f"push of {repository}:{tag} did not finish within the network deadline of "
                            f"{deadline} (attempt {attempt}/{attempts}); stopped waiting for the engine",
                            kind="deadline", registry_message="",
                            hint=NetBudget.hint()) from None
        except docker.errors.APIError as exc:
            failure = str(exc.explanation or exc)
        except docker.errors.DockerException as exc:  # engine connection problems
            failure = f"Docker engine error: {exc}"
        except OSError as exc:
            failure = f"connection error: {exc}"
        finally:
            progress.close()
        if failure is None:
            return PushOutcome(digest=digest, attempts=attempt, engine_retries=engine_retries)
        kind = classify(failure)
        last = _push_error(repository, tag, failure, kind)
        if kind != "network" or attempt >= attempts:
            break
        delay = backoff_s * 2 ** (attempt - 1)
        if delay >= deadline.remaining():  # no time left for another attempt: the last error stands
            break
        console.warn(f"push of {repository}:{tag} failed (attempt {attempt}/{attempts}): {failure}; "
                     f"retrying in {delay:g} s")
        time.sleep(delay)
    assert last is not None
    raise last


@contextmanager
def pushed_name(client, image_id: str, repository: str, tag: str) -> Iterator[None]:
    """The local name ``repository:tag`` that docker push needs, held only for the push: afterwards it
    is removed (the image stays), or put back on the image it named before (issue 15 item 8: publish
    left ``127.0.0.1:PORT/repo:tag`` names behind). A name the image already had is left as it was."""
    import docker

    ref = f"{repository}:{tag}"
    before = local_image_id(client, ref)
    if before != image_id:
        try:
            client.api.tag(image_id, repository, tag, force=True)
        except docker.errors.APIError as exc:
            raise BuilderError(f"cannot tag {image_id[:19]} as {ref}: {exc.explanation}", stage="publish") from None
    try:
        yield
    finally:
        if before != image_id:
            _drop_name(client, image_id, ref, repository, tag, before)


def _drop_name(client, image_id: str, ref: str, repository: str, tag: str, before: str | None) -> None:
    import docker

    try:
        if before is not None:  # the user's own name for another image: back where it was
            client.api.tag(before, repository, tag, force=True)
            return
        names = client.api.inspect_image(image_id).get("RepoTags") or []
        if [n for n in names if n != ref]:  # removing the last name would delete the image itself
            client.api.remove_image(ref, noprune=True)
        else:
            console.info(f"  kept the local name {ref}: it is the image's only name")
    except docker.errors.APIError as exc:
        console.warn(f"could not remove the local name {ref} made for the push: {exc.explanation}")


def _push_error(repository: str, tag: str, message: str, kind: str) -> PushError:
    hints = {
        "auth": "check the credentials: --username/--password-stdin, `docker login`, or the ECR "
                "permissions (ecr:InitiateLayerUpload, ecr:PutImage, ...)",
        "immutable": "the repository has immutable tags; publish under a new tag (the default "
                     "<name>-<image-digest12> tag changes with any input of the image)",
        "network": "the registry was unreachable or failing; retries were exhausted",
    }
    return PushError(f"push of {repository}:{tag} failed: registry said: {message}", kind=kind,
                     registry_message=message, hint=hints.get(kind))
