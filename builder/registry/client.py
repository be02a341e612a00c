"""A small OCI distribution client (``requests``): blob HEAD/GET/upload/mount, manifest GET/HEAD/PUT.

Why not oras-py or crane: measured in docs/registry-assembly.md. The registry protocol needed for
appending layers is a handful of calls (containers-and-registries.md §9.3); owning them lets us
stream a tar straight into a PATCH (no temporary blob on disk) and mount base blobs across repos.

Rules followed: manifest reads send all four Accept types, otherwise distribution 2.8 converts to
schema1 with another digest (§5.5); plain HTTP only for loopback hosts; Basic and Bearer challenges;
the password never appears in a message, a log line or argv.

Amazon ECR answers some upload calls differently from the spec; each rule below names where other
clients reported it (docs/registry-assembly.md "Amazon ECR"):

* a PATCH is answered ``201 Created``, not ``202`` (openai/tart#273, jdx/mise#11376,
  kitops-ml/kitops#821, dotnet/sdk-container-builds#279): both are accepted;
* a cross-repository mount of a blob no manifest in the source repository references is answered
  ``202`` with an ordinary upload session (aws/containers-roadmap#2860; the spec says the client then
  continues the upload in that session: opencontainers/distribution-spec#204): the caller uploads
  into the returned ``Location``, no second POST;
* after the first PATCH of a multi-part upload, ECR's ``Range`` stops advancing although every part
  is stored (aws/containers-roadmap#2831, crashappsec/chalk#682): the offset is tracked by the bytes
  sent, ``Range`` is checked only while the registry keeps it honestly, and the registry's own check
  of ``PUT ?digest=`` is the proof;
* every part but the last must be at least 5 MiB (``LayerPartTooSmallException: All layer parts
  except the last part should be at least 5MB``, dotnet/sdk-container-builds#424, #279): parts are
  never smaller, and the last part travels in the final PUT;
* a blob GET is redirected (307) to a pre-signed S3 URL, and S3 refuses a request that also carries
  an ``Authorization`` header (open-policy-agent/opa#6728): ``requests`` drops the header on a
  redirect to another origin (``Session.should_strip_auth``), so the ECR token never reaches S3
  (tests/integration/test_ecr_front.py fails if it does).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import requests
from urllib3.util.retry import Retry

from builder import console
from builder.credentials import Credentials
from builder.diagnostics import BuilderError
from builder.registry import deadlines

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_ACCEPT = ", ".join([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST])
TIMEOUT = (5, 300)
READ_ATTEMPTS = 4
RETRY_BACKOFF_S = 0.5
# PATCH: the spec answers 202 Accepted, ECR 201 Created (openai/tart#273, jdx/mise#11376)
PATCH_OK = (201, 202)
# ECR: "All layer parts except the last part should be at least 5MB" (dotnet/sdk-container-builds#424;
# "Minimum layer part size 5 MiB" in the ECR service quotas)
MIN_PART = 5 << 20
PART_ENV = "LMI_BUILD_UPLOAD_PART_MIB"



class ReadRetry(Retry):
    """urllib3's ``Retry`` for the registry's idempotent reads: a connection error, a read timeout or a
    5xx answer to GET/HEAD is retried, ``READ_ATTEMPTS`` in all, after ``RETRY_BACKOFF_S * 2**n``.
    Nothing else is retried here: an upload (POST/PATCH/PUT with a streamed body) is resumed by
    builder.registry.transfer, never re-sent by the HTTP layer. No retry starts once the operation's
    deadline has passed (builder.registry.deadlines), and a ``Retry-After`` is not obeyed (it could be
    longer than the deadline)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("total", READ_ATTEMPTS - 1)
        kwargs.setdefault("allowed_methods", frozenset({"GET", "HEAD"}))
        kwargs.setdefault("status_forcelist", frozenset(range(500, 600)))
        kwargs.setdefault("raise_on_status", False)  # the last 5xx answer goes back to the caller
        kwargs.setdefault("respect_retry_after_header", False)
        kwargs.setdefault("redirect", False)  # requests follows redirects itself
        super().__init__(**kwargs)

    @staticmethod
    def _expired() -> bool:
        watch = deadlines.current()
        return watch is not None and watch.expired()

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        return not self._expired() and super().is_retry(method, status_code, has_retry_after)

    def increment(self, method=None, url=None, *args, **kwargs):
        if (method or "").upper() not in (self.allowed_methods or ()) or self._expired():
            # urllib3 would retry a failed connect of any method: not an upload's, and not past the deadline
            return super(ReadRetry, self.new(total=0)).increment(method, url, *args, **kwargs)
        return super().increment(method, url, *args, **kwargs)

    def get_backoff_time(self) -> float:
        errors = len([h for h in self.history if h.redirect_location is None])
        return RETRY_BACKOFF_S * 2 ** (errors - 1) if errors else 0.0


