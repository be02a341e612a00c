"""Overall deadlines for the network waits of PUBLISH and ASSEMBLY (issue 15 item 3).

A per-read socket timeout does not bound an exchange: a registry that answers one byte a second, or
that stops reading a PATCH body while keeping the connection open, satisfies every read and never
finishes. So every registry call (``RegistryClient.request``: token fetch, HEAD/GET, upload
POST/PATCH/PUT, mounts, with its retries) runs under a ``Watch``: a watchdog timer that shuts the
call's sockets down when the deadline passes (a blocked read or send then returns at once, as in
``builder.smoke.http_deadline``), and the failure names the deadline and the settings that made it.

The deadline of one operation is ``floor + bytes / minimum rate``:

* ``LMI_BUILD_NET_DEADLINE_S`` (default 120): the floor, what a call that moves few bytes may take;
* ``LMI_BUILD_NET_MIN_RATE_MBPS`` (default 5, in MB/s = 10^6 bytes/s): the slowest transfer that is
  still progress; a 4 GiB blob gets 120 + 859 s.

``bytes`` is what is known of the call: the request body's length, the response's Content-Length
of a streamed GET, and for a body of unknown length (a chunked PATCH) the bytes sent so far, so the
deadline grows while bytes move and a stalled stream fails at most ``floor`` after it stalled.

boto3 (ECR control plane, S3 artifacts) gets botocore's own bounds (``aws_config``): connect and
read timeouts and a total number of attempts, ``LMI_BUILD_AWS_TIMEOUT_S`` / ``LMI_BUILD_AWS_ATTEMPTS``.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from builder.diagnostics import BuilderError

DEADLINE_ENV = "LMI_BUILD_NET_DEADLINE_S"
RATE_ENV = "LMI_BUILD_NET_MIN_RATE_MBPS"
AWS_TIMEOUT_ENV = "LMI_BUILD_AWS_TIMEOUT_S"
AWS_ATTEMPTS_ENV = "LMI_BUILD_AWS_ATTEMPTS"
DEFAULT_FLOOR_S = 120.0
DEFAULT_RATE_MBPS = 5.0
DEFAULT_AWS_TIMEOUT_S = 60.0  # botocore's own default read timeout
DEFAULT_AWS_ATTEMPTS = 3  # the first try and two retries
AWS_CONNECT_S = 10.0


def _number(environ: Mapping[str, str], name: str, default: float, *, integer: bool = False) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        value = -1
    if not value > 0 or value != value or value == float("inf"):  # nan and inf are no deadline
        kind = "a whole number" if integer else "a number"
        raise BuilderError(f"{name}={raw!r}: expected {kind} above 0",
                           hint=f"unset {name} for the default ({default:g})")
    return value


def human_bytes(n: float) -> str:
    for unit, factor in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= factor:
            return f"{n / factor:.1f} {unit}"
    return f"{int(n)} B"


@dataclass(frozen=True)
class NetBudget:
    """``floor_s + bytes / rate_bps``; ``str`` of a deadline names both settings."""

    floor_s: float = DEFAULT_FLOOR_S
    rate_bps: float = DEFAULT_RATE_MBPS * 1e6

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> NetBudget:
        env = os.environ if environ is None else environ
        return cls(floor_s=_number(env, DEADLINE_ENV, DEFAULT_FLOOR_S),
                   rate_bps=_number(env, RATE_ENV, DEFAULT_RATE_MBPS) * 1e6)

    def seconds(self, nbytes: int = 0) -> float:
        return self.floor_s + max(0, nbytes) / self.rate_bps

    def label(self, nbytes: int = 0) -> str:
        """What made the deadline: ``LMI_BUILD_NET_DEADLINE_S=120 s + 2.1 GB at ...=5 MB/s``."""
        text = f"{DEADLINE_ENV}={self.floor_s:g} s"
        if nbytes > 0:
            text += f" + {human_bytes(nbytes)} at {RATE_ENV}={self.rate_bps / 1e6:g} MB/s"
        return text

    def describe(self, nbytes: int = 0) -> str:
        return f"{self.seconds(nbytes):.1f} s ({self.label(nbytes)})"

    @staticmethod
    def hint() -> str:
        return (f"the network made no complete progress in time; raise {DEADLINE_ENV} (seconds, the floor) "
                f"or lower {RATE_ENV} (the slowest rate that counts as progress) for a slow link")


class Watch:
    """The deadline of one registry operation and the connections it uses.

    Connections are attached by the watched connection pools below (every request of the operation,
    redirects and the token fetch included); when the deadline passes, the timer shuts down every
    socket still owned by this watch, which wakes a read or send blocked in the calling thread."""

    def __init__(self, budget: NetBudget, known_bytes: int = 0, *, clock=time.monotonic):
        self.budget = budget
        self.known = max(0, known_bytes)
        self.counted = 0  # bytes of a body of unknown length, sent or received so far
        self.fired = False
        self._clock = clock
        self.start = clock()
        self._conns: list[Any] = []
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._stopped = False
        self.read_limit = 0.0  # the last per-read socket timeout given to a request of this watch

    @property
    def nbytes(self) -> int:
        return max(self.known, self.counted)

    def seconds(self) -> float:
        return self.budget.seconds(self.nbytes)

    def remaining(self) -> float:
        return max(0.0, self.seconds() - (self._clock() - self.start))

    def expired(self) -> bool:
        return self.fired or self.remaining() <= 0

    def __str__(self) -> str:
        return self.budget.describe(self.nbytes)

    def arm(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._timer = threading.Timer(self.remaining() + 0.01, self._check)
            self._timer.daemon = True
            self._timer.start()

    def _check(self) -> None:
        if self.remaining() > 0.05:  # bytes moved since the timer was set: the deadline grew
            self.arm()
            return
        with self._lock:
            if self._stopped:
                return
            self.fired = True
            for conn, sock in self._conns:
                self._shut(conn, sock)

    def _shut(self, conn: Any, sock: Any) -> None:
        if getattr(conn, "_lmi_watch", None) is not self:
            return  # back in the pool and reused by another operation: not ours to cut
        # the socket seen at attach: http.client drops ``conn.sock`` when the answer says it will
        # close, and the body is then read from the same socket through the response
        for s in {id(x): x for x in (sock, getattr(conn, "sock", None)) if x is not None}.values():
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def attach(self, conn: Any) -> None:
        with self._lock:
            conn._lmi_watch = self
            sock = getattr(conn, "sock", None)
            self._conns.append((conn, sock))
            if self.fired:
                self._shut(conn, sock)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            if self._timer is not None:
                self._timer.cancel()
            self._conns.clear()

    def counting(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.counted += len(chunk)
            yield chunk

    def read_timeout(self, timeout: tuple[float, float]) -> tuple[float, float]:
        """Per-read socket timeouts no longer than what the deadline leaves when the request is sent
        (never 0: non-blocking). The watchdog is the bound; this is the net under it (a session
        whose pools could not be watched) and what ends one stalled read of a stream whose deadline
        has grown since."""
        left = max(self.remaining(), 0.05)
        self.read_limit = min(timeout[1], left)
        return min(timeout[0], left), self.read_limit


_local = threading.local()


def current() -> Watch | None:
    return getattr(_local, "watch", None)


@contextmanager
def active(watch: Watch) -> Iterator[Watch]:
    """Requests sent from this thread inside the block attach their connections to ``watch``."""
    before = current()
    _local.watch = watch
    try:
        yield watch
    finally:
        _local.watch = before


def _watched(pool_cls: type) -> type:
    class Connection(pool_cls.ConnectionCls):  # type: ignore[misc, name-defined]
        def connect(self) -> None:  # a new socket, opened inside a request: attach it too
            super().connect()
            watch = current()
            if watch is not None:
                watch.attach(self)

    class Watched(pool_cls):  # type: ignore[misc, valid-type]
        ConnectionCls = Connection

        def _make_request(self, conn, *args, **kwargs):  # every request, on a new or a pooled connection
            watch = current()
            if watch is not None:
                watch.attach(conn)
            return super()._make_request(conn, *args, **kwargs)

    Connection.__name__ = f"Watched{pool_cls.ConnectionCls.__name__}"
    Watched.__name__ = f"Watched{pool_cls.__name__}"
    return Watched


_POOLS: dict[str, type] | None = None


def install(session: Any) -> bool:
    """Make ``session``'s urllib3 pools attach their connections to the current watch. False when the
    session's adapters have no urllib3 pool manager (a test double): only per-read timeouts apply."""
    global _POOLS
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    if _POOLS is None:
        _POOLS = {"http": _watched(HTTPConnectionPool), "https": _watched(HTTPSConnectionPool)}
    done = False
    for adapter in getattr(session, "adapters", {}).values():
        manager = getattr(adapter, "poolmanager", None)
        classes = getattr(manager, "pool_classes_by_scheme", None)
        if isinstance(classes, dict) and classes.get("http") is _POOLS["http"]:
            done = True  # a session shared by two clients: installed already, its pools kept
        elif isinstance(classes, dict):
            manager.pool_classes_by_scheme = dict(_POOLS)
            manager.clear()  # pools made before would not attach
            done = True
    return done


