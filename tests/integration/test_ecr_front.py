"""Assembly, base copy, publish (docker push and our verification HEAD) through a front that answers as
Amazon ECR does (tests/equipment/ecr_front.py) in front of the real Debian docker-registry; and the
assembler against a second registry implementation (distribution v3, built from the Go module proxy).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid

import pytest
import requests
from pydantic import SecretStr

from builder import labels, ledger
from builder.assembly import AssemblyRequest
from builder.credentials import Credentials
from builder.diagnostics import BuilderError
from builder.registry import move_tag
from builder.registry.assemble import assemble
from builder.registry.client import DOCKER_MANIFEST, MIN_PART, RegistryClient
from builder.registry.transfer import ensure_base_blob
from tests.integration.test_assemble_registry import (
    fetch_image,
    make_model,
    make_resolved,
    push_base,
)
from tests.integration.test_pipeline_registry import gpu_recipe  # noqa: F401  (a fixture)

pytestmark = pytest.mark.registry

MIB = 1 << 20


def _creds(front) -> Credentials:
    return Credentials(username=front.username, password=SecretStr(front.password))


def _auth(front) -> dict[str, str]:
    raw = base64.b64encode(f"{front.username}:{front.password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _repo(prefix: str) -> str:
    return f"{prefix}/{uuid.uuid4().hex[:8]}"


def _assemble(host: str, tmp, base: str, model, cache, *, repo: str, **kw):
    """Registry assembly into ``host/repo`` (each test its own repository: the session registry is shared)."""
    return assemble(AssemblyRequest(resolved=kw.pop("resolved", None) or make_resolved(tmp), registry=f"{host}/{repo}",
                                    base_image=base, model_dir=model, cache_dir=cache, **kw))


# --- the equipment answers as ECR is documented to ---------------------------------------------


def test_front_answers_as_ecr(ecr_front):
    front = ecr_front()
    url = f"http://{front.host}"
    r = requests.get(f"{url}/v2/", timeout=5)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == ('Basic realm="https://123456789012.dkr.ecr.us-west-2.amazonaws.com/",'
                                             'service="ecr.amazonaws.com"')
    auth = _auth(front)
    assert requests.get(f"{url}/v2/", headers=auth, timeout=5).status_code == 200

    repo = _repo("front")
    data = os.urandom(13 * MIB)
    start = requests.post(f"{url}/v2/{repo}/blobs/uploads/", headers=auth, timeout=5)
    assert start.status_code == 202
    loc, ranges = start.headers["Location"], []
    for first in (0, 6 * MIB):
        part = data[first:first + 6 * MIB]
        r = requests.patch(loc, data=part, timeout=30, headers={
            **auth, "Content-Type": "application/octet-stream", "Content-Range": f"{first}-{first + len(part) - 1}"})
        assert r.status_code == 201  # not 202
        loc = r.headers["Location"]
        ranges.append(r.headers["Range"])
    assert ranges == [f"0-{6 * MIB - 1}", f"0-{6 * MIB - 1}"]  # does not advance after the first PATCH
    done = requests.put(loc, params={"digest": _digest(data)}, data=data[12 * MIB:], headers=auth, timeout=30)
    assert done.status_code == 201  # every byte was stored: the registry behind checked the digest
    head = requests.head(f"{url}/v2/{repo}/blobs/{_digest(data)}", headers=auth, timeout=5)
    assert int(head.headers["Content-Length"]) == len(data)

    # a part under 5 MiB that is not the last is refused
    loc = requests.post(f"{url}/v2/{repo}/blobs/uploads/", headers=auth, timeout=5).headers["Location"]
    r = requests.patch(loc, data=b"x" * MIB, headers=auth, timeout=5)
    assert r.status_code == 201
    r = requests.patch(r.headers["Location"], data=b"y" * MIB, headers=auth, timeout=5)
    assert r.status_code == 400 and "LayerPartTooSmallException" in r.text
    assert front.stats.parts_refused == 1

    # mount: refused (202, a session) while no manifest in the source references the blob, then 201
    other = _repo("front-dst")
    r = requests.post(f"{url}/v2/{other}/blobs/uploads/", params={"mount": _digest(data), "from": repo},
                      headers=auth, timeout=5)
    assert r.status_code == 202 and "/blobs/uploads/" in r.headers["Location"]
    cfg = b"{}"
    requests.put(requests.post(f"{url}/v2/{repo}/blobs/uploads/", headers=auth, timeout=5).headers["Location"],
                 params={"digest": _digest(cfg)}, data=cfg, headers=auth, timeout=5).raise_for_status()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
                           "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                                      "digest": _digest(cfg), "size": 2},
                           "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar",
                                       "digest": _digest(data), "size": len(data)}]}).encode()
    requests.put(f"{url}/v2/{repo}/manifests/{_digest(manifest)}", data=manifest, timeout=5,
                 headers={**auth, "Content-Type": DOCKER_MANIFEST}).raise_for_status()  # untagged counts too
    r = requests.post(f"{url}/v2/{other}/blobs/uploads/", params={"mount": _digest(data), "from": repo},
                      headers=auth, timeout=5)
    assert r.status_code == 201
    assert front.stats.mounts_refused == 1 and front.stats.mounts_done == 1

    # blob downloads: 307 to a pre-signed URL on another origin that refuses a second auth mechanism
    r = requests.get(f"{url}/v2/{repo}/blobs/{_digest(data)}", headers=auth, timeout=5, allow_redirects=False)
    assert r.status_code == 307 and f":{front.s3_port}/" in r.headers["Location"]
    leaked = requests.get(r.headers["Location"], headers=auth, timeout=5, allow_redirects=False)
    assert leaked.status_code == 400 and "Only one auth mechanism allowed" in leaked.text
    assert requests.get(r.headers["Location"], timeout=30).content == data
    tampered = r.headers["Location"].replace("X-Amz-Signature=", "X-Amz-Signature=0")
    assert requests.get(tampered, timeout=5).status_code == 403


def test_our_client_answers_the_ecr_basic_challenge(ecr_front):
    front = ecr_front()
    RegistryClient(front.host, _creds(front)).ping()
    with pytest.raises(BuilderError, match="needs credentials .*dkr.ecr.us-west-2.amazonaws.com"):
        RegistryClient(front.host).ping()
    wrong = Credentials(username="AWS", password=SecretStr("expired-token"))
    with pytest.raises(BuilderError) as err:
        RegistryClient(front.host, wrong).ping()
    assert "refused the credentials" in str(err.value) and "expired-token" not in err.value.describe()


# --- registry assembly and the base copy through it --------------------------------------------


@pytest.mark.parametrize("parts", [False, True], ids=["one-patch", "5MiB-parts"])
def test_assembly_through_ecr_front(ecr_front, tmp_path, monkeypatch, parts):
    if parts:
        monkeypatch.setenv("LMI_BUILD_UPLOAD_PART_MIB", "5")
    front = ecr_front()
    creds = _creds(front)
    base = push_base(front.host, _repo("base"), creds=creds, payload=os.urandom(200_000))
    model = make_model(tmp_path / "model", shards=2, size=12 * MIB)
    repo = _repo("lmi")
    res = _assemble(front.host, tmp_path, base, model, tmp_path / "cache", repo=repo, credentials=creds,
                    split_threshold=MIB)
    assert res.layers[0].kind == "base" and res.layers[0].mounted  # referenced by the base's manifest
    weights = [layer for layer in res.layers if layer.kind == "weights" and layer.size > 10 * MIB]
    assert len(weights) == 2 and all(layer.uploaded for layer in weights)
    assert front.stats.count("PATCH", status=201) >= 2 and front.stats.parts_refused == 0
    if parts:
        assert front.stats.stale_ranges >= 2  # 12 MiB in 5 MiB parts: the second PATCH saw a stuck Range
    _, _, files = fetch_image(front.host, res.reference, creds)  # every blob GET went through S3's redirect
    assert front.stats.s3_served >= len(res.layers) and front.stats.s3_refused_auth == 0
    assert files["opt/ml/model/model-00001-of-00002.safetensors"][1] == 12 * MIB
    assert files["opt/ml/model/model-00002-of-00002.safetensors"][2] == hashlib.sha256(
        (model / "model-00002-of-00002.safetensors").read_bytes()).hexdigest()
    again = _assemble(front.host, tmp_path, base, model, tmp_path / "cache", repo=repo, credentials=creds,
                      split_threshold=MIB)
    assert again.digest == res.digest and again.bytes_sent == 0
    # publish in place (the registry assembler's --push): a verified tag move, and one into another
    # repository, whose blobs ECR mounts because the image's manifest (by digest) references them
    tag = "v1"
    assert move_tag(res.reference, tag, credentials=creds).digest == res.digest
    mounted_before = front.stats.mounts_done
    other = _repo("published")
    moved = move_tag(res.reference, tag, credentials=creds, target=f"{front.host}/{other}", target_credentials=creds)
    assert moved.digest == res.digest and front.stats.mounts_refused == 0
    assert front.stats.mounts_done - mounted_before == len(res.layers) + 1  # every layer and the config
    assert RegistryClient(front.host, creds).manifest_digest(other, tag) == res.digest


def test_base_copied_from_another_registry_in_parts(local_registry, restartable_registry, ecr_front, tmp_path,
                                                    monkeypatch):
    monkeypatch.setenv("LMI_BUILD_UPLOAD_PART_MIB", "5")
    front = ecr_front(restartable_registry)
    payload = os.urandom(11 * MIB)
    base = push_base(local_registry.host, _repo("base-src"), payload=payload)  # another registry, no auth
    model = make_model(tmp_path / "model")
    res = _assemble(front.host, tmp_path, base, model, tmp_path / "cache", repo=_repo("lmi"), credentials=_creds(front))
    layer = res.layers[0]
    assert layer.uploaded and layer.bytes_uploaded == layer.size and layer.size > 10 * MIB
    assert front.stats.stale_ranges >= 1 and front.stats.parts_refused == 0
    _, _, files = fetch_image(front.host, res.reference, _creds(front))
    assert files["opt/payload.bin"][2] == hashlib.sha256(payload).hexdigest()


def test_base_read_from_ecr_through_s3_redirects_without_the_token(ecr_front, restartable_registry, tmp_path):
    """The common case: the LMI base lives in ECR; its config and layers are served from S3."""
    front = ecr_front()
    payload = os.urandom(3 * MIB)
    base = push_base(front.host, _repo("dlc"), creds=_creds(front), payload=payload)
    model = make_model(tmp_path / "model")
    res = _assemble(restartable_registry.host, tmp_path, base, model, tmp_path / "cache", repo=_repo("lmi"),
                    base_credentials=_creds(front))
    assert res.layers[0].uploaded and res.layers[0].bytes_uploaded == res.layers[0].size
    assert front.stats.redirects >= 2 and front.stats.s3_served >= 2  # config + layer
    assert front.stats.s3_refused_auth == 0  # the ECR token never went to "S3"
    _, _, files = fetch_image(restartable_registry.host, res.reference)
    assert files["opt/payload.bin"][2] == hashlib.sha256(payload).hexdigest()


def test_refused_mount_continues_in_the_session_it_opened(ecr_front):
    front = ecr_front()
    client = RegistryClient(front.host, _creds(front))
    data = os.urandom(300_000)
    src, dst = _repo("orphans"), _repo("dst")
    client.upload_bytes(src, _digest(data), data)  # present in src, but no manifest references it
    before = front.stats.count("POST", f"^/v2/{dst}/blobs/uploads/")
    out = ensure_base_blob(client, dst, client, src, _digest(data), len(data), "base-0")
    assert out.uploaded and not out.mounted and front.stats.mounts_refused == 1
    assert front.stats.count("POST", f"^/v2/{dst}/blobs/uploads/") - before == 1  # no second POST
    assert client.blob_size(dst, _digest(data)) == len(data)


def test_layer_over_the_limit_is_refused_with_a_message(ecr_front, tmp_path):
    front = ecr_front(max_layer_bytes=2 * MIB)
    creds = _creds(front)
    base = push_base(front.host, _repo("base"), creds=creds, payload=os.urandom(1000))
    model = make_model(tmp_path / "model", shards=1, size=3 * MIB)
    with pytest.raises(BuilderError) as err:
        _assemble(front.host, tmp_path, base, model, tmp_path / "cache", repo=_repo("lmi"), credentials=creds,
                  split_threshold=MIB)
    assert "answered 400" in str(err.value) and "exceeds the maximum" in str(err.value)
    assert front.stats.layers_too_large == 1


def test_parts_below_the_front_minimum_are_refused_by_it(ecr_front):
    """Our parts are never under 5 MiB; a front demanding more shows how ECR's refusal reads."""
    front = ecr_front(min_part=MIN_PART + 1)
    client = RegistryClient(front.host, _creds(front), part_size=MIN_PART)
    data = os.urandom(2 * MIN_PART + 1)
    loc = client.start_upload(_repo("small"))
    with pytest.raises(BuilderError, match="LayerPartTooSmallException"):
        client.upload_parts(loc, [data], MIN_PART)


