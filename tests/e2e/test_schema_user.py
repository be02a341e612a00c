"""``lmi-build schema`` as a user runs it (docs/multi-model.md, "The schema"): one document for both
recipe shapes, the same bytes as the committed docs/recipe.schema.json, and ``validate recipes/``
picks up the multi-model example (it carries the schema modeline)."""

from __future__ import annotations

import json

import pytest

from tests.e2e.user import User

pytestmark = pytest.mark.e2e


def test_schema_covers_both_shapes_and_matches_the_committed_file(user: User):
    r = user.run("schema")
    assert r.rc == 0 and "Traceback" not in r.stderr, r
    schema = json.loads(r.stdout)
    assert schema["oneOf"] == [{"$ref": "#/$defs/Recipe"}, {"$ref": "#/$defs/MultiRecipe"}]
    assert "models" in schema["$defs"]["MultiRecipe"]["required"]
    assert r.stdout == (user.clone / "docs" / "recipe.schema.json").read_text()


def test_validate_folder_checks_the_multi_model_example(user: User):
    r = user.run("validate", "recipes/", "--format", "json")
    assert r.rc == 0 and "Traceback" not in r.stderr, r
    files = {f["file"]: f["valid"] for f in json.loads(r.stdout)["files"]}
    assert [v for f, v in files.items() if f.endswith("multi-model-quickstart.yaml")] == [True], files