def install_read_retry(session: requests.Session) -> None:
    """Every HTTP adapter of ``session`` retries reads with ``ReadRetry`` (a test double without
    adapters keeps single attempts)."""
    from requests.adapters import HTTPAdapter

    for adapter in getattr(session, "adapters", {}).values():
        if isinstance(adapter, HTTPAdapter):
            adapter.max_retries = ReadRetry()


def is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
    return name in ("localhost", "[::1]") or name.startswith("127.")


def base_url(host: str) -> str:
    return f"{'http' if is_loopback(host) else 'https'}://{host}"


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    # ECR: Basic realm="https://<acct>.dkr.ecr.<region>.amazonaws.com/",service="ecr.amazonaws.com"
    # (mayflower/docker-ls#28): a Basic challenge that carries a service, answered with Basic
    scheme, _, rest = header.partition(" ")
    return scheme.lower(), dict(re.findall(r'(\w+)="([^"]*)"', rest))


def part_size_from_env(environ: dict[str, str] | None = None) -> int | None:
    """``LMI_BUILD_UPLOAD_PART_MIB``: upload blobs in PATCH parts of that many MiB (at least 5, ECR's
    minimum); unset: one streamed PATCH per blob, as ``docker push`` does."""
    raw = (os.environ if environ is None else environ).get(PART_ENV, "").strip()
    if not raw:
        return None
    try:
        mib = int(raw)
    except ValueError:
        mib = 0
    if mib * (1 << 20) < MIN_PART:
        raise BuilderError(f"{PART_ENV}={raw!r}: expected a whole number of MiB, at least {MIN_PART >> 20}",
                           hint="ECR refuses parts under 5 MiB (all but the last); unset it for one "
                                "streamed PATCH per blob")
    return mib << 20


_RANGE = re.compile(r"(\d+)-(\d+)")


def range_end(header: str | None) -> int | None:
    """Last byte offset in an upload ``Range`` answer (``0-1023``, also ``bytes=0-1023``), else None."""
    m = _RANGE.search(header or "")
    return int(m.group(2)) if m else None


class RangeWatch:
    """Checks an upload session's ``Range`` answers against the bytes sent, while they are honest.

    A registry that keeps ``Range`` honestly reports ``0-<sent-1>`` after every PATCH; one that
    reports fewer bytes then has lost some, which is an error here and not at the final PUT. ECR's
    ``Range`` advances after the first PATCH and then stays at that value (aws/containers-roadmap#2831,
    whose reporter verified every part was stored): a ``Range`` stuck at its previous value makes the
    session untrusted, the offset is from then on what was sent, and the registry's check of
    ``PUT ?digest=`` decides (it hashes what it stored)."""

    def __init__(self) -> None:
        self.trusted = True
        self.previous: int | None = None

    def check(self, header: str | None, sent: int) -> bool:
        """After a PATCH; ``sent``: bytes sent in this session so far. True when the session just
        became untrusted. Raises ValueError (with the reason) when an honest Range says bytes were lost."""
        end = range_end(header)
        if sent == 0:
            return False  # "0-0" is what an empty session reports: nothing to compare
        if end is None:
            was, self.trusted = self.trusted, False  # no Range at all: nothing to verify against
            return was
        if not self.trusted:
            return False
        if end > sent - 1:
            # more than was sent: not a loss, a Range kept another way (artifact-keeper/artifact-keeper#1349
            # reports one byte too many); the digest check decides
            self.trusted = False
            return True
        if end == sent - 1:
            self.previous = end
            return False
        if self.previous is not None and end == self.previous:
            self.trusted = False  # stuck (ECR): not evidence of lost bytes
            return True
        raise ValueError(f"the registry holds {end + 1} of the {sent} bytes sent")


