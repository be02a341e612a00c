"""Layer plan and deterministic layer tars (builder/assembly/layers.py), file digest cache."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from builder.assembly.digests import FileDigestCache, layer_content_digest
from builder.assembly.layers import Layer, plan_layers, write_layer_tar
from builder.diagnostics import BuilderError

MiB = 1 << 20


def _model(root: Path, *, shards: int = 2, shard_size: int = 3 * MiB) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(1, shards + 1):
        (root / f"model-{i:05d}-of-{shards:05d}.safetensors").write_bytes(os.urandom(shard_size))
    (root / "config.json").write_text('{"model_type": "llama"}')
    (root / "tokenizer.json").write_text("{}")
    return root


def _tar(layer: Layer) -> bytes:
    buf = io.BytesIO()
    write_layer_tar(layer, buf)
    return buf.getvalue()


def test_order_split_and_root(tmp_path):
    model = _model(tmp_path / "m")
    compiled = tmp_path / "c"
    (compiled / "engines").mkdir(parents=True)
    (compiled / "engines" / "rank0.engine").write_bytes(os.urandom(2 * MiB))
    (compiled / "config.json").write_text('{"build_config": {}}')
    layers = plan_layers(model, compiled, {"serving.properties": b"engine=Python\n", "model.py": b"x=1\n"},
                         split_threshold=1 * MiB, blob_dir=tmp_path / "blobs")
    kinds = [x.kind for x in layers]
    assert kinds == ["weights", "weights", "weights", "compiled", "compiled", "config"]
    assert [x.files[0].arcname.rsplit("/", 1)[-1] for x in layers[:2]] == [
        "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    small = {e.arcname for e in layers[2].files}
    assert small == {"opt/ml/model/tokenizer.json"}  # config.json: the compiled one wins (§11.5)
    assert {e.arcname for e in layers[3].files} == {"opt/ml/model/engines/rank0.engine"}
    assert {e.arcname for e in layers[4].files} == {"opt/ml/model/config.json"}
    assert {e.arcname for e in layers[5].files} == {"opt/ml/model/model.py", "opt/ml/model/serving.properties"}
    for layer in layers:
        names = [e.arcname for e in layer.entries]
        assert names == sorted(names)
        assert all(n.startswith("opt/ml/model") or n in ("opt", "opt/ml") for n in names)
        assert {"opt", "opt/ml", "opt/ml/model"} <= set(names)
        assert all(not n.startswith("/") for n in names)
    assert len({x.name for x in layers}) == len(layers)


def test_small_files_grouped_below_threshold(tmp_path):
    layers = plan_layers(_model(tmp_path / "m"), None, {"serving.properties": b"a=b\n"}, blob_dir=tmp_path / "b")
    assert [x.kind for x in layers] == ["weights", "config"]
    assert len(layers[0].files) == 4


def test_tar_is_deterministic_and_normalised(tmp_path):
    model = _model(tmp_path / "m", shards=1, shard_size=2 * MiB)
    layers = plan_layers(model, None, {"serving.properties": b"a=b\n"}, split_threshold=MiB, blob_dir=tmp_path / "b")
    first = [_tar(x) for x in layers]
    # new mtimes, a different umask-style mode in the same class, a fresh plan: same bytes
    for f in model.iterdir():
        os.utime(f, (1_000_000, 1_000_000))
        f.chmod(0o600)
    again = plan_layers(model, None, {"serving.properties": b"a=b\n"}, split_threshold=MiB, blob_dir=tmp_path / "b2")
    assert [_tar(x) for x in again] == first
    with tarfile.open(fileobj=io.BytesIO(first[0])) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["opt", "opt/ml", "opt/ml/model",
                                         "opt/ml/model/model-00001-of-00001.safetensors"]
    for m in members:
        assert (m.uid, m.gid, m.uname, m.gname, m.mtime) == (0, 0, "", "", 0)
        assert m.mode == (0o755 if m.isdir() else 0o644)


def test_unchanged_file_keeps_its_layer_bytes(tmp_path):
    model = _model(tmp_path / "m")
    before = [_tar(x) for x in plan_layers(model, None, {"serving.properties": b"a=1\n"}, split_threshold=MiB,
                                           blob_dir=tmp_path / "b")]
    (model / "config.json").write_text('{"model_type": "mistral"}')
    after = plan_layers(model, None, {"serving.properties": b"a=2\n"}, split_threshold=MiB, blob_dir=tmp_path / "b")
    assert before[0] == _tar(after[0]) and before[1] == _tar(after[1])  # the shards
    assert before[2] != _tar(after[2])  # small files changed
    assert before[3] != _tar(after[3])  # config changed


def test_executable_mode_and_hidden_files(tmp_path):
    model = _model(tmp_path / "m", shards=1, shard_size=10)
    (model / "run.sh").write_text("#!/bin/sh\n")
    (model / "run.sh").chmod(0o700)
    (model / ".gitattributes").write_text("x")
    (model / ".cache").mkdir()
    (model / ".cache" / "lock").write_text("x")
    layers = plan_layers(model, None, {}, blob_dir=tmp_path / "b")
    entries = {e.arcname: e for e in layers[0].entries}
    assert entries["opt/ml/model/run.sh"].mode == 0o755
    assert not any(".git" in n or ".cache" in n for n in entries)


def test_symlinked_files_followed_symlinked_dirs_refused(tmp_path):
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    (blobs / "abc").write_bytes(b"weights")
    snap = tmp_path / "snap"
    snap.mkdir()
    (snap / "model.safetensors").symlink_to(blobs / "abc")  # the Hub cache layout
    layers = plan_layers(snap, None, {}, blob_dir=tmp_path / "b")
    (entry,) = layers[0].files
    assert entry.source == (blobs / "abc").resolve() and entry.size == 7
    (snap / "sub").symlink_to(blobs, target_is_directory=True)
    with pytest.raises(BuilderError, match="symbolic link to a folder"):
        plan_layers(snap, None, {}, blob_dir=tmp_path / "b")


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "a/../../b", "", "a\nb", "a\\b"])
def test_config_names_cannot_escape(tmp_path, name):
    with pytest.raises(BuilderError):
        plan_layers(None, None, {name: b"x"}, blob_dir=tmp_path)


def test_config_folder_form(tmp_path):
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "serving.properties").write_text("engine=Python\n")
    (layer,) = plan_layers(None, None, cfg)
    assert [e.arcname for e in layer.files] == ["opt/ml/model/serving.properties"]


def test_file_changed_size_during_pack_is_an_error(tmp_path):
    model = _model(tmp_path / "m", shards=1, shard_size=10)
    layers = plan_layers(model, None, {}, blob_dir=tmp_path / "b")
    (model / "config.json").write_text("much longer than it was when the plan was made")
    with pytest.raises(BuilderError, match="changed size"):
        _tar(layers[0])


def test_digest_cache_hashes_each_file_once(tmp_path):
    model = _model(tmp_path / "m", shards=2, shard_size=MiB)
    layers = plan_layers(model, None, {"serving.properties": b"a\n"}, split_threshold=MiB // 2, blob_dir=tmp_path / "b")
    cache = FileDigestCache(tmp_path / "cache")
    first = [layer_content_digest(x, cache) for x in layers]
    cache.save()
    assert cache.hits == [] and len(cache.misses) == 5
    again = FileDigestCache(tmp_path / "cache")  # a new process: reads the table
    assert [layer_content_digest(x, again) for x in layers] == first
    assert again.misses == [] and len(again.hits) == 5
    shard = model / "model-00001-of-00002.safetensors"
    expected = "sha256:" + hashlib.sha256(shard.read_bytes()).hexdigest()
    assert again.digest(shard) == expected
    shard.write_bytes(os.urandom(MiB))  # same size, new mtime: must be hashed again
    changed = FileDigestCache(tmp_path / "cache")
    assert layer_content_digest(layers[0], changed) != first[0]
    assert changed.misses == [str(shard)]


def test_content_digest_tracks_tar_identity(tmp_path):
    model = _model(tmp_path / "m", shards=1, shard_size=100)
    a = plan_layers(model, None, {}, blob_dir=tmp_path / "b")[0]
    b = plan_layers(model, None, {}, blob_dir=tmp_path / "b")[0]
    cache = FileDigestCache(tmp_path / "c")
    assert layer_content_digest(a, cache) == layer_content_digest(b, cache)
    (model / "extra.txt").write_text("x")
    c = plan_layers(model, None, {}, blob_dir=tmp_path / "b")[0]
    assert layer_content_digest(c, cache) != layer_content_digest(a, cache)
