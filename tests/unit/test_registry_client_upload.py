"""Blob uploads of the shared registry client against an in-memory registry that answers as ECR does
(or as the spec says): 201/202 on PATCH, a refused mount that opens a session, a ``Range`` that
stops advancing, one that is short. No Docker, no docker-registry."""

from __future__ import annotations

import hashlib
import os
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from builder.diagnostics import BuilderError
from builder.registry.client import (
    MIN_PART,
    RangeWatch,
    RegistryClient,
    iter_parts,
    part_size_from_env,
    range_end,
)
from builder.registry.transfer import ensure_base_blob, stream_upload


class FakeRegistry:
    """Blobs and upload sessions in memory. ``patch_status``: 201 (ECR) or 202 (spec);
    ``range_mode``: honest | stuck (ECR: frozen after the first PATCH) | short (loses 1 byte) | none;
    ``drop_second_part``: stores nothing from the second PATCH on, answering like ``range_mode``."""

    def __init__(self, patch_status: int = 202, range_mode: str = "honest", drop_second_part: bool = False):
        self.patch_status = patch_status
        self.range_mode = range_mode
        self.drop_second_part = drop_second_part
        self.blobs: dict[tuple[str, str], bytes] = {}
        self.sessions: dict[str, dict] = {}
        self.log: list[tuple[str, str, int, int]] = []  # method, path, status, body bytes
        reg = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = bytearray()
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return bytes(out)
                        out += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _answer(self, status: int, headers: dict[str, str] | None = None, body: bytes = b"",
                        received: int = 0) -> None:
                reg.log.append((self.command, urlsplit(self.path).path, status, received))
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_HEAD(self):
                m = re.match(r"/v2/(.+)/blobs/(sha256:[0-9a-f]+)$", self.path)
                data = reg.blobs.get((m.group(1), m.group(2))) if m else None
                if data is None:
                    return self._answer(404)
                reg.log.append(("HEAD", self.path, 200, 0))
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()

            def do_GET(self):
                m = re.match(r"/v2/(.+)/blobs/(sha256:[0-9a-f]+)$", self.path)
                data = reg.blobs.get((m.group(1), m.group(2))) if m else None
                self._answer(200 if data is not None else 404, body=data or b"")

            def do_POST(self):
                url = urlsplit(self.path)
                repo = url.path[len("/v2/"):-len("/blobs/uploads/")]
                q = parse_qs(url.query)
                self._body()
                if "mount" in q and (q["from"][0], q["mount"][0]) in reg.blobs and q["from"][0] != "unreferenced":
                    reg.blobs[(repo, q["mount"][0])] = reg.blobs[(q["from"][0], q["mount"][0])]
                    return self._answer(201)
                sid = uuid.uuid4().hex
                reg.sessions[sid] = {"repo": repo, "data": bytearray(), "patches": 0, "first_range": None}
                self._answer(202, {"Location": f"/v2/{repo}/blobs/uploads/{sid}", "Range": "0-0"})

            def do_PATCH(self):
                sid = urlsplit(self.path).path.rsplit("/", 1)[1]
                sess = reg.sessions[sid]
                body = self._body()
                sess["patches"] += 1
                if not (reg.drop_second_part and sess["patches"] > 1):
                    sess["data"] += body
                size = len(sess["data"])
                if reg.range_mode == "short":
                    size -= 1
                rng = f"0-{max(size - 1, 0)}"
                if reg.range_mode == "stuck":
                    sess["first_range"] = sess["first_range"] or rng
                    rng = sess["first_range"]
                headers = {"Location": f"/v2/{sess['repo']}/blobs/uploads/{sid}"}
                if reg.range_mode != "none":
                    headers["Range"] = rng
                self._answer(reg.patch_status, headers, received=len(body))

            def do_PUT(self):
                url = urlsplit(self.path)
                sid = url.path.rsplit("/", 1)[1]
                sess = reg.sessions.pop(sid)
                body = self._body()
                sess["data"] += body
                digest = parse_qs(url.query)["digest"][0]
                if "sha256:" + hashlib.sha256(sess["data"]).hexdigest() != digest:
                    return self._answer(400, body=b'{"errors":[{"code":"DIGEST_INVALID","message":'
                                                 b'"provided digest did not match uploaded content"}]}',
                                        received=len(body))
                reg.blobs[(sess["repo"], digest)] = bytes(sess["data"])
                self._answer(201, {"Docker-Content-Digest": digest}, received=len(body))

            def do_DELETE(self):
                reg.sessions.pop(urlsplit(self.path).path.rsplit("/", 1)[1], None)
                self._answer(204)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.host = f"127.0.0.1:{self.server.server_address[1]}"

    def count(self, method: str) -> int:
        return sum(1 for m, *_ in self.log if m == method)


@pytest.fixture
def make_registry():
    made: list[FakeRegistry] = []

    def make(**kw) -> FakeRegistry:
        reg = FakeRegistry(**kw)
        made.append(reg)
        return reg

    yield make
    for reg in made:
        reg.server.shutdown()
        reg.server.server_close()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _pieces(data: bytes, n: int = 300_000):
    for i in range(0, len(data), n):
        yield data[i:i + n]


