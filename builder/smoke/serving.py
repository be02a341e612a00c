"""Shared by ``lmi-build serve`` and ``lmi-build predict``: start an image as a local endpoint on
127.0.0.1 (host networking), find a running one, follow its log, send one request."""

from __future__ import annotations

import json
import shlex
import socket
import sys
import threading
from collections.abc import Callable

from builder import labels as L
from builder.diagnostics import BuilderError, UsageError
from builder.smoke.container import (
    SERVE_IMAGE,
    SERVE_PORT,
    ManagedContainer,
    free_port,
    new_run_id,
    plan_devices,
)
from builder.smoke.http_deadline import Deadline, HttpFailure, open_request
from builder.smoke.image_info import ImageInfo
from builder.smoke.readiness import http_probe, wait_ready

STAGE = "serve"


def pick_port(port: int | None) -> int:
    if port is None:
        return free_port()
    with socket.socket() as s:  # host networking: a taken port would only show as a dead server
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            raise UsageError(f"--port {port}: 127.0.0.1:{port} is not free ({exc.strerror})") from None
    return port


def make_server(client, info: ImageInfo, *, accelerators: str, port: int, env: dict[str, str],
                ephemeral: bool = False) -> ManagedContainer:
    plan = plan_devices(info.target_kind, accelerators, info.devices)  # NoAcceleratorError is a BuilderError
    extra = {SERVE_IMAGE: info.image_id, SERVE_PORT: str(port)}
    if ephemeral:
        extra[f"{L.NS}.serve.ephemeral"] = "true"
    return ManagedContainer(client, info.image_id, run_id=new_run_id(), role="serve", port=port,
                            env={**info.settings.env, **env}, shm_size=info.settings.shm_size, plan=plan,
                            extra_labels=extra)


def find_running(client, image_id: str) -> tuple[str, int] | None:
    """(container id, port) of a running ``lmi-build serve`` container of this image."""
    found = client.api.containers(filters={"status": "running", "label": [
        f"{L.MANAGED}=true", f"{L.ROLE}=serve", f"{SERVE_IMAGE}={image_id}"]})
    for c in found:
        port = (c.get("Labels") or {}).get(SERVE_PORT, "")
        if port.isdigit():
            return c["Id"], int(port)
    return None


def wait_until_ready(box: ManagedContainer, info: ImageInfo, *, deadline_s: float | None = None) -> float:
    if deadline_s:
        limit = Deadline(deadline_s, "--readiness-timeout")
    else:
        limit = Deadline(info.settings.readiness_deadline_s(info.family),
                         info.settings.readiness_deadline_label(info.family))
    ready = wait_ready(http_probe(box.url, deadline=limit), box.state, limit)
    if not ready.ok:
        tail = "\n".join(box.logs().splitlines()[-100:])
        raise BuilderError(f"{info.ref} did not become ready: {ready.detail}\n--- last log lines ---\n{tail}",
                           stage=STAGE)
    return ready.seconds


def follow_logs(box: ManagedContainer, write: Callable[[str], None] | None = None) -> threading.Thread:
    """Stream the server log to stderr from a daemon thread (ends when the container goes)."""
    out = write or (lambda text: (sys.stderr.write(text), sys.stderr.flush()))

    def _run() -> None:
        try:
            for chunk in box.container.logs(stream=True, follow=True, stdout=True, stderr=True):
                out(chunk.decode("utf-8", "replace"))
        except Exception:  # the container was removed under us: nothing more to show
            return

    t = threading.Thread(target=_run, name="server-log", daemon=True)
    t.start()
    return t


def curl_line(url: str, prompt: str, max_new_tokens: int) -> str:
    body = json.dumps({"inputs": prompt, "parameters": {"max_new_tokens": max_new_tokens}})
    return f"curl -s {url}/invocations -H 'Content-Type: application/json' -d {shlex.quote(body)}"


def parse_data(text: str) -> dict | list:
    """``--data`` as JSON text, or ``@FILE``."""
    raw = text
    if text.startswith("@"):
        try:
            with open(text[1:], encoding="utf-8") as fh:
                raw = fh.read()
        except OSError as exc:
            raise UsageError(f"--data {text}: {exc.strerror}") from None
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--data is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                         hint='e.g. --data \'{"inputs": "What is Deep Learning?", "parameters": '
                              '{"max_new_tokens": 32}}\'') from None
    if not isinstance(doc, (dict, list)):
        raise UsageError("--data must be a JSON object (LMI's {\"inputs\": ..., \"parameters\": ...})")
    return doc


def send(url: str, data: dict | list, *, timeout: float, write: Callable[[str], None],
         label: str = "--timeout", path: str = "/invocations") -> int:
    """POST /invocations; the answer goes to ``write`` (streamed line by line for jsonlines).
    The whole exchange ends by ``timeout`` seconds (``label`` names the option that set it).
    Returns the HTTP status."""
    limit = Deadline(timeout, label)
    try:
        with open_request("POST", f"{url}{path}", json=data, deadline=limit) as r:
            ctype = r.content_type
            if "jsonlines" in ctype or "event-stream" in ctype:
                for line in r.lines():
                    write(line.decode("utf-8", "replace") + "\n")
            else:
                body = r.body().decode("utf-8", "replace")
                write(body if body.endswith("\n") or not body else body + "\n")
            return r.status
    except HttpFailure as exc:
        if exc.kind in ("refused", "connection"):
            raise BuilderError(f"cannot reach {url}{path}: {exc}", stage=STAGE) from None
        raise BuilderError(f"{url}{path}: {exc}", stage=STAGE) from None
