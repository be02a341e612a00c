"""Engine event streams: the one in-band error check, and a reader whose waits can end.

The engine answers build, pull, push and import with HTTP 200 and reports failures as events
(``{"error": ...}``, ``{"errorDetail": {"message": ...}}``, or both; containers-and-registries.md §2.2,
§4). ``check_event`` is the only place that looks for them.
"""

from __future__ import annotations

import queue
import socket
import threading

from builder.diagnostics import BuilderError


class EngineEventError(BuilderError):
    """An error the engine reported inside its event stream; ``detail`` is the engine's own message."""

    def __init__(self, message: str, *, detail: str, stage: str | None = None, hint: str | None = None):
        super().__init__(message, stage=stage, hint=hint)
        self.detail = detail


def event_error(event: object) -> str | None:
    """The engine's message when ``event`` reports an error, else None."""
    if not isinstance(event, dict) or ("error" not in event and "errorDetail" not in event):
        return None
    detail = event.get("errorDetail")
    message = detail.get("message") if isinstance(detail, dict) else detail
    return str(message or event.get("error") or "unknown error (the engine sent no message)")


def check_event(event: dict, doing: str, *, stage: str | None, tail: str = "", hint: str | None = None) -> dict:
    """``event`` unchanged, or EngineEventError ``"{doing} failed: {engine message}"`` (+ ``tail`` lines)."""
    detail = event_error(event)
    if detail is None:
        return event
    tail = tail.rstrip()
    raise EngineEventError(f"{doing} failed: {detail}" + (f"\n{tail}" if tail else ""), detail=detail,
                           stage=stage, hint=hint)


class Silent(Exception):
    """No event arrived within the wait the caller gave (``EventReader.next``)."""


class EventReader:
    """The events of one engine stream, read in a thread so that the caller's wait for the next one
    can end: the SDK's timeout is per read, and an engine stuck on a slow or silent registry keeps
    the stream open (sending progress, or nothing) for as long as it likes."""

    def __init__(self, client, stream, name: str):
        self.client, self.stream = client, stream
        self._events: queue.Queue = queue.Queue()  # unbounded: a consumer that stops must not block the reader
        threading.Thread(target=self._pump, name=name, daemon=True).start()

    def _pump(self) -> None:
        try:
            for ev in self.stream:
                self._events.put(("event", ev))
            self._events.put(("end", None))
        except BaseException as exc:  # handed to the consumer, which raises it in its own thread
            self._events.put(("error", exc))

    def next(self, timeout: float) -> dict | None:
        """The next event, None at the end of the stream; raises Silent after ``timeout`` s without one,
        and what the reader raised (connection errors) in the caller's thread."""
        try:
            kind, item = self._events.get(timeout=max(timeout, 0.001))
        except queue.Empty:
            raise Silent() from None
        if kind == "error":
            raise item
        return item if kind == "event" else None

    def cut(self) -> None:
        """Best effort: shut the engine connection down, which makes dockerd cancel the push or pull (it
        stops when its client goes away) and ends the reader thread; the SDK's generator keeps the
        response in its frame (docker/api/client.py ``_stream_helper``)."""
        try:
            response = self.stream.gi_frame.f_locals.get("response")
            sock = self.client.api._get_raw_response_socket(response)
            sock = getattr(sock, "_sock", sock)  # the unix socket's SocketIO wraps the socket
            sock.shutdown(socket.SHUT_RDWR)
        except Exception:  # any SDK shape we do not know: abandon the reader instead
            pass