@pytest.mark.parametrize("status", [201, 202])
def test_streamed_patch_accepts_201_and_202(make_registry, status):
    reg = make_registry(patch_status=status)
    data = os.urandom(1_000_000)
    client = RegistryClient(reg.host, part_size=None)
    sent = stream_upload(client, "r", _pieces(data), lambda: _digest(data))
    assert sent == len(data) and reg.blobs[("r", _digest(data))] == data


@pytest.mark.parametrize("status", [201, 202])
def test_parts_with_stuck_range_complete_and_put_carries_the_last_part(make_registry, status, capsys):
    reg = make_registry(patch_status=status, range_mode="stuck")
    data = os.urandom(3 * MIN_PART + 12_345)
    client = RegistryClient(reg.host, part_size=MIN_PART)
    stream_upload(client, "r", _pieces(data), lambda: _digest(data))
    assert reg.blobs[("r", _digest(data))] == data
    patches = [n for m, _, _, n in reg.log if m == "PATCH"]
    assert patches == [MIN_PART] * 3  # every PATCH a full part: none under ECR's minimum
    puts = [n for m, _, _, n in reg.log if m == "PUT"]
    assert puts == [12_345]  # the last part travels in the PUT
    assert "does not follow the bytes sent" in capsys.readouterr().err


def test_parts_against_honest_range_say_nothing(make_registry, capsys):
    reg = make_registry(range_mode="honest")
    data = os.urandom(2 * MIN_PART)  # an exact multiple: the PUT is empty
    stream_upload(RegistryClient(reg.host, part_size=MIN_PART), "r", _pieces(data), lambda: _digest(data))
    assert [n for m, _, _, n in reg.log if m == "PUT"] == [0]
    assert "does not follow the bytes sent" not in capsys.readouterr().err


def test_short_range_on_an_honest_registry_fails_before_the_put(make_registry):
    reg = make_registry(range_mode="short")
    data = os.urandom(2 * MIN_PART + 10)
    with pytest.raises(BuilderError, match="holds .* of the .* bytes sent"):
        stream_upload(RegistryClient(reg.host, part_size=MIN_PART), "r", _pieces(data), lambda: _digest(data))
    assert reg.count("PUT") == 0 and reg.count("DELETE") == 1  # the session is cancelled


def test_stuck_range_that_hides_lost_bytes_is_caught_by_the_digest_check(make_registry):
    reg = make_registry(range_mode="stuck", drop_second_part=True)
    data = os.urandom(3 * MIN_PART)
    with pytest.raises(BuilderError) as err:
        stream_upload(RegistryClient(reg.host, part_size=MIN_PART), "r", _pieces(data), lambda: _digest(data))
    assert "DIGEST_INVALID" in str(err.value) and "re-running" in err.value.describe()
    assert ("r", _digest(data)) not in reg.blobs


def test_refused_mount_continues_in_the_session_it_opened(make_registry):
    reg = make_registry(patch_status=201)
    data = os.urandom(100_000)
    reg.blobs[("unreferenced", _digest(data))] = data  # present, but no manifest references it (ECR)
    client = RegistryClient(reg.host, part_size=None)
    out = ensure_base_blob(client, "target", client, "unreferenced", _digest(data), len(data), "base-0")
    assert out.uploaded and not out.mounted
    assert reg.count("POST") == 1  # the mount's POST opened the session; no second POST
    assert reg.blobs[("target", _digest(data))] == data


def test_mount_answered_201_moves_nothing(make_registry):
    reg = make_registry()
    data = os.urandom(1000)
    reg.blobs[("src", _digest(data))] = data
    client = RegistryClient(reg.host)
    out = ensure_base_blob(client, "dst", client, "src", _digest(data), len(data), "base-0")
    assert out.mounted and reg.count("PATCH") == 0 and reg.count("PUT") == 0


def test_range_watch_rules():
    w = RangeWatch()
    assert w.check("0-9", 10) is False and w.trusted
    assert w.check("0-9", 20) is True and not w.trusted  # stuck at the previous answer: ECR
    assert w.check("0-9", 30) is False  # untrusted from then on
    assert w.check("0-39", 30) is False
    over = RangeWatch()
    assert over.check("0-10", 10) is True and not over.trusted  # one byte too many: not a loss, not trusted
    fresh = RangeWatch()
    with pytest.raises(ValueError, match="holds 5 of the 10"):
        fresh.check("0-4", 10)
    assert RangeWatch().check(None, 10) is True  # no Range: nothing to verify against
    assert range_end("bytes=0-1023") == 1023 and range_end("") is None


def test_iter_parts_cuts_exact_sizes():
    parts = list(iter_parts([b"ab", b"cdefg", b"h"], 3))
    assert parts == [b"abc", b"def", b"gh"]
    assert list(iter_parts([b"abcdef"], 3)) == [b"abc", b"def", b""]
    assert list(iter_parts([], 3)) == [b""]


def test_part_size_from_env():
    assert part_size_from_env({}) is None
    assert part_size_from_env({"LMI_BUILD_UPLOAD_PART_MIB": "64"}) == 64 << 20
    for bad in ("4", "x", "-5"):
        with pytest.raises(BuilderError, match="at least 5"):
            part_size_from_env({"LMI_BUILD_UPLOAD_PART_MIB": bad})
