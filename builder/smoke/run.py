"""``smoke_test``: start a built image the way an LMI endpoint would, wait for readiness, send
generation requests, judge, record, clean up. The pipeline and ``lmi-build smoke`` both call it."""

from __future__ import annotations

import time
from pathlib import Path

from builder import console, ledger
from builder.smoke.checks import run_checks
from builder.smoke.container import (
    ManagedContainer,
    NoAcceleratorError,
    free_port,
    interruptible,
    new_run_id,
    plan_devices,
)
from builder.smoke.http_deadline import Deadline
from builder.smoke.image_info import ImageInfo, inspect_image
from builder.smoke.memory import peak_memory
from builder.smoke.models import AcceleratorsMode, Check, SmokeMode, SmokeResult, SmokeSettings
from builder.smoke.readiness import PingAnswer, http_probe, wait_ready

STAGE = "smoke"
LOG_TAIL = 100


def smoke_test(image: str, *, mode: SmokeMode = "auto", accelerators: AcceleratorsMode = "auto",
               log_dir: Path | None = None, docker_client=None, port: int | None = None,
               overrides: SmokeSettings | None = None, cache_dir: str | Path | None = None,
               record: bool = True, info: ImageInfo | None = None) -> SmokeResult:
    """Smoke-test ``image`` (tag or id). Settings, target and family come from its labels (one reader,
    builder.smoke.image_info), or from ``info`` when the caller made the image (the build's smoke stage).

    ``mode``: ``never`` skips; ``auto`` skips (never passes) when the target's accelerators are
    not available here; ``always`` fails then. The outcome goes to the smoke ledger by image id.
    """
    started = time.monotonic()
    client = docker_client or _default_client()
    info = info or inspect_image(client, image)  # the build passes what it made (image_info.describe)
    for w in info.warnings:
        console.warn(w)
    settings = info.settings.merged(overrides)
    result = SmokeResult(status="skipped", image=image, image_id=info.image_id, run_id=new_run_id())
    try:
        if mode == "never":
            result.reason = "--smoke never"
        elif not settings.enabled and mode == "auto":
            result.reason = "the recipe sets smoke.enabled: false (--smoke always runs it anyway)"
        else:
            _run(client, info, settings, result, accelerators=accelerators, port=port, log_dir=log_dir,
                 mode=mode)
    finally:
        result.seconds = round(time.monotonic() - started, 3)
    if record:
        _record(result, cache_dir)
    _report(result)
    return result


def _default_client():
    from builder.engine import docker_client

    return docker_client(STAGE)


def _run(client, info: ImageInfo, settings: SmokeSettings, result: SmokeResult, *, accelerators: str,
         port: int | None, log_dir: Path | None, mode: str) -> None:
    if info.target_kind is None and accelerators == "auto":
        console.warn(f"{info.ref} does not say its target (no dev.lmi-builder.recipe label): running it "
                     "without accelerators")
    try:
        plan = plan_devices(info.target_kind, accelerators, info.devices)
    except NoAcceleratorError as exc:
        _no_accelerator(result, exc, mode)
        return
    result.accelerators = plan.kind
    result.port = port or free_port()
    deadline = settings.readiness_deadline_s(info.family)
    box = ManagedContainer(client, info.image_id, run_id=result.run_id, role="smoke", port=result.port,
                           env=settings.env, shm_size=settings.shm_size, plan=plan)
    with interruptible():
        try:
            try:
                box.start()
            except NoAcceleratorError as exc:
                _no_accelerator(result, exc, mode)
                return
            console.info(f"container {box.name} on {box.url} ({plan.kind if plan.kind != 'none' else 'no'} "
                         f"accelerators); waiting up to {deadline:g} s for /ping")
            limit = Deadline(deadline, settings.readiness_deadline_label(info.family))
            ready = wait_ready(http_probe(box.url, deadline=limit), box.state, limit, on_wait=_waiting_printer())
            result.checks.append(Check(name="ready", ok=ready.ok, detail=ready.detail))
            if ready.ok:
                result.metrics.time_to_ready_s = round(ready.seconds, 3)
                result.checks += run_checks(box.url, settings, result.metrics)
                running, code, status = box.state()
                if not running:  # answered, then died: not a server an endpoint can use
                    result.checks.append(Check(name="alive", ok=False,
                                               detail=f"the container {status} with exit code {code} during the checks"))
            if box.container is not None:
                result.metrics.peak_memory_bytes, result.metrics.peak_memory_source = \
                    peak_memory(client, box.container.id)
            failed = [c for c in result.checks if not c.ok]
            result.status = "failed" if failed else "passed"
            result.reason = f"{failed[0].name}: {failed[0].detail}" if failed else \
                f"{len(result.checks)} checks passed"
            log = box.logs()
            if log_dir is not None:
                result.log_path = str(_save_log(Path(log_dir), result.run_id, log))
            if failed:
                _print_tail(log, result.log_path)
        finally:
            box.remove()