# --- publish: docker push and our verification HEAD through it ---------------------------------


def _publishable(test_images, cache):
    image_id = test_images.make(payload_bytes=256 * 1024, labels={
        labels.RECIPE_NAME: "tiny-ecr-front", labels.RECIPE_HASH: "ab12cd34ef56" + "7" * 52,
        labels.LMI_VERSION: "0.29.0"})
    ledger.record(ledger.SmokeOutcome(image_id=image_id, status="passed"), cache)
    return image_id


@pytest.mark.docker
def test_publish_through_ecr_front(ecr_front, test_images, tmp_path):
    from builder.publish import PublishOptions, PublishTarget, publish_image

    front = ecr_front()
    image_id = _publishable(test_images, tmp_path)
    repo = _repo("pub")
    res = publish_image(image_id, [PublishTarget(registry=f"{front.host}/{repo}")],
                        PublishOptions(cache_dir=str(tmp_path), username=front.username, tags=["front-v1"],
                                       password=SecretStr(front.password)))
    t = res.targets[0]
    assert t.verified and t.tags_pushed and t.verified_by == f"registry HEAD {front.host}"
    assert front.stats.count("PATCH", f"^/v2/{repo}/blobs/uploads/", status=201) >= 1  # docker took the 201
    assert front.stats.count("HEAD", f"^/v2/{repo}/manifests/", status=200) >= len(t.tags_pushed)
    client = RegistryClient(front.host, _creds(front))
    assert all(client.manifest_digest(repo, tag) == t.digest for tag in t.tags_pushed)
    assert front.password not in res.model_dump_json()


