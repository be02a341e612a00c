"""Nothing left in the engine after publish or a failed bake (issue 15 items 8, Deliver 5)."""

from __future__ import annotations

import uuid

import pytest

from builder import labels, ledger
from builder.publish import PublishOptions, PublishTarget, publish_image

pytestmark = [pytest.mark.docker, pytest.mark.registry]

HASH = "cd34ef56ab12" + "0" * 52


def _labels():
    return {labels.RECIPE_NAME: "tiny-llm", labels.RECIPE_HASH: HASH, labels.LMI_VERSION: "0.29.0",
            labels.INPUTS_DIGEST: "sha256:" + HASH, labels.INPUTS_JSON: "{}",
            labels.TARGET_INSTANCE: "ml.g5.xlarge", labels.RECIPE_JSON: '{"name": "tiny-llm"}'}


def test_publish_leaves_no_local_registry_name_and_keeps_the_image(local_registry, test_images, tmp_path):
    image_id = test_images.make(labels=_labels())
    ledger.record(ledger.SmokeOutcome(image_id=image_id, status="passed"), tmp_path)
    repo = f"test/left-{uuid.uuid4().hex[:8]}"
    target = [PublishTarget(registry=f"{local_registry.host}/{repo}")]
    first = publish_image(image_id, target, PublishOptions(cache_dir=str(tmp_path), tags=["v1"])).targets[0]
    assert first.tags_pushed == ["tiny-llm-cd34ef56ab12", "v1"] and first.verified
    image = test_images.client.images.get(image_id)  # the image stays, with its own name
    assert [t for t in image.tags if t.startswith(local_registry.host)] == []
    assert image.tags
    # a re-publish still knows these tags are this image (the local name and its RepoDigest are gone)
    again = publish_image(image_id, target, PublishOptions(cache_dir=str(tmp_path), tags=["v1"])).targets[0]
    assert again.tags_pushed == [] and again.tags_skipped == first.tags_pushed and again.digest == first.digest


def test_a_users_own_registry_name_is_left_as_it_was(local_registry, test_images, tmp_path):
    image_id = test_images.make(labels=_labels())
    other = test_images.make(labels=_labels())
    ledger.record(ledger.SmokeOutcome(image_id=image_id, status="passed"), tmp_path)
    repo = f"test/left-{uuid.uuid4().hex[:8]}"
    client = test_images.client
    client.api.tag(other, f"{local_registry.host}/{repo}", "mine")  # the user's name for another image
    publish_image(image_id, [PublishTarget(registry=f"{local_registry.host}/{repo}")],
                  PublishOptions(cache_dir=str(tmp_path), tags=["mine"]))
    assert client.api.inspect_image(f"{local_registry.host}/{repo}:mine")["Id"] == other
    client.api.remove_image(f"{local_registry.host}/{repo}:mine")


def _ancestry(client, image_id: str) -> list[str]:
    chain = []
    while image_id:
        chain.append(image_id)
        image_id = client.api.inspect_image(image_id).get("Parent") or ""
    return chain


def test_a_failed_bake_leaves_no_untagged_image(docker_client, rootfs_image, tmp_path, monkeypatch):
    """A step of the model image fails after three steps made images: none of them, nor the labels
    image under them, is left untagged; the tagged artifacts image (reusable) stays."""
    from builder.assembly import AssemblyRequest
    from builder.diagnostics import BuilderError
    from builder.image import render
    from builder.image.bake import assemble
    from builder.lmi.resolve import resolve
    from tests.integration.test_image_bake import _model, _recipe

    base = docker_client.images.get(rootfs_image).id
    resolved = resolve(_recipe(f"left-{uuid.uuid4().hex[:8]}"))
    _model(tmp_path / "model")
    handler = tmp_path / "model.py"
    handler.write_text("def handle(inputs):\n    return None\n")
    real = render.render_model
    monkeypatch.setattr(render, "render_model", lambda *a, **k: real(*a, **k) + "RUN exit 3\n")
    before = {i.id for i in docker_client.images.list(all=True)}
    artifacts = None
    try:
        with pytest.raises(BuilderError, match="model image failed"):
            assemble(AssemblyRequest(resolved=resolved, model_dir=tmp_path / "model",
                                     model_digest="sha256:" + "e" * 64, extra_files={"model.py": handler},
                                     base_image=base, cache_dir=tmp_path / "cache", docker=docker_client,
                                     progress=False))
        new = [i for i in docker_client.images.list(all=True) if i.id not in before]
        artifacts = next(i for i in new if any(t.startswith("lmi-build/artifacts:") for t in i.tags))
        # what descends from this run's artifacts image (its weights are random: nobody else's)
        ours = [i for i in new if artifacts.id in _ancestry(docker_client, i.id)[1:]]
        assert [i.id for i in ours if not i.tags] == []
    finally:
        if artifacts is not None:
            for t in artifacts.tags:
                docker_client.images.remove(t)
