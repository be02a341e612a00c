"""Load a multi-model recipe with located errors, and make one single-model view per model.

A view is a ``LoadedRecipe`` whose data is what a single-model recipe for that model would hold and
whose position table is the original document's, re-keyed (``models[i].x`` -> ``model.x``,
``models[i].serving...`` -> ``serving...``): every existing rule then runs on it unchanged and its
diagnostics point at the right line of the multi-model file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from builder.diagnostics import Diagnostic, has_errors
from builder.multi.model import ModelEntry, MultiRecipe
from builder.recipe.loader import (
    LoadedFile,
    LoadedRecipe,
    java_int_options,
    pydantic_diagnostics,
    text_checks,
)
from builder.recipe.model import Recipe
from builder.recipe.yamlpos import Document, load_document

# keys of an entry that are not part of the single-model ``model:`` mapping
ENTRY_OWN = ("name", "serving")
SHARED = ("name", "description", "container", "target", "compile", "smoke", "env")


@dataclass
class LoadedMulti(LoadedFile):
    recipe: MultiRecipe | None


def load_multi(file: str | Path, text: str | None = None) -> LoadedMulti:
    """Parse and type-check; never raises for bad input (see ``.diagnostics``)."""
    path = Path(file)
    doc, diags = load_document(path, text)
    loaded = LoadedMulti(path, doc, None, diags)
    if diags:
        return loaded
    if not isinstance(doc.data, dict):
        loaded.diagnostics.append(loaded.at((), "recipe-shape", "a recipe is a mapping (name:, models:, container:, "
                                            "...)"))
        return loaded
    if "model" in doc.data and "models" in doc.data:
        loaded.diagnostics.append(loaded.at(("model",), "multi-model-shape", "give either model: (one model) or "
                                            "models: (several), not both", key=True))
        return loaded
    as_single = LoadedRecipe(path, doc, None)
    loaded.diagnostics.extend(text_checks(as_single, doc.data, ()))
    if loaded.diagnostics:
        return loaded
    try:
        loaded.recipe = MultiRecipe.model_validate(doc.data)
    except ValidationError as exc:
        loaded.diagnostics.extend(_from_pydantic(loaded, exc))
    return loaded


def view_data(recipe: MultiRecipe, i: int) -> dict[str, Any]:
    """The single-model recipe data for ``models[i]`` (as the YAML would have said it)."""
    data = recipe.model_dump(mode="json", by_alias=True, exclude_unset=True, include=set(SHARED))
    entry = recipe.models[i].model_dump(mode="json", by_alias=True, exclude_unset=True)
    data["serving"] = entry.pop("serving", {})
    entry.pop("name", None)
    data["model"] = entry
    return data


def map_path(path: tuple, i: int) -> tuple | None:
    """A path of the multi-model document as the view of ``models[i]`` sees it (None: not in the view)."""
    if not path:
        return ()
    if path[0] == "models":
        if len(path) < 2 or path[1] != i:
            return None
        rest = tuple(path[2:])
        if not rest:
            return ("model",)
        if rest[0] == "serving":
            return rest
        if rest[0] == "name":
            return None
        return ("model", *rest)
    if path[0] in ("serving", "model", "publish"):
        return None
    return tuple(path)


def back_path(path: tuple, i: int) -> tuple:
    """A view path as the multi-model document names it."""
    if path[:1] == ("model",):
        return ("models", i, *path[1:])
    if path[:1] == ("serving",):
        return ("models", i, *path)
    return tuple(path)


def view_document(doc: Document, i: int) -> Document:
    view = Document(file=doc.file, data=None)
    for table, out in ((doc.positions, view.positions), (doc.key_positions, view.key_positions)):
        for path, pos in table.items():
            mapped = map_path(path, i)
            if mapped is not None:
                out[mapped] = pos
    return view


def make_view(loaded: LoadedMulti, i: int) -> LoadedRecipe:
    """``models[i]`` as a single-model ``LoadedRecipe`` (located at the multi-model file's lines)."""
    assert loaded.recipe is not None
    data = view_data(loaded.recipe, i)
    doc = view_document(loaded.doc, i)
    doc.data = data
    view = LoadedRecipe(loaded.file, doc, None)
    try:
        view.recipe = Recipe.model_validate(data)
    except ValidationError as exc:  # the shapes are the same as MultiRecipe's: not expected

        view.diagnostics.extend(pydantic_diagnostics(view, exc))
        return view
    view.diagnostics.extend(java_int_options(view, view.recipe))
    if has_errors(view.diagnostics):
        view.recipe = None
    return view


def entry(loaded: LoadedMulti, i: int) -> ModelEntry:
    assert loaded.recipe is not None
    return loaded.recipe.models[i]


# ----------------------------------------------------------------- pydantic errors, located

def _from_pydantic(loaded: LoadedMulti, exc: ValidationError) -> list[Diagnostic]:
    """The single-model recipe's error conversion, over the multi-model schema and its path spelling."""
    def hint(loc: tuple) -> str:
        return "; a multi-model recipe lists its models under models:" if loc == ("model",) else ""

    return pydantic_diagnostics(loaded, exc, root=MultiRecipe, name=_dotted, unknown_hint=hint)


def _dotted(path: tuple) -> str:
    text = ""
    for p in path:
        text += f"[{p}]" if isinstance(p, int) else (f".{p}" if text else str(p))
    return text
