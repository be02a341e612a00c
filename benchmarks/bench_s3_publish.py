"""S3 artifacts publish: a cold publish of a model of ``--mib`` MiB to moto's server (HTTP on
127.0.0.1), then a no-change re-publish and a config-only re-publish of the same prefix.

``nox -s bench -- s3_publish [--mib=1024]``

The model is two random safetensors-sized files (``--mib`` in all) plus the quickstart's small files
and handler; the layout, upload settings (64 MiB parts, 8 concurrent requests) and client are what
``lmi-build build --s3`` uses. Write requests are counted on the client (PutObject, multipart calls).
moto keeps objects in memory and computes no real S3 durability: the cold figure is an upper bound
on what this machine's CPU and loopback allow, not a figure for AWS.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "s3_publish.json"
WRITES = ("PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload")


def _moto() -> tuple[subprocess.Popen, str]:
    from tests.support.registry_fixtures import MotoUnavailable, launch_moto_server

    try:
        return launch_moto_server()
    except MotoUnavailable as exc:
        raise SystemExit(str(exc)) from None


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="bench s3_publish")
    ap.add_argument("--mib", type=int, default=1024)
    args = ap.parse_args(argv)
    proc, url = _moto()
    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL_S3": url})
    os.environ.pop("AWS_PROFILE", None)
    try:
        return _run(args.mib)
    finally:
        proc.terminate()
        proc.wait(10)


def _run(mib: int) -> int:
    from builder.lmi.resolve import resolve
    from builder.paths import REPO_DIR
    from builder.publish.s3_publish import publish_build
    from builder.recipe import load_recipe
    from builder.registry.deadlines import s3_client

    loaded = load_recipe(REPO_DIR / "recipes/examples/quickstart.yaml")
    base = loaded.base_dir
    counts: dict[str, int] = {}

    def count(model, **_kw):
        counts[model.name] = counts.get(model.name, 0) + 1

    s3 = s3_client()
    s3.meta.events.register("before-call.s3.*", count)
    s3.create_bucket(Bucket="bench")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-s3-") as tmp:
        model = Path(tmp) / "model"
        shutil.copytree(base / "quickstart/model", model)
        for i in range(2):
            with open(model / f"model-0000{i + 1}-of-00002.safetensors", "wb") as fh:
                for _ in range(mib // 2):
                    fh.write(os.urandom(1 << 20))
        for label, option in (("cold publish", {}), ("no-change re-publish", {}),
                              ("config-only re-publish", {"max_new_tokens_hint": 7})):
            recipe = loaded.recipe.model_copy(update={"serving": loaded.recipe.serving.model_copy(
                update={"option": {**loaded.recipe.serving.option, **option}})})
            counts.clear()
            start = time.monotonic()
            pub = publish_build(resolve(recipe), "s3://bench/model/", model_dir=model, compiled_dir=None,
                                extra_files={"model.py": base / "quickstart/model.py"}, s3=s3)
            wall = time.monotonic() - start
            rows.append({"case": label, "seconds": round(wall, 2), "uploaded_objects": pub.upload.uploaded,
                         "bytes_uploaded": pub.upload.bytes_uploaded, "bytes_total": pub.upload.bytes_total,
                         "write_requests": sum(counts.get(k, 0) for k in WRITES), "requests": sum(counts.values())})
    print(f"{'case':<24} {'seconds':>8} {'objects sent':>12} {'MiB sent':>9} {'write reqs':>10} {'all reqs':>8}")
    for r in rows:
        print(f"{r['case']:<24} {r['seconds']:>8.2f} {r['uploaded_objects']:>12} "
              f"{r['bytes_uploaded'] / 2**20:>9.1f} {r['write_requests']:>10} {r['requests']:>8}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"mib": mib, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
