"""Load a recipe file into a ``Recipe`` with every problem located at its YAML node."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from builder.diagnostics import Diagnostic, DiagnosticError, has_errors
from builder.recipe.model import JAVA_INT_MAX, Recipe
from builder.recipe.yamlpos import Document, load_document

# Free text where a newline is legitimate; everywhere else a newline could smuggle a key or a
# Dockerfile line into a rendered file, so it is refused at the source.
MULTILINE_OK: set[tuple[str, ...]] = {("description",), ("smoke", "prompt")}


@dataclass
class LoadedFile:
    """A recipe file as loaded: its document (positions), the typed value if it is valid, the problems.
    What the single-model and the multi-model loaders return share this."""

    file: Path
    doc: Document
    recipe: Any  # the typed recipe, None while it has errors; narrowed by each loader's class
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def base_dir(self) -> Path:
        return self.file.resolve().parent

    @property
    def ok(self) -> bool:
        return self.recipe is not None and not has_errors(self.diagnostics)

    def at(self, path: tuple[str | int, ...], rule: str, message: str, severity: str = "error", *,
           key: bool = False) -> Diagnostic:
        """A diagnostic located at ``path`` in this recipe (``key``: at the key rather than the value)."""
        return Diagnostic(rule, severity, message, self.doc.location(path, key=key), tuple(path))  # type: ignore[arg-type]


@dataclass
class LoadedRecipe(LoadedFile):
    recipe: Recipe | None


def load_recipe(file: str | Path, text: str | None = None) -> LoadedRecipe:
    """Parse and type-check; never raises for bad input (see ``.diagnostics``)."""
    path = Path(file)
    doc, diags = load_document(path, text)
    loaded = LoadedRecipe(path, doc, None, diags)
    if diags:
        return loaded
    if not isinstance(doc.data, dict):
        loaded.diagnostics.append(loaded.at((), "recipe-shape", "a recipe is a mapping (name:, model:, container:, ...)"))
        return loaded
    loaded.diagnostics.extend(text_checks(loaded, doc.data, ()))
    if loaded.diagnostics:
        return loaded
    try:
        loaded.recipe = Recipe.model_validate(doc.data)
    except ValidationError as exc:
        loaded.diagnostics.extend(pydantic_diagnostics(loaded, exc))
        return loaded
    loaded.diagnostics.extend(java_int_options(loaded, loaded.recipe))
    if has_errors(loaded.diagnostics):
        loaded.recipe = None
    return loaded


# option.* keys LMI's Java front end (PyEnv / ModelInfo) parses with Integer.parseInt before any
# Python runs: a value above Integer.MAX_VALUE validates as a YAML number and fails at start.
JAVA_INT_OPTIONS = ("model_loading_timeout", "predict_timeout")


def java_int_options(loaded: LoadedRecipe, recipe: Recipe) -> list[Diagnostic]:
    out = []
    for key in JAVA_INT_OPTIONS:
        value = recipe.serving.option.get(key)
        text = str(value).strip() if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
        if re.fullmatch(r"[+-]?[0-9]+", text) and not -(2**31) <= int(text) <= JAVA_INT_MAX:
            out.append(loaded.at(("serving", "option", key), "java-int-range",
                                 f"serving.option.{key}: {text} is outside the range of Java's int (at most "
                                 f"{JAVA_INT_MAX}); LMI reads it with Integer.parseInt and would fail at start"))
    return out


def load_or_raise(file: str | Path) -> LoadedRecipe:
    loaded = load_recipe(file)
    if not loaded.ok:
        raise DiagnosticError(loaded.diagnostics)
    return loaded


def text_checks(loaded: LoadedRecipe, value: Any, path: tuple) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if any(c in k for c in "\n\r\x00="):
                out.append(loaded.at(path + (k,), "value-control-chars", "keys may not contain newlines, NUL or '='",
                                     key=True))
            out.extend(text_checks(loaded, v, path + (k,)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(text_checks(loaded, v, path + (i,)))
    elif isinstance(value, str):
        if "\x00" in value:
            out.append(loaded.at(path, "value-control-chars", "value contains a NUL character"))
        elif ("\n" in value or "\r" in value) and tuple(p for p in path if isinstance(p, str)) not in MULTILINE_OK:
            out.append(loaded.at(path, "value-control-chars",
                                 "value contains a line break; write it on one line (a newline here could add a "
                                 "key to serving.properties or a line to the Dockerfile)"))
    return out


def _joined(path: tuple) -> str:
    return ".".join(str(p) for p in path)


def pydantic_diagnostics(loaded: Any, exc: ValidationError, *, root: type[BaseModel] = Recipe,
                   name: Callable[[tuple], str] = _joined,
                   unknown_hint: Callable[[tuple], str] = lambda loc: "") -> list[Diagnostic]:
    """pydantic's errors as located diagnostics; ``loaded`` has ``.doc`` and ``.at`` (a single- or a
    multi-model recipe: ``root`` is its model, ``name`` spells a path in its messages)."""
    out = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        kind = err["type"]
        if kind == "extra_forbidden":
            parent, key = loc[:-1], loc[-1]
            msg = f"unknown key '{key}'{_suggest(key, parent, root)}{unknown_hint(loc)}"
            out.append(loaded.at(loc, "unknown-key", msg, key=True))
            continue
        if kind == "missing":
            out.append(loaded.at(loc[:-1], "missing-key", f"missing required key '{name(loc)}'"))
            continue
        # pydantic appends the union member / validator name to loc for some errors; trim to a real path
        path = _real_path(loaded.doc, loc)
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        out.append(loaded.at(path, "invalid-value", f"{name(path) or 'recipe'}: {msg}"))
    return out


def _real_path(doc: Document, loc: tuple) -> tuple:
    path = loc
    while path and path not in doc.positions:
        path = path[:-1]
    return path


def _suggest(key: Any, parent: tuple, root: type[BaseModel] = Recipe) -> str:
    fields = _fields_at(parent, root)
    if not fields or not isinstance(key, str):
        return ""
    close = difflib.get_close_matches(key, fields, n=1, cutoff=0.6)
    if close:
        return f"; did you mean '{close[0]}'?"
    return f"; allowed here: {', '.join(sorted(fields))}"


def _fields_at(parent: tuple, root: type[BaseModel] = Recipe) -> list[str]:
    model: type[BaseModel] = root
    for part in parent:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part) or next(
            (f for f in model.model_fields.values() if f.alias == part), None)
        if info is None:
            return []
        ann = info.annotation
        sub = _model_in(ann)
        if sub is None:
            return []
        model = sub
    return [f.alias or name for name, f in model.model_fields.items()]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found:
            return found
    return None
