"""Validate 1,000 recipes (copies of the examples, with varied option values) in one process.

``nox -s bench -- validate``; target: under 3 s on 2 cores. Writes benchmarks/results/validate.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
N = 1000


def make_corpus(dest: Path, n: int = N) -> list[Path]:
    src = ROOT / "recipes" / "examples"
    # the model folders and handlers the local examples reference (quickstart's also serves multi-model)
    for folder in ("hf-cpu-tiny-llama", "quickstart"):
        shutil.copytree(src / folder, dest / folder)
    examples = sorted(src.glob("*.yaml"))
    out = []
    for i in range(n):
        ex = examples[i % len(examples)]
        text = ex.read_text().replace("name: ", f"name: r{i}-", 1)
        p = dest / f"{i:04d}-{ex.name}"
        p.write_text(text)
        out.append(p)
    return out


def main(argv: list[str]) -> int:
    argparse.ArgumentParser(prog="bench validate", description=__doc__).parse_args(argv)  # --help, and no stray options
    from builder.commands.validate import validate_one

    with tempfile.TemporaryDirectory() as tmp:
        files = make_corpus(Path(tmp))
        t0 = time.perf_counter()
        import builder.lmi.rules  # noqa: F401 - import time is part of a CLI run
        from builder.catalog import load_catalog

        load_catalog()
        t_import = time.perf_counter() - t0
        t1 = time.perf_counter()
        results = [validate_one(f) for f in files]
        t_validate = time.perf_counter() - t1
    errors = sum(d.severity == "error" for ds in results for d in ds)
    figures = {"recipes": len(files), "seconds": round(t_validate, 3), "import_and_catalog_seconds": round(t_import, 3),
               "per_recipe_ms": round(1000 * t_validate / len(files), 3), "errors": errors,
               "target_seconds": 3.0, "python": sys.version.split()[0]}
    print(f"{'recipes':>10} {'seconds':>9} {'ms/recipe':>10} {'errors':>7}")
    print(f"{figures['recipes']:>10} {figures['seconds']:>9.3f} {figures['per_recipe_ms']:>10.3f} {errors:>7}")
    out = ROOT / "benchmarks" / "results" / "validate.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
