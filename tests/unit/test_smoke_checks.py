"""The HTTP side of the generation checks, against an in-process stdlib server standing in for
the container (the judging itself is in test_smoke_judge.py; real containers in tests/integration)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from builder.smoke.checks import run_checks
from builder.smoke.container import free_port
from builder.smoke.models import SmokeMetrics, SmokeSettings


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    mode = "ok"
    seen: list = []

    def log_message(self, *a):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append(body)
        if self.mode == "424":
            return self._send(424, b'{"code": 424, "message": "invoke handler failure", "error": "boom"}')
        words = [f"w{i}" for i in range(body["parameters"]["max_new_tokens"])]
        if body.get("stream"):
            self.send_response(200)
            self.send_header("content-type", "application/jsonlines")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i, w in enumerate(words):
                line = {"token": {"id": i, "text": w}}
                if i == len(words) - 1:
                    line["generated_text"] = " ".join(words)
                    line["details"] = {"finish_reason": "error" if self.mode == "stream-error" else "length",
                                       "generated_tokens": len(words)}
                data = (json.dumps(line) + "\n").encode()
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return None
        doc = {"generated_text": " ".join(words), "details": {"finish_reason": "length", "generated_tokens": len(words)}}
        return self._send(200, json.dumps(doc).encode())

    def _send(self, code, body):
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server():
    handler = type("H", (_Handler,), {"seen": [], "mode": "ok"})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield handler, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_requests_use_lmi_schema_and_metrics_are_filled(server):
    handler, url = server
    metrics = SmokeMetrics()
    checks = run_checks(url, SmokeSettings(prompt="hi", max_new_tokens=5, concurrent_requests=4, min_tokens=5),
                        metrics)
    assert all(c.ok for c in checks), checks
    assert handler.seen[0] == {"inputs": "hi", "parameters": {"max_new_tokens": 5, "details": True}}
    assert handler.seen[1]["stream"] is True
    assert len(handler.seen) == 2 + 4
    assert metrics.generated_tokens == 5 and metrics.stream_tokens == 5 and metrics.stream_tokens_per_s > 0
    assert metrics.first_request_latency_s is not None and metrics.concurrent_requests == 4


def test_4xx_is_reported_with_body(server):
    handler, url = server
    handler.mode = "424"
    checks = run_checks(url, SmokeSettings(max_new_tokens=3), SmokeMetrics())
    by = {c.name: c for c in checks}
    assert not by["generate"].ok and "HTTP 424" in by["generate"].detail and "boom" in by["generate"].detail
    assert not by["generate-stream"].ok and "boom" in by["generate-stream"].detail


def test_error_finish_in_stream(server):
    handler, url = server
    handler.mode = "stream-error"
    checks = run_checks(url, SmokeSettings(max_new_tokens=3), SmokeMetrics())
    by = {c.name: c for c in checks}
    assert by["generate"].ok and not by["generate-stream"].ok and "finish_reason 'error'" in by["generate-stream"].detail


def test_connection_failure_is_a_failed_check():

    port = free_port()  # nobody listens there
    checks = run_checks(f"http://127.0.0.1:{port}", SmokeSettings(request_timeout_s=2), SmokeMetrics())
    assert checks and not any(c.ok for c in checks) and "connection failed" in checks[0].detail
