"""``model-weights``: a local ``model.path`` folder holds weights the image would actually get.

Without this, a folder without weights (an example whose weights were never written, a clone made
without ``git lfs``) is baked as it is and the handler fails only at smoke time, minutes later (issue 14).

What counts is what the bake takes (``builder.artifacts.selection.select``: top-level ``*.safetensors``,
or ``pytorch_model*.bin`` when there are none), not any weight-looking file: a ``model.pt`` or
``original/consolidated.00.pth`` is left out of the image, so the message names such files.

A custom handler that needs no weight files (it builds or downloads its model itself) says so in its
own source, where the reason lives, with one top-level line read without importing the file::

    LMI_BUILD_NEEDS_WEIGHTS = False
"""

from __future__ import annotations

import ast
import fnmatch
import os
from pathlib import Path

from builder.artifacts.selection import select
from builder.diagnostics import relpath
from builder.lmi.rules.base import Ctx, rule

WEIGHTS = rule("model-weights", "a local model.path folder holds weights the bake takes (top-level *.safetensors, "
               "or pytorch_model*.bin), not Git LFS pointers, unless model.entry_point declares "
               "LMI_BUILD_NEEDS_WEIGHTS = False", "put the weights in the folder (git lfs pull for LFS pointers), or "
               "write LMI_BUILD_NEEDS_WEIGHTS = False at the top of a handler that needs none", "issue 14")

MARKER = "LMI_BUILD_NEEDS_WEIGHTS"
BAKED_WEIGHTS = ("*.safetensors", "pytorch_model*.bin")
# files that look like weights but that the bake leaves out, named in the message so the fix is obvious
LOOKALIKE_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".ckpt", ".h5", ".msgpack", ".onnx", ".npz",
                      ".npy", ".engine", ".neff")
LFS_MAGIC = b"version https://git-lfs.github.com/spec/"
LFS_POINTER_MAX = 1024  # a pointer file is ~130 bytes of text


def handler_needs_no_weights(handler: Path | None) -> bool:
    """True when the handler's source has a top-level ``LMI_BUILD_NEEDS_WEIGHTS = False``."""
    if handler is None:
        return False
    try:
        tree = ast.parse(handler.read_bytes())
    except (OSError, SyntaxError, ValueError):
        return False  # the entry-point rules report an unreadable or broken handler
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == MARKER for t in targets):
            return isinstance(value, ast.Constant) and value.value is False
    return False


def _top_level_files(folder: Path) -> list[str]:
    # the names the local fetch offers to select(): no dot files; symlinks count by their target
    return sorted(e.name for e in os.scandir(folder) if not e.name.startswith(".") and Path(e.path).is_file())


def _is_lfs_pointer(path: Path) -> bool:
    try:
        if path.stat().st_size > LFS_POINTER_MAX:
            return False
        with open(path, "rb") as fh:
            return fh.read(len(LFS_MAGIC)) == LFS_MAGIC
    except OSError:
        return False


def _lookalikes(folder: Path, limit: int = 3) -> list[str]:
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith(LOOKALIKE_SUFFIXES):
                found.append((Path(dirpath) / name).relative_to(folder).as_posix())
                if len(found) == limit:
                    return found
    return found


def check_weights(ctx: Ctx, folder: Path, handler: Path | None) -> None:
    """``folder``: the resolved model.path; ``handler``: the resolved model.entry_point, if valid."""
    m = ctx.recipe.model
    try:
        chosen, _ = select(_top_level_files(folder), trust_remote_code=bool(m.trust_remote_code))
    except OSError as exc:
        ctx.error(("model", "path"), WEIGHTS, f"cannot list '{m.path}': {exc.strerror}")
        return
    weights = [n for n in chosen if any(fnmatch.fnmatchcase(n, p) for p in BAKED_WEIGHTS)]
    pointers = [n for n in weights if _is_lfs_pointer(folder / n)]
    if weights and not pointers:
        return
    if handler_needs_no_weights(handler):
        return
    if pointers:
        ctx.error(("model", "path"), WEIGHTS, f"{', '.join(pointers[:3])} in '{m.path}' "
                  f"{'is a Git LFS pointer' if len(pointers) == 1 else 'are Git LFS pointers'}, not weights: run "
                  f"`git lfs pull` in the model's repository (or copy the real files into {relpath(folder)})")
        return
    left_out = _lookalikes(folder)
    found = (f"; found {', '.join(left_out)}, which the bake leaves out (it takes only top-level *.safetensors, or "
             "pytorch_model*.bin when there are none)") if left_out else ""
    fix = ("put the weights there, or, if the handler needs none, add the line "
           f"`{MARKER} = False` at the top of {m.entry_point}") if m.entry_point else "put the weights there"
    ctx.error(("model", "path"), WEIGHTS, f"'{m.path}' holds no model weights (no top-level *.safetensors or "
              f"pytorch_model*.bin){found}: the image would be built without them; {fix}")