class SizedBody:
    """An iterable body whose length is known: ``requests`` sends it with ``Content-Length``."""

    def __init__(self, chunks: Iterable[bytes], size: int):
        self._chunks, self._size = chunks, size

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._chunks)


@dataclass
class UploadState:
    """Where one blob upload session stands, kept current by ``upload_stream`` / ``upload_parts`` so
    that an interrupted upload can ask the registry where it stands and go on from there
    (``builder.registry.transfer.resumable_upload``). ``confirmed``: the session offset the last
    answered PATCH ended at (what we sent, which is what an honest ``Range`` then says)."""

    location: str
    confirmed: int = 0
    handed: int = 0  # session offset up to which bytes were handed to the connection (answered or not)
    watch: RangeWatch = field(default_factory=RangeWatch)


def iter_parts(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Re-cut a byte stream into parts of exactly ``size`` bytes, the last one shorter (maybe empty)."""
    buf = bytearray()
    for chunk in chunks:
        buf += chunk
        while len(buf) >= size:
            yield bytes(buf[:size])
            del buf[:size]
    yield bytes(buf)


class RegistryClient:
    """One registry host. ``stage`` names the pipeline stage in error messages."""

    def __init__(self, host: str, credentials: Credentials | None = None, *, stage: str = "assemble",
                 session: requests.Session | None = None, part_size: int | None = None):
        self.host = host
        self.credentials = credentials
        self.stage = stage
        self.session = session or requests.Session()
        # every request of one operation runs under an overall deadline (builder.registry.deadlines)
        self.budget = deadlines.NetBudget.from_env()
        deadlines.install(self.session)
        install_read_retry(self.session)
        self._sent: dict[str, int] = {}  # upload session path -> bytes PATCHed into it
        self.url = base_url(host)
        self._auth: dict[str, str] = {}  # scope (or "basic") -> Authorization header value
        self._scope = "basic"
        # None: one streamed PATCH per blob (docker push does the same; ECR accepts it)
        self.part_size = part_size if part_size is not None else part_size_from_env()
        if self.part_size is not None and self.part_size < MIN_PART:
            raise BuilderError(f"upload part size {self.part_size} B is under ECR's minimum of 5 MiB",
                               stage=stage)

    # --- transport ---------------------------------------------------------------------------
    def request(self, method: str, path: str, *, headers: dict[str, str] | None = None,
                data: object = None, params: dict[str, str] | None = None, stream: bool = False,
                retry_auth: bool = True) -> requests.Response:
        """One call; idempotent reads (GET, HEAD) are retried, bounded, on connection errors and 5xx.

        The whole call (retries, the token fetch, a redirect, and for ``stream=True`` the body read
        until the response is closed) ends by one deadline, ``floor + bytes / minimum rate``
        (``builder.registry.deadlines``); past it the sockets are shut and the error names it."""
        session = _session_key(path)
        known = _body_size(data)
        if method == "PUT" and params and "digest" in params:
            # the commit may make the registry move the whole blob (an S3-backed distribution copies
            # it): its deadline counts every byte this client sent into the session
            known += self._sent.pop(session, 0)
        watch = deadlines.Watch(self.budget, known)
        if data is not None and not isinstance(data, (bytes, bytearray, str, dict)) and not _has_len(data):
            data = watch.counting(data)  # a body of unknown length: the deadline grows as it is sent
        watch.arm()
        try:
            with deadlines.active(watch):
                resp = self._attempts(watch, method, path, headers=headers, data=data, params=params,
                                      stream=stream, retry_auth=retry_auth)
        except BaseException:
            watch.stop()
            raise
        if method == "PATCH":
            self._sent[session] = self._sent.get(session, 0) + watch.nbytes
        if not stream:
            watch.stop()
            if watch.fired:  # a body without a length that the shutdown cut reads as complete
                resp.close()
                raise self._deadline_error(watch, method, path)
            return resp
        return self._follow(watch, resp, method, path)

    def _follow(self, watch: deadlines.Watch, resp: requests.Response, method: str,
                path: str) -> requests.Response:
        """A streamed response keeps its deadline (sized by its Content-Length) until it is closed;
        a body cut by the deadline reads as an error that names it, not as a short body."""
        try:
            watch.known = max(watch.known, int(resp.headers.get("Content-Length") or 0))
        except ValueError:
            pass
        close, iter_content = resp.close, resp.iter_content

        def closing() -> None:
            watch.stop()
            close()

        def chunks(*args, **kwargs) -> Iterator[bytes]:
            try:
                for chunk in iter_content(*args, **kwargs):
                    if not watch.known:
                        watch.counted += len(chunk)
                    yield chunk
            except requests.RequestException as exc:
                if watch.expired():
                    raise self._deadline_error(watch, method, path) from None
                if _stalled(exc):
                    raise self._stall_error(watch, method, path) from None
                raise BuilderError(f"registry {self.host}: connection lost while reading {method} "
                                   f"{_short(path)} ({exc.__class__.__name__})", stage=self.stage,
                                   hint="re-running skips every blob already uploaded") from None
            if watch.fired:  # the shutdown can also read as the end of a body without a length
                raise self._deadline_error(watch, method, path)

        resp.close = closing  # type: ignore[method-assign]
        resp.iter_content = chunks  # type: ignore[method-assign]
        return resp

    def _deadline_error(self, watch: deadlines.Watch, method: str, path: str) -> BuilderError:
        return BuilderError(f"registry {self.host}: {method} {_short(path)} did not complete within the network "
                            f"deadline of {watch}", stage=self.stage, hint=watch.budget.hint())

    def _stall_error(self, watch: deadlines.Watch, method: str, path: str) -> BuilderError:
        """One read or send waited its whole socket timeout (what the deadline left when the request
        was sent, see ``Watch.read_timeout``) for a single byte to move."""
        return BuilderError(f"registry {self.host}: {method} {_short(path)}: no data moved within "
                            f"{watch.read_limit:.1f} s (the per-read limit: what the network deadline of {watch} "
                            "left)", stage=self.stage, hint=watch.budget.hint())

    def _attempts(self, watch: deadlines.Watch, method: str, path: str, *, headers: dict[str, str] | None,
                  data: object, params: dict[str, str] | None, stream: bool,
                  retry_auth: bool) -> requests.Response:
        # the retries of reads happen below, in urllib3 (ReadRetry, installed on the session)
        if watch.expired():
            raise self._deadline_error(watch, method, path)
        return self._request_once(method, path, headers=headers, data=data, params=params, stream=stream,
                                  retry_auth=retry_auth)

    def _request_once(self, method: str, path: str, *, headers: dict[str, str] | None, data: object,
                      params: dict[str, str] | None, stream: bool, retry_auth: bool) -> requests.Response:
        url = path if path.startswith("http") else self.url + path
        hdrs = dict(headers or {})
        if self._scope in self._auth:
            hdrs["Authorization"] = self._auth[self._scope]
        try:
            resp = self.session.request(method, url, headers=hdrs, data=data, params=params,
                                        stream=stream, timeout=_timeout(), allow_redirects=True)
            if resp.status_code == 401 and retry_auth and "WWW-Authenticate" in resp.headers:
                resp.close()
                hdrs["Authorization"] = self._answer(resp.headers["WWW-Authenticate"])
                resp = self.session.request(method, url, headers=hdrs, data=data, params=params,
                                            stream=stream, timeout=_timeout(), allow_redirects=True)
        except requests.RequestException as exc:
            watch = deadlines.current()
            if watch is not None and watch.expired():
                raise self._deadline_error(watch, method, path) from None
            if watch is not None and _stalled(exc):
                err = self._stall_error(watch, method, path)
                err.transient = True  # type: ignore[attr-defined]  # transfer.py resumes an upload after it
                raise err from None
            err = BuilderError(
                f"registry {self.host} unreachable or connection lost during {method} "
                f"{_short(path)} ({exc.__class__.__name__})", stage=self.stage,
                hint="check that the registry runs; re-running skips every blob already uploaded")
            err.transient = True  # type: ignore[attr-defined]
            raise err from None
        if resp.status_code == 401:
            who = f" for user {self.credentials.username!r}" if self.credentials else ""
            raise BuilderError(f"registry {self.host} refused the credentials{who} (401 on {method} "
                               f"{_short(path)})", stage=self.stage,
                               hint="check the username and password (--password-stdin) or docker login")
        if resp.status_code == 403:
            raise BuilderError(f"registry {self.host} denied {method} {_short(path)} (403)", stage=self.stage,
                               hint="the credentials lack push/pull permission on this repository")
        return resp

    def _answer(self, header: str) -> str:
        scheme, params = _challenge(header)
        creds = self.credentials
        if scheme == "basic":
            if creds is None:
                raise BuilderError(f"registry {self.host} needs credentials (Basic realm "
                                   f"{params.get('realm', '?')!r})", stage=self.stage,
                                   hint="pass --username and --password-stdin, or docker login")
            raw = f"{creds.username}:{creds.password.get_secret_value()}".encode()
            value = "Basic " + base64.b64encode(raw).decode()
            self._auth[self._scope] = value
            self._auth["basic"] = value
            return value
        if scheme == "bearer":
            realm = params.pop("realm", "")
            if not realm:
                raise BuilderError(f"registry {self.host}: Bearer challenge without realm", stage=self.stage)
            auth = ((creds.username, creds.password.get_secret_value())
                    if creds else None)
            try:
                r = self.session.get(realm, params=params, auth=auth, timeout=_timeout())
            except requests.RequestException as exc:
                watch = deadlines.current()
                if watch is not None and watch.expired():
                    raise BuilderError(f"token service {realm} did not answer within the network deadline of "
                                       f"{watch}", stage=self.stage, hint=watch.budget.hint()) from None
                raise BuilderError(f"token service {realm} unreachable ({exc.__class__.__name__})",
                                   stage=self.stage) from None
            if r.status_code in (401, 403):
                raise BuilderError(f"token service of {self.host} refused the credentials ({r.status_code})",
                                   stage=self.stage, hint="check the username and password")
            if r.status_code != 200:
                raise BuilderError(f"token service {realm} answered {r.status_code}", stage=self.stage)
            body = r.json()
            token = body.get("token") or body.get("access_token")
            if not token:
                raise BuilderError(f"token service {realm} returned no token", stage=self.stage)
            value = f"Bearer {token}"
            self._auth[self._scope] = value
            return value
        raise BuilderError(f"registry {self.host}: unsupported auth scheme {scheme!r}", stage=self.stage)

    def _fail(self, resp: requests.Response, what: str) -> BuilderError:
        detail = ""
        try:
            errors = resp.json().get("errors") or []
            detail = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
        except ValueError:
            detail = resp.text[:200]
        return BuilderError(f"registry {self.host}: {what} answered {resp.status_code}"
                            + (f" ({detail})" if detail else ""), stage=self.stage)

    # --- API ---------------------------------------------------------------------------------
    def ping(self) -> None:
        resp = self.request("GET", "/v2/")
        if resp.status_code != 200:
            raise self._fail(resp, "GET /v2/")

    def blob_size(self, repo: str, digest: str) -> int | None:
        """Size of the blob when the repository has it, else None."""
        resp = self.request("HEAD", f"/v2/{repo}/blobs/{digest}")
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise self._fail(resp, f"HEAD blob {digest[:19]} in {repo}")
        return int(resp.headers.get("Content-Length") or 0)

    def get_blob(self, repo: str, digest: str, *, stream: bool = False) -> requests.Response:
        resp = self.request("GET", f"/v2/{repo}/blobs/{digest}", stream=stream)
        if resp.status_code != 200:
            raise self._fail(resp, f"GET blob {digest[:19]} from {repo}")
        return resp

    def get_manifest(self, repo: str, ref: str) -> tuple[bytes, str, str]:
        """(exact bytes, media type, digest) of the manifest or index at ``ref``."""
        resp = self.request("GET", f"/v2/{repo}/manifests/{ref}", headers={"Accept": MANIFEST_ACCEPT})
        if resp.status_code == 404:
            raise BuilderError(f"{self.host}/{repo}:{ref} not found in the registry", stage=self.stage,
                               hint="push the base image there first, or check the reference")
        if resp.status_code != 200:
            raise self._fail(resp, f"GET manifest {repo}:{ref}")
        body = resp.content
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if ref.startswith("sha256:") and ref != digest:
            raise BuilderError(f"{self.host}/{repo}@{ref}: registry returned content with digest {digest}",
                               stage=self.stage)
        media = resp.headers.get("Content-Type", "").split(";")[0].strip()
        return body, media, digest

    def manifest_digest(self, repo: str, ref: str) -> str | None:
        resp = self.request("HEAD", f"/v2/{repo}/manifests/{ref}", headers={"Accept": MANIFEST_ACCEPT})
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise self._fail(resp, f"HEAD manifest {repo}:{ref}")
        digest = resp.headers.get("Docker-Content-Digest")
        return digest or self.get_manifest(repo, ref)[2]

    def put_manifest(self, repo: str, ref: str, body: bytes, media_type: str) -> str:
        resp = self.request("PUT", f"/v2/{repo}/manifests/{ref}", data=body,
                            headers={"Content-Type": media_type})
        if resp.status_code not in (200, 201):
            raise self._fail(resp, f"PUT manifest {repo}:{ref}")
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        answered = resp.headers.get("Docker-Content-Digest")
        if answered and answered != digest:
            raise BuilderError(f"registry {self.host} stored manifest {answered}, expected {digest}",
                               stage=self.stage)
        return digest

    def mount_blob(self, repo: str, digest: str, from_repo: str) -> str | None:
        """Cross-repo mount. None when mounted (201); else the upload location the registry opened.

        ECR mounts only blobs a manifest in ``from_repo`` references; otherwise it answers 202 and an
        ordinary upload session (aws/containers-roadmap#2860). The caller uploads into that session:
        a second POST would open another one and leave this one dangling."""
        resp = self.request("POST", f"/v2/{repo}/blobs/uploads/", params={"mount": digest, "from": from_repo})
        if resp.status_code == 201:
            return None
        if resp.status_code == 202:
            return self._location(resp, f"mount {digest[:19]} into {repo}")
        raise self._fail(resp, f"mount {digest[:19]} from {from_repo} into {repo}")

    def start_upload(self, repo: str) -> str:
        resp = self.request("POST", f"/v2/{repo}/blobs/uploads/")
        if resp.status_code != 202:
            raise self._fail(resp, f"start upload to {repo}")
        return self._location(resp, f"start upload to {repo}")

    def _location(self, resp: requests.Response, what: str, current: str | None = None) -> str:
        where = resp.headers.get("Location")
        if not where:
            if current is not None:
                return current  # no new location: the session stays where it was
            raise BuilderError(f"registry {self.host}: {what} answered {resp.status_code} without a Location",
                               stage=self.stage)
        return urljoin(self.url + "/", where)

    def upload_bytes(self, repo: str, digest: str, data: bytes) -> None:
        """Monolithic upload (POST, then PUT with the body)."""
        location = self.start_upload(repo)
        self.finish_upload(location, digest, data)

    def upload_status(self, location: str) -> tuple[int | None, str]:
        """(bytes the session holds, its location) from ``GET`` on the session, the spec's way to
        learn where an interrupted upload stands; (None, location) when the registry no longer knows
        the session (Debian's distribution 2.8 drops one whose data outgrew its state token: measured,
        docs/registry-assembly.md "Resumable, parallel uploads") or answers without a ``Range``."""
        resp = self.request("GET", location)
        resp.close()
        if resp.status_code not in (200, 204):
            return None, location
        end = range_end(resp.headers.get("Range"))
        if end is None:
            return None, location
        # "0-0" is what an empty session reports (distribution): zero bytes, not one
        return (0 if end == 0 else end + 1), self._location(resp, "GET upload status", location)

    def upload_stream(self, location: str, chunks: Iterable[bytes], *, state: UploadState | None = None,
                      size: int | None = None) -> str:
        """Streamed upload: one PATCH with a chunked body (or, when ``size`` is given, with that
        ``Content-Length``: no chunk framing, which urllib3 writes by copying every chunk); returns the
        next location. With ``state``, the PATCH continues that session at ``state.confirmed`` (a
        resumed upload) and updates it."""
        offset = state.confirmed if state is not None else 0
        sent = [0]

        def counted() -> Iterator[bytes]:
            for chunk in chunks:
                sent[0] += len(chunk)
                if state is not None:
                    state.handed = offset + sent[0]
                yield chunk

        body: Iterable[bytes] = counted() if size is None else SizedBody(counted(), size)
        resp = self.request("PATCH", location, data=body,
                            headers={"Content-Type": "application/octet-stream"}, retry_auth=False)
        if resp.status_code not in PATCH_OK:
            raise self._fail(resp, "PATCH upload")
        # a first PATCH's Range is right on ECR too: docker push takes the layer size it writes into
        # the manifest from exactly this answer (distribution's httpBlobUpload.ReadFrom), and works there
        self._check_range(state.watch if state is not None else RangeWatch(), resp, offset + sent[0])
        location = self._location(resp, "PATCH upload", location)
        if state is not None:
            state.location, state.confirmed = location, offset + sent[0]
        return location

    def upload_parts(self, location: str, chunks: Iterable[bytes], part_size: int, *,
                     state: UploadState | None = None) -> tuple[str, bytes]:
        """Multi-part upload: every full part of ``part_size`` bytes in its own PATCH (with
        ``Content-Range``); returns (location, last part), the last part for the final PUT's body,
        so no PATCH is ever under ``part_size`` (ECR's 5 MiB minimum applies to all but the last).
        With ``state``, parts continue that session at ``state.confirmed`` and it is updated after
        every answered PATCH (what an interrupted upload resumes from)."""
        watch = state.watch if state is not None else RangeWatch()
        offset = state.confirmed if state is not None else 0
        pending: bytes | None = None
        for part in iter_parts(chunks, part_size):
            if pending is not None:
                # the part before the last: a full one; the offset is what was sent (ECR: #2831)
                end = offset + len(pending) - 1
                if state is not None:
                    state.handed = end + 1
                resp = self.request("PATCH", location, data=pending, retry_auth=False,
                                    headers={"Content-Type": "application/octet-stream",
                                             "Content-Range": f"{offset}-{end}",
                                             "Content-Length": str(len(pending))})
                if resp.status_code not in PATCH_OK:
                    raise self._fail(resp, f"PATCH upload part at {offset}")
                offset = end + 1
                self._check_range(watch, resp, offset)
                location = self._location(resp, "PATCH upload", location)
                if state is not None:
                    state.location, state.confirmed = location, offset
            pending = part
        return location, pending or b""

    def _check_range(self, watch: RangeWatch, resp: requests.Response, sent: int) -> None:
        try:
            stale = watch.check(resp.headers.get("Range"), sent)
        except ValueError as exc:
            raise BuilderError(f"registry {self.host}: upload session out of step after PATCH: {exc}",
                               stage=self.stage,
                               hint="the registry lost part of the upload; re-running uploads this blob again") from None
        if stale:
            console.info(f"    registry {self.host}: upload Range does not follow the bytes sent (ECR's stops "
                         "advancing); counting the bytes sent, the digest check of the final PUT decides")

    def finish_upload(self, location: str, digest: str, data: bytes = b"") -> None:
        """PUT ?digest= (with the last part, if any): the registry hashes what it stored and refuses a
        mismatch, which is the proof that every part arrived whatever ``Range`` said."""
        resp = self.request("PUT", location, params={"digest": digest}, data=data,
                            headers={"Content-Type": "application/octet-stream"})
        if resp.status_code != 201:
            err = self._fail(resp, f"PUT blob {digest[:19]}")
            if "DIGEST_INVALID" in str(err) or "BLOB_UPLOAD_INVALID" in str(err):
                err.hint = "the registry did not store the bytes sent; re-running uploads this blob again"
            raise err
        answered = resp.headers.get("Docker-Content-Digest")
        if answered and answered != digest:
            raise BuilderError(f"registry {self.host} stored blob {answered}, expected {digest}", stage=self.stage)

    def cancel_upload(self, location: str) -> None:
        try:
            self.request("DELETE", location).close()
        except BuilderError:
            pass  # best effort: the registry expires abandoned uploads itself


def _has_len(data: object) -> bool:
    try:
        len(data)  # type: ignore[arg-type]
    except TypeError:
        return False  # a generator: counted as it is sent
    return True


def _body_size(data: object) -> int:
    """Bytes of a request body whose length is known before it is sent (0: none or unknown)."""
    if data is None or isinstance(data, dict) or not _has_len(data):
        return 0
    return len(data)  # type: ignore[arg-type]


def _session_key(path: str) -> str:
    """An upload session's identity across its Locations (the query carries changing state)."""
    return urlsplit(path).path


def _stalled(exc: BaseException) -> bool:
    """A socket timeout on an open connection (not a connect timeout: that one is "unreachable")."""
    return not isinstance(exc, requests.ConnectTimeout) and "timed out" in str(exc).lower()


def _timeout() -> tuple[float, float]:
    watch = deadlines.current()
    return watch.read_timeout(TIMEOUT) if watch is not None else TIMEOUT


def _short(path: str) -> str:
    # upload locations carry long opaque state; keep messages readable
    return re.sub(r"\?.*$", "", path.replace("http://", "").replace("https://", ""))[:120]
