"""Hostile servers against the smoke judge, ``serve``'s readiness wait and ``predict`` (issue 15
item 3): every network wait ends by an overall deadline named in the failure, and streams are read
in linear time and bounded memory.

The servers are stdlib ``http.server`` threads on 127.0.0.1; the container is a fake whose URL
points at them, so the whole judge (``smoke_test``) runs without Docker. Each test is bounded by
pytest-timeout: without the deadlines, the drip/never-ending cases run forever. The elapsed-time
assertions are correctness bounds (deadline + slack), not performance figures.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from builder import labels as L
from builder.diagnostics import BuilderError
from builder.smoke import run as smoke_run
from builder.smoke import serving
from builder.smoke.container import free_port
from builder.smoke.http_deadline import Deadline, HttpFailure, open_request
from builder.smoke.image_info import parse_labels
from builder.smoke.readiness import PingAnswer, http_probe, wait_ready

DEADLINE = 2.0  # readiness and request deadlines of the hostile cases
SLACK = 1.5  # scheduling and teardown; far below what any of these servers would otherwise take
BIG = 150 * 2**20
CHUNK = 64 * 2**10


class _Hostile(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    ping = "ok"  # ok | drip
    invoke = "ok"  # ok | hang | drip | header-drip | stream-no-newline | stream-150mb
    stop: threading.Event
    sent: list

    def log_message(self, *a):
        pass

    def _drip(self, data: bytes = b"x", every: float = 0.1) -> None:
        """One byte per ``every`` s until the test ends or the client goes: each read succeeds,
        so only an overall deadline ends the wait."""
        while not self.stop.wait(every):
            self.wfile.write(data)

    def _headers(self, code: int, ctype: str, length: int | None = None) -> None:
        self.send_response(code)
        self.send_header("content-type", ctype)
        if length is None:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    def do_GET(self):
        try:
            if self.ping == "drip":  # 200 headers, then a body that never completes
                self._headers(200, "application/json", 10_000)
                self._drip(b" ")
                return
            body = b'{"tiny": {"status": "Healthy"}}'
            self._headers(200, "application/json", len(body))
            self.wfile.write(body)
        except OSError:  # the client gave up (the point of the test)
            return

    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        stream = bool(req.get("stream"))
        try:
            self._invoke(req, stream)
        except OSError:
            return

    def _invoke(self, req: dict, stream: bool) -> None:
        mode = self.invoke
        if mode == "hang":  # reads the request, answers nothing
            self.stop.wait(60)
            return
        if mode == "header-drip":  # the status line one byte at a time
            for b in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * 10_000:
                if self.stop.wait(0.1):
                    return
                self.wfile.write(bytes([b]))
            return
        if mode == "drip":
            self._headers(200, "application/jsonlines" if stream else "application/json",
                          None if stream else 10_000)
            if stream:
                self._chunk(b'{"token": {"id": 0, "text": "a"}}\n')
                while not self.stop.wait(0.1):
                    self._chunk(b" ")
            else:
                self._drip(b" ")
            return
        if stream and mode == "stream-no-newline":
            self._headers(200, "application/jsonlines")
            while not self.stop.wait(0.05):
                self._chunk(b'{"token": {"id": 0, "text": "a"}} ')
            return
        if stream and mode == "stream-150mb":  # generated on the fly, never held
            self._headers(200, "application/jsonlines")
            block = b"a" * CHUNK
            for _ in range(BIG // CHUNK):
                self._chunk(block)
                self.sent[0] += len(block)
            self._chunk(b"\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        words = [f"w{i}" for i in range(req["parameters"]["max_new_tokens"])]
        if stream:
            self._headers(200, "application/jsonlines")
            for i, w in enumerate(words):
                line = {"token": {"id": i, "text": w}}
                if i == len(words) - 1:
                    line.update(generated_text=" ".join(words),
                                details={"finish_reason": "length", "generated_tokens": len(words)})
                self._chunk((json.dumps(line) + "\n").encode())
            self.wfile.write(b"0\r\n\r\n")
            return
        body = json.dumps({"generated_text": " ".join(words),
                           "details": {"finish_reason": "length", "generated_tokens": len(words)}}).encode()
        self._headers(200, "application/json", len(body))
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a handler still dripping must not hold the test's teardown


@pytest.fixture
def hostile():
    stop = threading.Event()
    handler = type("H", (_Hostile,), {"stop": stop, "sent": [0]})
    srv = _Server(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield handler, srv.server_address[1]
    stop.set()
    srv.shutdown()
    srv.server_close()


class _FakeBox:
    """Stands in for ManagedContainer: the 'container' is the in-process server on ``port``."""

    def __init__(self, client=None, image="", *, port: int, **_kw):
        self.port = port
        self.name = "lmi-smoke-fake"
        self.container = None
        self.removed = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        pass

    def state(self):
        return True, None, "running"

    def logs(self, tail="all") -> str:
        return "(fake container log)"

    def remove(self) -> None:
        self.removed = True


class _FakeClient:
    class api:  # mirrors docker-py's client.api
        @staticmethod
        def inspect_image(ref):
            smoke = {"readiness_timeout_s": DEADLINE, "request_timeout_s": DEADLINE, "max_new_tokens": 4}
            return {"Id": "sha256:" + "d" * 64, "Config": {"Labels": {L.SMOKE: json.dumps(smoke)}}}


def _judge(monkeypatch, port: int):
    """The whole smoke judge (readiness, generate, generate-stream) against the server on ``port``."""
    monkeypatch.setattr(smoke_run, "ManagedContainer", _FakeBox)
    start = time.monotonic()
    result = smoke_run.smoke_test("hostile:latest", accelerators="none", docker_client=_FakeClient(),
                                  port=port, record=False)
    return result, time.monotonic() - start, {c.name: c for c in result.checks}


@pytest.mark.timeout(30)
def test_well_behaved_server_passes(hostile, monkeypatch):
    _handler, port = hostile
    result, elapsed, by = _judge(monkeypatch, port)
    assert result.status == "passed", result.reason
    assert set(by) >= {"ready", "generate", "generate-stream"} and all(c.ok for c in by.values())
    assert result.metrics.stream_tokens == 4 and elapsed < DEADLINE


@pytest.mark.timeout(30)
def test_slow_drip_ping_ends_at_the_readiness_deadline(hostile, monkeypatch):
    handler, port = hostile
    handler.ping = "drip"
    result, elapsed, by = _judge(monkeypatch, port)
    assert result.status == "failed" and not by["ready"].ok
    detail = by["ready"].detail
    assert f"not ready within {DEADLINE:g} s (smoke.readiness_timeout_s)" in detail, detail
    assert "/ping 200: no complete response" in detail, detail  # says what the last probe saw
    assert result.reason.startswith("ready: not ready within 2 s (smoke.readiness_timeout_s)")
    assert elapsed < DEADLINE + SLACK


@pytest.mark.timeout(30)
@pytest.mark.parametrize("mode", ["hang", "drip", "header-drip"])
def test_invocations_that_never_finish_end_at_the_request_deadline(hostile, monkeypatch, mode):
    handler, port = hostile
    handler.invoke = mode
    result, elapsed, by = _judge(monkeypatch, port)
    assert result.status == "failed" and by["ready"].ok
    want = f"no complete response within {DEADLINE:g} s (smoke.request_timeout_s)"
    for name in ("generate", "generate-stream"):
        assert not by[name].ok and by[name].detail.startswith(want), (name, by[name].detail)
    assert result.reason.startswith(f"generate: {want}"), result.reason
    assert elapsed < 2 * DEADLINE + SLACK  # two requests, each with its own deadline


@pytest.mark.timeout(30)
def test_stream_without_newline_ends_at_the_request_deadline(hostile, monkeypatch):
    handler, port = hostile
    handler.invoke = "stream-no-newline"
    result, elapsed, by = _judge(monkeypatch, port)
    assert by["generate"].ok and not by["generate-stream"].ok and result.status == "failed"
    detail = by["generate-stream"].detail
    assert detail.startswith(f"no complete response within {DEADLINE:g} s (smoke.request_timeout_s) "
                             "(HTTP 200, "), detail
    assert "0 lines so far" in detail, detail
    assert elapsed < 2 * DEADLINE + SLACK


@pytest.mark.timeout(60)
def test_150_mb_stream_without_newline_stops_at_the_line_cap(hostile, monkeypatch):
    handler, port = hostile
    handler.invoke = "stream-150mb"
    result, elapsed, by = _judge(monkeypatch, port)
    assert by["generate"].ok and not by["generate-stream"].ok and result.status == "failed"
    detail = by["generate-stream"].detail
    assert "line 1 of the stream is longer than 1 MiB (the cap on one stream line)" in detail, detail
    assert handler.sent[0] < BIG  # the judge stopped reading; it did not take in the 150 MB
    assert elapsed < 2 * DEADLINE + SLACK


@pytest.mark.timeout(60)
def test_150_mb_line_is_read_in_linear_time_when_the_caps_allow_it(hostile):
    """The splitter itself: one 150 MB line with the caps raised arrives whole within a 30 s
    deadline (``requests.iter_lines`` re-joins the pending bytes per 512-byte chunk: hours)."""
    handler, port = hostile
    handler.invoke = "stream-150mb"
    limit = Deadline(30, "test")
    with open_request("POST", f"http://127.0.0.1:{port}/invocations", deadline=limit,
                      json={"inputs": "x", "parameters": {"max_new_tokens": 1}, "stream": True}) as r:
        sizes = [len(line) for line in r.lines(max_line=BIG + 1, max_bytes=BIG + 16)]
    assert sizes == [BIG] and r.received == BIG + 1
    assert limit.elapsed() < limit.seconds


@pytest.mark.timeout(30)
def test_body_cap_is_reported(hostile):
    handler, port = hostile
    handler.invoke = "stream-150mb"
    with pytest.raises(HttpFailure) as err, open_request(
            "POST", f"http://127.0.0.1:{port}/invocations", deadline=Deadline(20, "test"),
            json={"inputs": "x", "parameters": {"max_new_tokens": 1}, "stream": True}) as r:
        r.body(max_bytes=2**20)
    assert err.value.kind == "too-large" and "HTTP 200 answer is larger than 1 MiB (the cap on one response)" in str(err.value)


@pytest.mark.timeout(30)
def test_lines_are_split_across_chunks_and_crlf():
    """The incremental splitter on hand-made chunk boundaries (no server): a line split over three
    chunks, CRLF endings, a last line without a newline."""
    from builder.smoke.http_deadline import Response

    class _X:
        deadline = Deadline(10, "test")
        fired = False

        def set_socket_timeout(self):
            pass

    class _R:
        def __init__(self, chunks):
            self.chunks, self.length, self.status, self.headers = list(chunks), None, 200, {}

        def isclosed(self):
            return not self.chunks

        def read1(self, n):
            return self.chunks.pop(0) if self.chunks else b""

    r = Response(_X(), _R([b'{"a"', b": 1", b"}\r\nsecond\n\nthi", b"rd"]))
    assert list(r.lines()) == [b'{"a": 1}', b"second", b"", b"third"]
    r = Response(_X(), _R([b"x" * 600, b"y" * 600]))
    with pytest.raises(HttpFailure) as err:
        list(r.lines(max_line=1000))
    assert err.value.kind == "line-too-long"
    r = Response(_X(), _R([b"\n" * 10]))
    with pytest.raises(HttpFailure) as err:
        list(r.lines(max_lines=5))
    assert err.value.kind == "too-many-lines" and "more than 5 lines" in str(err.value)


@pytest.mark.timeout(30)
def test_serve_readiness_names_the_readiness_option(hostile):
    handler, port = hostile
    handler.ping = "drip"
    info = parse_labels("hostile:latest", "sha256:" + "d" * 64, {})
    start = time.monotonic()
    with pytest.raises(BuilderError) as err:
        serving.wait_until_ready(_FakeBox(port=port), info, deadline_s=DEADLINE)
    assert f"not ready within {DEADLINE:g} s (--readiness-timeout)" in str(err.value)
    assert time.monotonic() - start < DEADLINE + SLACK


@pytest.mark.timeout(30)
@pytest.mark.parametrize("stream", [False, True])
def test_predict_send_names_the_timeout_option(hostile, stream):
    handler, port = hostile
    handler.invoke = "drip"
    out: list[str] = []
    start = time.monotonic()
    with pytest.raises(BuilderError) as err:
        serving.send(f"http://127.0.0.1:{port}", {"inputs": "x", "stream": stream, "parameters": {}},
                     timeout=DEADLINE, write=out.append)
    assert f"no complete response within {DEADLINE:g} s (--timeout)" in str(err.value), str(err.value)
    assert time.monotonic() - start < DEADLINE + SLACK
    if stream:  # what arrived before the deadline was already printed
        assert out and out[0].startswith('{"token"')


@pytest.mark.timeout(30)
def test_predict_send_well_behaved(hostile):
    _handler, port = hostile
    out: list[str] = []
    status = serving.send(f"http://127.0.0.1:{port}", {"inputs": "x", "stream": True,
                                                       "parameters": {"max_new_tokens": 3}},
                          timeout=DEADLINE, write=out.append)
    assert status == 200 and len(out) == 3 and '"generated_text": "w0 w1 w2"' in out[-1]


@pytest.mark.timeout(30)
def test_probe_is_cut_at_the_overall_readiness_deadline(hostile):
    """A 3 s probe does not run past a readiness deadline that ends sooner."""
    handler, port = hostile
    handler.ping = "drip"
    limit = Deadline(1.0, "smoke.readiness_timeout_s")
    ready = wait_ready(http_probe(f"http://127.0.0.1:{port}", timeout=3.0, deadline=limit),
                       lambda: (True, None, "running"), limit)
    assert ready.outcome == "deadline" and ready.polls == 1
    assert limit.elapsed() < 1.0 + SLACK
    assert "no complete response within 1 s (smoke.readiness_timeout_s)" in ready.detail, ready.detail


def test_refused_at_the_deadline_is_still_refused():
    """A closed port answers at once: that answer, not 'deadline', is what the wait reports last."""

    from builder.smoke.http_deadline import fetch

    port = free_port()  # nobody listens there
    with pytest.raises(HttpFailure) as err:
        fetch("GET", f"http://127.0.0.1:{port}/ping", deadline=Deadline(0, "smoke.readiness_timeout_s"))
    assert err.value.kind == "refused" and str(err.value) == "connection refused"


def test_no_probe_is_sent_with_no_time_left():
    """Sleeping up to the deadline ends the wait with the last real answer (a probe with nothing
    left could only be cut, and would hide what the server said)."""
    t = [0.0]

    def probe():
        t[0] += 0.01
        return PingAnswer(status=503) if t[0] < 5 else PingAnswer(error="cut by the deadline")

    ready = wait_ready(probe, lambda: (True, None, "running"), 5, clock=lambda: t[0],
                       sleep=lambda s: t.__setitem__(0, t[0] + s), label="smoke.readiness_timeout_s")
    assert ready.outcome == "deadline"
    assert ready.detail == "not ready within 5 s (smoke.readiness_timeout_s) (last: /ping 503)", ready.detail
