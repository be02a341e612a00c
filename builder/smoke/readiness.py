"""Waiting for an LMI server to be ready, with LMI's semantics (reference/lmi-runtime.md §14, §17.6):

- connection refused (or no answer yet): still loading; DJL binds the port only after loading;
- ``/ping`` 200: ready;
- ``/ping`` 500: a model FAILED: fail at once;
- the container exited: fail at once, with its exit code (a failed load stops the server, §14;
  ``SERVING_FAIL_FAST`` exits 137, §4);
- the deadline passed: fail, saying what the last answer was.
Other codes (503 error rate, 207 with allow_multi_status) keep the wait going until the deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel

from builder.smoke.http_deadline import Deadline, HttpFailure, fetch

PING_MAX_BYTES = 2**20  # DJL lists the models: a few KiB
Outcome = Literal["ready", "ping-failed", "exited", "deadline"]
Probe = Callable[[], "PingAnswer"]
StateFn = Callable[[], tuple[bool, "int | None", str]]


class PingAnswer(BaseModel):
    status: int | None = None  # None: no HTTP answer (refused, reset, timed out)
    body: str = ""
    error: str = ""  # why there was no answer


class Readiness(BaseModel):
    outcome: Outcome
    seconds: float
    status: int | None = None
    exit_code: int | None = None
    body: str = ""
    polls: int = 0
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == "ready"


def http_probe(url: str, timeout: float = 3.0, deadline: Deadline | None = None) -> Probe:
    """``GET {url}/ping``: the whole answer (headers and body) within ``timeout`` (upstream uses
    ``curl -m 3``, §15) and within what is left of the readiness ``deadline``, so a ``/ping`` that
    drips its body cannot hold the wait past it."""

    def probe() -> PingAnswer:
        limit = deadline.sub(timeout, "probe timeout") if deadline is not None else Deadline(timeout, "probe timeout")
        try:
            status, _ctype, body = fetch("GET", f"{url}/ping", deadline=limit, max_bytes=PING_MAX_BYTES)
        except HttpFailure as exc:
            what = f"/ping {exc.status}: " if exc.status is not None else ""
            return PingAnswer(error=what + str(exc)[:300])
        return PingAnswer(status=status, body=body[:2000].decode("utf-8", "replace"))

    return probe


def wait_ready(probe: Probe, state: StateFn, deadline_s: float | Deadline, *, interval_s: float = 0.5,
               max_interval_s: float = 2.0, clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep,
               on_wait: Callable[[float, PingAnswer], None] | None = None, label: str = "") -> Readiness:
    """``deadline_s``: seconds, or the ``Deadline`` the probe was built with (``http_probe(...,
    deadline=...)``, so that one probe cannot outlast it); its clock and label are then used.
    ``label`` names what set a plain ``deadline_s`` (e.g. ``smoke.readiness_timeout_s``)."""
    start = clock()
    if isinstance(deadline_s, Deadline):  # its clock counts from its own start
        clock, label, deadline_s, start = deadline_s.elapsed, deadline_s.label, deadline_s.seconds, 0.0
    named = f"{deadline_s:g} s" + (f" ({label})" if label else "")
    polls = 0
    last = PingAnswer(error="not polled yet")
    delay = interval_s
    while True:
        running, exit_code, status_text = state()
        elapsed = clock() - start
        if not running:
            return Readiness(outcome="exited", seconds=elapsed, exit_code=exit_code, polls=polls,
                             detail=f"the container {status_text} with exit code {exit_code} before it was ready")
        if polls and elapsed >= deadline_s:  # slept up to the deadline: no probe with no time left
            return _deadline(last, elapsed, polls, named)
        last = probe()
        polls += 1
        elapsed = clock() - start
        if last.status == 200:
            return Readiness(outcome="ready", seconds=elapsed, status=200, body=last.body, polls=polls,
                             detail=f"/ping 200 after {elapsed:.1f} s")
        if last.status == 500:
            return Readiness(outcome="ping-failed", seconds=elapsed, status=500, body=last.body, polls=polls,
                             detail=f"/ping answered 500 (a model FAILED): {last.body.strip()[:500]}")
        if elapsed >= deadline_s:
            return _deadline(last, elapsed, polls, named)
        if on_wait:
            on_wait(elapsed, last)
        sleep(min(delay, max(0.0, deadline_s - elapsed)))
        delay = min(delay * 1.5, max_interval_s)


def _deadline(last: PingAnswer, elapsed: float, polls: int, named: str) -> Readiness:
    said = f"/ping {last.status}" if last.status else (last.error or "no answer")
    return Readiness(outcome="deadline", seconds=elapsed, status=last.status, body=last.body, polls=polls,
                     detail=f"not ready within {named} (last: {said})")
