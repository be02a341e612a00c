"""Getting blobs into the target repository: skip (already there), mount (same registry), stream
(registry to registry, never through a daemon, never extracted), or upload (our layers).

Progress: one line per blob saying what happened and how many bytes moved, plus a line every few
seconds while a large blob streams (containers-and-registries.md §5.4: skip/mount/push are the three
outcomes the Docker client reports too).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from builder import console
from builder.diagnostics import BuilderError
from builder.registry.client import RegistryClient, UploadState

PROGRESS_EVERY_S = 5.0
WORKERS_ENV = "LMI_BUILD_UPLOAD_WORKERS"
MAX_DEFAULT_WORKERS = 8  # requests' connection pool keeps 10 per host
# an interrupted layer upload: this many tries in all, waiting 0.5, 1, 2 s between them (a registry
# restart takes about a second here); after that the build stops and a re-run skips finished layers
UPLOAD_ATTEMPTS = 4
RESUME_BACKOFF_S = 0.5
PREFETCH_DEPTH = 4  # MiB-sized chunks read ahead of the sender, per layer


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


def upload_workers(value: int | None = None, environ: dict[str, str] | None = None, *,
                   loopback: bool = False) -> int:
    """How many layers upload at once: ``value``, else ``LMI_BUILD_UPLOAD_WORKERS``, else from the
    core count: a remote registry (ECR) gets one per core, at least 2, at most 8 (the client's CPU is
    the limit, the network and the registry are not on our cores; docker push uploads 5 layers at
    once); a registry on this host (``loopback``) gets one per two cores, at least 1, since each
    upload keeps two cores busy, ours and the registry's (measured on 2 cores, 4 GiB in 4 shards into
    the local registry, back to back: 1 at a time 11.7 s, 2 at a time 16.0 s, docs/registry-assembly.md)."""
    if value is None:
        raw = (os.environ if environ is None else environ).get(WORKERS_ENV, "").strip()
        if raw:
            try:
                value = int(raw)
            except ValueError:
                value = 0
            if value < 1:
                raise BuilderError(f"{WORKERS_ENV}={raw!r}: expected a whole number of layers, at least 1",
                                   hint="unset it to upload as many layers at once as there are cores")
    if value is None:
        cores = os.cpu_count() or 2
        value = max(1, min(MAX_DEFAULT_WORKERS, cores // 2)) if loopback else min(MAX_DEFAULT_WORKERS, max(2, cores))
    if value < 1:
        raise BuilderError(f"upload workers {value}: expected at least 1")
    return value


class Stopped(Exception):
    """The build is stopping (Ctrl-C, or another layer failed): this upload gives up its session."""


class Prefetch:
    """Iterate ``source`` in a thread of its own, ``depth`` items ahead of the consumer.

    Why: a layer's bytes are read, hashed twice (diff_id and blob digest) and gzip-framed by the
    reader thread while the sender thread writes the previous chunks to the socket; hashlib, zlib's
    crc32, file reads and socket writes all release the GIL, so the two overlap on two cores.
    ``stop`` (shared by a build's uploads) makes both sides give up promptly."""

    _END = object()

    def __init__(self, source: Iterable[bytes], stop: threading.Event | None = None, depth: int = PREFETCH_DEPTH):
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = stop or threading.Event()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(iter(source),), daemon=True, name="layer-reader")
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not (self._closed.is_set() or self._stop.is_set()):
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, it: Iterator[bytes]) -> None:
        try:
            for item in it:
                if not self._put(item):
                    return
            self._put(self._END)
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(_Failure(exc))
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()  # in this thread, where the generator runs: closes the open source file

    def __iter__(self) -> Iterator[bytes]:
        while True:
            if self._stop.is_set():
                raise Stopped()
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is self._END:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item  # type: ignore[misc]

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=30)


@dataclass
class _Failure:
    exc: BaseException


def _skip(chunks: Iterable[bytes], n: int) -> Iterator[bytes]:
    """The stream without its first ``n`` bytes (those the registry already holds)."""
    for chunk in chunks:
        if n >= len(chunk):
            n -= len(chunk)
            continue
        yield chunk[n:] if n else chunk
        n = 0


