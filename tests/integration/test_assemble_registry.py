"""Registry-native assembly against Debian's docker-registry on 127.0.0.1 (no Docker daemon needed).

The base image is made directly in the registry with our own client (a layer tar + config +
manifest), so these tests need neither an engine nor a pull. A third-party validator
(``crane validate --remote``, tests/support/validator_fixtures.py) checks the images; the last test
pulls one into the local engine and runs it (that one needs Docker).
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

from builder.assembly import AssemblyRequest
from builder.credentials import Credentials
from builder.diagnostics import BuilderError
from builder.registry import move_tag
from builder.registry.assemble import assemble
from builder.registry.client import DOCKER_MANIFEST, OCI_MANIFEST, RegistryClient
from builder.registry.manifest import (
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    OCI_CONFIG,
    OCI_LAYER_GZIP,
    OCI_LAYER_TAR,
)

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


def make_resolved(tmp: Path, option: dict | None = None, instance_type: str = "ml.m5.xlarge"):
    from builder.lmi.resolve import resolve
    from builder.recipe.model import Recipe

    data = {"name": "tiny", "model": {"path": "model"}, "container": {"family": "dev-cpu", "version": "0.34.0"},
            "target": {"instance_type": instance_type},
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
    # OCI manifests are refused for SageMaker (ml.*) targets: those tests target the EC2 instance
    ec2 = kw.get("manifest_format") == "oci"
    resolved = kw.pop("resolved", None) or make_resolved(tmp, instance_type="m5.xlarge" if ec2 else "ml.m5.xlarge")
    return assemble(AssemblyRequest(resolved=resolved, registry=f"{reg_host}/lmi/tiny", base_image=base,
                                    model_dir=model, cache_dir=cache, **kw))


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
    # the default: Docker v2 schema 2, gzip layers (SageMaker refuses OCI manifests)
    assert manifest["mediaType"] == res.media_type == DOCKER_MANIFEST
    assert manifest["config"]["mediaType"] == DOCKER_CONFIG
    assert {d["mediaType"] for d in manifest["layers"]} == {DOCKER_LAYER_GZIP}
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
    assert again.digest == first.digest and again.bytes_sent == 0
    changed = _assemble(local_registry.host, tmp_path, base, model, cache,
                        resolved=make_resolved(tmp_path, {"model_loading_timeout": 61}))
    assert changed.digest != first.digest
    uploaded = [layer.name for layer in changed.layers if layer.uploaded]
    assert uploaded == [changed.layers[-1].name] and changed.layers[-1].kind == "config"
    assert changed.bytes_sent < 64 * 1024


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


@pytest.mark.parametrize(("fmt", "compression"), [("docker", "gzip"), ("oci", "gzip"), ("oci", "none")])
def test_reproducible_digest_from_scratch(restartable_registry, tmp_path, fmt, compression):
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
                        compression=compression, manifest_format=fmt)
        assert res.bytes_sent > 0
        digests.append(res.digest)
    assert digests[0] == digests[1]


def test_base_streamed_across_registries_then_skipped(local_registry, restartable_registry, tmp_path):
    base = push_base(local_registry.host, "base/elsewhere", payload=os.urandom(200_000))
    model = make_model(tmp_path / "model")
    target = restartable_registry.host
    first = _assemble(target, tmp_path, base, model, tmp_path / "cache")
    assert first.layers[0].uploaded and first.layers[0].bytes_uploaded == first.layers[0].size
    second = _assemble(target, tmp_path, base, model, tmp_path / "cache")
    assert second.layers[0].skipped and second.bytes_sent == 0
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
                  split_threshold=1_000_000, workers=1)  # one layer at a time: the kill lands in the second
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
    good = Credentials(username=auth_registry.username, password=SecretStr(auth_registry.password))
    base = push_base(auth_registry.host, "base/auth", creds=good)
    model = make_model(tmp_path / "model")
    secret = "wrong-Pa55-" + os.urandom(4).hex()
    bad = Credentials(username=auth_registry.username, password=SecretStr(secret))
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


def _media(host: str, ref: str) -> tuple[str, str, set[str]]:
    manifest, _, _ = fetch_image(host, ref)
    return manifest["mediaType"], manifest["config"]["mediaType"], {d["mediaType"] for d in manifest["layers"]}


@pytest.mark.parametrize(("fmt", "expected"), [("docker", (DOCKER_MANIFEST, DOCKER_CONFIG, {DOCKER_LAYER_GZIP})),
                                               ("oci", (OCI_MANIFEST, OCI_CONFIG, {OCI_LAYER_GZIP}))])
def test_crane_validates_assembled_images(local_registry, crane, tmp_path, fmt, expected):
    """crane checks every blob's digest and size and every layer's uncompressed sha256 (diff_id)."""
    base = push_base(local_registry.host, f"base/crane-{fmt}")
    model = make_model(tmp_path / "model", shards=2, size=300_000)
    res = _assemble(local_registry.host, tmp_path, base, model, tmp_path / "cache", split_threshold=100_000,
                    manifest_format=fmt)
    assert _media(local_registry.host, res.reference) == expected
    crane.assert_valid(res.reference)
    crane.assert_valid(base)  # the base as a docker client would push it, for comparison


@pytest.mark.parametrize("fmt", ["docker", "oci"])
def test_containerd_pulls_and_unpacks_assembled_images(local_registry, containerd, tmp_path, fmt):
    """containerd (not Docker's own puller): fetch, check digests, unpack every layer against its diff_id."""
    base = push_base(local_registry.host, f"base/containerd-{fmt}")
    res = _assemble(local_registry.host, tmp_path, base, make_model(tmp_path / "model"), tmp_path / "cache",
                    split_threshold=100_000, manifest_format=fmt)
    proc = containerd.pull(res.reference)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "unpacking linux/amd64" in proc.stdout
    assert len(containerd.snapshots()) == len(res.layers)  # one committed snapshot per layer


def test_crane_refuses_uncompressed_layers(local_registry, crane, tmp_path):
    """What the assembler used to make (OCI, uncompressed tars): the validator fails it, so it can fail."""
    base = push_base(local_registry.host, "base/crane-none")
    res = _assemble(local_registry.host, tmp_path, base, make_model(tmp_path / "model"), tmp_path / "cache",
                    manifest_format="oci", compression="none")
    assert OCI_LAYER_TAR in _media(local_registry.host, res.reference)[2]
    proc = crane.validate(res.reference)
    assert proc.returncode != 0 and "gzip" in proc.stdout + proc.stderr


def test_zstd_base_is_refused_for_docker_before_any_upload(local_registry, tmp_path):
    client = RegistryClient(local_registry.host, stage="test")
    base = push_base(local_registry.host, "base/zstd")
    repo, _, digest = base.split("/", 1)[1].partition("@")
    manifest = json.loads(client.get_manifest(repo, digest)[0])
    manifest["mediaType"] = OCI_MANIFEST
    manifest["config"]["mediaType"] = OCI_CONFIG
    manifest["layers"][0]["mediaType"] = "application/vnd.oci.image.layer.v1.tar+zstd"  # bytes unchanged
    zstd_base = f"{local_registry.host}/{repo}@" + client.put_manifest(
        repo, "zstd", json.dumps(manifest).encode(), OCI_MANIFEST)
    mark = local_registry.log_mark()
    with pytest.raises(BuilderError) as err:
        _assemble(local_registry.host, tmp_path, zstd_base, make_model(tmp_path / "model"), tmp_path / "cache")
    assert "zstd" in str(err.value) and "--manifest-format oci" in err.value.describe()
    assert local_registry.blob_uploads(mark, repo="lmi/tiny") == 0


@pytest.mark.docker
def test_docker_pulls_and_runs_an_assembled_image(local_registry, crane, docker_client, rootfs_image, tmp_path):
    """Docker accepts the image: a real base pushed by docker, our layers on top, pulled and run."""
    import uuid

    run = uuid.uuid4().hex[:8]
    repo = f"{local_registry.host}/base/rootfs-{run}"
    made: list[str] = []
    try:
        docker_client.images.get(rootfs_image).tag(repo, "v1")
        made.append(f"{repo}:v1")
        digest = None
        for event in docker_client.api.push(repo, tag="v1", stream=True, decode=True):
            assert "error" not in event, event
            digest = (event.get("aux") or {}).get("Digest") or digest
        base = f"{repo}@{digest}"
        crane.assert_valid(base)  # an image the docker engine pushed
        model = make_model(tmp_path / "model", shards=2, size=300_000)
        res = _assemble(local_registry.host, tmp_path, base, model, tmp_path / "cache", split_threshold=100_000)
        crane.assert_valid(res.reference)
        for event in docker_client.api.pull(res.repository, tag=res.digest, stream=True, decode=True):
            assert "error" not in event and "errorDetail" not in event, event
        made.append(res.reference)
        image = docker_client.images.get(res.reference)
        _, config, _ = fetch_image(local_registry.host, res.reference)
        assert image.attrs["RootFS"]["Layers"] == config["rootfs"]["diff_ids"]  # the engine's own diff_ids
        shard = "model-00001-of-00002.safetensors"
        out = docker_client.containers.run(
            res.reference, ["sh", "-c", f"sha256sum /opt/ml/model/{shard}; cat /opt/ml/model/serving.properties"],
            remove=True, network_mode="none", labels={"dev.lmi-builder.managed": "true"}).decode()
        assert hashlib.sha256((model / shard).read_bytes()).hexdigest() in out
        assert "engine=Python" in out
    finally:
        for ref in reversed(made):
            try:
                docker_client.images.remove(ref)
            except Exception:  # already gone with its image
                pass


def test_oci_for_a_sagemaker_target_is_refused_before_any_read_or_upload(local_registry, tmp_path):
    from builder.diagnostics import UsageError

    base = push_base(local_registry.host, "base/sagemaker")
    mark = local_registry.log_mark()
    with pytest.raises(UsageError) as err:
        _assemble(local_registry.host, tmp_path, base, make_model(tmp_path / "model"), tmp_path / "cache",
                  resolved=make_resolved(tmp_path, instance_type="ml.g5.xlarge"), manifest_format="oci")
    assert "aws/amazon-sagemaker-feedback#180" in str(err.value)
    assert [line for line in local_registry.access_lines(mark) if "HTTP/" in line] == []  # not even the base read


@pytest.mark.parametrize(("instance", "fmt", "expected"), [("ml.g5.xlarge", None, DOCKER_MANIFEST),
                                                           ("g5.xlarge", "oci", OCI_MANIFEST)])
def test_build_command_writes_the_chosen_manifest_format(local_registry, crane, tmp_path, capsys, instance, fmt,
                                                         expected):
    """``lmi-build build --assembler registry [--manifest-format oci]`` end to end (EC2 target for OCI)."""
    import shutil
    import uuid

    from builder.cli import main
    from builder.paths import REPO_DIR

    src = REPO_DIR / "recipes/examples"
    shutil.copytree(src / "hf-cpu-tiny-llama/model", tmp_path / "hf-cpu-tiny-llama/model")
    text = (src / "local-folder-vllm-g5.yaml").read_text().replace("instance_type: ml.g5.xlarge",
                                                                   f"instance_type: {instance}")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(text.replace("name: tiny-llama-local-vllm-g5", f"name: fmt-{uuid.uuid4().hex[:8]}"))
    base = push_base(local_registry.host, f"base/{uuid.uuid4().hex[:8]}")
    report = tmp_path / "record.json"
    rc = main(["build", str(recipe), "--assembler", "registry", "--registry",
               f"{local_registry.host}/models/{uuid.uuid4().hex[:8]}", "--base-image", base, "--smoke", "never",
               "--cache-dir", str(tmp_path / "cache"), "--report", str(report)]
              + (["--manifest-format", fmt] if fmt else []))
    out = capsys.readouterr()
    assert rc == 0, out.err[-2000:]
    record = json.loads(report.read_text())
    assert record["image"]["media_type"] == expected
    assert record["image"]["inputs"]["manifest_format"] == (fmt or "docker")
    ref = out.out.strip().splitlines()[-1]
    assert ref == record["image"]["reference"]
    assert _media(local_registry.host, ref)[0] == expected
    crane.assert_valid(ref)


def test_base_whose_config_and_layers_disagree_is_refused(local_registry, tmp_path):
    """Our config appends to the base's rootfs.diff_ids: a base listing fewer than its layers is refused."""
    client = RegistryClient(local_registry.host, stage="test")
    base = push_base(local_registry.host, "base/diffids")
    repo, _, digest = base.split("/", 1)[1].partition("@")
    manifest = json.loads(client.get_manifest(repo, digest)[0])
    config = json.loads(client.get_blob(repo, manifest["config"]["digest"]).content)
    config["rootfs"]["diff_ids"] = []
    cfg = json.dumps(config).encode()
    manifest["config"].update(digest="sha256:" + hashlib.sha256(cfg).hexdigest(), size=len(cfg))
    client.upload_bytes(repo, manifest["config"]["digest"], cfg)
    bad = f"{local_registry.host}/{repo}@" + client.put_manifest(repo, "bad", json.dumps(manifest).encode(),
                                                                 DOCKER_MANIFEST)
    with pytest.raises(BuilderError, match="lists 0 diff_ids for 1 layers"):
        _assemble(local_registry.host, tmp_path, bad, make_model(tmp_path / "model"), tmp_path / "cache")
