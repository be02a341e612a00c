"""Overall network deadlines of PUBLISH and ASSEMBLY against hostile servers on 127.0.0.1 (issue 15
item 3): a registry that never answers a HEAD, drips a manifest, stalls a blob PATCH, a token
service that hangs, a docker push whose event stream stalls, an ECR/S3 endpoint that never answers.
Each must fail within its deadline plus slack, with a message naming the deadline; without the
deadlines every one of them waits for minutes (per-read timeouts of 60-300 s, or forever)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from builder.diagnostics import BuilderError
from builder.registry import deadlines
from builder.registry.client import RegistryClient, SizedBody

pytestmark = pytest.mark.timeout(60)  # correctness bound: each case ends in seconds when right

FLOOR = 1.5  # LMI_BUILD_NET_DEADLINE_S in these tests
SLACK = 4.0  # thread scheduling on a loaded 2-core machine, connection setup
DIGEST = "sha256:" + "a" * 64


class _Server:
    """A ThreadingHTTPServer whose handlers wait on ``release`` where they misbehave."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]):
        self.release = threading.Event()
        handler.release = self.release  # type: ignore[attr-defined]
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve(monkeypatch):
    monkeypatch.setenv(deadlines.DEADLINE_ENV, str(FLOOR))
    servers: list[_Server] = []

    def start(handler: type[BaseHTTPRequestHandler]) -> _Server:
        servers.append(_Server(handler))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


