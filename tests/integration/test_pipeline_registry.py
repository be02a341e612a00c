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


def _head(host: str, repo: str, tag: str) -> str | None:
    r = requests.head(f"http://{host}/v2/{repo}/manifests/{tag}", timeout=5, headers={
        "Accept": "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"})
    return r.headers.get("Docker-Content-Digest") if r.status_code == 200 else None


def test_registry_default_tag_is_the_image_digest_and_a_weights_swap_gets_a_new_one(local_registry, gpu_recipe,
                                                                                   tmp_path, capsys):
    """Issue 14 on the registry path: the default publish tag is <name>-<image-digest12>; swapping a weights
    file of the path: model makes a new digest and a new tag, and the first tag stays on the first image."""
    base = push_base(local_registry.host, f"base/{uuid.uuid4().hex[:8]}")
    repo = f"models/{uuid.uuid4().hex[:8]}"
    name = next(line.split(":", 1)[1].strip() for line in gpu_recipe.read_text().splitlines()
                if line.startswith("name:"))

    def build(report: Path) -> dict:
        rc = main(["build", str(gpu_recipe), "--assembler", "registry", "--registry", f"{local_registry.host}/{repo}",
                   "--base-image", base, "--cache-dir", str(tmp_path / "cache"), "--report", str(report),
                   "--smoke", "never", "--push", "--skip-smoke"])
        out = capsys.readouterr()
        assert rc == 0, out.err
        return json.loads(report.read_text())

    first = build(tmp_path / "r1.json")
    tag1 = f"{name}-{first['inputs']['image_digest'][7:19]}"
    assert [t["tag"] for t in first["published"][0]["tags"]] == [tag1]
    assert _head(local_registry.host, repo, tag1) == first["image"]["digest"]

    weights = next((tmp_path / "hf-cpu-tiny-llama/model").glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # same name and size, other bytes
    weights.write_bytes(bytes(data))
    second = build(tmp_path / "r2.json")
    tag2 = f"{name}-{second['inputs']['image_digest'][7:19]}"
    assert tag2 != tag1 and second["image"]["digest"] != first["image"]["digest"]
    assert second["inputs"]["image_inputs"]["model"] != first["inputs"]["image_inputs"]["model"]
    assert _head(local_registry.host, repo, tag2) == second["image"]["digest"]
    assert _head(local_registry.host, repo, tag1) == first["image"]["digest"]  # not moved
