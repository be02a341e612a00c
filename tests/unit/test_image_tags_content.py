"""Content-addressed tags outside the engine: the publish default tag comes from the inputs digest label
(never from a recipe hash, nor an inherited artifacts cache key), and a recipe file given to
serve/smoke/predict names its most recently tagged build."""

from __future__ import annotations

import pytest

from builder import labels as L
from builder.diagnostics import UsageError
from builder.image.lookup import image_for_recipe
from builder.image.lookup import instant as _instant
from builder.paths import REPO_DIR
from builder.publish.publisher import LocalImage, image_digest, tag_variables

DIGEST = "sha256:" + "1234567890ab" + "c" * 52


def _img(labels: dict[str, str]) -> LocalImage:
    return LocalImage(ref="x", id="sha256:" + "0" * 64, labels=labels, env=[], repo_digests=[], obj=None)


def test_publish_digest_needs_the_inputs_json_beside_it():
    model = {L.ROLE: "model", L.RECIPE_NAME: "tiny", L.RECIPE_HASH: "f" * 64}
    assert image_digest({**model, L.INPUTS_DIGEST: DIGEST, L.INPUTS_JSON: "{}"}) == DIGEST
    # a model image from before content-addressed tags inherited its artifacts image's cache key
    assert image_digest({**model, L.INPUTS_DIGEST: "a" * 64}) is None
    assert image_digest({L.ROLE: "artifacts", L.INPUTS_DIGEST: DIGEST, L.INPUTS_JSON: "{}"}) is None
    v = tag_variables(_img({**model, L.INPUTS_DIGEST: DIGEST, L.INPUTS_JSON: "{}"}), None)
    assert v["image_digest"] == DIGEST[7:] and v["image_digest12"] == "1234567890ab"
    assert v["recipe_hash12"] == "f" * 12  # still a template variable, no longer the default tag


def test_engine_timestamps_sort_by_time_whatever_their_fraction_digits():
    assert _instant("2026-12-01T08:50:12.12Z") > _instant("2026-12-01T08:50:12.1Z")  # as text: the other way
    assert _instant("2026-12-01T08:50:12Z") < _instant("2026-12-01T08:50:12.000000001Z")
    assert _instant("0001-01-01T00:00:00Z") < _instant("2026-01-01T00:00:00Z")


class _Api:
    def __init__(self, images: list[dict], tagged: dict[str, str]):
        self._images, self._tagged, self.filters = images, tagged, None

    def images(self, filters=None):
        self.filters = filters
        return self._images

    def inspect_image(self, ident):
        return {"Id": ident, "Metadata": {"LastTagTime": self._tagged[ident]}, "Created": "2020-01-01T00:00:00Z"}


class _Client:
    def __init__(self, api):
        self.api = api


def test_recipe_file_names_its_latest_tagged_build():
    recipe = REPO_DIR / "recipes/examples/quickstart.yaml"
    api = _Api([{"Id": "a", "RepoTags": ["quickstart:aaaaaaaaaaaa"]},
                {"Id": "b", "RepoTags": ["quickstart:bbbbbbbbbbbb", "other:x"]},
                {"Id": "c", "RepoTags": []}],
               {"a": "2026-12-01T09:00:00.25Z", "b": "2026-12-01T09:00:00.2Z", "c": "2027-01-01T00:00:00Z"})
    assert image_for_recipe(recipe, _Client(api)) == "quickstart:aaaaaaaaaaaa"
    assert f"{L.RECIPE_NAME}=quickstart" in api.filters["label"] and f"{L.ROLE}=model" in api.filters["label"]
    with pytest.raises(UsageError, match="no local image built from this recipe"):
        image_for_recipe(recipe, _Client(_Api([], {})))
