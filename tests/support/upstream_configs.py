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
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from builder.lmi.properties import loads

# handler of prepare.py -> the dict of model specs it reads, for the handlers that serve the lmi family
HANDLERS = {"vllm": "vllm_model_list", "lmi_dist": "lmi_dist_model_list", "huggingface": "hf_handler_list"}
STUB_HF = "def snapshot_download(*args, **kwargs):\n    return kwargs.get('local_dir', '.')\n"
ALLOWED_WARNINGS = {"revision-pinned"}  # upstream's Hub model ids are unpinned; that warning is right


def _git(src: Path, *args: str) -> str:
    git_dir = src if (src / "HEAD").is_file() and not (src / ".git").exists() else src / ".git"
    return subprocess.run(["git", f"--git-dir={git_dir}", *args], check=True, capture_output=True,
                          text=True).stdout


@dataclass
class Outcome:
    handler: str
    model: str
    properties: dict[str, str]
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _model_lists(prepare_text: str) -> dict[str, list[str]]:
    tree = ast.parse(prepare_text)
    handlers: set[str] = set()
    lists: dict[str, list[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) and isinstance(node.value, ast.Dict):
            name = node.targets[0].id
            keys = [k.value for k in node.value.keys if isinstance(k, ast.Constant)]
            if name == "supported_handler":
                handlers = set(keys)
            else:
                lists[name] = keys
    return {h: lists.get(d, []) for h, d in HANDLERS.items() if h in handlers}


def generate(src: Path, branch: str, skip: frozenset[str] = frozenset()) -> list[tuple[str, str, dict[str, str]]]:
    """Every (handler, model, serving.properties as LMI reads it) that prepare.py of ``branch`` writes,
    for the handlers not in ``skip``."""
    text = _git(src, "show", f"{branch}:tests/integration/llm/prepare.py")
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "prepare.py").write_text(text)
        (work / "stubs" / "huggingface_hub").mkdir(parents=True)
        (work / "stubs" / "huggingface_hub" / "__init__.py").write_text(STUB_HF)
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(work / "stubs"), "HOME": tmp}
        for handler, models in _model_lists(text).items():
            if handler in skip:
                continue
            for model in models:
                run = subprocess.run([sys.executable, "prepare.py", handler, model], cwd=work, env=env,
                                     capture_output=True, text=True, timeout=60)
                written = work / "models" / "test" / "serving.properties"
                if run.returncode != 0 or not written.is_file():
                    continue  # a spec that needs what prepare.py fetches (neo inputs) writes no file here
                out.append((handler, model, loads(written.read_text())))
                written.unlink()
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
    if "pass_through" in recipe_path.read_text():
        outcome.problems.append("import needed serving.pass_through")
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


def handlers_to_skip(release: str) -> frozenset[str]:
    """prepare.py keeps the lmi-dist specs after v15 removed lmi-dist (breaking_changes.md); LMI would rewrite
    them to vllm and we refuse them (rule backend-removed), so they are not upstream configurations of it."""
    from builder.catalog import load_catalog

    rel = load_catalog().release("lmi", release)
    return frozenset() if rel is not None and "lmi-dist" in rel.rolling_batch else frozenset({"lmi_dist"})


def release_of(branch: str) -> str | None:
    from importlib import util

    spec = util.spec_from_file_location("derive_releases", Path(__file__).resolve().parents[2] / "scripts" /
                                        "derive_releases.py")
    module = util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return next((name for fam, name, b, _ in module.RELEASES if b == branch and fam == "lmi"), None)


def main(argv: list[str]) -> int:
    src = Path(os.environ["DJL_SERVING_SRC"])
    branches = argv or ["0.29.0-dlc", "0.33.0-dlc", "0.35.0-dlc", "0.36.0-lmi18-dlc", "0.36.0-lmi27-dlc"]
    print("| release | branch | configurations | clean | with a problem |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for branch in branches:
            release = release_of(branch)
            outcomes = [check(release, h, m, p, Path(tmp) / branch)
                        for h, m, p in generate(src, branch, handlers_to_skip(release))]
            bad = [o for o in outcomes if not o.ok]
            print(f"| {release} | {branch} | {len(outcomes)} | {len(outcomes) - len(bad)} | {len(bad)} |")
            for o in bad:
                print(f"    {o.handler}/{o.model}: {'; '.join(o.problems)[:300]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
