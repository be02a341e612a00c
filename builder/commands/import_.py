"""``lmi-build import serving.properties``: turn an existing LMI configuration into a recipe."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

NAME = "import"
HELP = "write a recipe from an existing serving.properties and/or env file"
DESCRIPTION = (
    "Read serving.properties (and/or --env-file with OPTION_*/SERVING_* variables, reversed by LMI's own case "
    "rule; the file wins where both set a key, as in LMI), and write a recipe for --family/--version. The "
    "recipe is validated before it is written; keys the catalogue does not know are kept as pass_through "
    "and listed so you can check their spelling."
)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("properties", nargs="?", type=Path,
                   help="serving.properties file, or a folder with one sub-folder per model, each with its own "
                        "serving.properties (writes a multi-model recipe, docs/multi-model.md)")
    p.add_argument("--env-file", type=Path, help="environment file (KEY=VALUE lines)")
    p.add_argument("--family", required=True, choices=["lmi", "tensorrt-llm", "neuronx", "cpu", "dev-cpu"])
    p.add_argument("--version", required=True, help='LMI release, e.g. "lmi-27.0.0" (a DJL version that names one release, e.g. "0.29.0", also works)')
    p.add_argument("--instance-type", help="target instance type (default: the smallest that fits the TP degree)")
    p.add_argument("--name", help="recipe name (default: from the model id)")
    p.add_argument("--model-path", help="local weights folder relative to the recipe (when there is no model_id)")
    p.add_argument("-o", "--output", type=Path, help="recipe file to write (default: stdout)")
    p.add_argument("--force", action="store_true", help="overwrite --output if it exists")


def run(args: argparse.Namespace) -> int:

    from builder import diagnostics as dg
    from builder.lmi.importer import LocatedImportError, build_recipe, read_sources
    from builder.lmi.rules import validate
    from builder.recipe import load_recipe

    if args.properties is None and args.env_file is None:
        raise dg.UsageError("give a serving.properties file, --env-file, or both")
    if args.output and args.output.exists() and not args.force:
        raise dg.UsageError(f"{args.output} exists; pass --force to overwrite it")
    if args.properties is not None and args.properties.is_dir():
        return _import_folder(args)
    try:
        sources = read_sources(args.properties, args.env_file)
    except LocatedImportError as exc:
        if exc.error.rule == "file-not-found":
            raise dg.UsageError(str(exc)) from None
        raise dg.DiagnosticError([dg.Diagnostic(exc.error.rule, "error", exc.error.message,
                                          dg.Location(str(exc.file), exc.error.line, 1 if exc.error.line else 0))],
                              stage="import") from None
    imported = build_recipe(sources.props, family=args.family, version=args.version,
                            instance_type=args.instance_type, name=args.name, model_path=args.model_path)
    named = " and ".join(_comment_text(str(p)) for p in (args.properties, args.env_file) if p)
    header = f"# Imported by 'lmi-build import' from {named}.\n" \
             "# Editor completion: `lmi-build schema -o recipe.schema.json`, then add a first line\n" \
             "# `# yaml-language-server: $schema=recipe.schema.json`.\n"
    text = header + _dump(imported.data)
    target = args.output or Path(os.getcwd()) / ".lmi-import-check.yaml"
    loaded = load_recipe(target, text)
    diags = [locate_in_input(d, sources, args) for d in validate(loaded)]
    return _finish(args, text, diags, sources.notes + imported.notes)


def _finish(args: argparse.Namespace, text: str, diags: list, notes: list[str], what: str = "") -> int:
    """Notes, then the diagnostics (errors stop here), then the recipe to -o FILE or stdout."""
    import sys

    from builder import diagnostics as dg
    from builder.console import info, printable, warn

    for note in notes:
        warn(note)
    if dg.has_errors(diags):
        raise dg.DiagnosticError(diags, stage="import")
    for d in diags:
        info(d.format())
    if args.output:
        from builder.atomic import atomic_write

        try:  # a failed write (full disk, -o a folder) leaves no temporary beside the output
            if args.output.is_dir():
                raise IsADirectoryError(21, "is a folder, not a file", str(args.output))
            atomic_write(args.output, text.encode("utf-8"), prefix=f".{args.output.name}.tmp-")
        except OSError as exc:
            raise dg.BuilderError(f"cannot write {args.output}: {exc.strerror or exc}", stage="import") from None
        info(f"wrote {printable(str(args.output), newlines=False)}{what}")
    else:
        sys.stdout.write(text)
    return 0


def _import_folder(args: argparse.Namespace) -> int:
    """A folder of per-model serving.properties -> a multi-model recipe (builder/multi/importer.py)."""

    from builder import diagnostics as dg
    from builder.multi.importer import import_folder, in_input
    from builder.multi.loader import load_multi
    from builder.multi.validate import validate_multi

    if args.env_file is not None or args.model_path:
        raise dg.UsageError("--env-file and --model-path import one model; a folder's models are its sub-folders")
    data, notes, sources, subs = import_folder(args.properties, family=args.family, version=args.version,
                                               instance_type=args.instance_type, name=args.name, output=args.output)
    text = f"# Imported by 'lmi-build import' from the model folders of {_comment_text(str(args.properties))}.\n" \
        + _dump(data)
    target = args.output or Path(os.getcwd()) / ".lmi-import-check.yaml"
    diags = [in_input(d, sources, subs) for d in validate_multi(load_multi(target, text), with_fit=False)]
    return _finish(args, text, diags, notes, f" ({len(subs)} models)")


# recipe path -> the LMI key it was imported from (the rest is serving.<key> or serving.option.<key>)
_MODEL_KEYS = {("model", "id"): "option.model_id", ("model", "s3"): "option.model_id",
               ("model", "revision"): "option.revision", ("model", "trust_remote_code"): "option.trust_remote_code"}


def locate_in_input(d, sources, args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """A diagnostic of the (never written) recipe, located at the input line its value came from."""
    from dataclasses import replace

    from builder.diagnostics import Location

    path = tuple(d.path)
    key = _MODEL_KEYS.get(path[:2]) if path[:1] == ("model",) else None
    if path[:2] == ("serving", "option") and len(path) > 2:
        key = f"option.{path[2]}"
    elif path[:1] == ("serving",) and len(path) > 1 and path[1] not in ("option", "pass_through"):
        key = str(path[1])
    origin = sources.origins.get(key) if key else None
    field_ = f"recipe {'.'.join(str(p) for p in path)}" if path else "the recipe"
    if origin is not None:
        return replace(d, location=Location(str(origin.file), origin.line, 1 if origin.line else 0),
                       message=f"{origin.name} ({field_}): {d.message}")
    first = args.properties or args.env_file
    what = "from the command line or a default" if path[:1] in (("target",), ("container",), ("name",)) \
        else "in the recipe import would write"
    return replace(d, location=Location(str(first)), message=f"{field_} ({what}): {d.message}")


def _comment_text(text: str) -> str:
    """``text`` safe inside one YAML comment line: no line break of any kind (YAML 1.1 breaks lines
    on \\x85, \\u2028, \\u2029 too), nothing the YAML reader refuses, no undecodable argv bytes."""
    from builder.console import printable

    shown = printable(text, newlines=False)
    return "".join(c if c == "\t" or 0x20 <= ord(c) <= 0x7E or 0xA0 <= ord(c) <= 0xD7FF
                   or 0xE000 <= ord(c) <= 0xFFFD or ord(c) >= 0x10000 else f"\\u{ord(c):04x}" for c in shown)


def _dump(data: dict) -> str:
    """YAML that reads back as exactly ``data``. PyYAML writes a value holding \\x85, \\u2028 or
    \\u2029 in single quotes, where a YAML reader folds that line break into a space; such values
    are written double-quoted, where they are escaped."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        style = '"' if any(c in value for c in "\x85\u2028\u2029\ufeff") else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    out = yaml.dump(data, Dumper=Dumper, sort_keys=False, allow_unicode=True)
    if yaml.safe_load(out) != data:  # what the emitter does not round-trip: all escaped, ASCII only
        out = yaml.safe_dump(data, sort_keys=False, allow_unicode=False, default_style='"')
    return out
