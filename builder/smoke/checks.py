"""The generation requests a smoke test sends, in LMI's schema (reference/lmi-runtime.md §14, §15):
one non-streaming ``POST /invocations``, one streaming (``"stream": true``), optionally N at once.
Judging is in ``judge.py``; this module does the HTTP and the timing."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from builder.smoke.http_deadline import Deadline, HttpFailure, fetch, open_request
from builder.smoke.judge import Generation, judge_expectations, judge_response, judge_stream
from builder.smoke.models import Check, SmokeMetrics, SmokeSettings


def payload(settings: SmokeSettings, *, stream: bool) -> dict:
    body: dict = {"inputs": settings.prompt,
                  "parameters": {"max_new_tokens": settings.max_new_tokens, "details": True}}
    if stream:
        body["stream"] = True
    return body


REQUEST_DEADLINE = "smoke.request_timeout_s"


def _deadline(settings: SmokeSettings) -> Deadline:
    """Each request, from connect to its last byte, ends by ``request_timeout_s`` (overall, not per read)."""
    return Deadline(settings.request_timeout_s, REQUEST_DEADLINE)


def _request_error(name: str, exc: HttpFailure, lines: int = 0) -> Generation:
    detail = str(exc)
    if exc.kind in ("refused", "connection"):
        detail = f"connection failed (did the server exit?): {detail}"
        if lines:
            detail += f" after {lines} lines (stream cut)"
    return Generation(checks=[Check(name=name, ok=False, detail=detail)])


def generate(url: str, settings: SmokeSettings, name: str = "generate") -> tuple[Generation, float]:
    """One non-streaming request; returns the judged answer and its latency (s)."""
    start = time.monotonic()
    try:
        status, ctype, body = fetch("POST", f"{url}/invocations", json=payload(settings, stream=False),
                                    deadline=_deadline(settings))
    except HttpFailure as exc:
        return _request_error(name, exc), time.monotonic() - start
    latency = time.monotonic() - start
    return judge_response(status, ctype, body, name=name), latency


def generate_stream(url: str, settings: SmokeSettings, metrics: SmokeMetrics,
                    name: str = "generate-stream") -> Generation:
    start = time.monotonic()
    first: float | None = None
    lines: list[str] = []
    try:
        with open_request("POST", f"{url}/invocations", json=payload(settings, stream=True),
                          deadline=_deadline(settings)) as r:
            ctype = r.content_type
            if r.status != 200:
                return judge_stream(r.status, ctype, [], body_if_error=r.body(), name=name)
            # chunked reads, split incrementally; the deadline and the caps hold between chunks
            for raw in r.lines():
                if first is None:
                    first = time.monotonic()
                lines.append(raw.decode("utf-8", "replace"))
    except HttpFailure as exc:
        return _request_error(name, exc, len(lines))
    end = time.monotonic()
    gen = judge_stream(200, ctype, lines, name=name)
    if gen.ok and gen.tokens:
        metrics.stream_tokens = gen.tokens
        metrics.stream_time_to_first_token_s = round((first or end) - start, 4)
        metrics.stream_tokens_per_s = round(gen.tokens / max(end - start, 1e-6), 2)
    return gen


def concurrent(url: str, settings: SmokeSettings, metrics: SmokeMetrics) -> Check:
    n = settings.concurrent_requests
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=n) as pool:
        results = list(pool.map(lambda i: generate(url, settings, name=f"concurrent-{i}")[0], range(n)))
    wall = time.monotonic() - start
    metrics.concurrent_requests, metrics.concurrent_wall_s = n, round(wall, 3)
    bad = [c for g in results for c in g.checks if not c.ok]
    if bad:
        return Check(name="concurrent", ok=False,
                     detail=f"{n - len(bad)}/{n} requests passed; first failure: {bad[0].name}: {bad[0].detail}")
    return Check(name="concurrent", ok=True, detail=f"{n}/{n} requests passed in {wall:.2f} s")


def run_checks(url: str, settings: SmokeSettings, metrics: SmokeMetrics) -> list[Check]:
    """Every generation check, in order; a failed non-streaming request does not hide the others."""
    checks: list[Check] = []
    gen, latency = generate(url, settings)
    metrics.first_request_latency_s = round(latency, 4)
    metrics.generated_tokens = gen.tokens
    checks += gen.checks
    checks += judge_expectations(gen, expect_regex=settings.expect_regex, min_tokens=settings.min_tokens)
    if settings.stream_not_applicable:
        checks.append(Check(name="generate-stream", ok=True, detail=f"not run: {settings.stream_not_applicable}"))
    else:
        stream = generate_stream(url, settings, metrics)
        checks += stream.checks
        checks += judge_expectations(stream, expect_regex=settings.expect_regex, min_tokens=settings.min_tokens,
                                     suffix="-stream")
    if settings.concurrent_requests > 0:
        checks.append(concurrent(url, settings, metrics))
    return checks
