"""Run benchmark suites: ``python -m benchmarks [suite ...]`` (default: every suite).

A suite is a module ``benchmarks/bench_<name>.py`` with ``main(argv) -> int``; each prints its
figures as a table and writes them to ``benchmarks/results/<name>.json``.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def suites() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))


def main(argv: list[str]) -> int:
    names = [a for a in argv if not a.startswith("-")] or suites()
    rest = [a for a in argv if a.startswith("-")]
    unknown = [n for n in names if n not in suites()]
    if unknown:
        print(f"unknown suite(s): {', '.join(unknown)}; known: {', '.join(suites())}", file=sys.stderr)
        return 2
    rc = 0
    for name in names:
        print(f"== bench {name}", flush=True)
        module = importlib.import_module(f"benchmarks.bench_{name}")
        rc |= int(module.main(rest) or 0)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
