"""``lmi-build validate PATH...``: check recipes without building (files, or folders searched recursively)."""

from __future__ import annotations

import argparse
import json
import re
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
# A YAML file found under a folder is a recipe when it is a mapping with top-level `model:` and `container:`
# keys (both required by the schema, and rarely both at the top of other YAML: CI files, compose files,
# Kubernetes manifests, catalog data), or when it names the recipe schema in a yaml-language-server modeline.
# A file that does not parse is judged by its text (`model:` and `container:` at column 0), so a broken
# recipe is still validated and its error shown. A file named on the command line is always validated.
RECIPE_KEYS = ("model", "container")
MULTI_KEYS = ("models", "container")  # a multi-model recipe (docs/multi-model.md)
SCHEMA_MODELINE = re.compile(r"^#\s*yaml-language-server:.*\$schema=\S*recipe\.schema\.json", re.M)
MAX_SNIFF = 1 << 20  # bigger files are judged by the text of their first MiB (the loader refuses them anyway)
NOT_A_RECIPE = "not a recipe (no top-level model: and container: keys)"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="recipe files or folders (recursive)")
    p.add_argument("--format", choices=["text", "json"], default="text",
                   help="text: compiler-style lines on stderr; json: one JSON document on stdout")
    p.add_argument("--no-fit", action="store_true",
                   help="skip the hardware-fit check (it runs when the model is local or already cached)")
    from builder.paths import cache_dir_arg  # '' is refused, not read as '.'

    p.add_argument("--cache-dir", type=cache_dir_arg, help="artifact cache to look for already-fetched models in")
    p.add_argument("--lmi-check", action="store_true",
                   help="also run the rendered options through LMI's own validator (djl_python 0.34.0: "
                        "TensorRtLlmProperties, TransformerNeuronXProperties, LmiDistRbProperties, else base "
                        "Properties) from the jar `lmi-build runtime fetch` caches, and print its verdict beside "
                        "ours; a second opinion only: the exit code stays ours")


def is_recipe(path: Path) -> bool:
    """Whether a YAML file found in a folder is a recipe (see RECIPE_KEYS above); never raises."""
    import yaml

    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_SNIFF + 1)
    except OSError:
        return True  # unreadable: let the loader say why, rather than skip it silently
    text = raw[:MAX_SNIFF].decode("utf-8", errors="replace")
    if SCHEMA_MODELINE.search(text):
        return True
    if len(raw) <= MAX_SNIFF:
        try:
            data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except (yaml.YAMLError, RecursionError, ValueError):
            pass  # judged by its text below
        else:
            return isinstance(data, dict) and (all(k in data for k in RECIPE_KEYS)
                                               or all(k in data for k in MULTI_KEYS))
    return any(all(re.search(rf"^{k}\s*:", text, re.M) for k in keys) for keys in (RECIPE_KEYS, MULTI_KEYS))


def find_recipes(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """(recipes to validate, YAML files skipped because they are not recipes) for files and folders."""
    files: list[Path] = []
    skipped: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file()
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not found:
                raise UsageError(f"{relpath(path)}: no *.yaml or *.yml recipes in this folder")
            recipes = [p for p in found if is_recipe(p)]
            chosen = set(recipes)
            if not recipes:
                raise UsageError(f"{relpath(path)}: none of its {len(found)} YAML file(s) is a recipe (a recipe is "
                                 "a mapping with top-level model: and container: keys); name a file to validate it "
                                 "anyway")
            files.extend(recipes)
            skipped.extend(p for p in found if p not in chosen)
        elif path.exists() or path.suffix in SUFFIXES:
            files.append(path)  # always validated; a missing file is reported as a diagnostic by the loader
        else:
            raise UsageError(f"{relpath(path)}: no such file or folder")
    files = list(dict.fromkeys(files))
    named = set(files)
    return files, [p for p in dict.fromkeys(skipped) if p not in named]


def collect(paths: list[Path]) -> list[Path]:
    return find_recipes(paths)[0]


def validate_one(path: Path, *, with_fit: bool = True, cache_dir: Path | None = None) -> list[Diagnostic]:
    from builder.multi import is_multi_file
    from builder.validation import validate_path

    try:
        if is_multi_file(path):  # top-level models: (builder/multi/validate.py)
            from builder.multi.validate import validate_multi_path

            return validate_multi_path(path, with_fit=with_fit, cache_dir=cache_dir)[1]
        return validate_path(path, with_fit=with_fit, cache_dir=cache_dir)[1]
    except Exception as exc:  # a bug in a rule must not hide the other files' results or print a traceback
        return [Diagnostic("internal-error", "error", f"the validator failed on this file ({type(exc).__name__}: "
                           f"{exc}); please report it", Location(relpath(path)))]


def run(args: argparse.Namespace) -> int:
    from builder.console import info

    files, skipped = find_recipes(args.paths)
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
               "errors": n_err, "warnings": n_warn,
               "skipped": [{"file": relpath(f), "reason": NOT_A_RECIPE} for f in skipped]}
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    else:
        from builder.lmi_check_compare import NO_JAR

        for f in skipped:
            info(f"{relpath(f)}: skipped: {NOT_A_RECIPE}")
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
             f"{n_warn} warning(s)" + (f"; {len(skipped)} YAML file(s) skipped (not recipes)" if skipped else ""))
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
