"""A registry front that answers as Amazon ECR is documented to, in front of a real registry.

Stdlib only (``http.server`` with a thread per connection, ``http.client`` upstream), on 127.0.0.1.
Every request is forwarded to the real Debian ``docker-registry`` behind it (which stores and
hashes the bytes); the front changes only what ECR is reported to do differently. Each behaviour,
with its public source:

* **Basic auth with ECR's challenge.** Without ``Authorization: Basic base64(AWS:<token>)`` every
  call is answered ``401`` with ``WWW-Authenticate: Basic
  realm="https://<acct>.dkr.ecr.<region>.amazonaws.com/",service="ecr.amazonaws.com"``
  (the header as ECR sends it: mayflower/docker-ls#28; user ``AWS`` and the token from
  GetAuthorizationToken: ECR user guide "Private registry authentication"). The registry behind has
  no auth; the front strips the header before forwarding.
* **PATCH answered 201 Created**, not the spec's 202 (openai/tart#273, jdx/mise#11376,
  kitops-ml/kitops#821; "ECR returns back status code 201 (Created) instead of the standard 202",
  dotnet/sdk-container-builds#279, written with the ECR team).
* **Range stops advancing after the first PATCH** of a session: every later PATCH is answered with
  the first one's ``Range`` although its bytes are stored (aws/containers-roadmap#2831, verified
  byte by byte there; crashappsec/chalk#682).
* **Mount only what a manifest references.** ``POST ...?mount=D&from=R`` mounts (``201``) only when
  a manifest stored in repository R references D (its config, a layer, or an index entry); else
  ``202`` and an ordinary upload session, as a POST without ``mount`` would open
  (aws/containers-roadmap#2860; bazel-contrib/rules_img#732). The manifests are read from the
  registry's storage directory, so untagged (by-digest) manifests count as on ECR.
* **Parts of at least 5 MiB except the last.** A PATCH, or a PUT carrying bytes, that follows a
  PATCH of under 5 MiB in the same session is refused: ``400`` and
  ``{"errors":[{"code":"BLOB_UPLOAD_INVALID","message":"LayerPartTooSmallException: All layer parts
  except the last part should be at least 5MB"}]}``. The exception name and message are ECR's (from
  CloudTrail, dotnet/sdk-container-builds#424; "Minimum layer part size 5 MiB", ECR service
  quotas); the HTTP status and the registry-API error code ECR puts around them are not published,
  so 400 / BLOB_UPLOAD_INVALID (the spec's code for a refused upload) are this front's choice.
* **Blob downloads redirect to S3.** ``GET /v2/<repo>/blobs/<digest>`` is answered ``307`` with a
  pre-signed URL on another origin (here a second loopback port standing in for S3), which refuses a
  request that also carries an ``Authorization`` header with S3's ``400 InvalidArgument "Only one auth
  mechanism allowed; ..."`` (open-policy-agent/opa#6728: "ECR serves OCI blobs by redirecting to S3
  using pre-signed URLs"). A client that forwards the ECR token there fails, and leaks it.
* **Layer at most 52,000 MiB** ("Maximum layer size", ECR service quotas), checked on the final PUT
  against the bytes the session received; ``max_layer_bytes`` can be set lower so that a test can
  reach it. The answer's form is this front's choice (ECR's is not published).

Not modelled: ECR's "Maximum layer part size 10 MiB" (the quotas say it applies to the ECR API's
UploadLayerPart, and ``docker push`` sends each layer in one streamed PATCH to ECR;
kitops-ml/kitops#821 pushed a 15 GB layer monolithically), repository creation (moto does that in
the tests), and immutable tags (ECR's control plane, via moto).

Bodies are held in memory per request: meant for test blobs of some tens of MiB.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

MIN_PART = 5 << 20
MAX_LAYER = 52_000 << 20
_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection",
        "content-length", "authorization", "expect"}
_SESSION = re.compile(r"^/v2/(?P<repo>.+)/blobs/uploads/(?P<id>[^/?]+)$")
_START = re.compile(r"^/v2/(?P<repo>.+)/blobs/uploads/?$")
_BLOB = re.compile(r"^/v2/(?P<repo>.+)/blobs/(?P<digest>sha256:[0-9a-f]{64})$")


@dataclass
class _Session:
    parts: list[int] = field(default_factory=list)  # sizes of the PATCHes received
    first_range: str | None = None

    @property
    def received(self) -> int:
        return sum(self.parts)


@dataclass
class FrontStats:
    requests: list[tuple[str, str, int]] = field(default_factory=list)  # method, path (no query), status
    mounts_refused: int = 0
    mounts_done: int = 0
    stale_ranges: int = 0
    parts_refused: int = 0
    layers_too_large: int = 0
    redirects: int = 0  # blob GETs sent to the S3 stand-in
    s3_served: int = 0
    s3_refused_auth: int = 0  # requests that reached "S3" with an Authorization header

    def count(self, method: str, path_re: str = "", status: int | None = None) -> int:
        pat = re.compile(path_re)
        return sum(1 for m, p, s in self.requests
                   if m == method and pat.search(p) and (status is None or s == status))


class EcrFront:
    """``EcrFront(upstream_port, storage_root)``; ``.host`` is 127.0.0.1:PORT, ``.username`` /
    ``.password`` the credentials it accepts, ``.stats`` what it did; ``close()`` when done."""

    def __init__(self, upstream_port: int, storage_root: Path, *, account: str = "123456789012",
                 region: str = "us-west-2", token: str | None = None, min_part: int = MIN_PART,
                 max_layer_bytes: int = MAX_LAYER):
        self.upstream_port = upstream_port
        self.storage_root = Path(storage_root)
        self.account, self.region = account, region
        self.username = "AWS"
        self.password = token or f"ecr-token-{uuid.uuid4().hex}"
        self.min_part = min_part
        self.max_layer_bytes = max_layer_bytes
        self.stats = FrontStats()
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()
        front = self

        class Handler(_Handler):
            pass

        class S3Handler(_S3Handler):
            pass

        Handler.front = front
        S3Handler.front = front
        self._sign_key = uuid.uuid4().bytes
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._s3 = ThreadingHTTPServer(("127.0.0.1", 0), S3Handler)
        for srv in (self._server, self._s3):
            srv.daemon_threads = True
            threading.Thread(target=srv.serve_forever, daemon=True).start()
        self.port = self._server.server_address[1]
        self.s3_port = self._s3.server_address[1]

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def challenge(self) -> str:
        return (f'Basic realm="https://{self.account}.dkr.ecr.{self.region}.amazonaws.com/",'
                f'service="ecr.amazonaws.com"')

    def close(self) -> None:
        for srv in (self._server, self._s3):
            srv.shutdown()
            srv.server_close()

    def presign(self, repo: str, digest: str) -> str:
        sig = hmac.new(self._sign_key, f"{repo}\n{digest}".encode(), hashlib.sha256).hexdigest()
        query = urlencode({"X-Amz-Algorithm": "AWS4-HMAC-SHA256", "X-Amz-Expires": "3600", "X-Amz-Signature": sig})
        return f"http://127.0.0.1:{self.s3_port}/{quote(repo, safe='')}/{digest}?{query}"

    def signed(self, repo: str, digest: str, signature: str) -> bool:
        want = hmac.new(self._sign_key, f"{repo}\n{digest}".encode(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(want, signature)

    # --- what ECR decides ------------------------------------------------------------------
    def authorized(self, header: str | None) -> bool:
        expected = "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return header == expected

    def referenced(self, repo: str) -> set[str]:
        """Digests referenced by any manifest stored in ``repo`` (tagged or not)."""
        v2 = self.storage_root / "docker" / "registry" / "v2"
        revisions = v2 / "repositories" / repo / "_manifests" / "revisions" / "sha256"
        found: set[str] = set()
        for rev in revisions.glob("*") if revisions.is_dir() else []:
            data = v2 / "blobs" / "sha256" / rev.name[:2] / rev.name / "data"
            try:
                manifest = json.loads(data.read_bytes())
            except (OSError, ValueError):
                continue
            for desc in [manifest.get("config") or {}, *(manifest.get("layers") or []),
                         *(manifest.get("manifests") or [])]:
                if desc.get("digest"):
                    found.add(desc["digest"])
        return found

    def session(self, upload_id: str) -> _Session:
        with self._lock:
            return self._sessions.setdefault(upload_id, _Session())

    def drop(self, upload_id: str) -> None:
        with self._lock:
            self._sessions.pop(upload_id, None)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    front: EcrFront

    def log_message(self, *args) -> None:
        pass

    # --- plumbing ---------------------------------------------------------------------------
    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes, *, head_length: str | None = None) -> None:
        path = urlsplit(self.path).path
        self.front.stats.requests.append((self.command, path, status))
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        if self.command == "HEAD":
            self.send_header("Content-Length", head_length or "0")
        else:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str, extra: list[tuple[str, str]] | None = None) -> None:
        body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
        self._send(status, [("Content-Type", "application/json"), *(extra or [])], body)

    def _forward(self, body: bytes, path: str | None = None) -> tuple[int, list[tuple[str, str]], bytes, str | None]:
        conn = http.client.HTTPConnection("127.0.0.1", self.front.upstream_port, timeout=300)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            headers["Content-Length"] = str(len(body))
            # the Host header is kept: the registry builds its Location URLs on it, i.e. on the front
            conn.request(self.command, path or self.path, body=body if body or self.command in
                         ("PUT", "POST", "PATCH") else None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            out = [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP]
            return resp.status, out, data, resp.getheader("Content-Length")
        finally:
            conn.close()

    # --- one request ------------------------------------------------------------------------
    def _handle(self) -> None:
        front = self.front
        body = self._read_body()
        if not front.authorized(self.headers.get("Authorization")):
            return self._error(401, "DENIED", "Not Authorized", [("WWW-Authenticate", front.challenge)])
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query))
        blob = _BLOB.match(url.path)
        if self.command == "GET" and blob:
            # ECR: the bytes come from S3 through a pre-signed URL (open-policy-agent/opa#6728)
            front.stats.redirects += 1
            return self._send(307, [("Location", front.presign(blob.group("repo"), blob.group("digest")))], b"")
        path = None
        if self.command == "POST" and _START.match(url.path) and "mount" in query:
            m = _START.match(url.path)
            assert m is not None
            if query["mount"] in front.referenced(query.get("from", "")):
                front.stats.mounts_done += 1
            else:
                # ECR: not referenced by a manifest in the source repository -> an ordinary session
                front.stats.mounts_refused += 1
                rest = {k: v for k, v in query.items() if k not in ("mount", "from")}
                path = url.path + (("?" + urlencode(rest)) if rest else "")
        session_match = _SESSION.match(url.path)
        upload_id = session_match.group("id") if session_match else None
        sess = front.session(upload_id) if upload_id and self.command in ("PATCH", "PUT") else None
        if sess is not None and (self.command == "PATCH" or body) and sess.parts and sess.parts[-1] < front.min_part:
            front.stats.parts_refused += 1
            return self._error(400, "BLOB_UPLOAD_INVALID", "LayerPartTooSmallException: All layer parts "
                                                           "except the last part should be at least 5MB")
        if sess is not None and self.command == "PUT" and sess.received + len(body) > front.max_layer_bytes:
            front.stats.layers_too_large += 1
            front.drop(upload_id)  # type: ignore[arg-type]
            return self._error(400, "BLOB_UPLOAD_INVALID", f"Layer size {sess.received + len(body)} exceeds "
                                                           f"the maximum of {front.max_layer_bytes} bytes")
        status, headers, data, length = self._forward(body, path)
        if sess is not None and self.command == "PATCH" and status == 202:
            status = 201  # ECR answers a PATCH with 201 Created
            sess.parts.append(len(body))
            rng = next((v for k, v in headers if k.lower() == "range"), None)
            if sess.first_range is None:
                sess.first_range = rng
            elif rng != sess.first_range:
                front.stats.stale_ranges += 1
                headers = [(k, v) for k, v in headers if k.lower() != "range"] + [("Range", sess.first_range or "")]
        if self.command in ("PUT", "DELETE") and upload_id:
            front.drop(upload_id)
        self._send(status, headers, data, head_length=length)

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()


class _S3Handler(BaseHTTPRequestHandler):
    """The stand-in for S3's pre-signed GET: the signature in the query is the only auth it accepts."""

    protocol_version = "HTTP/1.1"
    front: EcrFront

    def log_message(self, *args) -> None:
        pass

    def _answer(self, status: int, body: bytes, content_type: str = "application/xml") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        front = self.front
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query))
        if self.headers.get("Authorization"):
            front.stats.s3_refused_auth += 1
            return self._answer(400, b"<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism "
                                     b"allowed; only the X-Amz-Algorithm query parameter, Signature query string "
                                     b"parameter or the Authorization header should be specified</Message></Error>")
        repo_q, _, digest = url.path.lstrip("/").rpartition("/")
        repo = unquote(repo_q)
        if not front.signed(repo, digest, query.get("X-Amz-Signature", "")):
            return self._answer(403, b"<Error><Code>SignatureDoesNotMatch</Code></Error>")
        conn = http.client.HTTPConnection("127.0.0.1", front.upstream_port, timeout=300)
        try:
            conn.request("GET", f"/v2/{repo}/blobs/{digest}")
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        if resp.status != 200:
            return self._answer(404, b"<Error><Code>NoSuchKey</Code></Error>")
        front.stats.s3_served += 1
        self._answer(200, data, "application/octet-stream")
