"""``docker build`` (the legacy builder the SDK drives) of a streamed context, every event checked.

The context is a file object or a generator of tar chunks (no staging copy, nothing held whole in
memory); the image id is the last ``aux.ID``. ``made`` collects the ids of the images the build
created (steps that were neither FROM nor cached), also when it fails, so the caller can remove
what a failed build left behind.
"""

from __future__ import annotations

import io
import re
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from builder import console
from builder.diagnostics import BuilderError
from builder.engine.client import image_id as _image_id
from builder.engine.events import check_event
from builder.engine.progress import Progress

_STEP_IMAGE = re.compile(r"^ ---> ([0-9a-f]{12,64})$")  # the legacy builder's "this step's image" line
_TAIL_LINES = 15  # build output quoted under a failure
_PROGRESS_BYTES = 8 << 20  # contexts smaller than this go too fast for a bar


@dataclass
class BuildOutcome:
    image_id: str
    bytes_sent: int
    cached_steps: int
    steps: int
    log: list[str] = field(default_factory=list)


def tar_context(files: dict[str, bytes], *, mode: int = 0o644) -> io.BytesIO:
    """A deterministic build context (fixed mtimes/owners) from {path: bytes}; ``*.sh`` is executable."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            data = files[name]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o755 if name.endswith(".sh") else mode
            info.uid = info.gid = 0
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


class _Counter:
    """The context's chunks, counted (and shown on a bar) as the SDK sends them."""

    def __init__(self, chunks: Iterable[bytes], total: int, progress: Progress):
        self.chunks, self.total, self.sent, self.progress = chunks, total, 0, progress

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.sent += len(chunk)
            self.progress.update("context", description="sending context", completed=self.sent,
                                 total=self.total or None)
            yield chunk


def _chunks_of(context: io.IOBase | Iterable[bytes], size: int = 1 << 20) -> Iterator[bytes]:
    if isinstance(context, io.IOBase):  # a file object (tar_context): read in pieces
        while data := context.read(size):
            yield data
    else:
        yield from context


def build(client, context: io.IOBase | Iterable[bytes], *, what: str, stage: str, tag: str | None = None,
          labels: dict[str, str] | None = None, nocache: bool = False, network_mode: str | None = "host",
          total: int = 0, show_progress: bool = False, echo_steps: bool = False,
          made: list[str] | None = None) -> BuildOutcome:
    """Build ``context``; ``what`` names the image in messages (``"docker build of {what} failed: ..."``).

    ``labels``: extra labels (model images write theirs as Dockerfile LABEL lines, so they pass none);
    ``tag``: checked to name the built image afterwards; ``echo_steps``: ``Step`` lines to the console;
    ``total``: the context's size, for the bar (``show_progress``); ``BuildOutcome.log`` has every line."""
    progress = Progress(enabled=show_progress and total > _PROGRESS_BYTES, speed=True)
    body = _Counter(_chunks_of(context), total, progress)
    lines: list[str] = []
    built = None
    steps = cached = 0
    step_is_new = False  # the current step creates an image (not FROM, not "Using cache")
    doing = f"docker build of {what}"
    try:
        events = client.api.build(fileobj=body, custom_context=True, tag=tag, labels=labels, decode=True,
                                  rm=True, forcerm=True, network_mode=network_mode, nocache=nocache, pull=False)
        for event in events:
            check_event(event, doing, stage=stage, tail="".join(lines[-_TAIL_LINES:]))
            text = event.get("stream")
            if text:
                lines.append(text)
                line = text.rstrip("\n")
                if line.startswith("Step "):
                    steps += 1
                    step_is_new = " : FROM " not in line.upper()
                    if echo_steps:
                        console.info(f"  {line[:150]}" + (" …" if len(line) > 150 else ""))
                elif "Using cache" in line:
                    cached += 1
                    step_is_new = False
                elif step_is_new and made is not None and (m := _STEP_IMAGE.match(line)):
                    made.append(m.group(1))
                    step_is_new = False
            aux = event.get("aux")
            if isinstance(aux, dict) and aux.get("ID"):
                built = aux["ID"]
    except BuilderError:
        raise
    except Exception as exc:  # connection reset, engine errors raised by the SDK
        raise BuilderError(f"{doing} failed: {exc}", stage=stage) from None
    finally:
        progress.close()
    if tag is not None:
        tagged = _image_id(client, tag)
        if tagged is None or (built and tagged != built):
            raise BuilderError(f"{doing} ended without tagging an image as {tag}", stage=stage,
                               hint="".join(lines[-5:]).strip() or None)
        built = tagged
    if not built:
        raise BuilderError(f"{doing} ended without an image id", stage=stage,
                           hint="".join(lines[-5:]).strip() or None)
    return BuildOutcome(built, body.sent, cached, steps, lines)


def import_image(client, chunks: Iterable[bytes], ref: str, *, changes: list[str], stage: str) -> str:
    """``docker import`` of a streamed root filesystem tar as ``ref`` (``REPO:TAG``) with Dockerfile
    ``changes``; returns the image id. The SDK hands the whole answer back as text, one event a line,
    and each goes through ``check_event``."""
    import json

    repo, _, tag = ref.rpartition(":")
    try:
        answer = client.api.import_image(src=chunks, repository=repo, tag=tag, changes=changes, stream_src=True)
    except Exception as exc:  # connection reset, engine errors raised by the SDK
        raise BuilderError(f"docker import of {ref} failed: {exc}", stage=stage) from None
    for line in str(answer).splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            check_event(event, f"docker import of {ref}", stage=stage)
    ident = _image_id(client, ref)
    if ident is None:
        raise BuilderError(f"docker import did not produce {ref}: {answer}", stage=stage)
    return ident
