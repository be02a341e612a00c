"""Same recipe, both assemblers (docker bake + push, registry assembly): same files, same config.

Compared: every path with mode, size and content digest, and the config's labels, env, entrypoint,
cmd, workdir and exposed ports, the manifest and layer media types (Docker v2 schema 2, gzip), and
``crane validate`` passes and a containerd pull + unpack succeeds on both. Known, documented differences (docs/registry-assembly.md): layer
blob digests (both gzip, other encoders), history and ``created`` of the config, and
the layer count must match too; the labels match exactly, the image inputs digest included.
"""

from __future__ import annotations

import uuid

import pytest

from builder.assembly import AssemblyRequest, assemble
from tests.integration.test_assemble_registry import fetch_image, make_model, make_resolved, push_base

pytestmark = [pytest.mark.docker, pytest.mark.registry]

KEYS = ("Labels", "Env", "Entrypoint", "Cmd", "WorkingDir", "ExposedPorts")


def test_docker_and_registry_assemblers_make_the_same_image(local_registry, publish_docker, crane, containerd,
                                                             tmp_path):
    client = publish_docker
    host = local_registry.host
    run = uuid.uuid4().hex[:8]
    base = push_base(host, f"base/same-{run}")
    model = make_model(tmp_path / "model", shards=2, size=300_000)
    resolved = make_resolved(tmp_path)
    created: list[str] = []
    try:
        for event in client.api.pull(base.split("@")[0], tag=base.split("@")[1], stream=True, decode=True):
            assert "error" not in event, event
        created.append(base)
        # one request, both assemblers (each with a cache of its own)
        request = AssemblyRequest(resolved=resolved, model_dir=model, base_image=base, progress=False,
                                  registry=f"{host}/cmp/registry-{run}")
        baked = assemble("docker", request.model_copy(update={"cache_dir": tmp_path / "cache-docker"}))
        created += [baked.image_id, *baked.tags] + ([baked.artifacts_ref] if baked.artifacts_ref else [])
        repo = f"{host}/cmp/docker-{run}"
        client.api.tag(baked.image_id, repo, "x")
        created.append(f"{repo}:x")
        digest = None
        for event in client.api.push(repo, tag="x", stream=True, decode=True):
            assert "error" not in event, event
            digest = (event.get("aux") or {}).get("Digest") or digest
        assert digest
        docker_ref = f"{repo}@{digest}"
        created.append(docker_ref)

        res = assemble("registry", request.model_copy(update={"cache_dir": tmp_path / "cache-registry"}))
        # a third-party validator accepts both: blob digests and sizes, gzip layers, diff_ids
        crane.assert_valid(docker_ref)
        crane.assert_valid(res.reference)
        for ref in (docker_ref, res.reference):  # and containerd pulls and unpacks both
            proc = containerd.pull(ref)
            assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        d_manifest, d_config, d_files = fetch_image(host, docker_ref)
        r_manifest, r_config, r_files = fetch_image(host, res.reference)
        assert sorted(r_files) == sorted(d_files)
        diffs = {p: (d_files[p], r_files[p]) for p in d_files if d_files[p] != r_files[p]}
        assert not diffs, diffs
        d_labels = dict(d_config["config"]["Labels"])
        # the same inputs (same base manifest digest, files, recipe): the same identity, so the same
        # inputs-digest label and default publish tag from either assembler (builder/assembly/identity.py)
        assert d_labels["dev.lmi-builder.inputs.digest"] == baked.identity.digest == res.identity.digest
        assert r_config["config"]["Labels"] == d_labels
        for key in KEYS[1:]:
            assert r_config["config"].get(key) == d_config["config"].get(key), key
        assert len(r_manifest["layers"]) == len(d_manifest["layers"])
        assert r_manifest["mediaType"] == d_manifest["mediaType"]  # both Docker v2 schema 2
        assert [d["mediaType"] for d in r_manifest["layers"]] == [d["mediaType"] for d in d_manifest["layers"]]
    finally:
        for ref in reversed(created):
            try:
                client.images.remove(ref, force=True)
            except Exception:  # already gone with its image
                pass
