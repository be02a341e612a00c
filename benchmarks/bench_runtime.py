"""Runtime suite: rootfs cold, dev-cpu runtime cold (cached rootfs), runtime cached, container start to /ping.

``python -m benchmarks runtime [--skip-rootfs-cold] [--starts N]``

Cold builds go to bench-only tags (``lmi-build/bench-*``) that are removed afterwards, so the shared
rootfs and runtime images other engineers' tests use are never removed or replaced.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "runtime.json"


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="bench runtime", description=__doc__)
    ap.add_argument("--starts", type=int, default=5, help="container starts to time (default 5)")
    ap.add_argument("--skip-rootfs-cold", action="store_true", help="skip the cold debootstrap + import row")
    args = ap.parse_args(argv)
    import requests

    from builder import engine
    from builder import labels as L
    from builder.examples.quickstart import write_example_model
    from builder.paths import REPO_DIR
    from builder.paths import cache_dir as _cache_dir
    from builder.runtime import devcpu, maven, rootfs

    starts = args.starts
    client = engine.docker_client("bench")
    rows: list[tuple[str, float, str]] = []

    if not args.skip_rootfs_cold:
        ref = "lmi-build/bench-rootfs:cold"
        labels = {L.MANAGED: "true", L.ROLE: "rootfs", f"{L.NS}.bench": "true"}
        secs, _ = _timed(lambda: rootfs._debootstrap_import(client, ref, labels, _cache_dir(None), rootfs.MIRROR))
        size = client.api.inspect_image(ref)["Size"] / 1e6
        client.api.remove_image(ref, noprune=False)
        rows.append(("rootfs cold (debootstrap + docker import)", secs, f"{size:.0f} MB image"))

    rootfs_img = rootfs.ensure_rootfs_image(client)
    jar = maven.cached_jar() or maven.fetch_jar()
    digest = devcpu.inputs_digest(rootfs_img.image_id, jar.sha256, maven.DJL_PYTHON_VERSION)
    bench_ref = "lmi-build/bench-dev-cpu:cold"
    secs, _ = _timed(lambda: devcpu.build_runtime_image(client, bench_ref, rootfs_img.ref, jar, digest,
                                                         maven.DJL_PYTHON_VERSION, nocache=True))
    client.api.remove_image(bench_ref)
    rows.append(("dev-cpu runtime cold, rootfs cached (docker build --no-cache)", secs, ""))

    devcpu.ensure_devcpu_runtime(client=client)
    cached = [_timed(lambda: devcpu.ensure_devcpu_runtime(client=client)) for _ in range(3)]
    assert all(not r.built for _, r in cached)
    rows.append(("dev-cpu runtime cached (second call)", statistics.median(s for s, _ in cached), "median of 3"))
    runtime = cached[0][1]

    from tests.support.docker_fixtures import free_port

    tmp = Path(tempfile.mkdtemp(prefix="bench-runtime-"))
    try:
        write_example_model(tmp)
        shutil.copy(REPO_DIR / "recipes/examples/quickstart/model.py", tmp / "model.py")
        tmp.chmod(0o755)
        times = []
        for _ in range(starts):
            port = free_port()
            t0 = time.perf_counter()
            c = client.containers.run(runtime.ref, detach=True, network_mode="host",
                                      environment={"SERVING_INFERENCE_ADDRESS": f"http://127.0.0.1:{port}"},
                                      volumes={str(tmp): {"bind": "/opt/ml/model", "mode": "ro"}},
                                      labels={L.MANAGED: "true", f"{L.NS}.bench": "true"})
            try:
                while True:
                    try:
                        if requests.get(f"http://127.0.0.1:{port}/ping", timeout=2).status_code == 200:
                            break
                    except requests.ConnectionError:
                        pass
                    if time.perf_counter() - t0 > 60:
                        raise RuntimeError("container did not become ready in 60 s")
                    time.sleep(0.02)
                times.append(time.perf_counter() - t0)
            finally:
                engine.wait_removed(client, c.id)
        rows.append(("container start -> /ping 200 (quickstart)", statistics.median(times),
                     f"median of {starts}, min {min(times):.2f} max {max(times):.2f}"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"{'operation':<64} {'seconds':>8}  note")
    for name, secs, note in rows:
        print(f"{name:<64} {secs:8.2f}  {note}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps([{"operation": n, "seconds": round(s, 3), "note": note} for n, s, note in rows],
                                  indent=2) + "\n")
    return 0
