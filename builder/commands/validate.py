"""``lmi-build validate PATH...``: check recipes without building (files, or folders searched recursively)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from builder.diagnostics import Diagnostic, Location, UsageError, relpath

NAME = "validate"
HELP = "check recipes (files or folders) against the schema and every LMI rule"
DESCRIPTION = (
    "Validate recipes: YAML syntax, schema, and the LMI rules (backend availability per version, engine, "
    "tensor parallelism vs the target, dtype vs hardware, option keys per backend, local files, handler "
    "syntax). Prints FILE:LINE:COL: error|warning: [rule-id] message. Exit 0 when every recipe is valid "
    "(warnings allowed), 1 when any has an error, 2 on usage errors. With --lmi-check, LMI's own validator "
    "(djl_python 0.34.0 from the cached jar) judges the rendered options too and its verdict is printed beside "
    "ours; it is a second opinion and never changes the exit code."
)
SUFFIXES = (".yaml", ".yml")


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="recipe files or folders (recursive)")
    p.add_argument("--format", choices=["text", "json"], default="text",
                   help="text: compiler-style lines on stderr; json: one JSON document on stdout")
    p.add_argument("--no-fit", action="store_true",
                   help="skip the hardware-fit check (it runs when the model is local or already cached)")
    p.add_argument("--cache-dir", type=Path, help="artifact cache to look for already-fetched models in")
    p.add_argument("--lmi-check", action="store_true",
                   help="also run the rendered options through LMI's own validator (djl_python 0.34.0: "
                        "TensorRtLlmProperties, TransformerNeuronXProperties, LmiDistRbProperties, else base "
                        "Properties) from the jar `lmi-build runtime fetch` caches, and print its verdict beside "
                        "ours; a second opinion only: the exit code stays ours")


def collect(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file()
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not found:
                raise UsageError(f"{relpath(path)}: no *.yaml or *.yml recipes in this folder")
            files.extend(found)
        elif path.exists() or path.suffix in SUFFIXES:
            files.append(path)  # a missing file is reported as a diagnostic by the loader
        else:
            raise UsageError(f"{relpath(path)}: no such file or folder")
    return list(dict.fromkeys(files))


def validate_one(path: Path, *, with_fit: bool = True, cache_dir: Path | None = None) -> list[Diagnostic]:
    from builder.validation import validate_path

    try:
        return validate_path(path, with_fit=with_fit, cache_dir=cache_dir)[1]
    except Exception as exc:  # a bug in a rule must not hide the other files' results or print a traceback
        return [Diagnostic("internal-error", "error", f"the validator failed on this file ({type(exc).__name__}: "
                           f"{exc}); please report it", Location(relpath(path)))]


def run(args: argparse.Namespace) -> int:
    from builder.console import info

    files = collect(args.paths)
    results = {f: validate_one(f, with_fit=not args.no_fit, cache_dir=args.cache_dir) for f in files}
    n_err = sum(d.severity == "error" for ds in results.values() for d in ds)
    n_warn = sum(d.severity == "warning" for ds in results.values() for d in ds)
    bad = sum(any(d.severity == "error" for d in ds) for ds in results.values())
    lmi = _lmi_check(files, results, args) if getattr(args, "lmi_check", False) else None
    if args.format == "json":
        doc = {"valid": bad == 0, "files": [{"file": relpath(f), "valid": not any(d.severity == "error" for d in ds),
                                             "diagnostics": [d.to_json() for d in ds],
                                             **({"lmi_check": lmi[f].to_json() if f in lmi else None}
                                                if lmi is not None else {})}
                                            for f, ds in results.items()],
               "errors": n_err, "warnings": n_warn}
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    else:
        from builder.lmi_check_compare import NO_JAR

        no_jar_said = False
        for f, ds in results.items():
            for d in ds:
                info(d.format())
            if lmi is not None and f in lmi:
                line = lmi[f].line()
                if NO_JAR in line:  # one line for the whole run, not one per recipe
                    if no_jar_said:
                        continue
                    no_jar_said, line = True, f"lmi-check: {NO_JAR}"
                    info(line)
                    continue
                info(f"{relpath(f)}: {line}")
        info(f"{len(files)} recipe(s): {len(files) - bad} valid, {bad} invalid; {n_err} error(s), "
             f"{n_warn} warning(s)")
    return 1 if bad else 0


def _lmi_check(files: list[Path], results: dict[Path, list[Diagnostic]], args: argparse.Namespace) -> dict:
    """LMI's verdict per recipe (second opinion; never affects the exit code)."""
    from builder.lmi_check_compare import compare_paths

    try:
        return compare_paths(files, results, cache_dir=args.cache_dir)
    except Exception as exc:  # the second opinion must not take our first one down
        from builder.console import warn

        warn(f"lmi-check failed: {type(exc).__name__}: {exc}")
        return {}
