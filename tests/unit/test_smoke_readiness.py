"""The readiness wait, driven by a fake clock: LMI's ping semantics (reference/lmi-runtime.md §14)."""

from __future__ import annotations

from builder.smoke.container import free_port
from builder.smoke.readiness import PingAnswer, http_probe, wait_ready


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


def _run(answers, *, states=None, deadline=30.0):
    clock = Clock()
    answers = list(answers)
    states = list(states or [])

    def probe():
        clock.t += 0.01
        return answers.pop(0) if len(answers) > 1 else answers[0]

    def state():
        return states.pop(0) if len(states) > 1 else (states[0] if states else (True, None, "running"))

    return wait_ready(probe, state, deadline, clock=clock, sleep=clock.sleep), clock


REFUSED = PingAnswer(error="connection refused")


def test_refused_then_200_is_ready():
    r, _ = _run([REFUSED, REFUSED, REFUSED, PingAnswer(status=200, body='{"m": {"status": "Healthy"}}')])
    assert r.ok and r.polls == 4 and r.seconds > 0


def test_500_fails_at_once():
    r, clock = _run([REFUSED, PingAnswer(status=500, body='{"m": {"status": "FAILED"}}')])
    assert r.outcome == "ping-failed" and "FAILED" in r.detail and r.polls == 2 and clock.t < 5


def test_exit_fails_at_once_with_code():
    r, _ = _run([REFUSED], states=[(True, None, "running"), (False, 1, "exited")])
    assert r.outcome == "exited" and r.exit_code == 1 and "exit code 1" in r.detail


def test_exit_137_fail_fast():
    r, _ = _run([REFUSED], states=[(False, 137, "exited")])
    assert r.outcome == "exited" and r.exit_code == 137 and r.polls == 0


def test_deadline_says_what_was_seen():
    r, clock = _run([REFUSED], deadline=10)
    assert r.outcome == "deadline" and "not ready within 10 s" in r.detail and "connection refused" in r.detail
    assert 10 <= clock.t < 13


def test_503_keeps_waiting_until_deadline():
    r, _ = _run([PingAnswer(status=503)], deadline=5)
    assert r.outcome == "deadline" and "/ping 503" in r.detail


def test_503_then_200():
    r, _ = _run([PingAnswer(status=503), PingAnswer(status=200)])
    assert r.ok


def test_http_probe_refused_on_closed_port():
    port = free_port()  # nobody listens there
    answer = http_probe(f"http://127.0.0.1:{port}", timeout=1)()
    assert answer.status is None and answer.error == "connection refused"
