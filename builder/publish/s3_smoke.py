"""Smoke-test the S3 shape: what SageMaker does with an uncompressed ``S3Prefix`` model, here.

The prefix's objects are downloaded to a temporary folder (each checked against its
``x-amz-meta-sha256``) and bind-mounted read-only at ``/opt/ml/model`` of the stock-image stand-in
(the dev-cpu runtime), which starts with the deployment's ``Environment`` and nothing baked. Then the
smoke stage's own readiness wait and generation checks run against it (``builder.smoke`` public
functions). The outcome is not written to the smoke ledger: that is keyed by image id, and the
stand-in image is not what was published.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from builder import console
from builder import labels as L
from builder.diagnostics import BuilderError
from builder.publish.s3_artifacts import META_SHA256, parse_uri

STAGE = "smoke"
MODEL_DIR = "/opt/ml/model"


def download_prefix(uri: str, dest: Path, *, s3: Any = None) -> list[str]:
    """Every object under ``uri`` into ``dest`` (world-readable: the container's user reads it)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from builder.registry.deadlines import s3_client

    bucket, prefix = parse_uri(uri)
    s3 = s3 or s3_client()
    names = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                name = obj["Key"][len(prefix):]
                if not name or name.endswith("/") or ".." in name.split("/"):
                    continue
                target = dest / name
                target.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, obj["Key"], str(target))
                want = (s3.head_object(Bucket=bucket, Key=obj["Key"]).get("Metadata") or {}).get(META_SHA256)
                if want and _sha256(target) != want:
                    raise BuilderError(f"s3://{bucket}/{obj['Key']}: content does not match its x-amz-meta-sha256",
                                       stage=STAGE, hint="publish again: the object is replaced")
                target.chmod(0o644)
                names.append(name)
    except (ClientError, BotoCoreError) as exc:
        raise BuilderError(f"s3://{bucket}/{prefix}: cannot download: {str(exc).splitlines()[0][:300]}",
                           stage=STAGE) from None
    for dirpath, _dirs, _files in os.walk(dest):
        os.chmod(dirpath, 0o755)
    if not names:
        raise BuilderError(f"s3://{bucket}/{prefix}: no objects under this prefix", stage=STAGE)
    return names


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(8 << 20):
            h.update(chunk)
    return h.hexdigest()


def smoke_prefix(uri: str, stand_in: str, resolved_json: dict[str, Any], *, env: dict[str, str] | None = None,
                 docker_client: Any = None, s3: Any = None, log_dir: Path | None = None,
                 tmp_root: Path | None = None):
    """Download ``uri``, start ``stand_in`` with it at /opt/ml/model, run the smoke checks; a
    ``SmokeResult`` (status passed/failed). ``resolved_json``: ``Resolved.to_json()``."""
    from builder.smoke import Check, SmokeResult
    from builder.smoke.checks import run_checks
    from builder.smoke.container import ManagedContainer, free_port, interruptible, new_run_id, plan_devices
    from builder.smoke.http_deadline import Deadline
    from builder.smoke.image_info import parse_labels
    from builder.smoke.readiness import http_probe, wait_ready

    started = time.monotonic()
    recipe = resolved_json.get("recipe") or {}
    info = parse_labels(stand_in, stand_in, {L.SMOKE: json.dumps(recipe.get("smoke") or {}),
                                             L.RECIPE_JSON: json.dumps(resolved_json),
                                             L.LMI_FAMILY: (resolved_json.get("container") or {}).get("family", "")})
    settings = info.settings
    result = SmokeResult(status="failed", image=f"{stand_in} + {uri}", image_id=stand_in, run_id=new_run_id())
    if docker_client is None:
        from builder.engine import docker_client as make

        docker_client = make(STAGE)
    tmp = Path(tempfile.mkdtemp(prefix="lmi-s3-shape-", dir=tmp_root))
    try:
        os.chmod(tmp, 0o755)
        files = download_prefix(uri, tmp, s3=s3)
        console.info(f"downloaded {len(files)} objects from {uri}; starting {stand_in} with them at {MODEL_DIR}")
        plan = plan_devices(info.target_kind, "auto" if info.target_kind not in (None, "cpu") else "none",
                            info.devices)
        result.accelerators = plan.kind
        result.port = free_port()
        box = ManagedContainer(docker_client, stand_in, run_id=result.run_id, role="smoke", port=result.port,
                               env={**(recipe.get("env") or {}), **(env or {}), **settings.env},
                               shm_size=settings.shm_size, plan=plan,
                               volumes={str(tmp): {"bind": MODEL_DIR, "mode": "ro"}})
        with interruptible():
            try:
                box.start()
                deadline = settings.readiness_deadline_s(info.family)
                limit = Deadline(deadline, settings.readiness_deadline_label(info.family))
                ready = wait_ready(http_probe(box.url, deadline=limit), box.state, limit)
                result.checks.append(Check(name="ready", ok=ready.ok, detail=ready.detail))
                if ready.ok:
                    result.metrics.time_to_ready_s = round(ready.seconds, 3)
                    result.checks += run_checks(box.url, settings, result.metrics)
                failed = [c for c in result.checks if not c.ok]
                result.status = "failed" if failed else "passed"
                result.reason = f"{failed[0].name}: {failed[0].detail}" if failed else \
                    f"{len(result.checks)} checks passed on the S3 prefix mounted at {MODEL_DIR}"
                if log_dir is not None:
                    Path(log_dir).mkdir(parents=True, exist_ok=True)
                    path = Path(log_dir) / f"smoke-s3-{result.run_id}.log"
                    path.write_text(box.logs(), encoding="utf-8")
                    result.log_path = str(path)
            finally:
                box.remove()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        result.seconds = round(time.monotonic() - started, 3)
    (console.info if result.status == "passed" else console.error)(f"S3-shape smoke {result.status.upper()}: "
                                                                    f"{result.reason}")
    return result
