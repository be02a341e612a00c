"""Getting blobs into the target repository: skip (already there), mount (same registry), stream
(registry to registry, never through a daemon, never extracted), or upload (our layers).

Progress: one line per blob saying what happened and how many bytes moved, plus a line every few
seconds while a large blob streams (containers-and-registries.md §5.4: skip/mount/push are the three
outcomes the Docker client reports too).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from builder import console
from builder.registry.client import RegistryClient

PROGRESS_EVERY_S = 5.0


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} GiB"


@dataclass
class Outcome:
    uploaded: bool = False
    mounted: bool = False
    skipped: bool = False
    bytes_moved: int = 0


class Ticker:
    """A progress callback printing ``name: X moved`` at most every few seconds."""

    def __init__(self, name: str, total: int | None):
        self.name = name
        self.total = total
        self.start = time.monotonic()
        self.last = self.start

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if now - self.last >= PROGRESS_EVERY_S:
            self.last = now
            of = f" of {human(self.total)}" if self.total else ""
            rate = done / max(now - self.start, 1e-6)
            console.info(f"    {self.name}: {human(done)}{of} moved ({human(rate)}/s)")


def _counting(chunks: Iterable[bytes], sink: list[int]) -> Iterator[bytes]:
    for chunk in chunks:
        sink[0] += len(chunk)
        yield chunk


def stream_upload(target: RegistryClient, repo: str, chunks: Iterable[bytes],
                  digest: Callable[[], str], location: str | None = None) -> int:
    """POST (or reuse ``location``, e.g. the session a refused mount opened) + PATCH + PUT ?digest=;
    returns bytes sent. One streamed PATCH, or parts of ``target.part_size`` with the last in the PUT.

    ``digest`` is asked after the stream ended (our layers learn theirs while streaming)."""
    location = location or target.start_upload(repo)
    sent = [0]
    try:
        if target.part_size:
            location, last = target.upload_parts(location, _counting(chunks, sent), target.part_size)
            target.finish_upload(location, digest(), last)
        else:
            location = target.upload_stream(location, _counting(chunks, sent))
            target.finish_upload(location, digest())
    except BaseException:
        target.cancel_upload(location)
        raise
    return sent[0]


def ensure_base_blob(target: RegistryClient, repo: str, source: RegistryClient, source_repo: str,
                     digest: str, size: int, name: str) -> Outcome:
    """Make ``digest`` present in ``target/repo``: skipped, mounted (same registry) or streamed."""
    if target.blob_size(repo, digest) is not None:
        console.info(f"  {name} {digest[7:19]}: skipped (already in {repo}, {human(size)})")
        return Outcome(skipped=True)
    location = None
    if source.host == target.host:
        location = target.mount_blob(repo, digest, source_repo)
        if location is None:
            console.info(f"  {name} {digest[7:19]}: mounted from {source_repo} (0 B moved, {human(size)})")
            return Outcome(mounted=True)
    start = time.monotonic()
    try:
        resp = source.get_blob(source_repo, digest, stream=True)
    except BaseException:
        if location is not None:
            target.cancel_upload(location)  # the session a refused mount opened
        raise
    try:
        ticker = Ticker(name, size)
        moved = [0]

        def chunks() -> Iterator[bytes]:
            for chunk in resp.iter_content(chunk_size=1 << 20):
                moved[0] += len(chunk)
                ticker(moved[0])
                yield chunk

        sent = stream_upload(target, repo, chunks(), lambda: digest, location)
    finally:
        resp.close()
    console.info(f"  {name} {digest[7:19]}: streamed from {source.host}/{source_repo} "
                 f"({human(sent)} in {time.monotonic() - start:.1f} s)")
    return Outcome(uploaded=True, bytes_moved=sent)
