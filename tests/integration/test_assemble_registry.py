"""Registry-native assembly against Debian's docker-registry on 127.0.0.1 (no Docker daemon needed).

The base image is made directly in the registry with our own client (a layer tar + config +
manifest), so these tests need neither an engine nor a pull.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import threading
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from builder.diagnostics import BuilderError
from builder.registry import assemble_in_registry, move_tag
from builder.registry.client import DOCKER_MANIFEST, RegistryClient, RegistryCredentials

pytestmark = pytest.mark.registry

BASE_ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"]


def push_base(host: str, repo: str, tag: str = "base", creds=None, payload: bytes = b"") -> str:
    """A docker-v2 base image (one gzip layer) written straight into the registry; returns HOST/REPO@digest."""
    client = RegistryClient(host, creds, stage="test")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (("etc/base-release", b"tiny base\n"), ("usr/bin/serve", b"#!/bin/sh\necho hi\n"),
                           ("opt/payload.bin", payload)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755 if "bin/" in name else 0o644
            tar.addfile(info, io.BytesIO(data))
    diff = raw.getvalue()
    blob = gzip.compress(diff, mtime=0)
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    client.upload_bytes(repo, digest, blob)
    config = {"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
              "config": {"Entrypoint": ["/usr/bin/serve"], "Cmd": ["serve"], "Env": BASE_ENV,
                         "WorkingDir": "/opt/ml", "ExposedPorts": {"8080/tcp": {}},
                         "Labels": {"base.label": "kept"}},
              "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(diff).hexdigest()]},
              "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "test base"}]}
    cfg = json.dumps(config).encode()
    cfg_digest = "sha256:" + hashlib.sha256(cfg).hexdigest()
    client.upload_bytes(repo, cfg_digest, cfg)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
                           "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                                      "digest": cfg_digest, "size": len(cfg)},
                           "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                                       "digest": digest, "size": len(blob)}]}).encode()
    return f"{host}/{repo}@{client.put_manifest(repo, tag, manifest, DOCKER_MANIFEST)}"


def make_resolved(tmp: Path, option: dict | None = None):
    from builder.lmi.resolve import resolve
    from builder.recipe.model import Recipe

    data = {"name": "tiny", "model": {"path": "model"}, "container": {"family": "dev-cpu", "version": "0.34.0"},
            "target": {"instance_type": "ml.m5.xlarge"},
            "serving": {"engine": "Python", "option": {"rolling_batch": "disable", **(option or {})}}}
    return resolve(Recipe.model_validate(data))


def make_model(folder: Path, shards: int = 2, size: int = 300_000, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rnd = __import__("random").Random(seed)
    for k in range(shards):
        (folder / f"model-{k + 1:05d}-of-{shards:05d}.safetensors").write_bytes(rnd.randbytes(size))
    (folder / "config.json").write_text('{"model_type": "tiny"}\n')
    return folder


def fetch_image(host: str, ref: str, creds=None) -> tuple[dict, dict, dict[str, tuple[int, int, str]]]:
    """(manifest, config, filesystem {path: (mode, size, sha256)}) of an image, read from the registry."""
    repo, _, digest = ref.split("/", 1)[1].partition("@")
    client = RegistryClient(host, creds, stage="test")
    body, _, got = client.get_manifest(repo, digest)
    assert got == digest
    manifest = json.loads(body)
    config = json.loads(client.get_blob(repo, manifest["config"]["digest"]).content)
    files: dict[str, tuple[int, int, str]] = {}
    for desc in manifest["layers"]:
        data = client.get_blob(repo, desc["digest"]).content
        assert "sha256:" + hashlib.sha256(data).hexdigest() == desc["digest"]
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            for m in tar.getmembers():
                content = tar.extractfile(m).read() if m.isfile() else b""
                # permission bits only: docker's tar headers also carry the file-type bits (0o40755)
                files[m.name.rstrip("/")] = (m.mode & 0o7777, m.size, hashlib.sha256(content).hexdigest())
    return manifest, config, files


def _assemble(reg_host: str, tmp: Path, base: str, model: Path, cache: Path, **kw):
    return assemble_in_registry(kw.pop("resolved", None) or make_resolved(tmp), registry=f"{reg_host}/lmi/tiny",
                                base_ref=base, model_dir=model, compiled_dir=None, extra_files={},
                                credentials=kw.pop("credentials", None), cache_dir=cache, **kw)


def test_assembled_image_has_base_and_our_layers(local_registry, tmp_path):
    base = push_base(local_registry.host, "base/tiny")
    model = make_model(tmp_path / "model")
    res = _assemble(local_registry.host, tmp_path, base, model, tmp_path / "cache", split_threshold=100_000)
    assert res.reference == f"{local_registry.host}/lmi/tiny@{res.digest}"
    kinds = [layer.kind for layer in res.layers]
    assert kinds == ["base", "weights", "weights", "weights", "config"]  # 2 shards, small files, config
    assert res.layers[0].mounted  # same registry: cross-repo mount, no bytes
    manifest, config, files = fetch_image(local_registry.host, res.reference)
    assert len(manifest["layers"]) == 5
    inner = config["config"]
    assert inner["Entrypoint"] == ["/usr/bin/serve"] and inner["Cmd"] == ["serve"]
    assert inner["WorkingDir"] == "/opt/ml" and inner["ExposedPorts"] == {"8080/tcp": {}}
    assert inner["Labels"]["base.label"] == "kept"
    assert inner["Labels"]["dev.lmi-builder.recipe.hash"] == make_resolved(tmp_path).recipe_hash
    assert len(config["history"]) == 5 and len(config["rootfs"]["diff_ids"]) == 5
    props = files["opt/ml/model/serving.properties"]
    assert props[0] == 0o644
    assert files["opt/ml/model/model-00001-of-00002.safetensors"][1] == 300_000
    assert "etc/base-release" in files
    assert res.inputs["base"]["manifest_digest"] == base.split("@")[1]


def test_config_only_change_uploads_only_config(local_registry, tmp_path):
    base = push_base(local_registry.host, "base/tiny2")
    model = make_model(tmp_path / "model", size=2_000_000)
    cache = tmp_path / "cache"
    first = _assemble(local_registry.host, tmp_path, base, model, cache)
    again = _assemble(local_registry.host, tmp_path, base, model, cache)
    assert again.digest == first.digest and again.bytes_uploaded == 0
    changed = _assemble(local_registry.host, tmp_path, base, model, cache,
                        resolved=make_resolved(tmp_path, {"model_loading_timeout": 61}))
    assert changed.digest != first.digest
    uploaded = [layer.name for layer in changed.layers if layer.uploaded]
    assert uploaded == [changed.layers[-1].name] and changed.layers[-1].kind == "config"
    assert changed.bytes_uploaded < 64 * 1024


def test_one_changed_shard_reuploads_only_itself(local_registry, tmp_path):
    base = push_base(local_registry.host, "base/tiny3")
    model = make_model(tmp_path / "model", shards=3, size=400_000)
    cache = tmp_path / "cache"
    _assemble(local_registry.host, tmp_path, base, model, cache, split_threshold=100_000)
    shard = model / "model-00002-of-00003.safetensors"
    shard.write_bytes(os.urandom(400_000))
    res = _assemble(local_registry.host, tmp_path, base, model, cache, split_threshold=100_000)
    uploaded = [layer.name for layer in res.layers if layer.uploaded]
    assert len(uploaded) == 1 and "00002" in uploaded[0]


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_reproducible_digest_from_scratch(restartable_registry, tmp_path, compression):
    """Two builds from scratch (empty registry, empty cache, model files written anew) -> same digest."""
    import shutil

    digests = []
    for i in range(2):
        restartable_registry.stop()
        shutil.rmtree(restartable_registry.root / "data", ignore_errors=True)
        restartable_registry.start()
        base = push_base(restartable_registry.host, "base/repro")
        model = make_model(tmp_path / f"model{i}", seed=7)  # same bytes, other path/inode/mtime
        res = _assemble(restartable_registry.host, tmp_path, base, model, tmp_path / f"cache-{i}",
                        compression=compression)
        assert res.bytes_uploaded > 0
        digests.append(res.digest)
    assert digests[0] == digests[1]


def test_base_streamed_across_registries_then_skipped(local_registry, restartable_registry, tmp_path):
    base = push_base(local_registry.host, "base/elsewhere", payload=os.urandom(200_000))
    model = make_model(tmp_path / "model")
    target = restartable_registry.host
    first = _assemble(target, tmp_path, base, model, tmp_path / "cache")
    assert first.layers[0].uploaded and first.layers[0].bytes_uploaded == first.layers[0].size
    second = _assemble(target, tmp_path, base, model, tmp_path / "cache")
    assert second.layers[0].skipped and second.bytes_uploaded == 0
    _, _, files = fetch_image(target, first.reference)
    assert files["opt/payload.bin"][1] == 200_000


def test_registry_killed_mid_upload_then_rerun_resumes(restartable_registry, fault_proxy, tmp_path):
    proxy = fault_proxy(throttle_bps=4_000_000)
    base = push_base(restartable_registry.host, "base/kill")
    model = make_model(tmp_path / "model", shards=2, size=3_000_000)
    cache = tmp_path / "cache"
    # first shard completes, then the registry dies during the second one
    killer = threading.Thread(target=lambda: (time.sleep(1.2), restartable_registry.stop()), daemon=True)
    killer.start()
    with pytest.raises(BuilderError) as err:
        _assemble(proxy.host, tmp_path, base.replace(restartable_registry.host, proxy.host), model, cache,
                  split_threshold=1_000_000)
    killer.join()
    assert "connection lost" in str(err.value) or "unreachable" in str(err.value)
    restartable_registry.start()
    client = RegistryClient(restartable_registry.host)
    assert client.manifest_digest("lmi/tiny", "latest") is None  # no tag was moved
    mark = restartable_registry.log_mark()
    res = _assemble(restartable_registry.host, tmp_path, base, model, cache, split_threshold=1_000_000)
    skipped = [layer.name for layer in res.layers if layer.skipped and layer.kind == "weights"]
    assert skipped, "the shard uploaded before the failure must be skipped on the re-run"
    assert restartable_registry.blob_uploads(mark) < len(res.layers)


def test_wrong_password_fails_without_echoing_it(auth_registry, tmp_path):
    good = RegistryCredentials(username=auth_registry.username, password=SecretStr(auth_registry.password))
    base = push_base(auth_registry.host, "base/auth", creds=good)
    model = make_model(tmp_path / "model")
    secret = "wrong-Pa55-" + os.urandom(4).hex()
    bad = RegistryCredentials(username=auth_registry.username, password=SecretStr(secret))
    with pytest.raises(BuilderError) as err:
        _assemble(auth_registry.host, tmp_path, base, model, tmp_path / "cache", credentials=bad)
    text = err.value.describe()
    assert "401" in text or "refused" in text
    assert secret not in text
    ok = _assemble(auth_registry.host, tmp_path, base, model, tmp_path / "cache", credentials=good)
    assert secret not in ok.model_dump_json() and auth_registry.password not in ok.model_dump_json()


def test_tag_move_is_verified_and_refuses_other_digest(local_registry, tmp_path):
    base = push_base(local_registry.host, "base/tags")
    model = make_model(tmp_path / "model")
    a = _assemble(local_registry.host, tmp_path, base, model, tmp_path / "cache")
    b = _assemble(local_registry.host, tmp_path, base, model, tmp_path / "cache",
                  resolved=make_resolved(tmp_path, {"model_loading_timeout": 62}))
    moved = move_tag(a.reference, "v1", credentials=None)
    assert moved.digest == a.digest and moved.moved
    again = move_tag(a.reference, "v1", credentials=None)
    assert not again.moved  # already there: nothing to do
    with pytest.raises(BuilderError, match="already points at"):
        move_tag(b.reference, "v1", credentials=None)
    forced = move_tag(b.reference, "v1", credentials=None, force=True)
    assert forced.previous == a.digest
    assert RegistryClient(local_registry.host).manifest_digest("lmi/tiny", "v1") == b.digest
