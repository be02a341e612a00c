"""`lmi-build build --assembler registry` for a GPU target on a host without GPUs (or without an engine).

The image is assembled in a real local registry with no daemon involved; the smoke stage is
SKIPPED with the reason before anything is pulled, and `--push` then refuses to move a tag,
because only an image that passed its smoke test is published.
"""

from __future__ import annotations

import glob
import json
import shutil
import uuid
from pathlib import Path

import pytest
import requests

from builder.cli import main
from builder.paths import REPO_DIR
from tests.integration.test_assemble_registry import push_base

pytestmark = [pytest.mark.registry]


@pytest.fixture
def gpu_recipe(tmp_path: Path) -> Path:
    """A copy of the local-folder vLLM example (g5, GPU) under a unique name."""
    src = REPO_DIR / "recipes/examples"
    shutil.copytree(src / "hf-cpu-tiny-llama/model", tmp_path / "hf-cpu-tiny-llama/model")
    name = f"reg-test-{uuid.uuid4().hex[:8]}"
    text = (src / "local-folder-vllm-g5.yaml").read_text().replace("name: tiny-llama-local-vllm-g5", f"name: {name}")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(text)
    return recipe


def _tags(host: str, repo: str) -> list[str]:
    r = requests.get(f"http://{host}/v2/{repo}/tags/list", timeout=5)
    return (r.json().get("tags") or []) if r.status_code == 200 else []


@pytest.mark.skipif(bool(glob.glob("/dev/nvidia[0-9]*")), reason="this host has NVIDIA GPUs")
@pytest.mark.parametrize("engine", ["present", "absent"])
def test_gpu_target_is_assembled_smoke_skipped_and_not_published(local_registry, gpu_recipe, tmp_path,
                                                                  monkeypatch, capsys, engine):
    if engine == "absent":
        monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")  # no daemon at all
    base = push_base(local_registry.host, f"base/{uuid.uuid4().hex[:8]}")
    repo = f"models/{uuid.uuid4().hex[:8]}"
    report = tmp_path / "record.json"
    rc = main(["build", str(gpu_recipe), "--assembler", "registry", "--registry", f"{local_registry.host}/{repo}",
               "--base-image", base, "--cache-dir", str(tmp_path / "cache"), "--report", str(report), "--push"])
    out = capsys.readouterr()
    record = json.loads(report.read_text())
    stages = {s["name"]: s for s in record["stages"]}

    assert stages["bake"]["status"] in ("passed", "cached")
    assert record["image"]["reference"].startswith(f"{local_registry.host}/{repo}@sha256:")
    assert stages["smoke"]["status"] == "skipped"
    expected = "no Docker engine" if engine == "absent" else "NVIDIA GPUs"
    assert expected in stages["smoke"]["reason"]
    # publish refuses an image that did not pass its smoke test, and moves no tag
    assert rc == 1 and record["failed_stage"] == "publish"
    assert "smoke" in (out.err + out.out)
    assert _tags(local_registry.host, repo) == []


@pytest.mark.skipif(bool(glob.glob("/dev/nvidia[0-9]*")), reason="this host has NVIDIA GPUs")
def test_smoke_always_fails_where_the_target_cannot_run(local_registry, gpu_recipe, tmp_path, capsys):
    base = push_base(local_registry.host, f"base/{uuid.uuid4().hex[:8]}")
    rc = main(["build", str(gpu_recipe), "--assembler", "registry", "--registry",
               f"{local_registry.host}/models/{uuid.uuid4().hex[:8]}", "--base-image", base,
               "--cache-dir", str(tmp_path / "cache"), "--report", str(tmp_path / "r.json"), "--smoke", "always"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "smoke" in err and "NVIDIA GPUs" in err
