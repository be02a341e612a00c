"""Upload a layout (``builder.publish.s3_layout``) under an S3 prefix: idempotent, proportional to
the change, multipart and parallel for large files, safe to re-run after an interruption.

- **Idempotent.** Each object carries the sha256 of its bytes in ``x-amz-meta-sha256``. Before
  sending, the prefix is listed and every same-sized key is HEADed: same sha256, not sent again. A
  config-only change therefore sends one small object (``serving.properties``).
- **Order.** Model and compiled files first, ``serving.properties`` and the handler files only after
  every data object is complete, so a prefix never names files it does not hold yet.
- **Multipart.** boto3's transfer manager: files from ``MULTIPART_THRESHOLD`` up go in
  ``PART_SIZE`` parts, ``MAX_CONCURRENCY`` requests at a time across all files and parts.
  64 MiB parts: S3 allows 10,000 parts, so 625 GiB per object, far above any weights shard; a
  retried part (botocore's own retries) costs at most 64 MiB again.
- **Interruption.** An error or Ctrl-C stops the transfer manager, which aborts the multipart
  uploads it started; a re-run skips every complete object and starts the interrupted one again
  (abort + restart per object, not ListParts resume: a part list cannot say which content it was
  for, and S3 PUTs are atomic, so no reader ever sees half an object). A process killed outright
  leaves its multipart upload incomplete: the next run reports it, ``--s3-prune`` aborts those
  initiated before the run started (a bucket lifecycle rule ``AbortIncompleteMultipartUpload`` is
  the durable answer).
- **Stale objects** (under the prefix, not in the layout) are reported, deleted only with prune.
- **Configuration.** ``builder.registry.deadlines.s3_client()``, the one S3 client: the standard chain (env,
  profile, SSO, instance role), ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``; timeouts and total attempts
  are bounded (``aws_config``: ``LMI_BUILD_AWS_TIMEOUT_S``, ``LMI_BUILD_AWS_ATTEMPTS``),
  which take precedence over the retry settings of ``~/.aws/config``.
  Credentials are never read here, never printed, never recorded.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, Field

from builder import console
from builder.diagnostics import BuilderError
from builder.publish.s3_layout import LayoutFile

STAGE = "publish"
META_SHA256 = "sha256"  # x-amz-meta-sha256
MULTIPART_THRESHOLD = 64 << 20
PART_SIZE = 64 << 20
MAX_CONCURRENCY = 8
URI_RE = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/((?:[^\s]*/)?)$")


class UploadSettings(BaseModel):
    multipart_threshold: int = Field(MULTIPART_THRESHOLD, ge=5 << 20)  # S3's minimum part size is 5 MiB
    part_size: int = Field(PART_SIZE, ge=5 << 20)
    max_concurrency: int = Field(MAX_CONCURRENCY, ge=1, le=64)


class ObjectOutcome(BaseModel):
    key: str
    size: int
    sha256: str
    action: str  # "uploaded" | "unchanged"
    multipart: bool = False


class UploadReport(BaseModel):
    uri: str
    bucket: str
    prefix: str
    objects: list[ObjectOutcome] = Field(default_factory=list)
    uploaded: int = 0
    unchanged: int = 0
    bytes_uploaded: int = 0
    bytes_total: int = 0
    stale: list[str] = Field(default_factory=list)
    pruned: list[str] = Field(default_factory=list)
    incomplete_multipart_uploads: list[dict[str, str]] = Field(default_factory=list)
    aborted_multipart_uploads: list[dict[str, str]] = Field(default_factory=list)
    seconds: float = 0.0


def parse_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/prefix/`` -> (bucket, "prefix/"); a missing trailing '/' is added (S3Prefix
    matches by string prefix: without it, ``models/a`` would also take ``models/ab/...``)."""
    text = uri if uri.endswith("/") else uri + "/"
    m = URI_RE.match(text)
    if not m or "//" in m.group(2):
        raise ValueError(f"{uri!r} is not an S3 prefix: write s3://bucket/prefix/ (lower-case bucket name)")
    return m.group(1), m.group(2)


def upload_layout(files: list[LayoutFile], uri: str, *, s3: Any = None, prune: bool = False,
                  settings: UploadSettings | None = None,
                  on_progress: Callable[[str], None] | None = None) -> UploadReport:
    from botocore.exceptions import BotoCoreError, ClientError

    from builder.registry.deadlines import s3_client

    try:
        bucket, prefix = parse_uri(uri)
    except ValueError as exc:
        raise BuilderError(f"publish.s3: {exc}", stage=STAGE) from None
    s3 = s3 or s3_client()
    settings = settings or UploadSettings()
    started_at = datetime.now(timezone.utc)
    start = time.monotonic()
    report = UploadReport(uri=f"s3://{bucket}/{prefix}", bucket=bucket, prefix=prefix)
    try:
        existing = _list(s3, bucket, prefix)
        candidates = [f for f in files if existing.get(prefix + f.name) == f.size]
        with ThreadPoolExecutor(max_workers=settings.max_concurrency) as pool:  # HEADs in parallel too
            same = dict(zip((f.name for f in candidates),
                            pool.map(lambda f: _same(s3, bucket, prefix + f.name, f), candidates), strict=True))
        todo: list[LayoutFile] = []
        for f in files:
            key = prefix + f.name
            report.bytes_total += f.size
            if same.get(f.name):
                report.objects.append(ObjectOutcome(key=key, size=f.size, sha256=f.sha256, action="unchanged"))
                report.unchanged += 1
            else:
                todo.append(f)
        # data first, configuration after every data object is complete
        for group in ([f for f in todo if f.kind != "config"], [f for f in todo if f.kind == "config"]):
            if group:
                _send(s3, bucket, prefix, group, settings, report, on_progress)
        names = {prefix + f.name for f in files}
        report.stale = sorted(k for k in existing if k not in names)
        report.incomplete_multipart_uploads = _incomplete(s3, bucket, prefix)
        if prune:
            _prune(s3, bucket, report, started_at)
    except (ClientError, BotoCoreError) as exc:
        raise BuilderError(f"s3://{bucket}/{prefix}: {_describe(exc)}", stage=STAGE,
                           hint="run again: complete objects are skipped, an interrupted one is sent again; "
                                "check the AWS credentials/region/endpoint of this shell") from None
    report.seconds = round(time.monotonic() - start, 3)
    return report


