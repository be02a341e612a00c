"""S3 as the shared cache (builder/artifacts/remote.py) on moto's server mode over HTTP on 127.0.0.1.

``nox -s bench -- cache_remote``. Three runners (separate local cache folders, one bucket):

* compile: runner A compiles cold with the stand-in toolchain (tests/equipment/standin) and uploads the
  entry; runner B (empty cache, no GPU) gets it from S3 without compiling; runner B again: local hit.
* model: a 4 x 64 MiB model entry uploaded by A (blobs + manifest) and downloaded by B in parallel,
  through the same code the fetch stage uses (``ArtifactCache`` with a remote).

Writes benchmarks/results/cache_remote.json. Loopback figures: they show the protocol's overhead
(requests, hashing, the local atomic write), not a network's bandwidth.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STANDIN = ROOT / "tests" / "equipment" / "standin"


def _moto() -> tuple[subprocess.Popen, str]:
    from tests.support.registry_fixtures import MotoUnavailable, launch_moto_server

    try:
        return launch_moto_server()
    except MotoUnavailable as exc:
        raise SystemExit(str(exc)) from None


def _compile_figures(tmp: Path, uri: str) -> dict:
    from builder.artifacts.sources import fetch_model
    from builder.compile import compile_artifacts
    from builder.compile.models import Gpu, HostAccelerators
    from builder.lmi.resolve import resolve
    from builder.recipe.model import Recipe
    from tests.support.model_fixtures import make_tiny_model, recipe_data

    make_tiny_model(tmp / "tiny")
    recipe = Recipe.model_validate(recipe_data({"path": str(tmp / "tiny")}, family="tensorrt-llm", version="0.33.0",
                                               instance="ml.g5.12xlarge",
                                               compile={"enabled": True, "executor": "local"}))
    resolved = resolve(recipe)
    art = fetch_model(recipe, tmp, cache_dir=tmp / "a")
    image = "djl-inference@sha256:" + "a" * 64
    a10g = HostAccelerators(gpus=[Gpu(name="A10G", compute_capability="8.6", memory_bytes=24 << 30)] * 4)
    rows = {}
    for name, cache, host in (("cold compile (stand-in) + upload", "a", a10g),
                              ("hit from S3 (runner B)", "b", HostAccelerators()),
                              ("local hit (runner B again)", "b", HostAccelerators())):
        t0 = time.perf_counter()
        res = compile_artifacts(resolved, art, image, executor="local", cache_dir=tmp / cache, host=host,
                                cache_remote=uri)
        rows[name] = {"seconds": round(time.perf_counter() - t0, 3), "status": res.status, "origin": res.origin,
                      "tool_seconds": res.seconds if res.status == "compiled" else None,
                      **{k: v for k, v in res.remote.items() if k.startswith(("bytes", "objects"))}}
    return rows


def _model_figures(tmp: Path, uri: str, files: int = 4, mib: int = 64) -> dict:
    from builder.artifacts.cache import ArtifactCache, Manifest
    from builder.artifacts.models import FileEntry, content_digest
    from builder.artifacts.remote import RemoteCache, sha256_file

    a = ArtifactCache(tmp / "ma", remote=RemoteCache(uri))
    entries = []
    for i in range(files):
        p = tmp / f"model-{i:05d}.safetensors"
        with open(p, "wb") as fh:
            for _ in range(mib):
                fh.write(os.urandom(1 << 20))
        entries.append(FileEntry(name=p.name, size=p.stat().st_size, sha256=sha256_file(p)))
        a.put_blob(p, entries[-1].sha256, move=True)
    key = "hub:bench/model@" + "e" * 40
    m = Manifest(key=key, source="hub:bench/model", source_kind="hub", revision="e" * 40, files=entries,
                 digest=content_digest(entries), created=time.time())
    t0 = time.perf_counter()
    a.write_manifest(m)
    up = time.perf_counter() - t0
    b = ArtifactCache(tmp / "mb", remote=RemoteCache(uri))
    t1 = time.perf_counter()
    got = b.manifest(key)
    down = time.perf_counter() - t1
    assert got is not None and got.origin == "remote"
    total = sum(e.size for e in entries)
    return {"files": files, "bytes": total,
            "upload": {"seconds": round(up, 3), "MiB_per_s": round(total / up / (1 << 20), 1),
                       **a.remote.stats.as_dict()},
            "download": {"seconds": round(down, 3), "MiB_per_s": round(total / down / (1 << 20), 1),
                         **b.remote.stats.as_dict()}}


def main(argv: list[str]) -> int:
    argparse.ArgumentParser(prog="bench cache_remote", description=__doc__).parse_args(argv)  # --help, and no stray options
    sys.path.insert(0, str(ROOT))
    proc, url = _moto()
    env = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL_S3": url, "PYTHONPATH": str(STANDIN / "site"),
           "LMI_BUILD_PARTITION_DIR": str(STANDIN / "partition")}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        import boto3

        boto3.client("s3").create_bucket(Bucket="bench-cache")
        uri = "s3://bench-cache/fleet/"
        with tempfile.TemporaryDirectory() as tmp:
            compile_rows = _compile_figures(Path(tmp), uri)
            model = _model_figures(Path(tmp), uri)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    print(f"{'compile':<34} {'seconds':>8} {'origin':>7} {'bytes up':>9} {'bytes down':>11} {'objects':>8}")
    for name, r in compile_rows.items():
        print(f"{name:<34} {r['seconds']:>8.3f} {r['origin']:>7} {r['bytes_up']:>9} {r['bytes_down']:>11} "
              f"{r['objects_up'] + r['objects_down']:>8}")
    print(f"model entry {model['files']} x {model['bytes'] // model['files'] >> 20} MiB: "
          f"upload {model['upload']['seconds']:.2f} s ({model['upload']['MiB_per_s']} MiB/s), "
          f"download {model['download']['seconds']:.2f} s ({model['download']['MiB_per_s']} MiB/s)")
    out = ROOT / "benchmarks" / "results" / "cache_remote.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"compile": compile_rows, "model": model, "python": sys.version.split()[0],
                               "cpus": os.cpu_count()}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
