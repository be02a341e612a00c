"""The model: section: Hub hygiene, and local files that must exist inside the recipe's folder
(DESIGN "Paths in recipes may not escape their base folder"; seed guide "Model Artifact Configuration")."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

from builder.diagnostics import Diagnostic, Location, relpath
from builder.lmi.rules.base import Ctx, check, rule
from builder.lmi.rules.weights import check_weights

REVISION = rule("revision-pinned", "a Hub model pins model.revision to a full 40-hex commit (warning)",
                "copy the commit sha from the model's Hub page into model.revision", "seed guide, §17.10")
REVISION_HUB = rule("revision-hub-only", "model.revision applies to Hub models only", "remove model.revision", "")
MODEL_PATH = rule("model-path", "model.path is an existing folder inside the recipe's git repository",
                  "fix the path (relative to the recipe file)", "DESIGN")
ENTRY_FILE = rule("entry-point-file", "model.entry_point is an existing .py file inside the recipe's folder",
                  "fix the path (relative to the recipe file)", "§5, §13")
FILES = rule("model-files", "every model.files entry exists inside the recipe's folder", "fix or remove the entry",
             "DESIGN")
REQUIREMENTS = rule("requirements-file", "model.requirements is an existing file inside the recipe's folder",
                    "fix the path", "§11.2")
ESCAPE = rule("path-escape", "recipe paths stay inside their base folder: no absolute paths, no '..' out, no "
              "symlink pointing out", "copy the file into the recipe's folder", "DESIGN")
ENTRY_SYNTAX = rule("entry-point-syntax", "model.entry_point compiles (reported at its own file:line)",
                    "fix the Python syntax error", "§5")
ENTRY_HANDLER = rule("entry-point-handler", "model.entry_point defines the function named by option.handler "
                     "(default handle), checked without importing", "define def handle(inputs): ... or set "
                     "option.handler", "§5")

SHA_RE = re.compile(r"^[0-9a-f]{40}$")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".neff")


@check("model-hub")
def check_hub(ctx: Ctx) -> None:
    m = ctx.recipe.model
    if m.source_kind == "hub":
        # trust_remote_code left out is false, LMI's default: judged against the model's files (remote_code.py)
        if m.revision is None:
            ctx.warning(("model", "id"), REVISION, f"Hub model '{m.id}' has no model.revision; the Hub may change "
                        "under you: pin the full 40-hex commit sha")
        elif not SHA_RE.match(m.revision):
            ctx.warning(("model", "revision"), REVISION, f"revision '{m.revision}' is a branch, tag or short sha; "
                        "pin the full 40-hex commit sha so every build gets the same weights")
    elif m.revision is not None:
        ctx.error(("model", "revision"), REVISION_HUB, f"model.revision only applies to Hub models (model.id); "
                  f"remove it for a {m.source_kind} model")


def git_root(start: Path) -> Path | None:
    for d in (start, *start.parents):
        if (d / ".git").exists():
            return d
    return None


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


def resolve_local(ctx: Ctx, field: tuple, value: str, root: Path, rule_id: str, kind: str) -> Path | None:
    """The resolved path of a recipe-relative ``value`` if it exists, is a ``kind`` and stays in ``root``."""
    base = ctx.loaded.base_dir
    if os.path.isabs(value):
        ctx.error(field, ESCAPE, f"'{value}' is absolute; write it relative to the recipe file "
                  f"({relpath(base)}) and keep the file inside {relpath(root)}")
        return None
    joined = base / value
    if not _inside(Path(os.path.normpath(joined)), root):
        ctx.error(field, ESCAPE, f"'{value}' leaves {relpath(root)}; copy it inside and refer to it from there")
        return None
    if not joined.exists():
        ctx.error(field, rule_id, f"'{value}' does not exist (looked for {relpath(joined)})")
        return None
    real = joined.resolve()
    if not _inside(real, root):
        ctx.error(field, ESCAPE, f"'{value}' is a symlink to {real}, outside {relpath(root)}; copy the target "
                  "inside instead")
        return None
    if kind == "dir" and not real.is_dir():
        ctx.error(field, rule_id, f"'{value}' is not a folder")
        return None
    if kind == "file" and not real.is_file():
        ctx.error(field, rule_id, f"'{value}' is not a file")
        return None
    return real


@check("model-paths")
def check_paths(ctx: Ctx) -> None:
    """Checks local files; records the byte size of the local model's weights (ctx.model_bytes) when known."""
    m = ctx.recipe.model
    base = ctx.loaded.base_dir
    size: int | None = None
    folder: Path | None = None
    handler: Path | None = None
    if m.path is not None:
        root = git_root(base) or base
        folder = resolve_local(ctx, ("model", "path"), m.path, root, MODEL_PATH, "dir")
        if folder is not None:
            size = _scan_model(ctx, folder, root)
    if m.entry_point is not None:
        f = resolve_local(ctx, ("model", "entry_point"), m.entry_point, base, ENTRY_FILE, "file")
        if f is not None:
            if f.suffix != ".py":
                ctx.error(("model", "entry_point"), ENTRY_FILE, f"'{m.entry_point}' must be a Python file (.py)")
            else:
                _check_handler(ctx, f)
                handler = f
    if folder is not None:
        check_weights(ctx, folder, handler)
    for i, name in enumerate(m.files):
        resolve_local(ctx, ("model", "files", i), name, base, FILES, "any")
    if m.requirements is not None:
        resolve_local(ctx, ("model", "requirements"), m.requirements, base, REQUIREMENTS, "file")
    ctx.model_bytes = size


def _scan_model(ctx: Ctx, folder: Path, root: Path) -> int:
    """Sum weight sizes; a symlink inside the model folder may not point out of the repository."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            if p.is_symlink() and not _inside(p.resolve(), root):
                ctx.error(("model", "path"), ESCAPE, f"{relpath(p)} is a symlink to {p.resolve()}, outside "
                          f"{relpath(root)}; copy the file in instead")
        for name in filenames:
            if name.endswith(WEIGHT_SUFFIXES):
                try:
                    total += (Path(dirpath) / name).stat().st_size
                except OSError:
                    pass
    return total


def _check_handler(ctx: Ctx, file: Path) -> None:
    where = relpath(file)
    try:
        source = file.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        ctx.add(Diagnostic(ENTRY_SYNTAX, "error", "not UTF-8; save the handler as UTF-8", Location(where, 1, 1)))
        return
    except OSError as exc:
        ctx.error(("model", "entry_point"), ENTRY_FILE, f"cannot read '{where}': {exc.strerror}")
        return
    try:
        tree = ast.parse(source, filename=where)
        compile(tree, where, "exec", dont_inherit=True)  # catches 'return' outside function and friends
    except SyntaxError as exc:
        ctx.add(Diagnostic(ENTRY_SYNTAX, "error", f"{exc.msg} (model.entry_point does not compile; fix the syntax)",
                           Location(where, exc.lineno or 1, exc.offset or 1), ("model", "entry_point")))
        return
    except (ValueError, RecursionError, MemoryError) as exc:
        ctx.add(Diagnostic(ENTRY_SYNTAX, "error", f"cannot compile: {exc}", Location(where, 1, 1),
                           ("model", "entry_point")))
        return
    handler = str(ctx.opts.get("handler", "handle"))
    if handler not in _top_level_names(tree):
        ctx.error(("serving", "option", "handler") if "handler" in ctx.opts else ("model", "entry_point"),
                  ENTRY_HANDLER, f"{where} defines no top-level function '{handler}' (LMI calls it for every "
                  f"request); add def {handler}(inputs): ... or set option.handler to the function's name")


def _top_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names
