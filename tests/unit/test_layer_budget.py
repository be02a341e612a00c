"""Layer budget (builder/assembly/layers.py): grouping within the overlay's layer limit and ECR's layer size."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from builder.assembly.layers import (
    MAX_LAYER_BYTES,
    MIN_OWN_LAYERS,
    OVERLAY_MAX_LAYERS,
    TOTAL_LAYERS,
    GiB,
    LayerLimitError,
    own_layer_budget,
    plan_groups,
    plan_layers,
)

MiB = 1 << 20
CONFIG = {"serving.properties": 120}


def _shards(n: int, size: int, stem: str = "model") -> dict[str, int]:
    return {f"{stem}-{i:05d}-of-{n:05d}.safetensors": size for i in range(1, n + 1)}


def _small() -> dict[str, int]:
    return {"config.json": 900, "tokenizer.json": 9 * MiB, "tokenizer_config.json": 4000,
            "generation_config.json": 200, "model.safetensors.index.json": 60_000}


def test_190_shards_of_4_gib_on_a_60_layer_base_fit_the_budget():
    model = {**_shards(190, 4 * GiB), **_small()}
    plan = plan_groups(model, {}, CONFIG, base_layers=60)
    assert 60 + len(plan) <= TOTAL_LAYERS < OVERLAY_MAX_LAYERS
    assert len(plan) > 8  # grouped, not squashed into a handful
    sizes = {**model, **CONFIG}
    assert all(sum(sizes[f] for f in g.files) <= MAX_LAYER_BYTES for g in plan)
    # every file exactly once; shards in name order, each layer a consecutive run of them
    flat = [f for g in plan for f in g.files]
    assert sorted(flat) == sorted(sizes)
    shards = [f for g in plan for f in g.files if f.startswith("model-0")]
    assert shards == sorted(_shards(190, 1))
    # the small files share one layer, the configuration is the last layer on its own
    assert set(plan[-2].files) == set(_small())
    assert plan[-1].kind == "config" and plan[-1].files == ("serving.properties",)
    # one file per layer would have been 192 layers: the old plan, which the overlay refuses
    assert len(model) + 1 + 60 > OVERLAY_MAX_LAYERS


@pytest.mark.parametrize("base", [None, 0, 12, 45, 60, 80, 100, 112])
def test_any_base_within_the_overlay_limit(base):
    model = _shards(64, 2 * GiB)
    plan = plan_groups(model, {}, CONFIG, base_layers=base)
    assert (base or 0) + len(plan) <= max(TOTAL_LAYERS, (base or 0) + MIN_OWN_LAYERS) <= OVERLAY_MAX_LAYERS


def test_budget_figures():
    assert own_layer_budget(None) == own_layer_budget(60) == TOTAL_LAYERS - 60
    assert own_layer_budget(20) == own_layer_budget(60)  # a smaller base does not regroup the weights
    assert own_layer_budget(90) == 30
    assert own_layer_budget(118) == MIN_OWN_LAYERS
    with pytest.raises(LayerLimitError, match="125 layers"):
        own_layer_budget(125)


def test_few_large_files_keep_one_layer_each():
    plan = plan_groups({**_shards(4, 5 * GiB), **_small()}, {}, CONFIG, base_layers=60)
    assert [len(g.files) for g in plan] == [1, 1, 1, 1, len(_small()), 1]
    assert plan[0].name == "00-weights-model-00001-of-00004.safetensors"


def test_file_larger_than_a_layer_is_an_error_naming_it_and_the_limit():
    model = {**_shards(2, 4 * GiB), "consolidated.pth": MAX_LAYER_BYTES + 1}
    with pytest.raises(LayerLimitError) as exc:
        plan_groups(model, {}, CONFIG)
    assert exc.value.file == "consolidated.pth"
    assert "consolidated.pth" in str(exc.value) and "51,200 MiB" in str(exc.value) and f"{MAX_LAYER_BYTES + 1:,} bytes" in str(exc.value)
    assert plan_groups({"x.bin": MAX_LAYER_BYTES}, {}, CONFIG)  # at the limit: fits


def test_model_too_large_for_the_budget_is_an_error():
    with pytest.raises(LayerLimitError, match="do not fit in the"):
        plan_groups(_shards(100, 40 * GiB), {}, CONFIG, base_layers=60)  # 4 TB > 58 layers x 50 GiB


def test_grouping_is_deterministic_and_independent_of_dict_order():
    model = {**_shards(150, 3 * GiB + 7), **_shards(12, 1 * GiB, stem="original/consolidated"), **_small()}
    first = plan_groups(model, {}, CONFIG, base_layers=60)
    shuffled = dict(reversed(list(model.items())))
    assert plan_groups(shuffled, {}, CONFIG, base_layers=60) == first
    assert plan_groups(dict(model), {}, CONFIG, base_layers=60) == first
    # one family per layer where the budget allows: no layer mixes two checkpoints
    for g in first:
        if g.kind == "weights" and len(g.files) > 1 and g.files[0].endswith(".safetensors"):
            assert len({f.split("-")[0] for f in g.files}) == 1, g.files


def test_natural_order_keeps_unpadded_shards_consecutive():
    model = {f"pytorch_model-{i}.bin": 1 * GiB for i in range(1, 200)}
    plan = plan_groups(model, {}, CONFIG, base_layers=60)
    order = [int(f.split("-")[1].split(".")[0]) for g in plan[:-1] for f in g.files]
    assert order == list(range(1, 200))


def test_config_only_change_touches_one_layer():
    model = {**_shards(190, 4 * GiB), **_small()}
    before = plan_groups(model, {}, {"serving.properties": 120}, base_layers=60)
    after = plan_groups(model, {}, {"serving.properties": 4000, "model.py": 900}, base_layers=60)
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert changed == [len(before) - 1]


def test_changed_shard_bytes_touch_only_its_layer(tmp_path: Path):
    """Same names and sizes: the plan is the same, so a rewritten shard changes only the layer it is in."""
    root = tmp_path / "m"
    root.mkdir()
    for i in range(1, 13):
        (root / f"model-{i:05d}-of-00012.safetensors").write_bytes(os.urandom(1000))
    (root / "config.json").write_text("{}")
    args = dict(split_threshold=500, blob_dir=tmp_path / "b", base_layers=114, max_layer_bytes=50 * 1000)
    first = plan_layers(root, None, {"serving.properties": b"a=1\n"}, **args)
    assert len(first) == MIN_OWN_LAYERS and len(first[0].files) > 1  # 12 shards grouped into 6 slots
    (root / "model-00005-of-00012.safetensors").write_bytes(os.urandom(1000))
    again = plan_layers(root, None, {"serving.properties": b"a=1\n"}, **args)
    assert [x.name for x in again] == [x.name for x in first]
    assert [[e.arcname for e in x.entries] for x in again] == [[e.arcname for e in x.entries] for x in first]


def test_small_files_over_the_layer_limit_split_too():
    small = {f"part-{i:03d}.bin": 200 * MiB for i in range(30)}  # 6000 MiB under a 256 MiB threshold
    plan = plan_groups(small, {}, CONFIG, max_layer_bytes=2000 * MiB)
    assert [g.kind for g in plan] == ["weights"] * 3 + ["config"]
    assert all(sum(small[f] for f in g.files) <= 2000 * MiB for g in plan[:-1])
    assert [g.name for g in plan[:-1]] == ["00-weights-files", "01-weights-files-2", "02-weights-files-3"]


def test_compiled_and_weights_share_the_budget():
    plan = plan_groups(_shards(100, 2 * GiB), _shards(100, 1 * GiB, stem="rank"), CONFIG, base_layers=60)
    assert len(plan) <= TOTAL_LAYERS - 60
    kinds = [g.kind for g in plan]
    assert kinds == sorted(kinds, key=["weights", "compiled", "config"].index)
    assert {f for g in plan if g.kind == "compiled" for f in g.files} == set(_shards(100, 1, stem="rank"))


@pytest.mark.parametrize("names", [["a01.bin", "a1.bin", "a001.bin"], ["x²-1.bin", "x²-2.bin", "²"]])
def test_natural_order_ties_and_odd_digits_are_deterministic(names):
    files = {n: 300 * MiB for n in names}
    plans = {tuple(g.files for g in plan_groups({n: files[n] for n in order}, {}, CONFIG,
                                                base_layers=118, max_layer_bytes=1000 * MiB)[:-1])
             for order in (names, names[::-1], names[1:] + names[:1])}
    assert len(plans) == 1 and sorted(f for run in plans.pop() for f in run) == sorted(files)
