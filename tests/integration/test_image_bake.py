"""The docker assembler (builder.image.bake.assemble) against the real engine: file tree, properties,
labels, layer order, config-only rebuilds.

Base image: the session's ``rootfs_image`` (debootstrap + docker import, no pull), pinned by image id.
Every image made here has a per-run recipe name and is removed at teardown (only ours, by tag).
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import uuid
from pathlib import Path

import pytest

from builder import engine
from builder import labels as L
from builder.assembly import AssemblyRequest
from builder.assembly.layers import iter_entries_tar
from builder.diagnostics import BuilderError
from builder.image.bake import assemble
from builder.image.base import resolve_base
from builder.lmi.properties import dumps, loads
from builder.lmi.resolve import resolve
from builder.recipe.model import Recipe

pytestmark = pytest.mark.docker
MiB = 1 << 20
NASTY = 'q " \' \\ $HOME ${X} {{ 7*7 }} `id` RUN x'


@pytest.fixture
def base_id(docker_client, rootfs_image) -> str:
    return docker_client.images.get(rootfs_image).id


def _recipe(name: str, *, option: dict | None = None, env: dict | None = None, description: str = "") -> Recipe:
    return Recipe.model_validate({
        "name": name, "description": description, "model": {"path": "model", "entry_point": "handler/model.py"},
        "container": {"family": "dev-cpu", "version": "0.34.0"}, "target": {"instance_type": "ml.m5.xlarge"},
        "serving": {"engine": "Python", "option": {"rolling_batch": "disable", **(option or {})}},
        "env": env or {}})


def _model(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "model-00001-of-00002.safetensors").write_bytes(os.urandom(3 * MiB))
    (root / "model-00002-of-00002.safetensors").write_bytes(os.urandom(MiB))
    (root / "config.json").write_text('{"model_type": "tiny"}')
    return root


def _bake(resolved, tmp_path, client, base, made, **opts):
    handler = tmp_path / "model.py"
    if not handler.exists():
        handler.write_text("def handle(inputs):\n    return None\n")
    result = assemble(AssemblyRequest(resolved=resolved, model_dir=tmp_path / "model",
                                      model_digest="sha256:" + "e" * 64, extra_files={"model.py": handler},
                                      base_image=base, cache_dir=tmp_path / "cache", docker=client, progress=False,
                                      **opts))
    made.extend(result.tags)
    if result.artifacts_ref:
        made.insert(0, result.artifacts_ref)  # removed last: the model images depend on it
    return result


def _tree(client, image_id: str) -> dict[str, bytes]:
    container = client.containers.create(image_id, command=["true"], labels={L.MANAGED: "true", L.ROLE: "smoke"})
    try:
        stream, _ = container.get_archive("/opt/ml/model")
        data = b"".join(stream)
    finally:
        container.remove(force=True)
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar.getmembers():
            if m.isfile():
                out[m.name] = tar.extractfile(m).read()  # type: ignore[union-attr]
    return out


def test_bake_rebuild_config_only_and_no_change(docker_client, base_id, tmp_path, made):
    name = f"lmitest-{uuid.uuid4().hex[:8]}"
    model = _model(tmp_path / "model")
    resolved = resolve(_recipe(name, env={"NASTY": NASTY}, description=NASTY))
    cold = _bake(resolved, tmp_path, docker_client, base_id, made, tags=[f"{name}-extra:v1"])

    # the file tree and the baked serving.properties
    tree = _tree(docker_client, cold.image_id)
    assert set(tree) == {"model/config.json", "model/model-00001-of-00002.safetensors",
                         "model/model-00002-of-00002.safetensors", "model/model.py", "model/serving.properties"}
    assert tree["model/serving.properties"].decode() == dumps(resolved.properties)
    assert loads(tree["model/serving.properties"].decode()) == resolved.properties
    for f in model.iterdir():
        assert tree[f"model/{f.name}"] == f.read_bytes()

    # labels and config
    attrs = docker_client.api.inspect_image(cold.image_id)
    labels = attrs["Config"]["Labels"]
    assert labels[L.MANAGED] == "true" and labels[L.ROLE] == "model"
    assert labels[L.RECIPE_HASH] == resolved.recipe_hash and labels[L.RECIPE_NAME] == name
    assert json.loads(labels[L.RECIPE_JSON])["recipe"]["description"] == NASTY
    assert labels["org.opencontainers.image.base.digest"] == base_id == cold.base.digest
    assert labels[L.MODEL_DIGEST] == "sha256:" + "e" * 64 and labels[L.LMI_FAMILY] == "dev-cpu"
    assert json.loads(labels[L.SMOKE])["model_loading_timeout"] == int(resolved.properties["option.model_loading_timeout"])
    assert f"NASTY={NASTY}" in attrs["Config"]["Env"]
    assert "8080/tcp" in attrs["Config"]["ExposedPorts"]
    assert cold.identity is not None and labels[L.INPUTS_DIGEST] == cold.identity.digest
    assert set(cold.tags) == {f"{name}:{cold.identity.digest[7:19]}", f"{name}-extra:v1"}
    assert cold.base.pin == "image-id" and not cold.artifacts_image_reused

    # layer order: base layers, then weights, then config; ours are the last ones
    rootfs = attrs["RootFS"]["Layers"]
    base_layers = docker_client.api.inspect_image(base_id)["RootFS"]["Layers"]
    assert rootfs[: len(base_layers)] == base_layers
    assert rootfs[len(base_layers):] == [x.digest for x in cold.layers]
    assert [x.kind for x in cold.layers] == ["weights", "config"]  # all below the default 256 MiB split

    # it starts (host networking) and sees its model where LMI looks (§13)
    out = docker_client.containers.run(cold.image_id, entrypoint=["python3", "-c"],
                                       command=["import os;print(sorted(os.listdir('/opt/ml/model')))"],
                                       network_mode="host", remove=True, labels={L.MANAGED: "true", L.ROLE: "smoke"})
    assert b"serving.properties" in out and b"model.py" in out

    # config-only rebuild: a new image, the weights layer untouched, kilobytes sent
    changed = resolve(_recipe(name, option={"predict_timeout": 77}, env={"NASTY": NASTY}, description=NASTY))
    warm = _bake(changed, tmp_path, docker_client, base_id, made)
    assert warm.image_id != cold.image_id and warm.artifacts_image_reused
    assert warm.layers[0].digest == cold.layers[0].digest
    assert warm.layers[-1].digest != cold.layers[-1].digest
    assert warm.bytes_sent < 64 * 1024
    (digest_hits,) = [h for h in warm.cache_hits if h.startswith("file-digests:")]
    assert int(digest_hits.split(":")[1].split("/")[0]) >= 3  # every model file: stat only, not read
    assert _tree(docker_client, warm.image_id)["model/serving.properties"].decode() == dumps(changed.properties)

    # a new tag for the new inputs; the first tag still names the first image
    assert warm.tags[0] != cold.tags[0]
    assert docker_client.api.inspect_image(cold.tags[0])["Id"] == cold.image_id

    # nothing changed: the same image id (created is not the clock)
    again = _bake(changed, tmp_path, docker_client, base_id, made)
    assert again.image_id == warm.image_id and again.reused and again.bytes_sent < 64 * 1024
    assert again.identity == warm.identity

    # a tag already naming another image (here: the base, no inputs label) is never moved
    repo, _, tag = warm.tags[0].rpartition(":")
    docker_client.api.tag(base_id, repo, tag, force=True)
    with pytest.raises(BuilderError, match="refusing to move the tag"):
        _bake(changed, tmp_path, docker_client, base_id, made)
    assert docker_client.api.inspect_image(warm.tags[0])["Id"] == base_id
    docker_client.api.tag(warm.image_id, repo, tag, force=True)  # back, so the teardown removes it
    with pytest.raises(BuilderError, match="--no-cache would make a second image"):
        _bake(resolve(_recipe(name, env={"NASTY": NASTY}, description=NASTY)), tmp_path, docker_client, base_id,
              made, no_cache=True)
    assert docker_client.api.inspect_image(cold.tags[0])["Id"] == cold.image_id


def test_big_files_get_their_own_layers(docker_client, base_id, tmp_path, made):
    """Above the split threshold each weights file is its own engine layer, in plan order.

    (The engine writes owner names "root" and USTAR headers, so its diff_ids differ from
    write_layer_tar's PAX/empty-owner tars even though names, modes, mtimes and bytes agree.)"""
    name = f"lmitest-{uuid.uuid4().hex[:8]}"
    _model(tmp_path / "model")
    result = _bake(resolve(_recipe(name)), tmp_path, docker_client, base_id, made, split_threshold=2 * MiB)
    assert [(x.kind, x.files) for x in result.layers] == [("weights", 1), ("weights", 2), ("config", 2)]
    rootfs = docker_client.api.inspect_image(result.image_id)["RootFS"]["Layers"]
    assert rootfs[-3:] == [x.digest for x in result.layers] and len(set(rootfs[-3:])) == 3
    tree = _tree(docker_client, result.image_id)
    assert len(tree["model/model-00001-of-00002.safetensors"]) == 3 * MiB


def test_base_resolution_pins(docker_client, rootfs_image, base_id):
    repo = rootfs_image.rsplit(":", 1)[0]
    assert resolve_base(docker_client, base_id).pin == "image-id"
    by_id = resolve_base(docker_client, f"{repo}@{base_id}")
    assert by_id.pin == "image-id" and by_id.from_ref == base_id
    with pytest.raises(BuilderError, match="no registry digest|not pinned"):
        resolve_base(docker_client, rootfs_image)
    unpinned = resolve_base(docker_client, rootfs_image, allow_unpinned=True)
    assert unpinned.pin == "unpinned-local-id" and unpinned.from_ref == base_id
    with pytest.raises(BuilderError):
        resolve_base(docker_client, "sha256:" + "0" * 64)


def test_in_band_build_errors_raise(docker_client, base_id):
    dockerfile = f"FROM {base_id}\nRUN exit 3\n".encode()
    chunks = [b"".join(iter_entries_tar([], end=False)), _tar_file("Dockerfile", dockerfile)]
    with pytest.raises(BuilderError, match="returned a non-zero code: 3"):
        engine.build(docker_client, iter(chunks), total=len(dockerfile), what="the test image", stage="bake",
                     labels={L.MANAGED: "true", L.ROLE: "smoke"}, nocache=True)


def _tar_file(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
