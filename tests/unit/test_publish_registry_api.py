"""RegistryClient against a tiny loopback server speaking the Bearer-token challenge."""

from __future__ import annotations

import base64
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from pydantic import SecretStr

from builder.credentials import Credentials
from builder.diagnostics import BuilderError
from builder.publish.registry_api import MANIFEST_TYPES, RegistryClient

DIGEST = "sha256:" + "d" * 64


class Handler(BaseHTTPRequestHandler):
    seen: list[dict] = []

    def log_message(self, *a):
        pass

    def do_GET(self):
        if self.path.startswith("/token"):
            ok = self.headers.get("Authorization") == "Basic " + base64.b64encode(b"u:p").decode()
            self.send_response(200 if ok else 401)
            body = b'{"token": "T0K"}' if ok else b"{}"
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_error(404)

    def do_HEAD(self):
        Handler.seen.append(dict(self.headers))
        port = self.server.server_address[1]
        if self.headers.get("Authorization") != "Bearer T0K":
            self.send_response(401)
            self.send_header("WWW-Authenticate", f'Bearer realm="http://127.0.0.1:{port}/token",'
                                                 f'service="reg",scope="repository:r:pull"')
            self.end_headers()
            return
        if self.path.endswith("/missing"):
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Docker-Content-Digest", DIGEST)
        self.end_headers()


@pytest.fixture
def server():
    srv = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    Handler.seen.clear()
    yield f"127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_bearer_challenge_and_accept_header(server):
    c = RegistryClient(server, Credentials(username="u", password=SecretStr("p"), source="options"))
    assert c.manifest_digest("r", "t") == DIGEST
    assert c.manifest_digest("r", "missing") is None
    assert all(h.get("Accept") == MANIFEST_TYPES for h in Handler.seen)
    for media in ("oci.image.manifest.v1", "oci.image.index.v1", "docker.distribution.manifest.v2",
                  "docker.distribution.manifest.list.v2"):
        assert media in MANIFEST_TYPES


def test_bad_credentials_for_token_service(server):
    c = RegistryClient(server, Credentials(username="u", password=SecretStr("wrong"), source="options"))
    with pytest.raises(BuilderError, match="token service"):
        c.manifest_digest("r", "t")


def test_ipv6_loopback_with_port_is_plain_http_like_the_assembler() -> None:
    # review: publish had its own base_url that sent [::1]:PORT to https, unlike builder.registry.client
    from builder.publish.registry_api import base_url
    from builder.registry.client import base_url as assembler_base_url

    for host in ("[::1]:5000", "[::1]", "127.0.0.1:5000", "localhost:5000", "registry.example.com"):
        assert base_url(host) == assembler_base_url(host)
    assert base_url("[::1]:5000") == "http://[::1]:5000"


class Flaky(BaseHTTPRequestHandler):
    calls = 0

    def log_message(self, *a):
        pass

    def do_HEAD(self):
        Flaky.calls += 1
        if Flaky.calls <= 2:
            self.send_response(503)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Docker-Content-Digest", DIGEST)
        self.end_headers()


def test_reads_are_retried_on_5xx_then_answer(monkeypatch):
    import builder.registry.client as client_module

    monkeypatch.setattr(client_module, "RETRY_BACKOFF_S", 0.01)
    srv = HTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    Flaky.calls = 0
    try:
        assert RegistryClient(f"127.0.0.1:{srv.server_address[1]}").manifest_digest("r", "t") == DIGEST
        assert Flaky.calls == 3
    finally:
        srv.shutdown()


def test_an_unreachable_registry_is_one_clear_error_after_bounded_retries(monkeypatch):
    import builder.registry.client as client_module

    monkeypatch.setattr(client_module, "RETRY_BACKOFF_S", 0.01)
    with pytest.raises(BuilderError, match="unreachable") as info:
        RegistryClient("127.0.0.1:1").manifest_digest("r", "t")
    assert info.value.stage == "publish"
