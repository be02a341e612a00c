"""Unit tests for registry assembly pieces (no registry, no Docker)."""

from __future__ import annotations

import hashlib
import io
import tarfile

import pytest

from builder.assembly.layers import plan_layers
from builder.diagnostics import UsageError
from builder.registry.imageconfig import EPOCH, build_config
from builder.registry.layerblobs import LayerStream, layer_key
from builder.registry.reference import parse


def test_parse_references():
    r = parse("127.0.0.1:5000/lmi/tiny:v1@sha256:" + "a" * 64)
    assert (r.host, r.repo, r.tag, r.digest) == ("127.0.0.1:5000", "lmi/tiny", "v1", "sha256:" + "a" * 64)
    assert parse("localhost/x").reference == "latest"
    for bad in ("tiny", "127.0.0.1:5000/Upper", "host.io/x@sha256:12"):
        with pytest.raises(UsageError):
            parse(bad)


def _layers(tmp_path, props: bytes = b"engine=Python\n"):
    model = tmp_path / "m"
    model.mkdir(exist_ok=True)
    (model / "w.safetensors").write_bytes(b"\1" * 5000)
    return plan_layers(model, None, {"serving.properties": props}, split_threshold=1000, blob_dir=tmp_path / "b")


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_layer_stream_digests_match_bytes_and_are_stable(tmp_path, compression):
    layer = _layers(tmp_path)[0]
    s1 = LayerStream(layer, compression)
    data = b"".join(s1)
    blob = s1.result()
    assert blob.digest == "sha256:" + hashlib.sha256(data).hexdigest() and blob.size == len(data)
    raw = data if compression == "none" else __import__("gzip").decompress(data)
    assert blob.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        names = tar.getnames()
        assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 for m in tar.getmembers())
    assert names == sorted(names) and "opt/ml/model/w.safetensors" in names
    s2 = LayerStream(layer, compression)
    assert b"".join(s2) == data


def test_layer_key_changes_with_file_identity_not_with_reads(tmp_path):
    layers = _layers(tmp_path)
    k1 = layer_key(layers[0], "none")
    assert layer_key(layers[0], "none") == k1 and layer_key(layers[0], "gzip") != k1
    (tmp_path / "m" / "w.safetensors").write_bytes(b"\2" * 5000)
    assert layer_key(_layers(tmp_path)[0], "none") != k1
    # the config layer's source is content-addressed: other content, other key
    assert layer_key(_layers(tmp_path, b"engine=MPI\n")[-1], "none") != layer_key(layers[-1], "none")


def test_config_keeps_base_and_adds_ours(tmp_path):
    base = {"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
            "config": {"Entrypoint": ["/e"], "Cmd": ["c"], "Env": ["PATH=/bin", "A=1"], "WorkingDir": "/w",
                       "ExposedPorts": {"8080/tcp": {}}, "Labels": {"b": "1"}},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:base"]}, "history": [{"created_by": "base"}]}
    layers = _layers(tmp_path)
    blobs = []
    for layer in layers:
        s = LayerStream(layer, "none")
        b"".join(s)
        blobs.append((layer, s.result()))
    cfg = build_config(base, blobs, labels={"l": "2"}, env={"A": "9", "Z": "z"})
    inner = cfg["config"]
    assert inner["Entrypoint"] == ["/e"] and inner["Cmd"] == ["c"] and inner["WorkingDir"] == "/w"
    assert inner["Env"] == ["PATH=/bin", "A=9", "Z=z"] and inner["Labels"] == {"b": "1", "l": "2"}
    assert cfg["rootfs"]["diff_ids"] == ["sha256:base"] + [b.diff_id for _, b in blobs]
    assert len(cfg["history"]) == 1 + len(layers) and cfg["created"] == EPOCH
    assert base["config"]["Labels"] == {"b": "1"}  # the base's config is not mutated
