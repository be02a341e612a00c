"""Bake benchmark: cold build, config-only rebuild, no-change rebuild of a synthetic 1 GiB model.

``nox -s bench -- build`` (or ``python -m benchmarks build [--size-mib N] [--shards N]``). The model is
random bytes in ``model-0000X-of-0000N.safetensors`` shards plus ``config.json``, baked on the
``lmi-build/bookworm-rootfs`` base (made locally, pinned by image id). Each phase reports wall
seconds and the bytes sent to the engine; targets: config-only < 5% of cold and < 1 MiB sent.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

MiB = 1 << 20


def _model(root: Path, size_mib: int, shards: int) -> None:
    root.mkdir(parents=True)
    per = size_mib * MiB // shards
    for i in range(1, shards + 1):
        with open(root / f"model-{i:05d}-of-{shards:05d}.safetensors", "wb") as fh:
            left = per
            while left:
                n = min(left, 16 * MiB)
                fh.write(os.urandom(n))
                left -= n
    (root / "config.json").write_text('{"model_type": "llama", "hidden_size": 64}')


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="bench build")
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--work-dir", type=Path, default=None)
    args = ap.parse_args(argv)


    from builder.assembly import AssemblyRequest
    from builder.engine import docker_client
    from builder.image.bake import assemble
    from builder.lmi.resolve import resolve
    from builder.recipe.model import Recipe
    from builder.runtime.rootfs import ensure_rootfs_image

    client = docker_client("bench", timeout=900)
    base = client.images.get(ensure_rootfs_image(client).ref).id
    work = Path(tempfile.mkdtemp(prefix="bench-build-", dir=args.work_dir))
    name = f"bench-build-{uuid.uuid4().hex[:8]}"
    made: list[str] = []
    rows = []
    try:
        t0 = time.monotonic()
        _model(work / "model", args.size_mib, args.shards)
        gen_s = time.monotonic() - t0

        def bake(predict_timeout: int, phase: str) -> None:
            recipe = Recipe.model_validate({
                "name": name, "model": {"path": "model"}, "container": {"family": "dev-cpu", "version": "0.34.0"},
                "target": {"instance_type": "ml.m5.xlarge"},
                "serving": {"engine": "Python", "option": {"rolling_batch": "disable",
                                                           "predict_timeout": predict_timeout}}})
            start = time.monotonic()
            res = assemble(AssemblyRequest(resolved=resolve(recipe), model_dir=work / "model", base_image=base,
                                           cache_dir=work / "cache", docker=client, progress=False))
            seconds = time.monotonic() - start
            made.extend(t for t in res.tags if t not in made)
            if res.artifacts_ref and res.artifacts_ref not in made:
                made.insert(0, res.artifacts_ref)
            rows.append({"phase": phase, "seconds": round(seconds, 3), "bytes_sent": res.bytes_sent,
                         "artifacts_reused": res.artifacts_image_reused, "image_reused": res.reused,
                         "layers": len(res.layers), "image_id": res.image_id})

        bake(120, "cold")
        bake(121, "config-only (one serving option)")
        bake(121, "no change")
    finally:
        for ref in reversed(made):
            try:
                client.images.remove(ref)
            except Exception:
                pass
        shutil.rmtree(work, ignore_errors=True)

    cold = rows[0]["seconds"]
    print(f"model: {args.size_mib} MiB in {args.shards} shards (generated in {gen_s:.1f} s)")
    print(f"{'phase':36} {'seconds':>8} {'% cold':>7} {'bytes sent':>14}  reused")
    for r in rows:
        print(f"{r['phase']:36} {r['seconds']:8.2f} {100 * r['seconds'] / cold:6.1f}% {r['bytes_sent']:14,d}  "
              f"artifacts={r['artifacts_reused']} image={r['image_reused']}")
    cfg = rows[1]
    ok = cfg["seconds"] < 0.05 * cold and cfg["bytes_sent"] < MiB
    print(f"target (config-only < 5% of cold and < 1 MiB sent): {'met' if ok else 'NOT met'}")
    out = Path(__file__).parent / "results" / "build.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"size_mib": args.size_mib, "shards": args.shards, "rows": rows, "target_met": ok,
                               "command": "nox -s bench -- build"}, indent=2) + "\n")
    return 0 if ok else 1
