"""The docker build call: the context streamed to the engine, every event checked.

The SDK only drives the legacy builder and reports failures in-band (containers-and-registries.md
§2.2): each chunk is checked for ``error``/``errorDetail``, the image id is the last ``aux.ID``.
The context is a generator of tar chunks (no staging copy, nothing held whole in memory).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from builder import console
from builder.diagnostics import BuilderError

STAGE = "bake"
_STEP_IMAGE = re.compile(r"^ ---> ([0-9a-f]{12,64})$")  # the legacy builder's "this step's image" line


@dataclass
class BuildOutcome:
    image_id: str
    bytes_sent: int
    cached_steps: int
    steps: int
    log: list[str] = field(default_factory=list)


class _Counter:
    def __init__(self, chunks: Iterable[bytes], total: int, progress):
        self.chunks, self.total, self.sent, self.progress = chunks, total, 0, progress
        self.task = progress.add_task("sending context", total=total or None) if progress else None

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.sent += len(chunk)
            if self.progress is not None:
                self.progress.update(self.task, completed=self.sent)
            yield chunk


def build(client, chunks: Iterable[bytes], *, total: int, tag: str | None, labels: dict[str, str],
          nocache: bool, what: str, show_progress: bool = True, made: list[str] | None = None) -> BuildOutcome:
    """``made`` collects the ids of the images this build created (steps that were neither FROM nor
    cached), also when it fails, so the caller can remove what a failed bake left behind."""
    progress = None
    if show_progress and total > (8 << 20) and console.console().is_terminal:
        from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

        progress = Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                            TransferSpeedColumn(), console=console.console(), transient=True)
        progress.start()
    body = _Counter(chunks, total, progress)
    log: list[str] = []
    image_id = None
    steps = cached = 0
    step_is_new = False  # the current step creates an image (not FROM, not "Using cache")
    try:
        events = client.api.build(fileobj=body, custom_context=True, tag=tag, labels=labels, decode=True,
                                  rm=True, forcerm=True, network_mode="host", nocache=nocache, pull=False)
        for event in events:
            if "error" in event or "errorDetail" in event:
                detail = (event.get("errorDetail") or {}).get("message") or event.get("error")
                tail = "".join(log[-12:]).rstrip()
                raise BuilderError(f"docker build of the {what} failed: {detail}" + (f"\n{tail}" if tail else ""),
                                   stage=STAGE)
            text = event.get("stream")
            if text:
                log.append(text)
                line = text.rstrip("\n")
                if line.startswith("Step "):
                    steps += 1
                    step_is_new = " : FROM " not in line.upper()
                    console.info(f"  {line[:150]}" + (" …" if len(line) > 150 else ""))
                elif "Using cache" in line:
                    cached += 1
                    step_is_new = False
                elif step_is_new and made is not None and (m := _STEP_IMAGE.match(line)):
                    made.append(m.group(1))
                    step_is_new = False
            aux = event.get("aux")
            if isinstance(aux, dict) and aux.get("ID"):
                image_id = aux["ID"]
    except BuilderError:
        raise
    except Exception as exc:  # connection reset, engine errors raised by the SDK
        raise BuilderError(f"docker build of the {what} failed: {exc}", stage=STAGE) from None
    finally:
        if progress is not None:
            progress.stop()
    if not image_id:
        raise BuilderError(f"docker build of the {what} ended without an image id", stage=STAGE,
                           hint="".join(log[-5:]).strip() or None)
    return BuildOutcome(image_id, body.sent, cached, steps, log)
