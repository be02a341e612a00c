"""Image references ``HOST[:PORT]/REPO[:TAG][@sha256:HEX]`` for registry-native assembly."""

from __future__ import annotations

import re
from dataclasses import dataclass

from builder.diagnostics import UsageError

_REPO_RE = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*")
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")


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
    if not sep or not ("." in host or ":" in host or host == "localhost"):
        raise UsageError(f"{what} {ref!r} must be HOST[:PORT]/REPOSITORY[:TAG][@sha256:...] "
                         "(e.g. 127.0.0.1:5000/lmi/tiny)")
    tag = None
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        rest, _, tag = rest.rpartition(":")
        if not allow_tag:
            raise UsageError(f"{what} {ref!r} must not carry a tag")
        if not _TAG_RE.fullmatch(tag):
            raise UsageError(f"{what} {ref!r}: {tag!r} is not a valid tag")
    if not _REPO_RE.fullmatch(rest):
        raise UsageError(f"{what} {ref!r}: repository {rest!r} is not a valid OCI repository name "
                         "(lower-case, [a-z0-9] separated by . _ - /)")
    return ImageRef(host=host, repo=rest, tag=tag, digest=digest)