# --- boto3 ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class AwsBounds:
    timeout_s: float = DEFAULT_AWS_TIMEOUT_S
    attempts: int = DEFAULT_AWS_ATTEMPTS

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AwsBounds:
        env = os.environ if environ is None else environ
        return cls(timeout_s=_number(env, AWS_TIMEOUT_ENV, DEFAULT_AWS_TIMEOUT_S),
                   attempts=int(_number(env, AWS_ATTEMPTS_ENV, DEFAULT_AWS_ATTEMPTS, integer=True)))

    @property
    def connect_s(self) -> float:
        return min(AWS_CONNECT_S, self.timeout_s)

    def bound_s(self) -> float:
        """The longest a call can wait on a silent endpoint: every attempt's connect and read, plus
        the standard retry mode's back-off (at most 20 s between attempts)."""
        return self.attempts * (self.connect_s + self.timeout_s) + (self.attempts - 1) * 20

    def describe(self) -> str:
        return (f"{self.timeout_s:g} s per read x {self.attempts} attempts "
                f"({AWS_TIMEOUT_ENV}, {AWS_ATTEMPTS_ENV})")


def aws_config(bounds: AwsBounds | None = None, **extra: Any):
    """botocore ``Config`` with connect/read timeouts and a total number of attempts, so a hung
    endpoint fails within ``bounds.bound_s()`` rather than botocore's defaults (60 s reads, legacy
    retries) stacked without a limit on the whole call."""
    from botocore.config import Config

    b = bounds or AwsBounds.from_env()
    return Config(connect_timeout=b.connect_s, read_timeout=b.timeout_s,
                  retries={"total_max_attempts": b.attempts, "mode": "standard"}, **extra)


def s3_client(**extra: Any) -> Any:
    """The one S3 client (fetch from S3, S3 artifacts and their smoke, the remote cache): boto3's standard
    chain (env, profile, SSO, instance role; ``AWS_ENDPOINT_URL_S3`` read by botocore) with the bounds of
    ``aws_config``; ``extra``: more ``Config`` settings. A session of its own: boto3's default session is
    not safe to share between threads."""
    import boto3

    return boto3.session.Session().client("s3", config=aws_config(**extra))


def is_aws_timeout(exc: BaseException) -> bool:
    from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

    return isinstance(exc, (ReadTimeoutError, ConnectTimeoutError))
