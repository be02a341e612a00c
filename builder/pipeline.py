"""The build: the stages of ``builder.stages`` in order, over one ``RunContext``, and the build record.

``run_build`` checks the options, runs ``BUILD`` (or ``MULTI`` for a recipe with top-level ``models:``),
lets each finished stage's result add what it contributes to the record (inputs, image, published), writes
the record atomically (also when a stage failed: CI reads it) and prints a one-screen summary. Only the
commands import this module.
"""

from __future__ import annotations

from pathlib import Path

from builder import console
from builder.context import RunContext
from builder.diagnostics import BuilderError
from builder.options import BuildOptions, check_multi_options, check_options
from builder.record import BuildRecord
from builder.stages import BUILD, MULTI
from builder.stages.base import StageResult
from builder.stages.runner import run_stages


def run_build(opts: BuildOptions) -> BuildRecord:
    from builder.multi import is_multi_file

    multi = is_multi_file(opts.recipe)
    (check_multi_options if multi else check_options)(opts)
    ctx = RunContext.for_build(opts)
    record = BuildRecord(recipe_file=str(opts.recipe))
    target = opts.report or (ctx.record_dir / "build-record.json")
    results: dict[str, StageResult] = {}
    try:
        run_stages(ctx, MULTI if multi else BUILD, record, results)
    except BaseException:
        _fill(record, results)
        try:
            record.write(target)
        except OSError as exc:  # the build's own error is the one to report; this one is said beside it
            console.warn(f"could not write the build record to {target}: {exc.strerror or exc}")
        raise
    _fill(record, results)
    record.ok = True
    try:  # a record that cannot be written fails the build: CI reads it (issue 15 item 8)
        record.write(target)
    except OSError as exc:
        from builder.atomic import os_error_message

        text, hint = os_error_message(exc)
        raise BuilderError(f"the build passed but its record could not be written: {text}", stage="record",
                           hint=hint) from None
    record.inputs.setdefault("record_path", str(target))
    _summary(record, results, ctx.record_dir)
    return record


def _fill(record: BuildRecord, results: dict[str, StageResult]) -> None:
    for result in results.values():  # in stage order
        result.into_record(record)


def _summary(record: BuildRecord, results: dict[str, StageResult], record_dir: Path) -> None:
    from rich.markup import escape
    from rich.table import Table

    build = results["build"]
    first = getattr(build, "first", None) or build.resolved
    name = record.resolved.get("recipe", {}).get("name") or first.recipe.name
    table = Table(title=f"{name}  ({first.release.family} {first.release.version}, {first.instance.name})",
                  show_lines=False)
    table.add_column("stage")
    table.add_column("status")
    table.add_column("seconds", justify="right")
    table.add_column("note")
    colours = {"passed": "green", "cached": "cyan", "skipped": "yellow", "failed": "red"}
    for s in record.stages:
        table.add_row(s.name, f"[{colours[s.status]}]{s.status.upper()}[/]", f"{s.seconds:.2f}", escape(s.reason[:90]))
    console.console().print(table)
    tags = record.image.get("tags") or []
    if "archives" in results:  # multi-model
        console.step(f"built {tags[0]} ({', '.join(record.image.get('models') or [])}); model archives in "
                     f"{record_dir / 'mme'}")
    else:
        console.info(f"image: {results['image'].reference}" + (f"  tags: {', '.join(tags)}" if tags else ""))
    for target in record.published:
        ref = target.get("pinned") or target.get("reference")
        if ref:
            console.info(f"published: {ref}")


__all__ = ["BuildOptions", "run_build"]
