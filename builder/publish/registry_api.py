"""Minimal OCI distribution client: read where a tag points (``HEAD /v2/<repo>/manifests/<ref>``).

Always send all four manifest media types, otherwise distribution 2.8 converts to schema1 and
answers a different digest (containers-and-registries.md §5.5). Handles the Basic and Bearer-token
challenges (``WWW-Authenticate``). Plain HTTP only for loopback registries.
"""

from __future__ import annotations

import re
import time

import requests

from builder.diagnostics import BuilderError
from builder.publish.credentials import Credentials
from builder.registry.client import base_url  # one rule for plain HTTP (loopback only)

MANIFEST_TYPES = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
])
TIMEOUT = (5, 30)
READ_ATTEMPTS = 4


class _Transient(Exception):
    pass


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.partition(" ")
    params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    return scheme.lower(), params


class RegistryClient:
    def __init__(self, host: str, creds: Credentials | None = None, session: requests.Session | None = None):
        self.host = host
        self.creds = creds
        self.session = session or requests.Session()
        self._auth_header: str | None = None

    def _request(self, method: str, path: str, headers: dict[str, str]) -> requests.Response:
        """One idempotent read, retried (bounded) on connection errors and 5xx answers."""
        for attempt in range(READ_ATTEMPTS):
            try:
                resp = self._request_once(method, path, headers)
            except _Transient as exc:
                if attempt + 1 == READ_ATTEMPTS:
                    raise BuilderError(f"registry {self.host} unreachable: {exc}", stage="publish") from None
            else:
                if resp.status_code < 500 or attempt + 1 == READ_ATTEMPTS:
                    return resp
            time.sleep(0.5 * 2 ** attempt)
        raise AssertionError("unreachable")

    def _request_once(self, method: str, path: str, headers: dict[str, str]) -> requests.Response:
        url = base_url(self.host) + path
        hdrs = dict(headers)
        if self._auth_header:
            hdrs["Authorization"] = self._auth_header
        try:
            resp = self.session.request(method, url, headers=hdrs, timeout=TIMEOUT)
            if resp.status_code == 401 and "WWW-Authenticate" in resp.headers:
                self._auth_header = self._answer(resp.headers["WWW-Authenticate"])
                hdrs["Authorization"] = self._auth_header
                resp = self.session.request(method, url, headers=hdrs, timeout=TIMEOUT)
        except requests.RequestException as exc:
            self.session.close()  # drop pooled connections that may be stale
            raise _Transient(exc.__class__.__name__) from None
        if resp.status_code == 401:
            raise BuilderError(f"registry {self.host} refused the credentials (401) for {path}",
                               stage="publish", hint="check --username/--password-stdin or docker login")
        return resp

    def _answer(self, header: str) -> str:
        import base64

        scheme, params = _challenge(header)
        if scheme == "basic":
            if not self.creds:
                raise BuilderError(f"registry {self.host} needs credentials (Basic realm "
                                   f"{params.get('realm', '?')!r})", stage="publish",
                                   hint="pass --username and --password-stdin, or docker login")
            raw = f"{self.creds.username}:{self.creds.password.get_secret_value()}".encode()
            return "Basic " + base64.b64encode(raw).decode()
        if scheme == "bearer":
            realm = params.pop("realm", "")
            if not realm:
                raise BuilderError(f"registry {self.host}: Bearer challenge without realm", stage="publish")
            auth = (self.creds.username, self.creds.password.get_secret_value()) if self.creds else None
            try:
                r = self.session.get(realm, params=params, auth=auth, timeout=TIMEOUT)
            except requests.RequestException as exc:
                raise BuilderError(f"token service {realm} unreachable: {exc.__class__.__name__}",
                                   stage="publish") from None
            if r.status_code != 200:
                raise BuilderError(f"token service {realm} answered {r.status_code}", stage="publish")
            body = r.json()
            token = body.get("token") or body.get("access_token")
            if not token:
                raise BuilderError(f"token service {realm} returned no token", stage="publish")
            return f"Bearer {token}"
        raise BuilderError(f"registry {self.host}: unsupported auth scheme {scheme!r}", stage="publish")

    def manifest_digest(self, repo: str, reference: str) -> str | None:
        """Digest the tag/digest points at, or None when the registry has no such manifest."""
        resp = self._request("HEAD", f"/v2/{repo}/manifests/{reference}", {"Accept": MANIFEST_TYPES})
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise BuilderError(f"registry {self.host}: HEAD {repo}:{reference} answered "
                               f"{resp.status_code}", stage="publish")
        digest = resp.headers.get("Docker-Content-Digest")
        if not digest:
            # some registries omit the header on HEAD; GET and hash the exact bytes
            import hashlib

            got = self._request("GET", f"/v2/{repo}/manifests/{reference}", {"Accept": MANIFEST_TYPES})
            if got.status_code != 200:
                raise BuilderError(f"registry {self.host}: GET {repo}:{reference} answered "
                                   f"{got.status_code}", stage="publish")
            digest = "sha256:" + hashlib.sha256(got.content).hexdigest()
        return digest
