"""Image references ``HOST[:PORT]/REPO[:TAG][@sha256:HEX]`` for registry-native assembly."""

from __future__ import annotations

import re
from dataclasses import dataclass

from builder.diagnostics import UsageError

_REPO_RE = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*")
TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")  # the tag grammar, whole string (is_tag)
_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
# distribution's reference grammar: a host is DNS labels or an IPv4 address, or [IPv6], with an optional
# port (github.com/distribution/reference, regexp.go); no user:password@, no spaces.
_HOST_RE = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
                      r"|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{1,5}))?")
NAME_MAX = 255  # distribution: "repository name must not be more than 255 characters" (host included)
# The tool's own repositories (runtime, rootfs, artifacts images): a user tag there would replace what
# every later build starts from (issue 15 item 1).
OWN_NAMESPACE = "lmi-build/"


def is_tag(tag: str) -> bool:
    """A valid tag: 1-128 of [A-Za-z0-9_.-], not starting with '.' or '-' (the one tag check: references,
    publish tags and tag moves)."""
    return TAG_RE.fullmatch(tag) is not None


def check_host(host: str, *, what: str) -> None:
    m = _HOST_RE.fullmatch(host)
    if not m:
        raise UsageError(f"{what}: {host!r} is not a registry host (HOST or HOST:PORT; no user@, no spaces)")
    port = m.group("port")
    if port is not None and not 1 <= int(port) <= 65535:
        raise UsageError(f"{what}: port {port} of {host!r} is not in 1..65535")


def looks_like_host(part: str) -> bool:
    """docker's rule: the first path component is a registry host when it has '.' or ':' or is localhost."""
    return "." in part or ":" in part or part == "localhost"


def _repo_and_tag(path: str, ref: str, what: str, *, allow_tag: bool = True) -> tuple[str, str | None]:
    """``REPO[:TAG]`` (the part after the host) split and checked, as distribution's grammar has them."""
    tag = None
    if ":" in path.rsplit("/", 1)[-1]:
        path, _, tag = path.rpartition(":")
        if not allow_tag:
            raise UsageError(f"{what} {ref!r} must not carry a tag")
        if not tag:
            raise UsageError(f"{what} {ref!r}: empty tag after ':' (write REPO:TAG or REPO)")
        if not TAG_RE.fullmatch(tag):
            raise UsageError(f"{what} {ref!r}: {tag!r} is not a valid tag ([A-Za-z0-9_][A-Za-z0-9_.-], at most 128)")
    if not _REPO_RE.fullmatch(path):
        raise UsageError(f"{what} {ref!r}: repository {path!r} is not a valid OCI repository name "
                         "(lower-case, [a-z0-9] separated by . _ - /, one ':' before the tag)")
    return path, tag


def parse_local_tag(ref: str, *, what: str = "--tag") -> str:
    """A user's extra tag, ``[HOST[:PORT]/]REPO[:TAG]``, checked as docker would read it and refused in the
    tool's own namespace; returns it with an explicit tag (``latest`` only when none was written)."""
    if ref != ref.strip() or any(ord(c) < 0x21 or ord(c) == 0x7F for c in ref):
        raise UsageError(f"{what} {ref!r}: spaces and control characters are not allowed in an image reference")
    if "@" in ref:
        raise UsageError(f"{what} {ref!r}: a tag cannot carry a digest (or user@host)")
    first, sep, rest = ref.partition("/")
    host = first if sep and looks_like_host(first) else None
    path = rest if host else ref
    if host:
        check_host(host, what=f"{what} {ref!r}")
    path, tag = _repo_and_tag(path, ref, what)
    name = f"{host}/{path}" if host else path
    if len(name) > NAME_MAX:
        raise UsageError(f"{what} {ref!r}: the repository name is {len(name)} characters; at most {NAME_MAX}")
    if path.startswith(OWN_NAMESPACE) or path == OWN_NAMESPACE.rstrip("/"):
        raise UsageError(f"{what} {ref!r}: {OWN_NAMESPACE}* is lmi-build's own namespace (its runtime, rootfs "
                         "and artifacts images); a model image tagged there would become what later builds "
                         "start from", hint="tag your image under another repository")
    return f"{name}:{tag or 'latest'}"


@dataclass(frozen=True)
class ImageRef:
    host: str
    repo: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        return f"{self.host}/{self.repo}"

    @property
    def reference(self) -> str:
        """What to ask the registry for: the digest when pinned, else the tag (default ``latest``)."""
        return self.digest or self.tag or "latest"

    def pinned(self, digest: str | None = None) -> str:
        return f"{self.name}@{digest or self.digest}"

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def parse(ref: str, *, what: str = "image reference", allow_tag: bool = True) -> ImageRef:
    """Parse ``HOST/REPO[:TAG][@DIGEST]``; the host part must look like a host (has . or :, or localhost)."""
    text = ref.strip()
    digest = None
    if "@" in text:
        text, _, digest = text.partition("@")
        if not _DIGEST_RE.fullmatch(digest):
            raise UsageError(f"{what} {ref!r}: digest must be sha256:<64 hex>")
    host, sep, rest = text.partition("/")
    if not sep or not looks_like_host(host):
        raise UsageError(f"{what} {ref!r} must be HOST[:PORT]/REPOSITORY[:TAG][@sha256:...] "
                         "(e.g. 127.0.0.1:5000/lmi/tiny)")
    check_host(host, what=f"{what} {ref!r}")
    rest, tag = _repo_and_tag(rest, ref, what, allow_tag=allow_tag)
    return ImageRef(host=host, repo=rest, tag=tag, digest=digest)
