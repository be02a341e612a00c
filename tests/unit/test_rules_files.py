"""model.files and env names (builder/lmi/rules/files.py): what validate accepts is what the bake writes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from builder.image import render
from builder.lmi.rules import validate
from builder.lmi.rules.files import ENV_NAME_RE
from builder.recipe import load_recipe
from builder.recipe.files import handler_files as _handler_files


def test_env_name_rule_is_the_bakes() -> None:
    assert ENV_NAME_RE.pattern == render._ENV_KEY_RE.pattern


def _recipe(tmp_path: Path, files: list[str], requirements: str | None = None) -> Path:
    (tmp_path / "m").mkdir(exist_ok=True)
    (tmp_path / "m" / "model.safetensors").write_bytes(b"\x08" + b"\0" * 7 + b"{}      ")
    for rel in ("model.py", "b/model.py", "a/x.txt", "b/x.txt", "y.txt", "requirements.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("def handle(inputs):\n    return None\n")
    model = {"path": "m", "entry_point": "model.py", "files": files}
    if requirements:
        model["requirements"] = requirements
    data = {"name": "t", "model": model, "container": {"family": "cpu", "version": "0.35.0"},
            "target": {"instance_type": "ml.m5.xlarge"}, "serving": {"option": {"rolling_batch": "disable"}}}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(("files", "requirements"), [
    (["a/x.txt", "b/x.txt"], None), (["b/model.py"], None), (["y.txt", "requirements.txt"], "requirements.txt"),
    (["a"], None), ([""], None), (["y.txt"], "requirements.txt"), (["a/x.txt", "y.txt"], None),
])
def test_validated_files_are_all_baked(tmp_path: Path, files: list[str], requirements: str | None) -> None:
    """The property: a recipe that validates bakes one file per entry (nothing replaced, nothing dropped)."""
    path = _recipe(tmp_path, files, requirements)
    loaded = load_recipe(path)
    errors = [d for d in validate(loaded) if d.severity == "error"]
    if errors:
        assert all(d.location.line > 0 for d in errors)
        return
    baked = _handler_files(loaded.recipe, loaded.base_dir)
    assert len(baked) == 1 + len(files) + (1 if requirements else 0)
    assert all(p.is_file() for p in baked.values())
