"""Upstream's own configurations: the ``serving.properties`` files that djl-serving's integration tests
write (``tests/integration/llm/prepare.py`` of a release branch), each run through our ``import``,
``validate`` and ``render`` (reference/lmi-releases.md §3).

prepare.py is read from the djl-serving checkout or mirror named by ``DJL_SERVING_SRC`` and run as it is,
in a temporary folder, once per (handler, model); nothing of it is copied into this repository. Its one
network call (``huggingface_hub.snapshot_download`` for LoRA adapters) is answered by a stub module.

    DJL_SERVING_SRC=/path/to/djl-serving python -m tests.support.upstream_configs [BRANCH ...]

prints the counts per release (the README's table).
"""

from __future__ import annotations

import ast
import contextlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from builder.lmi.properties import loads
from scripts.upstream_git import Repo

# prepare.py's builders that write a serving.properties for an lmi-family image, and the backend each needs
BUILDERS = {"build_vllm_model": None, "build_vllm_async_model": None, "build_hf_handler_model": None,
            "build_stateful_model": None, "build_lmi_dist_model": "lmi-dist", "build_rolling_batch_model": "scheduler"}
STUB_HF = "def snapshot_download(*args, **kwargs):\n    return kwargs.get('local_dir', '.')\n"
ALLOWED_WARNINGS = {"revision-pinned"}  # upstream's Hub model ids are unpinned; that warning is right


@dataclass
class Outcome:
    handler: str
    model: str
    properties: dict[str, str]
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unread: list[str] = field(default_factory=list)  # keys the release's derived key set does not have

    @property
    def ok(self) -> bool:
        return not self.problems


def calls_in_tests(tests_text: str) -> list[tuple[str, str]]:
    """(builder, model) for every ``prepare.build_*("literal")`` call of tests/integration/tests.py: the
    configurations upstream's integration tests really run, in the order they appear, each once."""
    seen: dict[tuple[str, str], None] = {}
    for node in ast.walk(ast.parse(tests_text)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "prepare"
                and node.func.attr in BUILDERS and node.args and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)):
            seen[(node.func.attr, node.args[0].value)] = None
    return list(seen)


RUNNER = "import sys, prepare\ngetattr(prepare, sys.argv[1])(sys.argv[2])\n"


def generate(src: Path, branch: str, backends: frozenset[str] = frozenset()) -> list[tuple[str, str, dict[str, str]]]:
    """Every (builder, model, serving.properties as LMI reads it) that upstream's tests.py of ``branch`` has
    prepare.py write, for builders whose backend is in ``backends`` (None-backend builders always)."""
    repo = Repo(src)
    prepare_text = repo.git("show", f"{branch}:tests/integration/llm/prepare.py")
    tests_text = repo.git("show", f"{branch}:tests/integration/tests.py")
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "prepare.py").write_text(prepare_text)
        (work / "run_builder.py").write_text(RUNNER)
        (work / "stubs" / "huggingface_hub").mkdir(parents=True)
        (work / "stubs" / "huggingface_hub" / "__init__.py").write_text(STUB_HF)
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(work / "stubs"), "HOME": tmp}
        for builder, model in calls_in_tests(tests_text):
            needs = BUILDERS[builder]
            if needs is not None and needs not in backends:
                continue
            run = subprocess.run([sys.executable, "run_builder.py", builder, model], cwd=work, env=env,
                                 capture_output=True, text=True, timeout=60)
            written = work / "models" / "test" / "serving.properties"
            if run.returncode != 0 or not written.is_file():
                continue  # a spec that needs what prepare.py fetches (neo inputs) writes no file here
            custom = (work / "models" / "test" / "model.py").is_file()
            if not custom:  # a custom handler reads its options its own way: not a test of LMI's keys
                out.append((builder, model, loads(written.read_text())))
            shutil.rmtree(work / "models")
    return out