class _Base(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    release: threading.Event

    def log_message(self, *args) -> None:
        pass

    def hang(self) -> None:
        self.release.wait(120)


def _fails_in_time(fn, *, within: float, names: str = deadlines.DEADLINE_ENV) -> BuilderError:
    start = time.monotonic()
    with pytest.raises(BuilderError) as info:
        fn()
    took = time.monotonic() - start
    assert took < within + SLACK, f"took {took:.1f} s, deadline {within} s"
    assert "deadline" in str(info.value) or "within" in str(info.value)
    assert names in str(info.value) + str(info.value.hint or "")
    return info.value


# --- the budget -----------------------------------------------------------------------------
def test_budget_scales_with_bytes_and_names_its_settings():
    b = deadlines.NetBudget.from_env({deadlines.DEADLINE_ENV: "100", deadlines.RATE_ENV: "5"})
    assert b.seconds(0) == 100
    assert b.seconds(4 * 2**30) == pytest.approx(100 + 4 * 2**30 / 5e6)
    text = b.describe(5 * 10**9)
    assert text.startswith("1100.0 s") and "LMI_BUILD_NET_DEADLINE_S=100 s" in text and "5 MB/s" in text
    assert deadlines.NetBudget.from_env({}).seconds() == deadlines.DEFAULT_FLOOR_S


@pytest.mark.parametrize("raw", ["0", "-5", "nan", "inf", "soon"])
def test_budget_refuses_a_setting_that_is_no_deadline(raw):
    with pytest.raises(BuilderError, match=deadlines.DEADLINE_ENV):
        deadlines.NetBudget.from_env({deadlines.DEADLINE_ENV: raw})
    with pytest.raises(BuilderError, match=deadlines.AWS_ATTEMPTS_ENV):
        deadlines.AwsBounds.from_env({deadlines.AWS_ATTEMPTS_ENV: "1.5" if raw == "soon" else raw})


def test_watch_grows_with_bytes_counted():
    now = [0.0]
    w = deadlines.Watch(deadlines.NetBudget(floor_s=10, rate_bps=100), clock=lambda: now[0])
    now[0] = 9.0
    assert w.remaining() == pytest.approx(1.0)
    list(w.counting([b"x" * 500]))
    assert w.remaining() == pytest.approx(6.0)  # 10 + 500/100 - 9
    now[0] = 15.0
    assert w.expired()


# --- registry: HEAD, manifest, token, PATCH -------------------------------------------------
def test_a_registry_that_never_answers_a_head_fails_at_the_deadline(serve):
    class Handler(_Base):
        def do_HEAD(self):
            self.hang()

    srv = serve(Handler)
    err = _fails_in_time(lambda: RegistryClient(srv.host).blob_size("repo", DIGEST), within=FLOOR)
    assert "HEAD" in str(err) and f"{FLOOR:g} s" in str(err)


@pytest.mark.parametrize("length", [True, False], ids=["content-length", "until-close"])
def test_a_dripped_manifest_fails_at_the_deadline(serve, length):
    class Handler(_Base):
        def do_GET(self):
            body = b'{"schemaVersion": 2}' + b" " * 4000
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            if length:
                self.send_header("Content-Length", str(len(body)))
            else:
                self.send_header("Connection", "close")
            self.end_headers()
            try:
                for i in range(len(body)):  # a byte every 20 ms: every read is answered in time
                    self.wfile.write(body[i:i + 1])
                    self.wfile.flush()
                    if self.release.wait(0.02):
                        return
            except OSError:
                pass

    srv = serve(Handler)
    err = _fails_in_time(lambda: RegistryClient(srv.host).get_manifest("repo", "v1"), within=FLOOR)
    assert "GET" in str(err)


def test_a_token_service_that_hangs_fails_at_the_deadline(serve):
    class Handler(_Base):
        def do_GET(self):
            if self.path.startswith("/token"):
                self.hang()
                return
            self.send_response(401)
            self.send_header("WWW-Authenticate",
                             f'Bearer realm="http://{self.headers["Host"]}/token",service="test"')
            self.send_header("Content-Length", "0")
            self.end_headers()

    srv = serve(Handler)
    err = _fails_in_time(lambda: RegistryClient(srv.host).ping(), within=FLOOR)
    assert "token service" in str(err)


class _StallingPatch(_Base):
    """Reads the first MiB of a PATCH body, then stops reading and never answers."""

    def do_PATCH(self):
        self.rfile.read(1 << 20)
        self.hang()


def _body(total: int) -> Iterator[bytes]:
    chunk = b"\0" * (1 << 20)
    for _ in range(total >> 20):
        yield chunk


@pytest.mark.parametrize("sized", [True, False], ids=["sized", "chunked"])
def test_a_patch_that_stalls_mid_upload_fails_at_the_deadline(serve, monkeypatch, sized):
    monkeypatch.setenv(deadlines.RATE_ENV, "1000")  # 64 MiB add 0.07 s: the floor decides
    srv = serve(_StallingPatch)
    client = RegistryClient(srv.host)
    size = 64 << 20
    location = f"http://{srv.host}/v2/repo/blobs/uploads/x"

    def upload():
        client.upload_stream(location, _body(size), size=size if sized else None)

    err = _fails_in_time(upload, within=FLOOR + size / 1e9)
    assert "PATCH" in str(err)


def test_a_slow_but_moving_upload_is_not_cut_at_the_floor(serve, monkeypatch):
    """The deadline of a body of unknown length grows with the bytes sent: progress is not a hang."""
    monkeypatch.setenv(deadlines.RATE_ENV, "0.0001")  # 100 B/s: each 64-byte chunk buys 0.64 s

    class Handler(_Base):
        def do_PATCH(self):
            while (line := self.rfile.readline()) and line.strip() != b"0":  # chunked framing
                self.rfile.read(int(line, 16) + 2)
            self.rfile.readline()
            self.send_response(202)
            self.send_header("Location", "/v2/repo/blobs/uploads/y")
            self.send_header("Range", "0-1279")
            self.send_header("Content-Length", "0")
            self.end_headers()

    srv = serve(Handler)

    def trickle() -> Iterator[bytes]:
        for _ in range(20):  # 20 x 0.15 s = 3 s, twice the floor
            time.sleep(0.15)
            yield b"y" * 64

    where = RegistryClient(srv.host).upload_stream(f"http://{srv.host}/v2/repo/blobs/uploads/x", trickle())
    assert where.endswith("/uploads/y")


@pytest.mark.parametrize("drip", [False, True], ids=["stall", "drip"])
def test_a_streamed_blob_that_stalls_or_drips_names_the_deadline(serve, drip):
    class Handler(_Base):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(10 << 20))
            self.end_headers()
            self.wfile.write(b"z" * 1000)
            self.wfile.flush()
            try:
                while drip and not self.release.wait(0.02):  # every read answered: only the deadline ends it
                    self.wfile.write(b"z")
                    self.wfile.flush()
            except OSError:
                return
            self.hang()

    srv = serve(Handler)
    resp = RegistryClient(srv.host).get_blob("repo", DIGEST, stream=True)

    def read():
        try:
            for _ in resp.iter_content(1 << 16):
                pass
        finally:
            resp.close()

    err = _fails_in_time(read, within=FLOOR + 2.1)  # the 10 MiB Content-Length buys 2.1 s at 5 MB/s
    # a stall ends at the per-read limit (the floor), a drip at the deadline grown by the size
    assert ("network deadline of 3.6 s" if drip else "no data moved within 1.5 s") in str(err)


