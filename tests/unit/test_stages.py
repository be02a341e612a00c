"""The pipeline as a list of stages (issue 13): the runner, the registry, frozen values, who imports what."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pydantic import ValidationError

from builder.diagnostics import BuilderError
from builder.record import BuildRecord
from builder.stages import BUILD, MULTI
from builder.stages.base import Frozen, Stage, StageFailed, StageResult
from builder.stages.runner import run_stages

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "recipes/examples/quickstart.yaml"


class Number(StageResult):
    value: int


class NoInputs(Frozen):
    pass


class TakesFirst(Frozen):
    first: Number


def _first(ctx, _: NoInputs) -> Number:
    return Number(value=2, status="cached", reason="seen before", details={"k": 1})


def _double(ctx, inputs: TakesFirst) -> Number:
    return Number(value=inputs.first.value * 2)


def _fails(ctx, inputs: TakesFirst) -> Number:
    raise StageFailed("it broke", stage="third", details={"checks": ["a"]})


def test_the_runner_feeds_each_stage_the_results_it_names_and_records_each():
    record, results = BuildRecord(), {}
    run_stages(None, (Stage("one", "first", _first, NoInputs), Stage("two", "second", _double, TakesFirst)),
               record, results)
    assert results["second"].value == 4
    one, two = record.stages
    assert (one.name, one.status, one.reason, one.details) == ("one", "cached", "seen before", {"k": 1})
    assert (two.name, two.status) == ("two", "passed") and two.seconds >= 0


def test_a_failed_stage_is_recorded_with_its_details_and_stops_the_run():
    record, results = BuildRecord(), {}
    stages = (Stage("one", "first", _first, NoInputs), Stage("third", "x", _fails, TakesFirst),
              Stage("never", "y", _double, TakesFirst))
    with pytest.raises(BuilderError, match="it broke"):
        run_stages(None, stages, record, results)
    assert [s.name for s in record.stages] == ["one", "third"]
    failed = record.stages[1]
    assert failed.status == "failed" and failed.details == {"checks": ["a"]} and record.failed_stage == "third"
    assert set(results) == {"first"}  # what ran is still there for the record


@pytest.mark.parametrize("stages", [BUILD, MULTI], ids=["single", "multi"])
def test_every_stage_takes_only_what_an_earlier_stage_produced(stages):
    produced: set[str] = set()
    for stage in stages:
        missing = set(stage.inputs.model_fields) - produced
        assert not missing, f"{stage.name} needs {missing}, produced before it: {produced}"
        assert stage.produces not in produced, f"{stage.name} produces {stage.produces} twice"
        produced.add(stage.produces)


def test_the_record_keeps_the_stage_names_users_and_ci_read():
    assert [s.name for s in BUILD] == ["validate", "resolve", "fetch", "runtime", "compile", "bake", "smoke",
                                       "publish"]
    assert [s.name for s in MULTI] == ["validate", "resolve", "fetch", "runtime", "bake", "smoke", "publish", "mme"]


def test_results_and_the_resolved_build_are_frozen():
    from builder.lmi.resolve import resolve
    from builder.recipe import load_or_raise

    with pytest.raises(ValidationError):
        Number(value=1).value = 3  # type: ignore[misc]
    resolved = resolve(load_or_raise(QUICKSTART).recipe)
    with pytest.raises(ValidationError):
        resolved.recipe_hash = "x"  # type: ignore[misc]
    compiled = resolved.with_properties({"option.compiled": "yes"})
    assert compiled.properties["option.compiled"] == "yes" and "option.compiled" not in resolved.properties
    assert compiled.recipe_hash == resolved.recipe_hash  # the recipe's name for what the user wrote


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_only_the_commands_import_the_pipeline():
    importers = [p.relative_to(ROOT).as_posix() for p in sorted((ROOT / "builder").rglob("*.py"))
                 if "builder.pipeline" in _imports(p)]
    assert importers and all(p.startswith("builder/commands/") for p in importers), importers


def test_no_stage_imports_another_stage_module_for_more_than_its_result_types():
    """Stages hand values forward through the runner; a stage module may name earlier results' types, never
    call another stage."""
    for path in sorted((ROOT / "builder/stages").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("builder.stages.") \
                    and node.module not in ("builder.stages.base", "builder.stages.runner"):
                for alias in node.names:
                    assert alias.name[0].isupper(), f"{path.name} imports {node.module}.{alias.name}"


@pytest.mark.parametrize("recipe, stages, models", [
    (QUICKSTART, BUILD, 1), (ROOT / "recipes/examples/multi-model-quickstart.yaml", MULTI, 2)], ids=["single", "multi"])
def test_the_recipe_is_resolved_once_per_model_and_handed_forward(recipe, stages, models, tmp_path, monkeypatch):
    import builder.lmi.resolve as resolve_module
    from builder.context import RunContext
    from builder.options import BuildOptions

    real, calls = resolve_module.resolve, []
    monkeypatch.setattr(resolve_module, "resolve", lambda r, *a, **k: calls.append(r.name) or real(r, *a, **k))
    ctx = RunContext.for_build(BuildOptions(recipe=recipe, cache_dir=tmp_path))
    results: dict = {}
    run_stages(ctx, stages[:2], BuildRecord(), results)  # validate, resolve
    assert len(calls) == models
    build = results["build"]
    resolved = [p.resolved for p in build.plans] if models > 1 else [build.resolved]
    assert all(r.recipe_hash for r in resolved)


def test_tag_with_the_registry_assembler_is_refused_not_ignored():
    from builder.diagnostics import UsageError
    from builder.options import BuildOptions, check_options

    with pytest.raises(UsageError, match="--tag") as err:
        check_options(BuildOptions(recipe=QUICKSTART, assembler="registry", registry="127.0.0.1:5000/x",
                                   tags=["mine:1"]))
    assert "publish.tags" in (err.value.hint or "")
    check_options(BuildOptions(recipe=QUICKSTART, assembler="registry", registry="127.0.0.1:5000/x"))


def test_docker_only_options_with_the_registry_assembler_are_said(capsys):
    from builder.options import BuildOptions, check_options

    check_options(BuildOptions(recipe=QUICKSTART, assembler="registry", registry="127.0.0.1:5000/x", pull=True,
                               no_cache=True))
    err = capsys.readouterr().err
    assert "--pull has no effect with --assembler registry" in err and "--no-cache has no effect" in err
    check_options(BuildOptions(recipe=QUICKSTART, pull=True, no_cache=True))
    assert "no effect" not in capsys.readouterr().err
