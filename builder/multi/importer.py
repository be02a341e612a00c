"""``lmi-build import FOLDER``: a model store / MME layout (one sub-folder per model, each with its own
``serving.properties``) becomes a multi-model recipe; each sub-folder is imported as a single-model
recipe is (builder/lmi/importer.py) and becomes one ``models:`` entry named after the folder."""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from builder import diagnostics as dg
from builder.recipe.model import NAME_RE

CONFIG = "serving.properties"


def model_folders(folder: Path) -> list[Path]:
    """The sub-folders holding a serving.properties, sorted; [] when ``folder`` is not such a store."""
    if not folder.is_dir() or (folder / CONFIG).is_file():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / CONFIG).is_file())


def safe_name(text: str) -> str | None:
    name = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._")[:63]
    return name if name and re.match(NAME_RE, name) else None


def import_folder(folder: Path, *, family: str, version: str, instance_type: str | None, name: str | None,
                  output: Path | None) -> tuple[dict[str, Any], list[str], list, list[Path]]:
    """(recipe data, notes, per-model Sources, the sub-folders). Raises UsageError/DiagnosticError."""
    from builder.lmi.importer import LocatedImportError, build_recipe, read_sources

    subs = model_folders(folder)
    if not subs:
        one = folder / CONFIG
        raise dg.UsageError(f"{folder}: a folder to import holds one sub-folder per model, each with its own "
                            f"{CONFIG} (and no {CONFIG} of its own)",
                            hint=f"import one model from its file: lmi-build import {one}" if one.is_file()
                            else f"give a {CONFIG} file to import one model")
    base = (output.resolve().parent if output else Path(os.getcwd()).resolve())
    notes: list[str] = []
    entries: list[dict[str, Any]] = []
    all_sources = []
    shared: dict[str, Any] | None = None
    seen: dict[str, Path] = {}
    for sub in subs:
        model_name = safe_name(sub.name)
        if model_name is None:
            raise dg.UsageError(f"{sub}: the folder name cannot be made a model name ([a-z0-9][a-z0-9._-]*)",
                                hint="rename the folder")
        if model_name in seen:
            raise dg.UsageError(f"{sub} and {seen[model_name]} both become model name '{model_name}'",
                                hint="rename one of the folders")
        seen[model_name] = sub
        try:
            sources = read_sources(sub / CONFIG, None)
        except LocatedImportError as exc:
            raise dg.DiagnosticError([dg.Diagnostic(exc.error.rule, "error", exc.error.message,
                                                    dg.Location(str(exc.file), exc.error.line, 1 if exc.error.line else 0))],
                                     stage="import") from None
        all_sources.append(sources)
        rel = os.path.relpath(sub.resolve(), base)
        imported = build_recipe(sources.props, family=family, version=version, instance_type=instance_type,
                                name=name or safe_name(folder.resolve().name) or "imported", model_path=rel)
        notes += [f"{model_name}: {n}" for n in sources.notes + imported.notes]
        data = imported.data
        shared = shared or {k: data[k] for k in ("name", "container", "target")}
        entries.append({"name": model_name, **data["model"], "serving": data.get("serving") or {}})
    assert shared is not None
    return {**shared, "models": entries}, notes, all_sources, subs


def in_input(d, sources_per_model: list, subs: list[Path]):  # type: ignore[no-untyped-def]
    """A diagnostic of the imported multi-model recipe, located at the input line its value came from
    (the model's own serving.properties) through the single-model import's own mapping."""
    import argparse

    from builder.commands.import_ import locate_in_input
    from builder.multi.loader import map_path

    path = tuple(d.path)
    if path[:1] == ("models",) and len(path) > 1 and isinstance(path[1], int) and path[1] < len(subs):
        i = path[1]
        view_path = map_path(path, i) or ()
        args = argparse.Namespace(properties=subs[i] / CONFIG, env_file=None)
        return locate_in_input(replace(d, path=view_path), sources_per_model[i], args)
    return d
