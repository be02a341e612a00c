"""The Docker bake plans within the layer budget using the real base's layer count.

The budget is shrunk (module constants, a 50 MiB layer limit) so that six 1.5 MiB shards on the
session's base image must share layers: the image then has exactly TOTAL_LAYERS layers, which only
holds when the bake passes the base's own count to the plan (without it the plan would allow more).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from builder.assembly import AssemblyRequest
from builder.assembly import layers as layers_mod
from builder.image.bake import assemble
from builder.lmi.resolve import resolve
from builder.recipe.model import Recipe

pytestmark = pytest.mark.docker
MiB = 1 << 20


def test_bake_groups_shards_to_fit_the_base(docker_client, rootfs_image, tmp_path: Path, made, monkeypatch):
    import builder.image.bake as bake_mod

    base_id = docker_client.images.get(rootfs_image).id
    base_count = len(docker_client.api.inspect_image(base_id)["RootFS"]["Layers"])
    monkeypatch.setattr(layers_mod, "RESERVED_BASE_LAYERS", 0)
    monkeypatch.setattr(layers_mod, "MIN_OWN_LAYERS", 2)
    monkeypatch.setattr(layers_mod, "TOTAL_LAYERS", base_count + 4)  # ours: 4 = 2 weights runs + small + config
    original = bake_mod.plan_layers
    # a 50 MiB layer limit: caps in 1 MiB steps, so 9 MiB of shards still need grouping
    monkeypatch.setattr(bake_mod, "plan_layers",
                        lambda *a, **k: original(*a, **{**k, "split_threshold": MiB, "max_layer_bytes": 50 * MiB}))

    model = tmp_path / "model"
    model.mkdir()
    for i in range(1, 7):
        (model / f"model-{i:05d}-of-00006.safetensors").write_bytes(os.urandom(3 * MiB // 2))
    (model / "config.json").write_text('{"model_type": "tiny"}')
    handler = tmp_path / "model.py"
    handler.write_text("def handle(inputs):\n    return None\n")
    recipe = Recipe.model_validate({
        "name": f"lmitest-{uuid.uuid4().hex[:8]}", "model": {"path": "model", "entry_point": "model.py"},
        "container": {"family": "dev-cpu", "version": "0.34.0"}, "target": {"instance_type": "ml.m5.xlarge"},
        "serving": {"engine": "Python", "option": {"rolling_batch": "disable"}}})
    result = assemble(AssemblyRequest(resolved=resolve(recipe), model_dir=model, model_digest="sha256:" + "e" * 64,
                                      extra_files={"model.py": handler}, base_image=base_id,
                                      cache_dir=tmp_path / "cache", docker=docker_client, progress=False))
    made.extend(result.tags)
    if result.artifacts_ref:
        made.insert(0, result.artifacts_ref)
    # 2 slots for 6 shards: 3 a layer (without the base's count the plan would allow 3 runs of 2)
    assert [(x.kind, x.files) for x in result.layers] == [("weights", 3), ("weights", 3), ("weights", 1),
                                                          ("config", 2)]
    rootfs = docker_client.api.inspect_image(result.image_id)["RootFS"]["Layers"]
    assert len(rootfs) == base_count + 4 == layers_mod.TOTAL_LAYERS
