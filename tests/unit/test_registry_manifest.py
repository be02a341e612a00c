"""Manifest formats of registry assembly: Docker v2 schema 2 by default, OCI on request, stored-block
gzip layers (deterministic), and refusals made before any upload (no registry, no Docker)."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import zlib

import pytest

from builder.assembly.layers import plan_layers
from builder.diagnostics import BuilderError, UsageError
from builder.registry.assemble import BaseImage, check_base_layers, check_target
from builder.registry.imageconfig import build_config
from builder.registry.layerblobs import LayerStream, StoredGzip, canonical_json
from builder.registry.manifest import (
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    OCI_CONFIG,
    OCI_LAYER_GZIP,
    FormatError,
    build_manifest,
    target_refusal,
)

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
BASE_DIGEST = "sha256:" + "b" * 64


def _gzip_stored(data: bytes, piece: int) -> bytes:
    enc = StoredGzip()
    return b"".join(enc.compress(data[i:i + piece]) for i in range(0, len(data), piece)) + enc.flush()


@pytest.mark.parametrize("size", [0, 1, 65534, 65535, 65536, 3 * 65535 + 7, (1 << 20) + 3])
def test_stored_gzip_decodes_and_does_not_depend_on_how_input_is_cut(size):
    data = os.urandom(size)
    whole = _gzip_stored(data, max(size, 1))
    assert gzip.decompress(whole) == data
    assert zlib.decompressobj(31).decompress(whole) == data  # zlib's own gzip reader, header checked
    for piece in (1 if size < 70_000 else 4093, 65535, 65536, 1 << 20):
        assert _gzip_stored(data, piece) == whole, piece  # block boundaries at fixed offsets only


def test_stored_gzip_header_has_no_mtime_no_name_and_fixed_flags():
    out = _gzip_stored(b"weights" * 1000, 4096)
    # magic, deflate, no flags (no FNAME/FEXTRA/FCOMMENT), mtime 0, XFL 0, OS 255 (unknown)
    assert out[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    assert len(out) - 7000 < 7000 // 65535 * 5 + 10 + 5 + 5 + 8 + 1  # stored: overhead only


def test_stored_gzip_bytes_are_pinned():
    """The exact bytes (RFC 1951/1952 by hand): a change here changes every image digest, so it must
    be deliberate (bump GZIP_ENCODER)."""
    import struct

    data = bytes(range(256)) * 1000  # 256,000 bytes: 3 full blocks of 65,535 and one of 59,395
    blocks = [data[i:i + 65535] for i in range(0, len(data), 65535)]
    expected = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + b"".join(
        b"\x00" + struct.pack("<HH", len(b), len(b) ^ 0xFFFF) + b for b in blocks
    ) + b"\x01\x00\x00\xff\xff" + struct.pack("<II", zlib.crc32(data), len(data))
    assert _gzip_stored(data, 1 << 20) == expected
    assert hashlib.sha256(expected).hexdigest() == "0a1309b98d956168478011998da84095476520d145af209916a678f5e2df7275"


def _layers(tmp_path):
    model = tmp_path / "m"
    model.mkdir(parents=True, exist_ok=True)
    (model / "w.safetensors").write_bytes(random.Random(5).randbytes(300_000))
    (model / "x.safetensors").write_bytes(b"\0" * 200_000)
    return plan_layers(model, None, {"serving.properties": b"engine=Python\n"}, split_threshold=100_000,
                       blob_dir=tmp_path / "b")


def _blobs(tmp_path, compression="gzip"):
    out = []
    for layer in _layers(tmp_path):
        stream = LayerStream(layer, compression)
        data = b"".join(stream)
        out.append((layer, stream.result(), data))
    return out


def test_gzip_layer_digest_is_of_the_blob_and_diff_id_of_the_tar(tmp_path):
    for _, blob, data in _blobs(tmp_path):
        tar = gzip.decompress(data)
        assert blob.digest == "sha256:" + hashlib.sha256(data).hexdigest() and blob.size == len(data)
        assert blob.diff_id == "sha256:" + hashlib.sha256(tar).hexdigest()
        assert blob.digest != blob.diff_id


def test_layer_bytes_are_the_same_for_the_same_files(tmp_path):
    first = [b for _, b, _ in _blobs(tmp_path / "a")]
    second = [b for _, b, _ in _blobs(tmp_path / "b")]  # same bytes written anew: other path, inode, mtime
    assert [(b.digest, b.diff_id, b.size) for b in first] == [(b.digest, b.diff_id, b.size) for b in second]


BASE_CFG = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["serve"]},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "d" * 64]}}
BASE_LAYER = {"mediaType": DOCKER_LAYER_GZIP, "digest": "sha256:" + "a" * 64, "size": 123}


def _manifest(tmp_path, fmt, base_layers=(BASE_LAYER,)):
    ours = _blobs(tmp_path)
    config = canonical_json(build_config(BASE_CFG, [(lay, b) for lay, b, _ in ours], labels={}, env={}))
    digest = "sha256:" + hashlib.sha256(config).hexdigest()
    body = build_manifest(list(base_layers), config, digest, [b for _, b, _ in ours], base_digest=BASE_DIGEST,
                          fmt=fmt)
    return json.loads(body), json.loads(config), ours, body


def test_docker_manifest_structure_and_config_diff_ids(tmp_path):
    manifest, config, ours, _ = _manifest(tmp_path, "docker")
    assert manifest["schemaVersion"] == 2 and manifest["mediaType"] == DOCKER_MANIFEST
    assert manifest["config"]["mediaType"] == DOCKER_CONFIG
    assert "annotations" not in manifest  # not part of schema 2
    assert manifest["layers"][0] == BASE_LAYER  # the base layer as it is
    ours_desc = manifest["layers"][1:]
    assert [d["mediaType"] for d in ours_desc] == [DOCKER_LAYER_GZIP] * len(ours)
    # the manifest lists the compressed blobs, the config the uncompressed tars, in the same order
    assert [(d["digest"], d["size"]) for d in ours_desc] == [(b.digest, b.size) for _, b, _ in ours]
    assert config["rootfs"]["diff_ids"] == BASE_CFG["rootfs"]["diff_ids"] + [b.diff_id for _, b, _ in ours]
    assert len(config["rootfs"]["diff_ids"]) == len(manifest["layers"])


def test_oci_manifest_option(tmp_path):
    manifest, _, ours, _ = _manifest(tmp_path, "oci")
    assert manifest["mediaType"] == OCI_MANIFEST and manifest["config"]["mediaType"] == OCI_CONFIG
    assert {d["mediaType"] for d in manifest["layers"]} == {OCI_LAYER_GZIP}  # the docker base layer renamed
    assert manifest["layers"][0]["digest"] == BASE_LAYER["digest"]  # same bytes, same digest
    assert manifest["annotations"]["org.opencontainers.image.base.digest"] == BASE_DIGEST


def test_same_inputs_same_manifest_other_format_other_digest(tmp_path):
    _, _, _, docker_a = _manifest(tmp_path / "1", "docker")
    _, _, _, docker_b = _manifest(tmp_path / "1", "docker")
    _, _, _, oci = _manifest(tmp_path / "1", "oci")
    assert docker_a == docker_b and docker_a != oci


def test_oci_base_layers_are_renamed_for_docker_and_zstd_is_refused(tmp_path):
    oci_base = {**BASE_LAYER, "mediaType": OCI_LAYER_GZIP}
    manifest, _, _, _ = _manifest(tmp_path, "docker", [oci_base])
    assert manifest["layers"][0]["mediaType"] == DOCKER_LAYER_GZIP
    zstd = {**BASE_LAYER, "mediaType": "application/vnd.oci.image.layer.v1.tar+zstd"}
    with pytest.raises(FormatError, match="base layer 0 .*zstd.*no Docker v2 schema 2 equivalent"):
        _manifest(tmp_path, "docker", [zstd])
    base = BaseImage(ref="127.0.0.1:1/b@" + BASE_DIGEST, digest=BASE_DIGEST, config=BASE_CFG, layers=[zstd])
    with pytest.raises(BuilderError) as err:
        check_base_layers("docker", base)
    assert "--manifest-format oci" in err.value.describe()
    check_base_layers("oci", base)  # an OCI manifest carries zstd as it is


def test_sagemaker_target_refuses_a_forced_oci_manifest():
    assert target_refusal("docker", "ml.g5.12xlarge") is None
    assert target_refusal("oci", "g5.12xlarge") is None  # EC2: no such limit known
    with pytest.raises(UsageError) as err:
        check_target("oci", "gzip", "ml.g5.12xlarge")
    text = err.value.describe()
    assert "SageMaker" in text and "aws/amazon-sagemaker-feedback#180" in text and "ml.g5.12xlarge" in text
    check_target("docker", "gzip", "ml.g5.12xlarge")


def test_uncompressed_layers_only_in_oci(tmp_path):
    with pytest.raises(UsageError, match="--manifest-format oci"):
        check_target("docker", "none", None)
    check_target("oci", "none", None)


def test_build_refuses_oci_for_a_sagemaker_recipe_before_fetch_or_upload(tmp_path, capsys):
    from builder.cli import main
    from builder.paths import REPO_DIR

    recipe = REPO_DIR / "recipes/examples/quickstart.yaml"  # target.instance_type: ml.m5.xlarge
    # port 9 (discard) on loopback: any upload attempt would fail with a connection error (exit 1), not 2
    rc = main(["build", str(recipe), "--assembler", "registry", "--registry", "127.0.0.1:9/lmi/x",
               "--manifest-format", "oci", "--cache-dir", str(tmp_path / "cache"), "--report", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "SageMaker" in err and "aws/amazon-sagemaker-feedback#180" in err and "ml.m5.xlarge" in err
    assert "fetch model" not in err and "assemble in" not in err
    assert main(["build", str(recipe), "--manifest-format", "oci", "--cache-dir", str(tmp_path / "cache")]) == 2
    assert "needs --assembler registry" in capsys.readouterr().err