def check(release: str, handler: str, model: str, props: dict[str, str], workdir: Path) -> Outcome:
    """import -> validate -> render for one upstream configuration; every deviation is a problem."""
    from builder.cli import main
    from builder.lmi.render import render_texts
    from builder.lmi.resolve import resolve
    from builder.lmi.rules import validate_file
    from builder.recipe import load_recipe

    outcome = Outcome(handler, model, props)
    folder = workdir / f"{handler}-{model.replace('/', '_')}"
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "serving.properties"
    source.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    recipe_path = folder / "recipe.yaml"
    # the instances upstream's GPU runners use (reference/lmi-releases.md §3): g6.12xlarge, p4d for TP 8
    instance = "ml.p4d.24xlarge" if props.get("option.tensor_parallel_degree") == "8" else "ml.g6.12xlarge"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(["import", str(source), "--family", "lmi", "--version", release, "--instance-type", instance,
                   "-o", str(recipe_path), "--force"])
    outcome.notes = [line for line in err.getvalue().splitlines() if line.strip()]
    if rc != 0 or not recipe_path.is_file():
        outcome.problems.append(f"import exit {rc}: {' | '.join(outcome.notes[-3:])}")
        return outcome
    passed = (yaml.safe_load(recipe_path.read_text()).get("serving") or {}).get("pass_through") or []
    if passed:
        outcome.problems.append(f"import needed serving.pass_through: {', '.join(passed)}")
        outcome.unread = list(passed)
    # import loses nothing: every input key is in the recipe, a documented rename, or reported on stderr
    from builder.lmi.importer import unaccounted

    for key in unaccounted(props, yaml.safe_load(recipe_path.read_text()), outcome.notes):
        outcome.problems.append(f"lost on import: {key} is not in the recipe and stderr does not say why")
    diags = validate_file(recipe_path)
    for d in diags:
        if d.severity == "error" or d.rule not in ALLOWED_WARNINGS:
            outcome.problems.append(f"{d.severity} [{d.rule}] {d.message}")
    if any(d.severity == "error" for d in diags):
        return outcome
    rendered = loads(render_texts(resolve(load_recipe(recipe_path).recipe))["serving.properties"])
    for key, value in props.items():
        if not key.startswith("option.") or key in ("option.model_id",):
            continue  # the model id is the recipe's model: section (baked or S3, §13)
        if key not in rendered:
            outcome.problems.append(f"{key} is not in the render")
        elif value == "max" and key == "option.tensor_parallel_degree" and rendered[key].isdigit():
            continue  # the render pins max as the instance's device count (§18)
        elif rendered[key] != value and rendered[key].lower() != value.lower():
            outcome.problems.append(f"{key}={value} rendered as {rendered[key]}")
    return outcome


def backends_of(release: str) -> frozenset[str]:
    """The backends the release offers: tests.py keeps calling build_lmi_dist_model after v15 removed lmi-dist
    (breaking_changes.md); LMI would rewrite those to vllm and we refuse them (backend-removed), so they are not
    configurations of that release."""
    from builder.catalog import load_catalog

    rel = load_catalog().release("lmi", release)
    return frozenset(rel.rolling_batch) if rel is not None else frozenset()


def release_of(branch: str) -> str | None:
    from importlib import util

    spec = util.spec_from_file_location("derive_releases", Path(__file__).resolve().parents[2] / "scripts" /
                                        "derive_releases.py")
    module = util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return next((name for fam, name, b, _ in module.RELEASES if b == branch and fam == "lmi"), None)


def main(argv: list[str]) -> int:
    """The README's table: per release, the configurations, how many pass clean, and why the others do not."""
    from builder.catalog import load_catalog
    from builder.lmi.keys import derived_keys, releases_reading

    src = Path(os.environ["DJL_SERVING_SRC"])
    branches = argv or ["0.29.0-dlc", "0.33.0-dlc", "0.35.0-dlc", "0.36.0-lmi18-dlc", "0.36.0-lmi27-dlc"]
    print("| release | configurations | clean | set a key no LMI release reads | set a key this release does "
          "not read | need a vLLM key of a dev build (unknown) | other |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for branch in branches:
            release = release_of(branch)
            d = derived_keys(load_catalog().release("lmi", release))
            dev_build = d is not None and d.engine_args_unknown
            outcomes = [check(release, h, m, p, Path(tmp) / branch)
                        for h, m, p in generate(src, branch, backends_of(release))]
            groups: dict[str, list[Outcome]] = {"none": [], "this": [], "vllm": [], "other": []}
            keys: dict[str, set[str]] = {g: set() for g in groups}
            for o in outcomes:
                if o.ok:
                    continue
                if len(o.problems) > (1 if o.unread else 0):
                    groups["other"].append(o)
                    continue
                kinds = {k: ("none" if not releases_reading("lmi", k) else "vllm" if dev_build else "this")
                         for k in o.unread}
                worst = "vllm" if "vllm" in kinds.values() else "this" if "this" in kinds.values() else "none"
                groups[worst].append(o)
                for k, kind in kinds.items():
                    keys[kind].add(k)

            def cell(g: str, groups: dict[str, list[Outcome]] = groups, keys: dict[str, set[str]] = keys) -> str:
                return f"{len(groups[g])} ({', '.join(sorted(keys[g]))})" if groups[g] else "0"

            clean = sum(1 for o in outcomes if o.ok)
            print(f"| {release} | {len(outcomes)} | {clean} | {cell('none')} | {cell('this')} | {cell('vllm')} "
                  f"| {len(groups['other'])} |")
            for o in groups["other"]:
                print(f"    {o.handler}/{o.model}: {'; '.join(o.problems)[:300]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
