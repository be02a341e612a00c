"""The recipe JSON Schema covers both shapes (docs/multi-model.md, "The schema"): every committed
example validates against docs/recipe.schema.json, through the branch of its own shape, and the
schema refuses what the loader refuses (both model: and models:, an unknown key in an entry)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from builder.commands.validate import find_recipes, is_recipe

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema (a moto[server] dependency) is not installed")

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "recipe.schema.json").read_text())
EXAMPLES = ROOT / "recipes" / "examples"
MULTI = EXAMPLES / "multi-model-quickstart.yaml"


def errors(doc: object, branch: str | None = None) -> list[str]:
    schema = SCHEMA if branch is None else {**SCHEMA, "oneOf": [{"$ref": f"#/$defs/{branch}"}]}
    return [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(doc)]


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_validates_against_the_committed_schema(path: Path) -> None:
    doc = load(path)
    branch = "MultiRecipe" if "models" in doc else "Recipe"
    assert errors(doc) == [] and errors(doc, branch) == []
    other = "Recipe" if branch == "MultiRecipe" else "MultiRecipe"
    assert errors(doc, other), f"{path.name} also matches {other}: oneOf would refuse it"


def test_both_model_and_models_is_refused_by_the_schema() -> None:
    doc = load(MULTI)
    doc["model"] = {"path": "quickstart/model"}
    assert errors(doc)


def test_an_unknown_key_in_a_model_entry_is_refused_by_the_schema() -> None:
    doc = load(MULTI)
    doc["models"][0]["entrypoint"] = "x.py"
    assert errors(doc)
    doc = load(MULTI)
    doc["models"][1]["name"] = "../x"  # not path-safe: the pydantic pattern travels into the schema
    assert errors(doc)


def test_the_multi_model_example_has_the_modeline_and_is_found_in_a_folder(tmp_path: Path) -> None:
    text = MULTI.read_text()
    assert text.startswith("# yaml-language-server: $schema=../../docs/recipe.schema.json\n")
    assert (MULTI.parent / "../../docs/recipe.schema.json").resolve() == ROOT / "docs" / "recipe.schema.json"
    files, _ = find_recipes([EXAMPLES])
    assert MULTI in files
    # recognised by its keys alone, and by the modeline alone (a file too broken to parse)
    keys_only = tmp_path / "keys.yaml"
    keys_only.write_text("\n".join(text.splitlines()[1:]) + "\n")
    modeline_only = tmp_path / "modeline.yaml"
    modeline_only.write_text(text.splitlines()[0] + "\nname: [unclosed\n")
    assert is_recipe(keys_only) and is_recipe(modeline_only)
