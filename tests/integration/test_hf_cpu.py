"""The HF-accelerate handler on CPU: the dev-cpu hf variant serves a tiny random Llama (docs/hf-cpu.md).

Opt-in: the variant is about 1.3 GB and takes minutes to make (debootstrap trixie + python3-torch), so
this runs only with ``LMI_BUILD_HF_CPU=1``; otherwise, or when the packages cannot be had, it is
SKIPPED with the reason. Real parts only: Debian's torch, transformers from PyPI, LMI's own
``djl_python.huggingface`` (0.34.0), the pipeline's bake and smoke stages.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import pytest

from builder import labels as L
from builder.cli import main
from builder.diagnostics import BuilderError
from builder.examples.tiny_llama import write_tiny_llama
from builder.paths import REPO_DIR
from tests.support.docker_fixtures import image_tags, remove_images_made_since

pytestmark = [pytest.mark.docker, pytest.mark.timeout(3600)]

if os.environ.get("LMI_BUILD_HF_CPU") != "1":
    pytest.skip("the dev-cpu hf variant is about 1.3 GB and minutes to build: set LMI_BUILD_HF_CPU=1 to run",
                allow_module_level=True)


@pytest.fixture(scope="module")
def hf_runtime(docker_client):
    from builder.runtime.hf import ensure_hf_runtime

    try:
        # the default cache, so the variant (and its wheels) is made once per machine, like dev-cpu's
        return ensure_hf_runtime(client=docker_client)
    except BuilderError as exc:
        pytest.skip(f"cannot build the dev-cpu hf variant (torch/transformers cannot be had here): "
                    f"{exc.describe()}")


@pytest.fixture
def recipe(tmp_path: Path, docker_client):
    src = REPO_DIR / "recipes/examples"
    work = tmp_path / "recipes"
    write_tiny_llama(work / "hf-cpu-tiny-llama/model")
    name = f"hf-cpu-test-{uuid.uuid4().hex[:8]}"
    text = (src / "hf-cpu-tiny-llama.yaml").read_text().replace("name: hf-cpu-tiny-llama", f"name: {name}")
    path = work / "hf-cpu-tiny-llama.yaml"
    path.write_text(text)
    before = image_tags(docker_client)
    yield path
    remove_images_made_since(docker_client, before, (name, "lmi-build/artifacts:"))
    shutil.rmtree(work, ignore_errors=True)


def test_runtime_variant_is_cached_and_labelled(hf_runtime, docker_client):
    from builder.runtime.hf import ensure_hf_runtime

    again = ensure_hf_runtime(client=docker_client)
    assert again.built is False and again.image_id == hf_runtime.image_id
    labels = docker_client.images.get(hf_runtime.ref).labels
    assert labels[L.MANAGED] == "true" and labels[f"{L.NS}.runtime.variant"] == "hf"
    assert labels[L.INPUTS_DIGEST] == hf_runtime.inputs_digest


def test_hf_handler_generates_text_through_the_pipeline(hf_runtime, recipe, tmp_path, capsys):
    report = tmp_path / "report.json"
    # no --base-image: the pipeline picks the hf variant itself for djl_python.huggingface
    rc = main(["build", str(recipe), "--cache-dir", str(tmp_path / "cache"), "--report", str(report)])
    out = capsys.readouterr()
    record = json.loads(report.read_text())
    stages = {s["name"]: s for s in record["stages"]}
    assert stages["bake"]["status"] == "passed", out.out + out.err
    smoke = stages["smoke"]
    checks = {c["name"]: c for c in (smoke.get("details") or {}).get("checks", [])}
    assert checks.get("ready", {}).get("ok"), out.out + out.err
    # the non-streaming answer is the HF handler's list form with the generated text (§19)
    assert checks.get("generate", {}).get("ok"), out.out + out.err
    assert "list form" in checks["generate"]["detail"] and "the model can run on cpu" in checks["generate"]["detail"]
    metrics = smoke["details"].get("metrics") or {}
    print(json.dumps({"checks": checks, "metrics": metrics, "seconds": smoke.get("seconds")}, indent=2))
    assert stages["runtime"]["details"]["image_id"] == hf_runtime.image_id
    # LMI's HF handler with rolling_batch=disable does not stream per request (§6): not asked to
    assert checks["generate-stream"]["detail"].startswith("not run:")
    assert rc == 0 and smoke["status"] == "passed", out.out + out.err
