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


def http_probe(url: str, timeout: float = 3.0) -> Probe:
    """``GET {url}/ping`` with a short timeout (upstream uses ``curl -m 3``, §15)."""
    import requests

    def probe() -> PingAnswer:
        try:
            r = requests.get(f"{url}/ping", timeout=timeout)
        except requests.ConnectionError as exc:
            return PingAnswer(error=_short(exc))
        except requests.Timeout:
            return PingAnswer(error=f"no answer within {timeout:g} s")
        except requests.RequestException as exc:
            return PingAnswer(error=_short(exc))
        return PingAnswer(status=r.status_code, body=r.text[:2000])

    return probe


def _short(exc: Exception) -> str:
    text = str(exc)
    if "Connection refused" in text or "Errno 111" in text:
        return "connection refused"
    return text[:200]


def wait_ready(probe: Probe, state: StateFn, deadline_s: float, *, interval_s: float = 0.5,
               max_interval_s: float = 2.0, clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep,
               on_wait: Callable[[float, PingAnswer], None] | None = None) -> Readiness:
    start = clock()
    polls = 0
    last = PingAnswer(error="not polled yet")
    delay = interval_s
    while True:
        running, exit_code, status_text = state()
        elapsed = clock() - start
        if not running:
            return Readiness(outcome="exited", seconds=elapsed, exit_code=exit_code, polls=polls,
                             detail=f"the container {status_text} with exit code {exit_code} before it was ready")
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
            said = f"/ping {last.status}" if last.status else (last.error or "no answer")
            return Readiness(outcome="deadline", seconds=elapsed, status=last.status, body=last.body, polls=polls,
                             detail=f"not ready within {deadline_s:g} s (last: {said})")
        if on_wait:
            on_wait(elapsed, last)
        sleep(min(delay, max(0.0, deadline_s - elapsed)))
        delay = min(delay * 1.5, max_interval_s)
