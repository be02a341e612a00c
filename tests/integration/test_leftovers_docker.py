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
