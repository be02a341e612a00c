"""The files of a recipe that are baked beside ``serving.properties``: a custom handler, its extra
``model.files`` and ``requirements.txt``. One rule for the build, the layer report and multi-model layouts."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def handler_files(recipe: Any, base_dir: Path) -> dict[str, Path]:
    """{name in the model folder: source file}, resolved against the recipe's folder."""
    files: dict[str, Path] = {}
    if recipe.model.entry_point:
        src = (base_dir / recipe.model.entry_point).resolve()
        files[src.name] = src
        for extra in recipe.model.files:
            p = (base_dir / extra).resolve()
            files[Path(extra).name] = p
    if recipe.model.requirements:
        files["requirements.txt"] = (base_dir / recipe.model.requirements).resolve()
    return files
