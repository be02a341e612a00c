"""The registry client's retries are urllib3's ``Retry`` (builder.registry.client.ReadRetry): reads are
retried on 5xx and dropped connections, bounded; uploads never are (transfer.py resumes them); no retry
starts after the operation's network deadline."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

import builder.registry.client as client_module
from builder.diagnostics import BuilderError
from builder.registry import deadlines
from builder.registry.client import READ_ATTEMPTS, ReadRetry, RegistryClient

pytestmark = pytest.mark.timeout(60)


class _Counting(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    calls: dict[str, int] = {}
    mode = "503"  # "503": answer 503; "drop": close the connection without an answer

    def log_message(self, *args):
        pass

    def _answer(self):
        type(self).calls[self.command] = type(self).calls.get(self.command, 0) + 1
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if type(self).mode == "drop":
            self.close_connection = True
            self.connection.close()
            return
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD = do_PATCH = do_POST = do_PUT = _answer


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setattr(client_module, "RETRY_BACKOFF_S", 0.01)
    _Counting.calls = {}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("mode", ["503", "drop"])
def test_a_read_is_tried_read_attempts_times(server, mode):
    _Counting.mode = mode
    client = RegistryClient(server, stage="publish")
    if mode == "503":
        assert client.request("HEAD", "/v2/r/manifests/t").status_code == 503  # the last answer comes back
    else:
        with pytest.raises(BuilderError, match="unreachable or connection lost during HEAD"):
            client.request("HEAD", "/v2/r/manifests/t")
    assert _Counting.calls == {"HEAD": READ_ATTEMPTS}


@pytest.mark.parametrize("mode", ["503", "drop"])
def test_an_upload_is_sent_once(server, mode):
    _Counting.mode = mode
    client = RegistryClient(server, stage="assemble")
    body = iter([b"x" * 1024, b"y" * 1024])  # a streamed body: re-sending it would send nothing
    if mode == "503":
        assert client.request("PATCH", "/v2/r/blobs/uploads/u", data=body).status_code == 503
    else:
        with pytest.raises(BuilderError) as info:
            client.request("PATCH", "/v2/r/blobs/uploads/u", data=body)
        assert getattr(info.value, "transient", False)  # transfer.py resumes it
    assert _Counting.calls == {"PATCH": 1}


def test_no_retry_starts_after_the_deadline(server, monkeypatch):
    _Counting.mode = "503"
    monkeypatch.setenv(deadlines.DEADLINE_ENV, "0.3")
    monkeypatch.setattr(client_module, "RETRY_BACKOFF_S", 0.5)  # the first back-off outlasts the deadline
    client = RegistryClient(server, stage="publish")
    start = time.monotonic()
    with pytest.raises(BuilderError, match="did not complete within the network deadline"):
        client.request("GET", "/v2/r/manifests/t")
    assert _Counting.calls == {"GET": 1}  # the retry after the back-off found the deadline gone
    assert time.monotonic() - start < 5


def test_the_retry_is_on_the_session_and_obeys_no_retry_after():
    session = requests.Session()
    RegistryClient("127.0.0.1:1", session=session)
    retry = session.get_adapter("http://127.0.0.1:1/").max_retries
    assert isinstance(retry, ReadRetry) and retry.total == READ_ATTEMPTS - 1
    assert not retry.respect_retry_after_header and retry.allowed_methods == {"GET", "HEAD"}
