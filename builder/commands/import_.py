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
    p.add_argument("properties", nargs="?", type=Path, help="serving.properties file")
    p.add_argument("--env-file", type=Path, help="environment file (KEY=VALUE lines)")
    p.add_argument("--family", required=True, choices=["lmi", "tensorrt-llm", "neuronx", "cpu", "dev-cpu"])
    p.add_argument("--version", required=True, help='LMI release, e.g. "0.29.0"')
    p.add_argument("--instance-type", help="target instance type (default: the smallest that fits the TP degree)")
    p.add_argument("--name", help="recipe name (default: from the model id)")
    p.add_argument("--model-path", help="local weights folder relative to the recipe (when there is no model_id)")
    p.add_argument("-o", "--output", type=Path, help="recipe file to write (default: stdout)")
    p.add_argument("--force", action="store_true", help="overwrite --output if it exists")


def run(args: argparse.Namespace) -> int:
    import sys

    import yaml

    from builder.console import info, warn
    from builder.diagnostics import BuilderError, DiagnosticError, UsageError, has_errors
    from builder.lmi.importer import build_recipe, read_sources
    from builder.lmi.properties import PropertiesError
    from builder.lmi.rules import validate
    from builder.recipe import load_recipe

    if args.properties is None and args.env_file is None:
        raise UsageError("give a serving.properties file, --env-file, or both")
    if args.output and args.output.exists() and not args.force:
        raise UsageError(f"{args.output} exists; pass --force to overwrite it")
    try:
        props = read_sources(args.properties, args.env_file)
    except FileNotFoundError as exc:
        raise UsageError(f"{exc.filename}: no such file") from None
    except (OSError, UnicodeDecodeError, PropertiesError) as exc:
        raise BuilderError(f"cannot read the configuration: {exc}", stage="import") from None
    imported = build_recipe(props, family=args.family, version=args.version, instance_type=args.instance_type,
                            name=args.name, model_path=args.model_path)
    sources = " and ".join(str(p) for p in (args.properties, args.env_file) if p)
    header = f"# Imported by 'lmi-build import' from {sources}.\n" \
             "# Editor completion: `lmi-build schema -o recipe.schema.json`, then add a first line\n" \
             "# `# yaml-language-server: $schema=recipe.schema.json`.\n"
    text = header + yaml.safe_dump(imported.data, sort_keys=False, allow_unicode=True)
    target = args.output or Path(os.getcwd()) / ".lmi-import-check.yaml"
    loaded = load_recipe(target, text)
    diags = validate(loaded)
    for note in imported.notes:
        warn(note)
    if has_errors(diags):
        raise DiagnosticError(diags, stage="import")
    for d in diags:
        info(d.format())
    if args.output:
        tmp = args.output.with_name(f".{args.output.name}.tmp")
        try:
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, args.output)
        except OSError as exc:
            raise BuilderError(f"cannot write {args.output}: {exc.strerror}", stage="import") from None
        info(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0
