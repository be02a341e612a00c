"""Quickstart suite (issue 8 item 9): the README's first command, measured.

``python -m benchmarks quickstart`` runs, through ``nox -s build``:
1. end to end with the dev-cpu runtime cached but no model image (the quickstart's images are
   removed first; they are ours: tagged quickstart:* / lmi-build/artifacts:* and labelled managed),
2. a second build with nothing changed (target: under 3 s wall, no image rebuild),
3. a config-only change (one serving option) built from a temporary copy of the recipe.
Figures come from the build records: stage seconds, bytes sent, container start to /ping 200.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "recipes/examples/quickstart.yaml"
RESULTS = Path(__file__).parent / "results" / "quickstart.json"


def _nox_build(recipe: Path, report: Path, *extra: str) -> tuple[float, dict]:
    start = time.perf_counter()
    proc = subprocess.run(["nox", "-s", "build", "--", str(recipe), "--report", str(report), *extra],
                          cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"nox -s build failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return wall, json.loads(report.read_text())


def _stage(record: dict, name: str) -> dict:
    return next(s for s in record["stages"] if s["name"] == name)


def _remove_quickstart_images() -> None:
    """Remove the quickstart's model images and its artifacts image (ours: labelled managed), children first."""
    import docker

    from builder import labels as L
    from builder.engine import docker_client

    client = docker_client("bench")
    managed = client.images.list(filters={"label": [f"{L.MANAGED}=true"]})
    models = [i for i in managed if i.labels.get(L.RECIPE_NAME) == "quickstart" and i.labels.get(L.ROLE) == "model"]
    artifacts = [i for i in managed if i.labels.get(L.ROLE) == "artifacts"
                 and i.labels.get(L.MODEL_ID) == "quickstart/model"]
    for image in models + artifacts:
        try:
            client.images.remove(image.id, force=True)
        except docker.errors.ImageNotFound:
            pass


def main(argv: list[str]) -> int:
    argparse.ArgumentParser(prog="bench quickstart", description=__doc__).parse_args(argv)  # --help, and no stray options
    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="lmi-bench-qs-") as tmp:
        t = Path(tmp)
        # warm the nox session's venv first: its one-time creation is not the build's cost
        subprocess.run(["nox", "-s", "build", "--", "--help"], cwd=ROOT, capture_output=True, check=True)
        _remove_quickstart_images()
        wall, rec = _nox_build(RECIPE, t / "cold.json", "--force-smoke")
        smoke = _stage(rec, "smoke")
        rows.append(("nox -s build quickstart, runtime cached, no model image", wall,
                     f"bake {_stage(rec, 'bake')['seconds']:.1f} s, smoke {smoke['seconds']:.1f} s"))
        rows.append(("  container start -> /ping 200", smoke["details"]["metrics"]["time_to_ready_s"], ""))
        rows.append(("  smoke stage wall time", smoke["seconds"], ""))

        wall, rec = _nox_build(RECIPE, t / "again.json")
        rows.append(("nox -s build quickstart, nothing changed", wall,
                     f"bake {_stage(rec, 'bake')['status']}, smoke {_stage(rec, 'smoke')['status']}"))

        copy_dir = RECIPE.parent
        changed = copy_dir / ".bench-quickstart-changed.yaml"
        try:
            text = RECIPE.read_text().replace("model_loading_timeout: 60", "model_loading_timeout: 61")
            changed.write_text(text)
            wall, rec = _nox_build(changed, t / "config.json", "--force-smoke")
            bake = _stage(rec, "bake")
            rows.append(("nox -s build quickstart, one serving option changed", wall,
                         f"bake {bake['seconds']:.1f} s, {bake['details'].get('bytes_sent', 0)} bytes sent"))
        finally:
            changed.unlink(missing_ok=True)
            shutil.rmtree(t / "unused", ignore_errors=True)

    width = max(len(r[0]) for r in rows)
    print(f"{'operation'.ljust(width)}  seconds  note")
    for name, secs, note in rows:
        print(f"{name.ljust(width)}  {secs:7.2f}  {note}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps([{"operation": n, "seconds": round(s, 3), "note": x} for n, s, x in rows], indent=2))
    return 0
