"""The docker executor, unchanged, against stand-in toolchain images (tests/equipment): exact argv,
read-only model mount, host user, device requests, no leftover containers, no GPU runtime reported."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from builder import labels as L
from builder.artifacts.sources import fetch_model
from builder.compile import compile_artifacts
from builder.compile.executors import DockerExecutor
from builder.diagnostics import BuilderError
from builder.lmi.resolve import resolve
from builder.recipe.model import Recipe
from tests.equipment.images import build_standin
from tests.support.model_fixtures import recipe_data

pytestmark = [pytest.mark.docker]
COMPILE_CONTAINERS = {"label": [f"{L.ROLE}=compile"]}


@pytest.fixture(scope="module")
def standin_images(docker_client, rootfs_image):
    ids = {"0.21.0rc1": build_standin(docker_client, rootfs_image, trtllm="0.21.0rc1"),
           "0.11.0": build_standin(docker_client, rootfs_image, trtllm="0.11.0")}
    yield ids
    for ident in ids.values():
        try:
            docker_client.images.remove(ident, force=True)
        except Exception:
            pass


def _setup(tmp_path: Path, model_dir: Path, **kw):
    data = recipe_data({"path": str(model_dir)}, family=kw.pop("family", "tensorrt-llm"),
                       version=kw.pop("version", "0.33.0"), instance=kw.pop("instance", "ml.g5.12xlarge"),
                       option=kw.pop("option", None), compile={"enabled": True, **kw})
    recipe = Recipe.model_validate(data)
    return resolve(recipe), fetch_model(recipe, tmp_path, cache_dir=tmp_path / "cache")


def _compile_containers(client) -> list:
    return client.containers.list(all=True, filters=COMPILE_CONTAINERS)


def test_trtllm_in_container(docker_client, standin_images, tiny_model_dir: Path, tmp_path: Path):
    resolved, art = _setup(tmp_path, tiny_model_dir, max_batch_size=8)
    before = len(_compile_containers(docker_client))
    res = compile_artifacts(resolved, art, standin_images["0.21.0rc1"], executor="docker", cache_dir=tmp_path / "cache",
                            docker_client=docker_client, preflight=False, accelerators="none")
    assert res.status == "compiled" and res.toolchain["tensorrt_llm"] == "0.21.0rc1"
    call = json.loads((res.dir / "standin-call.json").read_text())
    assert call["argv"] == ["--properties_dir", "/opt/ml/compile/properties", "--trt_llm_model_repo",
                            "/opt/ml/compile/output", "--tensor_parallel_degree", "4", "--pipeline_parallel_degree",
                            "1", "--model_path", "/opt/ml/compile/model"]
    assert call["model_writable"] is False  # mounted read-only
    assert (call["uid"], call["gid"]) == (os.getuid(), os.getgid())
    assert call["properties"]["option.model_id"] == "/opt/ml/compile/model"
    assert "model.safetensors" in call["model_files"] and "README.md" not in call["model_files"]
    assert json.loads((res.dir / "config.json").read_text())["build_config"]["max_batch_size"] == 8
    assert len(_compile_containers(docker_client)) == before  # nothing left behind


def test_v029_triton_layout_in_container(docker_client, standin_images, tiny_model_dir: Path, tmp_path: Path):
    resolved, art = _setup(tmp_path, tiny_model_dir, version="0.29.0")
    res = compile_artifacts(resolved, art, standin_images["0.11.0"], executor="docker", cache_dir=tmp_path / "cache",
                            docker_client=docker_client, preflight=False, accelerators="none")
    assert res.status == "compiled" and res.marker == "triton-repo"
    assert (res.dir / "tensorrt_llm" / "config.pbtxt").is_file()


def test_neuron_through_the_image_entrypoint(docker_client, standin_images, tiny_model_dir: Path, tmp_path: Path):
    resolved, art = _setup(tmp_path, tiny_model_dir, family="neuronx", version="0.29.0",
                           instance="ml.inf2.24xlarge", option={"tensor_parallel_degree": 4}, max_seq_len=256)
    res = compile_artifacts(resolved, art, standin_images["0.21.0rc1"], executor="docker", cache_dir=tmp_path / "cache",
                            docker_client=docker_client, preflight=False, accelerators="none")
    assert res.status == "compiled" and res.toolchain["neuronx_cc"] == "2.14.227.0"
    call = json.loads((res.dir / "standin-call.json").read_text())
    assert call["argv"] == ["--model-dir", "/opt/ml/compile/properties", "--skip-copy"]
    assert call["properties"]["option.save_mp_checkpoint_path"] == "/opt/ml/compile/output"
    assert (res.dir / "checkpoint").is_dir() and (res.dir / "compiled" / "graph.neff").is_file()


def test_failure_in_container_leaves_nothing(docker_client, standin_images, tiny_model_dir: Path, tmp_path: Path,
                                            monkeypatch):
    resolved, art = _setup(tmp_path, tiny_model_dir)
    before = len(_compile_containers(docker_client))
    ex_spec = DockerExecutor.spec

    def failing(self, *a, **kw):  # the stand-in fails when STANDIN_FAIL=1
        spec = ex_spec(self, *a, **kw)
        spec["environment"]["STANDIN_FAIL"] = "1"
        return spec

    monkeypatch.setattr(DockerExecutor, "spec", failing)
    with pytest.raises(BuilderError, match="exited 3"):
        compile_artifacts(resolved, art, standin_images["0.21.0rc1"], executor="docker",
                          cache_dir=tmp_path / "cache", docker_client=docker_client, preflight=False,
                          accelerators="none")
    root = tmp_path / "cache" / "compile"
    assert [p.name for p in root.iterdir() if not p.name.startswith(".")] == []
    assert list((root / ".tmp").iterdir()) == []
    assert len(_compile_containers(docker_client)) == before


def test_production_device_requests(docker_client):
    """What a GPU or Neuron target sends (the stand-in runs above use accelerators='none')."""
    import docker.types

    gpu = DockerExecutor(docker_client, "img", accelerators="gpu").device_kwargs()
    assert gpu == {"device_requests": [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])]}
    neuron = DockerExecutor(docker_client, "img", accelerators="neuron",
                            neuron_devices=["/dev/neuron0", "/dev/neuron1"]).device_kwargs()
    assert neuron == {"devices": ["/dev/neuron0:/dev/neuron0:rwm", "/dev/neuron1:/dev/neuron1:rwm"]}


def test_gpu_request_without_gpu_runtime(docker_client, standin_images, tiny_model_dir: Path, tmp_path: Path):
    """The real GPU request on an engine without the NVIDIA runtime: reported as such, container removed."""
    runtimes = docker_client.info().get("Runtimes", {})
    if "nvidia" in runtimes:
        pytest.skip("this engine has the NVIDIA runtime")
    resolved, art = _setup(tmp_path, tiny_model_dir)
    before = len(_compile_containers(docker_client))
    res = compile_artifacts(resolved, art, standin_images["0.21.0rc1"], executor="docker", cache_dir=tmp_path / "cache",
                            docker_client=docker_client, preflight=False, accelerators="auto")
    assert res.status == "skipped" and "no GPU runtime" in res.reason
    assert "could not select device driver" in res.reason
    assert len(_compile_containers(docker_client)) == before
    assert not (tmp_path / "cache" / "compile" / res.cache_key).exists()