def test_the_commit_put_deadline_counts_the_bytes_sent_into_the_session(serve, monkeypatch):
    """A registry may move the whole blob at ``PUT ?digest=`` (an S3-backed distribution copies it):
    the commit's deadline grows by every byte PATCHed into that session, not only by its own body."""
    monkeypatch.setenv(deadlines.RATE_ENV, "10")  # 20 MB buy 2 s

    class Handler(_Base):
        def do_PATCH(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(202)
            self.send_header("Location", "/v2/repo/blobs/uploads/u1?_state=next")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_PUT(self):
            self.hang()

    srv = serve(Handler)
    client = RegistryClient(srv.host)
    size = 20 * 10**6
    where = client.upload_stream(f"http://{srv.host}/v2/repo/blobs/uploads/u1?_state=first",
                                 iter([b"\0" * size]), size=size)
    start = time.monotonic()
    err = _fails_in_time(lambda: client.finish_upload(where, DIGEST), within=FLOOR + 2)
    assert time.monotonic() - start > FLOOR + 1.5  # not cut at the floor alone
    assert "3.5 s" in str(err) and "20.0 MB" in str(err)


def test_a_healthy_registry_call_is_unchanged(serve):
    class Handler(_Base):
        def do_HEAD(self):
            self.send_response(200)
            self.send_header("Content-Length", "1234")
            self.end_headers()

    srv = serve(Handler)
    assert RegistryClient(srv.host).blob_size("repo", DIGEST) == 1234


def test_sized_body_keeps_its_length(serve):
    """A known-size body is not re-wrapped: requests still sends it with Content-Length."""
    seen: dict[str, str] = {}

    class Handler(_Base):
        def do_PATCH(self):
            seen.update(self.headers)
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(202)
            self.send_header("Range", "0-9")
            self.send_header("Content-Length", "0")
            self.end_headers()

    srv = serve(Handler)
    RegistryClient(srv.host).upload_stream(f"http://{srv.host}/v2/r/blobs/uploads/x",
                                           iter([b"0123456789"]), size=10)
    assert seen.get("Content-Length") == "10" and "Transfer-Encoding" not in seen
    assert isinstance(SizedBody([], 0), SizedBody)


# --- docker push --------------------------------------------------------------------------
class _StalledEngine:
    """A Docker SDK client whose push stream yields a progress event and then waits forever."""

    def __init__(self, release: threading.Event):
        self.release = release
        self.api = self

    def push(self, repository, tag=None, stream=False, decode=False, auth_config=None):
        def events():
            yield {"status": "Pushing", "id": "abc", "progressDetail": {"current": 1, "total": 9}}
            self.release.wait(120)
            yield {"status": "Pushed", "id": "abc"}

        return events()


def test_a_docker_push_that_stalls_fails_at_the_deadline(monkeypatch):
    from builder.engine import pushing as push

    monkeypatch.setenv(deadlines.DEADLINE_ENV, str(FLOOR))
    release = threading.Event()
    try:
        err = _fails_in_time(lambda: push.push_tag(_StalledEngine(release), "127.0.0.1:5000/r", "t",
                                                   attempts=3, backoff_s=0.1, size_bytes=1000),
                             within=FLOOR + 0.001)
    finally:
        release.set()
    assert isinstance(err, push.PushError) and err.kind == "deadline"
    assert "attempt 1/3" in str(err)  # a deadline is not retried: it covers every attempt


def test_a_push_that_keeps_sending_progress_still_ends_at_the_deadline(monkeypatch):
    from builder.engine import pushing as push

    class Chatty(_StalledEngine):
        def push(self, *args, **kwargs):
            def events():
                while not self.release.is_set():
                    time.sleep(0.05)
                    yield {"status": "Pushing", "id": "abc", "progressDetail": {"current": 1}}

            return events()

    release = threading.Event()
    try:
        _fails_in_time(lambda: push.push_tag(Chatty(release), "r", "t",
                                             deadline=push.push_deadline(0, deadlines.NetBudget(floor_s=1))),
                       within=1)
    finally:
        release.set()


def test_the_push_deadline_shuts_the_engine_connection():
    """At the deadline the connection to the engine is shut (the SDK's generator keeps the response
    in its frame): the reader thread ends instead of waiting for the SDK's per-read timeout."""
    from builder.engine import pushing as push

    ours, engine_side = socket.socketpair()
    engine_side.settimeout(10)

    class Engine:
        def __init__(self):
            self.api = self

        def _get_raw_response_socket(self, response):
            return socket.SocketIO(response, "rb")  # what docker-py returns for a unix socket

        def push(self, *args, **kwargs):
            def _stream_helper(response):
                while data := response.recv(1):  # blocks: the engine sends nothing
                    yield {"status": data.decode()}

            return _stream_helper(ours)

    try:
        _fails_in_time(lambda: push.push_tag(Engine(), "r", "t", attempts=1,
                                             deadline=push.push_deadline(0, deadlines.NetBudget(floor_s=1))),
                       within=1)
        assert engine_side.recv(1) == b""  # the engine sees its client go
        deadline = time.monotonic() + 5
        while any(t.name == "docker-push-events" for t in threading.enumerate()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(t.name == "docker-push-events" for t in threading.enumerate())
    finally:
        ours.close()
        engine_side.close()


def test_push_deadline_scales_with_the_image():
    from builder.engine import push_deadline

    d = push_deadline(10 * 10**9, deadlines.NetBudget(floor_s=120, rate_bps=5e6))
    assert d.seconds == 2120 and "10.0 GB" in str(d) and deadlines.RATE_ENV in str(d)


# --- boto3: ECR and S3 --------------------------------------------------------------------
@pytest.fixture
def silent_endpoint(monkeypatch):
    """A socket that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-west-2"), (deadlines.AWS_TIMEOUT_ENV, "1"),
                        (deadlines.AWS_ATTEMPTS_ENV, "2")):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    for s in accepted:
        s.close()
    listener.close()


def test_ecr_control_plane_that_never_answers_fails_within_the_bound(silent_endpoint, monkeypatch):
    from builder.publish.ecr import EcrControl

    monkeypatch.setenv("AWS_ENDPOINT_URL_ECR", silent_endpoint)
    bound = deadlines.AwsBounds.from_env().bound_s()
    ctl = EcrControl("123456789012", "us-west-2")
    err = _fails_in_time(lambda: ctl.ensure_repository("models"), within=bound, names=deadlines.AWS_TIMEOUT_ENV)
    assert "DescribeRepositories" in str(err) and "1 s per read x 2 attempts" in str(err)
    err = _fails_in_time(ctl.auth_config, within=bound, names=deadlines.AWS_TIMEOUT_ENV)
    assert "GetAuthorizationToken" in str(err)


def test_s3_endpoint_that_never_answers_fails_within_the_bound(silent_endpoint, monkeypatch, tmp_path):
    from builder.publish import s3_artifacts

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", silent_endpoint)
    bound = deadlines.AwsBounds.from_env().bound_s()
    err = _fails_in_time(lambda: s3_artifacts.upload_layout([], "s3://bucket/prefix/"), within=bound,
                         names=deadlines.AWS_TIMEOUT_ENV)
    assert "1 s per read x 2 attempts" in str(err)


def test_the_remote_cache_s3_client_is_bounded_like_the_others(silent_endpoint):
    """One S3 client maker (deadlines.s3_client) for fetch, S3 publish and smoke, and the remote cache,
    whose client once had botocore's defaults (60 s reads, legacy retries) and no bound at all."""
    from builder.artifacts.remote import WORKERS, RemoteCache

    config = RemoteCache("s3://bucket/prefix/").s3.meta.config
    assert (config.read_timeout, config.retries) == (1, {"total_max_attempts": 2, "mode": "standard"})
    assert config.max_pool_connections == 2 * WORKERS  # its own setting kept
    assert deadlines.s3_client().meta.config.read_timeout == 1