def _no_accelerator(result: SmokeResult, exc: NoAcceleratorError, mode: str) -> None:
    result.status = "failed" if mode == "always" else "skipped"
    result.reason = str(exc) + ("" if mode == "always" else " (--smoke auto: SKIPPED, not passed)")
    result.checks.append(Check(name="accelerators", ok=False, detail=str(exc)))


def _waiting_printer():
    last = [0.0]

    def on_wait(elapsed: float, answer: PingAnswer) -> None:
        if elapsed - last[0] >= 15:  # a line every 15 s, like upstream's poll interval (§15)
            last[0] = elapsed
            said = f"/ping {answer.status}" if answer.status else answer.error
            console.info(f"  still loading after {elapsed:.0f} s ({said})")

    return on_wait


def _save_log(log_dir: Path, run_id: str, text: str) -> Path:
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / f"smoke-{run_id}.log"
    path.write_text(text, encoding="utf-8")
    return path


def _print_tail(log: str, log_path: str | None) -> None:
    lines = log.splitlines()
    head = f"last {min(len(lines), LOG_TAIL)} of {len(lines)} container log lines"
    console.info(f"----- {head}" + (f" (full log: {log_path})" if log_path else "") + " -----")
    console.info("\n".join(lines[-LOG_TAIL:]) if lines else "(the container wrote nothing)")
    console.info("-----")


def _record(result: SmokeResult, cache_dir: str | Path | None) -> None:
    """A skip is no evidence against an image: it never overwrites an earlier pass; --smoke never
    records nothing (publish then refuses an image that never passed)."""
    if result.status == "skipped":
        previous = ledger.lookup(result.image_id, cache_dir)
        if result.reason == "--smoke never" or (previous is not None and previous.status == "passed"):
            return
    ledger.record(ledger.SmokeOutcome(image_id=result.image_id, status=result.status, reason=result.reason[:2000],
                                      accelerators=result.accelerators), cache_dir)


def _report(result: SmokeResult) -> None:
    for c in result.checks:
        mark = "ok  " if c.ok else "FAIL"
        console.info(f"  [{mark}] {c.name}: {c.detail}")
    m = result.metrics
    figures = []
    if m.time_to_ready_s is not None:
        figures.append(f"ready {m.time_to_ready_s:.1f} s")
    if m.first_request_latency_s is not None:
        figures.append(f"first request {m.first_request_latency_s * 1000:.0f} ms")
    if m.stream_tokens_per_s is not None:
        figures.append(f"stream {m.stream_tokens_per_s:.1f} tok/s")
    if m.peak_memory_bytes:
        figures.append(f"peak memory {m.peak_memory_bytes / 2**20:.0f} MiB")
    tail = f" ({', '.join(figures)})" if figures else ""
    text = f"smoke {result.status.upper()}: {result.reason}{tail}"
    if result.status == "passed":
        console.info(text)
    elif result.status == "skipped":
        console.warn(text)
    else:
        console.error(text)
