"""``lmi-build plan``: runner needs per recipe, and --changed-since against a scratch git repo."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from builder.commands import plan as plan_cmd
from builder.paths import REPO_DIR

EXAMPLES = REPO_DIR / "recipes" / "examples"


def _git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin", "HOME": str(cwd)})


@pytest.fixture
def repo(tmp_path, monkeypatch):
    rec = tmp_path / "recipes"
    rec.mkdir()
    shutil.copy(EXAMPLES / "quickstart.yaml", rec / "quickstart.yaml")
    (rec / "quickstart" / "model").mkdir(parents=True)
    (rec / "quickstart" / "model" / "weights.bin").write_bytes(b"\0" * 4096)
    (rec / "quickstart" / "model.py").write_text("# handler\n")
    shutil.copy(EXAMPLES / "vllm-llama3-8b-g5.yaml", rec / "vllm.yaml")
    shutil.copy(EXAMPLES / "neuronx-llama3-8b-inf2.yaml", rec / "neuron.yaml")
    # the catalog's data files (plan reads the recipe's slice of them at HEAD and in the working tree)
    shutil.copytree(REPO_DIR / "builder" / "catalog", tmp_path / "builder" / "catalog",
                    ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "base")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_runner_needs(repo):
    out = plan_cmd.plan(["recipes"])
    by = {e["name"]: e for e in out["matrix"]["include"]}
    assert out["count"] == 3
    g5 = next(e for e in by.values() if e["instance_type"] == "ml.g5.12xlarge")
    assert (g5["kind"], g5["gpus"], g5["compute_capability"], g5["arch"]) == ("gpu", 4, "8.6", "sm_86")
    assert "sm_86" in g5["runner_labels"] and g5["disk_gib"] is None
    inf2 = next(e for e in by.values() if e["kind"] == "neuron")
    assert inf2["neuron_devices"] == 6 and inf2["neuron_cores"] == 12 and inf2["gpus"] == 0
    q = by["quickstart"]
    assert q["kind"] == "cpu" and q["model_bytes"] == 4096 and q["disk_gib"] is not None


def test_changed_since(repo):
    assert plan_cmd.plan(["recipes"], "HEAD")["count"] == 0
    (repo / "recipes/quickstart/model.py").write_text("# handler v2\n")
    out = plan_cmd.plan(["recipes"], "HEAD")
    assert [e["name"] for e in out["matrix"]["include"]] == ["quickstart"]
    assert "referenced file changed" in out["matrix"]["include"][0]["reasons"][0]
    _git(repo, "commit", "-qam", "handler")
    # a catalog change for g5 only affects the g5 recipe
    inst = repo / "builder/catalog/instances.yaml"
    inst.write_text(inst.read_text().replace("A10G, kind: gpu", "A10G , kind: gpu"))  # same data
    assert plan_cmd.plan(["recipes"], "HEAD")["count"] == 0
    inst.write_text(inst.read_text().replace('compute_capability: "8.6", memory_gib: 24',
                                             'compute_capability: "8.6", memory_gib: 23'))
    out = plan_cmd.plan(["recipes"], "HEAD")
    assert [e["instance_type"] for e in out["matrix"]["include"]] == ["ml.g5.12xlarge"]
    [reason] = out["matrix"]["include"][0]["reasons"]
    assert reason.startswith("catalog entry changed: instance (") and "ml.g5.12xlarge" in reason
    _git(repo, "commit", "-qam", "g5 memory")
    # a derived fact of one release (its CUDA) affects the recipes of that release only
    derived = repo / "builder/catalog/releases.derived.yaml"
    text = derived.read_text()
    at = text.index("version: lmi-27.0.0")
    derived.write_text(text[:at] + text[at:].replace("cuda: 13.0.2", "cuda: 13.0.3", 1))
    out = plan_cmd.plan(["recipes"], "HEAD")
    assert [e["name"] for e in out["matrix"]["include"]] == ["llama3-8b-vllm-g5"]  # the lmi-27.0.0 recipe
    assert out["matrix"]["include"][0]["reasons"][0].startswith("catalog entry changed: release (")


def test_cli_bad_ref_and_bad_recipe(repo, capsys):
    from builder.cli import main

    assert main(["plan", "recipes", "--changed-since", "no-such-ref"]) == 2
    (repo / "recipes" / "broken.yaml").write_text("name: x\nmodel: {}\ncontainer: {}\n")
    assert main(["plan", "recipes"]) == 1
    err = capsys.readouterr().err
    assert "broken.yaml" in err and "Traceback" not in err
    assert main(["plan", "recipes/quickstart.yaml"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 1


def test_json_is_matrix_shaped(repo):
    out = plan_cmd.plan([str(Path("recipes") / "vllm.yaml")])
    assert set(out) == {"changed_since", "count", "matrix", "unaffected"}
    assert list(out["matrix"]) == ["include"]


def test_plan_gives_the_recipe_hash_and_no_guessed_image_tag(repo):
    """The image tag digests the model, handler and base too: plan (before fetch) says so, never guesses."""
    from builder.lmi.resolve import resolve
    from builder.recipe import load_recipe

    (entry,) = plan_cmd.plan([str(Path("recipes") / "quickstart.yaml")])["matrix"]["include"]
    assert entry["recipe_hash"] == resolve(load_recipe(Path("recipes/quickstart.yaml")).recipe).recipe_hash
    assert entry["image_tag"] is None and "quickstart:<image-digest12>" in entry["image_tag_note"]