def _describe(exc: Exception) -> str:
    """botocore's message without request details (it names the operation and the error code)."""
    from builder.registry.deadlines import AwsBounds, is_aws_timeout

    text = str(exc).splitlines()[0][:300]
    if is_aws_timeout(exc):  # name the bound that gave up, and how to raise it
        text += f" (no answer within {AwsBounds.from_env().describe()})"
    return text


def _list(s3, bucket: str, prefix: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = int(obj["Size"])
    return out


def _same(s3, bucket: str, key: str, f: LayoutFile) -> bool:
    from botocore.exceptions import ClientError

    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False  # deleted between the listing and now
        raise
    return (head.get("Metadata") or {}).get(META_SHA256) == f.sha256 and int(head["ContentLength"]) == f.size


def _send(s3, bucket: str, prefix: str, group: list[LayoutFile], settings: UploadSettings, report: UploadReport,
          on_progress: Callable[[str], None] | None) -> None:
    from boto3.s3.transfer import TransferConfig, create_transfer_manager

    config = TransferConfig(multipart_threshold=settings.multipart_threshold,
                            multipart_chunksize=settings.part_size, max_concurrency=settings.max_concurrency,
                            use_threads=True)
    opened = []
    pending = []
    with create_transfer_manager(s3, config) as manager:  # leaving by an exception cancels and aborts
        try:
            for f in group:
                fh = f.open()
                opened.append(fh)
                key = prefix + f.name
                pending.append((manager.upload(fh, bucket, key, extra_args={"Metadata": {META_SHA256: f.sha256}}),
                                f, key))
            for future, f, key in pending:
                future.result()
                report.objects.append(ObjectOutcome(key=key, size=f.size, sha256=f.sha256, action="uploaded",
                                                    multipart=f.size >= settings.multipart_threshold))
                report.uploaded += 1
                report.bytes_uploaded += f.size
                if on_progress:
                    on_progress(f"uploaded {key} ({f.size} bytes)")
        finally:
            if any(not fut.done() for fut, _, _ in pending):
                manager.shutdown(cancel=True)  # stop the others before their files are closed
            for fh in opened:
                fh.close()


def _incomplete(s3, bucket: str, prefix: str) -> list[dict[str, str]]:
    out = []
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
        for up in page.get("Uploads", []):
            initiated = up.get("Initiated")
            out.append({"key": up["Key"], "upload_id": up["UploadId"],
                        "initiated": initiated.isoformat() if hasattr(initiated, "isoformat") else str(initiated)})
    return out


def _prune(s3, bucket: str, report: UploadReport, started_at: datetime) -> None:
    for i in range(0, len(report.stale), 1000):  # DeleteObjects takes at most 1000 keys
        batch = report.stale[i:i + 1000]
        answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
        failed = {e["Key"] for e in answer.get("Errors", [])}
        report.pruned += [k for k in batch if k not in failed]
    keep = []
    for up in report.incomplete_multipart_uploads:
        # only uploads older than this run: a concurrent publisher's upload in progress is left alone
        if datetime.fromisoformat(up["initiated"]) < started_at:
            s3.abort_multipart_upload(Bucket=bucket, Key=up["key"], UploadId=up["upload_id"])
            report.aborted_multipart_uploads.append(up)
        else:
            keep.append(up)
    report.incomplete_multipart_uploads = keep


def report_lines(report: UploadReport) -> list[str]:
    """Human summary for stderr."""
    lines = [f"{report.uri}: {report.uploaded} uploaded ({report.bytes_uploaded} bytes), "
             f"{report.unchanged} unchanged, {report.bytes_total} bytes in {len(report.objects)} objects "
             f"({report.seconds:.2f} s)"]
    if report.stale:
        what = "deleted (--s3-prune)" if report.pruned else "left in place (--s3-prune deletes them)"
        lines.append(f"{len(report.stale)} stale object(s) not in this layout, {what}: "
                     + ", ".join(report.stale[:5]) + (" ..." if len(report.stale) > 5 else ""))
    if report.incomplete_multipart_uploads:
        lines.append(f"{len(report.incomplete_multipart_uploads)} incomplete multipart upload(s) under the prefix "
                     "(an interrupted publisher's; --s3-prune aborts those older than this run)")
    if report.aborted_multipart_uploads:
        lines.append(f"aborted {len(report.aborted_multipart_uploads)} incomplete multipart upload(s)")
    return lines


def log_report(report: UploadReport) -> None:
    for i, line in enumerate(report_lines(report)):
        (console.info if i == 0 else console.warn)(line)