@pytest.mark.docker
def test_ecr_target_publish_through_front(ecr_mock, ecr_front, test_images, tmp_path):
    """ECR control plane on moto, the bytes through the ECR-like front (token: moto's)."""
    from builder.publish import PublishOptions, PublishTarget, publish_image

    front = ecr_front(token="123456789012-auth-token")
    image_id = _publishable(test_images, tmp_path)
    name = _repo("lmi")
    res = publish_image(image_id, [PublishTarget(ecr={"account": "123456789012", "region": "us-west-2",
                                                      "repository": name})],
                        PublishOptions(cache_dir=str(tmp_path), ecr_registry_host=front.host, tags=["front-v1"]))
    t = res.targets[0]
    assert t.verified and t.ecr_repository_created is True
    assert front.stats.count("PATCH", f"^/v2/{name}/blobs/uploads/", status=201) >= 1
    assert front.stats.count("HEAD", f"^/v2/{name}/manifests/", status=200) >= 1


# --- a second registry implementation --------------------------------------------------------


@pytest.mark.parametrize("parts", [False, True], ids=["one-patch", "5MiB-parts"])
def test_assembly_against_distribution_v3(v3_registry, tmp_path, monkeypatch, parts):
    if parts:
        monkeypatch.setenv("LMI_BUILD_UPLOAD_PART_MIB", "5")  # v3 checks every Content-Range
    base = push_base(v3_registry.host, _repo("base"), payload=os.urandom(1000))  # a new base blob: mounted
    model = make_model(tmp_path / "model", shards=2, size=6 * MIB)
    cache = tmp_path / "cache"
    repo = _repo("lmi")
    res = _assemble(v3_registry.host, tmp_path, base, model, cache, repo=repo, split_threshold=MIB)
    assert res.layers[0].mounted
    _, config, files = fetch_image(v3_registry.host, res.reference)
    assert files["opt/ml/model/model-00002-of-00002.safetensors"][1] == 6 * MIB
    assert config["config"]["Labels"]["dev.lmi-builder.recipe.hash"] == make_resolved(tmp_path).recipe_hash
    again = _assemble(v3_registry.host, tmp_path, base, model, cache, repo=repo, split_threshold=MIB)
    assert again.digest == res.digest and again.bytes_sent == 0
    changed = _assemble(v3_registry.host, tmp_path, base, model, cache, repo=repo, split_threshold=MIB,
                        resolved=make_resolved(tmp_path, {"model_loading_timeout": 63}))
    assert [layer.kind for layer in changed.layers if layer.uploaded] == ["config"]


