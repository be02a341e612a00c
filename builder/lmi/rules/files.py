"""What the bake writes beside serving.properties, checked before it runs (issue 15 item 6).

``model.files`` entries are baked under their base name next to the handler (pipeline._handler_files),
so two entries with one base name, or one named like the handler, ``serving.properties`` or the baked
``requirements.txt``, would silently replace each other; a folder or an empty entry cannot be baked;
and without ``model.entry_point`` nothing in ``files`` is baked at all. ``env:`` names are baked as
``ENV NAME=...`` and must be names a shell and docker accept. Each is a located error here rather than
an unlocated failure in the bake.
"""

from __future__ import annotations

import os
import re
from pathlib import PurePosixPath

from builder.lmi.rules.base import Ctx, check, rule

FILES_NEED_ENTRY = rule("model-files-entry-point", "model.files is baked beside model.entry_point, so it needs one",
                        "add model.entry_point (the custom handler), or remove model.files", "§5")
FILES_KIND = rule("model-files-kind", "every model.files entry names one regular file (not a folder, not empty)",
                  "list the files inside the folder one by one, or remove the entry", "§5")
FILES_CLASH = rule("model-files-name-clash", "model.files entries are baked under their base name: no two share "
                   "one, and none is named like the handler, serving.properties or the baked requirements.txt",
                   "rename one of the files (or remove the duplicate entry)", "§5")
ENV_NAME = rule("env-name-syntax", "env: and smoke.env names are environment variable names: letters, digits "
                "and '_', not starting with a digit", "rename the variable, e.g. 'MY_FLAG'", "")

# the same rule the bake's ENV writer applies (builder/image/render.py _ENV_KEY_RE; a test keeps them equal)
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
GENERATED = "serving.properties"


@check("model-files")
def check_files(ctx: Ctx) -> None:
    m = ctx.recipe.model
    if not m.files:
        return
    if not m.entry_point:
        ctx.error(("model", "files"), FILES_NEED_ENTRY, f"model.files lists {len(m.files)} file(s) but there is no "
                  "model.entry_point; files are baked beside the custom handler only, so none of these would be "
                  "in the image: add model.entry_point or remove model.files")
        return
    base = ctx.loaded.base_dir
    handler = PurePosixPath(m.entry_point).name
    taken: dict[str, str] = {handler: f"model.entry_point '{m.entry_point}'", GENERATED: "the generated "
                             "serving.properties"}
    if m.requirements:
        taken["requirements.txt"] = f"model.requirements '{m.requirements}' (baked as requirements.txt)"
    for i, name in enumerate(m.files):
        path = ("model", "files", i)
        if not name.strip():
            ctx.error(path, FILES_KIND, "an empty model.files entry names no file; remove it")
            continue
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
            ctx.error(path, FILES_KIND, f"model.files entry {name!r} has a control character in its name; "
                      "rename the file")
            continue
        target = base / name
        # missing or escaping entries are model.check_paths' (model-files, path-escape); only kinds here
        if not os.path.isabs(name) and target.is_dir():
            ctx.error(path, FILES_KIND, f"'{name}' is a folder; model.files bakes single files beside the "
                      "handler: list the files inside it one by one")
            continue
        base_name = PurePosixPath(name.replace("\\", "/")).name
        if base_name in taken:
            same = taken[base_name].endswith(f"'{name}'")
            ctx.error(path, FILES_CLASH, f"'{name}' would be baked as {base_name}, which is already "
                      f"{taken[base_name]}" + ("; remove the duplicate entry" if same else
                                               "; one would silently replace the other: rename one of them"))
            continue
        taken[base_name] = f"model.files entry '{name}'"
