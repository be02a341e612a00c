"""HTTP to a local model server under an OVERALL deadline, for the smoke judge, ``serve`` and
``predict`` (issue 15 item 3).

Per-read socket timeouts alone do not bound a request: a server that sends one byte a second
(headers or body) satisfies every read and never finishes. So every exchange here has a watchdog
timer that shuts the socket down when the deadline passes; a blocked read then returns at once and
the failure names the deadline and the setting that set it, e.g. ``no complete response within
10 s (smoke.request_timeout_s)``.

Bodies and streams are read in chunks of at most one system call each (``read1``), so the deadline
is checked between chunks and memory is bounded by a cap on the body (``MAX_BODY_BYTES``) and on one
stream line (``MAX_LINE_BYTES``); crossing a cap stops reading and says which cap. Lines are split
incrementally: each byte is scanned once (``requests.iter_lines`` re-joins the pending part of a
line with every chunk, quadratic on a long line without a newline).

Plain ``http.client`` is used rather than ``requests`` because the socket has to be reachable from
the watchdog before the response headers arrive.
"""

from __future__ import annotations

import http.client
import json as _json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal
from urllib.parse import urlsplit

MAX_BODY_BYTES = 64 * 2**20  # a generation answer or a whole stream; 32 tokens are a few KiB
MAX_LINE_BYTES = 2**20  # one jsonlines/SSE record
MAX_LINES = 1_000_000  # a caller that keeps the lines keeps at most this many (a token a line)
CHUNK_BYTES = 64 * 2**10

FailureKind = Literal["deadline", "too-large", "line-too-long", "too-many-lines", "refused", "connection", "protocol"]


def size_text(n: int) -> str:
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n} bytes"


class Deadline:
    """An overall time limit and the name of what set it (shown in every failure message)."""

    def __init__(self, seconds: float, label: str, *, clock: Callable[[], float] = time.monotonic):
        self.seconds = float(seconds)
        self.label = label
        self._clock = clock
        self.start = clock()

    def elapsed(self) -> float:
        return self._clock() - self.start

    def remaining(self) -> float:
        return max(0.0, self.seconds - self.elapsed())

    def expired(self) -> bool:
        return self.elapsed() >= self.seconds

    def sub(self, seconds: float, label: str) -> Deadline:
        """A shorter limit inside this one (a 3 s probe within the readiness deadline): whichever
        ends first, named after whichever that is."""
        if seconds < self.remaining():
            return Deadline(seconds, label, clock=self._clock)
        return self

    def __str__(self) -> str:
        return f"{self.seconds:g} s ({self.label})" if self.label else f"{self.seconds:g} s"


class HttpFailure(Exception):
    """No complete, acceptable answer. ``str()`` is a one-line reason without the check's name."""

    def __init__(self, kind: FailureKind, message: str, *, received: int = 0, lines: int | None = None,
                 status: int | None = None):
        super().__init__(message)
        self.kind = kind
        self.received = received
        self.lines = lines
        self.status = status


class Response:
    """Status and headers are read; the body is read through ``body()`` or ``lines()``."""

    def __init__(self, exchange: _Exchange, resp: http.client.HTTPResponse):
        self._x = exchange
        self._resp = resp
        self.status: int = resp.status
        self.headers = resp.headers
        self.received = 0  # body bytes so far
        self.lines_read = 0

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "") or ""

    def _chunk(self) -> bytes:
        """At most one system call's worth of body; b"" at the end of a complete body."""
        if self._resp.isclosed():
            return b""
        if self._x.deadline.expired():
            raise self._x.deadline_failure(self.received, self.lines_read, self.status)
        self._x.set_socket_timeout()
        try:
            data = self._resp.read1(CHUNK_BYTES)
        except (OSError, http.client.HTTPException) as exc:
            raise self._x.failure(exc, self.received, self.lines_read, self.status) from None
        if not data:
            if self._x.fired:  # the watchdog's shutdown reads as EOF: a body cut, not a body ended
                raise self._x.deadline_failure(self.received, self.lines_read, self.status)
            left = self._resp.length
            if left:  # Content-Length promised more
                raise HttpFailure("protocol", f"the connection closed after {self.received} of "
                                              f"{self.received + left} body bytes", received=self.received,
                                  status=self.status)
        self.received += len(data)
        return data

    def _too_large(self, max_bytes: int) -> HttpFailure:
        return HttpFailure("too-large", f"the HTTP {self.status} answer is larger than {size_text(max_bytes)} (the cap on one "
                                        f"response); stopped reading after {self.received} bytes",
                           received=self.received, lines=self.lines_read, status=self.status)

    def body(self, max_bytes: int = MAX_BODY_BYTES) -> bytes:
        parts: list[bytes] = []
        while chunk := self._chunk():
            if self.received > max_bytes:
                raise self._too_large(max_bytes)
            parts.append(chunk)
        return b"".join(parts)

    def lines(self, max_line: int = MAX_LINE_BYTES, max_bytes: int = MAX_BODY_BYTES,
              max_lines: int = MAX_LINES) -> Iterator[bytes]:
        """Lines split on ``\\n`` (a trailing ``\\r`` dropped), as they arrive; the deadline is
        checked between chunks, so a consumer that stops pulling also stops the clock from mattering."""
        pending = bytearray()
        while chunk := self._chunk():
            if self.received > max_bytes:
                raise self._too_large(max_bytes)
            start = 0
            while (nl := chunk.find(b"\n", start)) >= 0:
                if pending:
                    pending += memoryview(chunk)[start:nl]
                    line = bytes(pending)
                    pending.clear()
                else:
                    line = chunk[start:nl]
                if len(line) > max_line:
                    raise self._line_too_long(max_line)
                if self.lines_read >= max_lines:
                    raise HttpFailure("too-many-lines", f"the stream has more than {max_lines} lines (the cap on "
                                                        f"one stream); stopped reading after {self.received} bytes",
                                      received=self.received, lines=self.lines_read, status=self.status)
                self.lines_read += 1
                yield line[:-1] if line.endswith(b"\r") else line
                start = nl + 1
            pending += memoryview(chunk)[start:]
            if len(pending) > max_line:
                raise self._line_too_long(max_line)
        if pending:
            self.lines_read += 1
            yield bytes(pending)

    def _line_too_long(self, max_line: int) -> HttpFailure:
        return HttpFailure("line-too-long",
                           f"line {self.lines_read + 1} of the stream is longer than {size_text(max_line)} "
                           f"(the cap on one stream line) with no newline within it; stopped reading after "
                           f"{self.received} bytes",
                           received=self.received, lines=self.lines_read, status=self.status)