@dataclass
class Transfer:
    sent: int = 0  # bytes handed to the connection over every attempt (a broken request counts whole)
    resumed: int = 0  # times the upload went on where the registry said it stood
    restarted: int = 0  # times it began again in a new session


def resumable_upload(target: RegistryClient, repo: str, open_stream: Callable[[], Iterable[bytes]],
                     digest: Callable[[], str], *, name: str = "blob", stop: threading.Event | None = None,
                     attempts: int = UPLOAD_ATTEMPTS, size: int | None = None) -> Transfer:
    """Upload one blob whose bytes ``open_stream()`` produces afresh each time it is called.

    A connection lost mid-upload (reset, registry restarted) is retried, bounded: the registry is
    asked where the session stands (``GET`` its ``Location``) and, when it answers with a ``Range``
    no longer than what was sent and the session's ``Range`` has been honest so far, the upload goes
    on from there (the stream is produced again from the start and the bytes the registry holds are
    hashed but not sent); otherwise the session is cancelled and this blob starts again in a new one.
    ECR's ``Range`` stops advancing (aws/containers-roadmap#2831), so there a blob restarts. Either
    way the final ``PUT ?digest=`` is the proof; a digest refused after a resume restarts the blob.
    ``digest`` is asked after a stream ended; ``size`` (the blob's length, when known beforehand) lets
    a streamed PATCH carry ``Content-Length``."""
    stop = stop or threading.Event()
    report = Transfer()
    state: UploadState | None = None
    interrupted = False
    verify_fresh = False  # a resumed upload whose digest was refused: once more from the start
    for attempt in range(1, attempts + 1):
        stream: Prefetch | None = None
        counting: tuple[UploadState, int] | None = None  # (session, its offset when this attempt began)
        try:
            if state is None:
                state = UploadState(target.start_upload(repo))
            elif interrupted or verify_fresh:
                have, where = (target.upload_status(state.location)
                               if state.watch.trusted and not verify_fresh else (None, state.location))
                if have is not None and 0 < have <= state.handed:
                    console.info(f"    {name}: resuming at {have:,} B (the registry holds them; "
                                 f"{state.handed - have:,} B of the interrupted request to send again)")
                    state.location, state.confirmed = where, have
                    report.resumed += 1
                else:
                    target.cancel_upload(state.location)
                    state = UploadState(target.start_upload(repo))
                    console.info(f"    {name}: the registry kept no usable part of the upload; starting it again")
                    report.restarted += 1
                interrupted = verify_fresh = False
            start_at = state.handed = state.confirmed
            counting = (state, start_at)
            stream = Prefetch(open_stream(), stop)
            body = _skip(stream, start_at)
            if target.part_size:
                _, last = target.upload_parts(state.location, body, target.part_size, state=state)
                state.handed += len(last)
                target.finish_upload(state.location, digest(), last)
            else:
                target.upload_stream(state.location, body, state=state,
                                     size=None if size is None else size - start_at)
                target.finish_upload(state.location, digest())
            return report
        except BuilderError as exc:
            transient = getattr(exc, "transient", False)
            refused_after_resume = report.resumed and "DIGEST_INVALID" in str(exc)
            if stop.is_set() or attempt == attempts or not (transient or refused_after_resume):
                if state is not None:
                    target.cancel_upload(state.location)
                raise
            console.warn(f"{name}: {exc}; retrying ({attempt} of {attempts - 1} retries)")
            interrupted, verify_fresh = bool(transient), bool(refused_after_resume)
            if stop.wait(RESUME_BACKOFF_S * 2 ** (attempt - 1)):
                if state is not None:
                    target.cancel_upload(state.location)
                raise Stopped() from None
        except BaseException:
            if state is not None:
                target.cancel_upload(state.location)  # Ctrl-C or a failed read: no half blob left open
            raise
        finally:
            if stream is not None:
                stream.close()
            if counting is not None:  # bytes put on the wire by this attempt, answered or not
                report.sent += counting[0].handed - counting[1]
    raise AssertionError("unreachable")