@pytest.mark.docker
def test_publish_without_credentials_names_the_ecr_realm(ecr_front, test_images, tmp_path, isolated_docker_config):
    from builder.publish import PublishOptions, PublishTarget, publish_image

    front = ecr_front()
    image_id = _publishable(test_images, tmp_path)
    with pytest.raises(BuilderError) as err:
        publish_image(image_id, [PublishTarget(registry=f"{front.host}/{_repo('pub')}")],
                      PublishOptions(cache_dir=str(tmp_path), tags=["front-v1"]))
    text = err.value.describe()
    assert "needs credentials" in text and "dkr.ecr.us-west-2.amazonaws.com" in text and "--password-stdin" in text
    assert front.stats.count("PATCH") == 0  # refused before any byte moved


def test_cli_build_with_registry_assembler_through_ecr_front(ecr_front, gpu_recipe, tmp_path,  # noqa: F811
                                                              isolated_docker_config, monkeypatch):
    """`lmi-build build --assembler registry` with the front's credentials from Docker's config.json."""
    from builder.cli import main

    monkeypatch.delenv("LMI_BUILD_UPLOAD_PART_MIB", raising=False)  # the default: one streamed PATCH
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")  # no daemon involved at all
    front = ecr_front()
    auth = base64.b64encode(f"{front.username}:{front.password}".encode()).decode()
    (isolated_docker_config / "config.json").write_text(json.dumps({"auths": {front.host: {"auth": auth}}}))
    base = push_base(front.host, _repo("base"), creds=_creds(front), payload=os.urandom(1000))
    repo = _repo("models")
    report = tmp_path / "record.json"
    main(["build", str(gpu_recipe), "--assembler", "registry", "--registry", f"{front.host}/{repo}",
          "--base-image", base, "--cache-dir", str(tmp_path / "cache"), "--report", str(report)])
    record = json.loads(report.read_text())
    assert record["image"]["reference"].startswith(f"{front.host}/{repo}@sha256:")
    assert {s["name"]: s for s in record["stages"]}["bake"]["status"] in ("passed", "cached")
    assert front.stats.count("PATCH", status=201) >= 1 and front.stats.mounts_done >= 1
    assert front.password not in report.read_text()