class _Exchange:
    """One request on its own connection, with the watchdog."""

    def __init__(self, url: str, deadline: Deadline):
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"only http://host:port URLs are supported here, not {url!r}")
        self.host, self.port = parts.hostname, parts.port or 80
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.deadline = deadline
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self._timeout())
        self.fired = False
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def _timeout(self) -> float:
        # what is left of the deadline bounds each read; the watchdog bounds reads inside http.client
        return max(self.deadline.remaining(), 0.001)  # 0 would make the socket non-blocking

    def set_socket_timeout(self) -> None:
        if self.conn.sock is not None:
            self.conn.sock.settimeout(self._timeout())

    def _expire(self) -> None:
        with self._lock:
            self.fired = True
            if self.conn.sock is not None:
                try:
                    self.conn.sock.shutdown(socket.SHUT_RDWR)  # wakes a read blocked in another thread
                except OSError:
                    pass

    def open(self, method: str, body: bytes | None, headers: dict[str, str]) -> http.client.HTTPResponse:
        try:
            self.conn.connect()  # bounded by the socket timeout, itself at most what is left
        except (OSError, http.client.HTTPException) as exc:
            raise self.failure(exc, 0, None, None) from None
        self._timer = threading.Timer(self.deadline.remaining(), self._expire)
        self._timer.daemon = True
        self._timer.start()
        try:
            self.conn.request(method, self.path, body=body, headers=headers)
            return self.conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            raise self.failure(exc, 0, None, None) from None

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:  # not while the watchdog holds the socket
            self.conn.close()

    def deadline_failure(self, received: int, lines: int | None, status: int | None) -> HttpFailure:
        so_far = []
        if status is not None:
            so_far.append(f"HTTP {status}")
            so_far.append(f"{received} body bytes" + (f", {lines} lines" if lines is not None else ""))
        tail = f" ({', '.join(so_far)} so far)" if so_far else " (no response headers)"
        return HttpFailure("deadline", f"no complete response within {self.deadline}{tail}",
                           received=received, lines=lines, status=status)

    def failure(self, exc: BaseException, received: int, lines: int | None, status: int | None) -> HttpFailure:
        if isinstance(exc, ConnectionRefusedError):  # a definite answer, even at the deadline
            return HttpFailure("refused", "connection refused", received=received, status=status)
        if self.fired or self.deadline.expired() or isinstance(exc, TimeoutError):  # socket timeout = time left
            return self.deadline_failure(received, lines, status)
        if isinstance(exc, http.client.HTTPException) and not isinstance(exc, http.client.RemoteDisconnected):
            text = f"{type(exc).__name__}: {str(exc)[:200]}"
            return HttpFailure("protocol", f"not a valid HTTP answer ({text})", received=received, status=status)
        return HttpFailure("connection", f"connection lost: {type(exc).__name__}: {str(exc)[:200]}",
                           received=received, status=status)


@contextmanager
def open_request(method: str, url: str, *, deadline: Deadline, json: object = None) -> Iterator[Response]:
    """Send one request and yield the response with its headers read; everything, from connect to
    the last body byte read inside the block, ends by ``deadline``. Raises ``HttpFailure``."""
    x = _Exchange(url, deadline)
    body = None
    headers = {"Accept": "*/*", "Connection": "close"}
    if json is not None:
        body = _json.dumps(json).encode("utf-8")
        headers["Content-Type"] = "application/json"
    try:
        yield Response(x, x.open(method, body, headers))
    finally:
        x.close()


def fetch(method: str, url: str, *, deadline: Deadline, json: object = None,
          max_bytes: int = MAX_BODY_BYTES) -> tuple[int, str, bytes]:
    """(status, content type, whole body), all within ``deadline``."""
    with open_request(method, url, deadline=deadline, json=json) as r:
        return r.status, r.content_type, r.body(max_bytes)
