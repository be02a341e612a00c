#!/usr/bin/env python3
"""List the pydantic validators of djl_python's properties managers that raise, per release branch: the
input of docs/lmi-validators.md (a maintainer re-reads it when a release branch is added).

    python scripts/list_validators.py --djl-serving /path/to/djl-serving[.git]

Reads ``engines/python/setup/djl_python/properties_manager/*.py`` of every ``-dlc`` branch from
0.29.0-dlc on with ``git show`` and parses each file with ``ast``: a function decorated with
``field_validator``/``model_validator`` (or v1 ``validator``/``root_validator``) whose body has a
``raise`` or ``assert``. Prints ``file function first..last[, first..last]`` (runs of consecutive
branches). Nothing is imported or copied; only names are printed.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # scripts/, also when a test loads this file by path
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # the repository, for builder
from upstream_git import Repo

from builder.catalog.facts import branch_key  # the catalog's order of release branches (one copy)

PM = "engines/python/setup/djl_python/properties_manager/"


def branches(src: Path) -> list[str]:
    names = Repo(src).branches("refs/heads", "refs/remotes")
    names = {n.split("/", 1)[-1] for n in names}
    return sorted((b for b in names if branch_key(b) >= (0, 29, 0, 0)), key=branch_key)


def raising(source: str) -> list[str]:
    """Names of the validator functions in ``source`` that raise or assert."""
    out = []
    with warnings.catch_warnings():  # upstream's regex literals ('\/') warn under newer Pythons
        warnings.simplefilter("ignore", SyntaxWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and any("validator" in ast.unparse(d) for d in node.decorator_list) \
                and any(isinstance(n, (ast.Raise, ast.Assert)) for n in ast.walk(node)):
            out.append(node.name)
    return out


def scan(src: Path) -> dict[tuple[str, str], list[str]]:
    """(file, function) -> the branches where it raises, in release order."""
    found: dict[tuple[str, str], list[str]] = {}
    repo = Repo(src)
    for b in branches(src):
        try:
            files = repo.ls(b, PM)
        except subprocess.CalledProcessError:
            continue
        for f in files:
            if f.endswith(".py"):
                for name in raising(repo.git("show", f"{b}:{PM}{f}")):
                    found.setdefault((f, name), []).append(b)
    return found


def runs(found: list[str], order: list[str]) -> list[str]:
    """'0.29.0 .. 0.32.0' for each run of consecutive branches of ``order`` (the '-dlc' left out)."""
    idx = [order.index(b) for b in found]
    out, start = [], idx[0]
    for a, b in zip(idx, idx[1:] + [None], strict=True):
        if b is None or b != a + 1:
            first, last = order[start].removesuffix("-dlc"), order[a].removesuffix("-dlc")
            out.append(first if first == last else f"{first} .. {last}")
            if b is not None:
                start = b
    return out


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--djl-serving", type=Path, required=True)
    args = p.parse_args(argv)
    order = branches(args.djl_serving)
    for (f, name), found in sorted(scan(args.djl_serving).items()):
        print(f, name, ", ".join(runs(found, order)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
