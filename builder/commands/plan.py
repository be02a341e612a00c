"""``lmi-build plan PATH... [--changed-since REF]``: which recipes to build and what runner each needs,
as JSON for CI matrices (``{"matrix": {"include": [...]}, ...}`` on stdout)."""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from builder.diagnostics import BuilderError, DiagnosticError, UsageError

NAME = "plan"
HELP = "list affected recipes and the runner each needs (JSON for CI matrices)"
DESCRIPTION = (
    "Load every recipe under PATH (files or folders) and print, for each affected recipe, what its "
    "runner needs: accelerator kind, GPU count and compute capability, Neuron devices, whether it "
    "compiles, expected disk. With --changed-since REF only recipes affected by `git diff REF` are "
    "listed: the recipe file, files it references, its image template folder, or its catalog entry. "
    "Each entry has the recipe hash; the image tag (<name>:<image-digest12>) digests the model files, "
    "handler files and pinned base as well, so it is known only at bake (image_tag: null)."
)

GIB = 1 << 30


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="recipe files or folders of recipes")
    p.add_argument("--changed-since", metavar="REF", help="only recipes affected since git REF")
    p.add_argument("--output", metavar="FILE", help="also write the JSON here")


# --- git ------------------------------------------------------------------------------------------

def _git(args: list[str], cwd: Path) -> str:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    except OSError as exc:
        raise BuilderError(f"git not available: {exc}", stage="plan") from None
    if proc.returncode != 0:
        raise UsageError(f"git {' '.join(args)}: {proc.stderr.strip() or 'failed'}")
    return proc.stdout


def changed_files(ref: str, cwd: Path) -> tuple[Path, set[Path]]:
    root = Path(_git(["rev-parse", "--show-toplevel"], cwd).strip())
    _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], root)
    names = _git(["diff", "--name-only", ref, "--"], root).splitlines()
    names += _git(["ls-files", "--others", "--exclude-standard"], root).splitlines()
    return root, {(root / n).resolve() for n in names if n}


def _old_yaml(root: Path, ref: str, rel: str) -> Any:
    proc = subprocess.run(["git", "show", f"{ref}:{rel}"], cwd=root, capture_output=True, text=True, timeout=60)
    return yaml.safe_load(proc.stdout) if proc.returncode == 0 else None


def _release_facts(catalog: Any, family: str, version: str, instance_type: str, keys_text: str | None) -> Any:
    """What a recipe takes from the catalog: its release (as the catalog completes it from the derived rows
    and the profiles), its family, the instance and the region table, and the release's derived key set."""
    if catalog is None:
        return None
    release = catalog.release(family, version)
    instance = catalog.instance(instance_type)
    return {"release": release.model_dump(mode="json") if release else None,
            "family": catalog.families[family].model_dump(mode="json") if family in catalog.families else None,
            "instance": instance.model_dump(mode="json") if instance else None,
            "regions": [catalog.region_accounts, catalog.partitions], "keys": keys_text}


def _catalog_at(root: Path, ref: str | None) -> Any:
    """The catalog as of git ``ref`` (None: the working tree), or None when that revision's data is unusable."""
    from builder.catalog import CATALOG_FILES, catalog_from_data

    def read(rel: str) -> Any:
        if ref is None:
            return yaml.safe_load((root / rel).read_text()) if (root / rel).is_file() else None
        return _old_yaml(root, ref, rel)

    try:
        return catalog_from_data(*(read(rel) for rel in CATALOG_FILES))
    except Exception:  # a missing file or an older layout of the catalog: everything counts as changed
        return None


def _keys_text(root: Path, ref: str | None, family: str, version: str, catalog: Any) -> str | None:
    from builder.lmi.keys import keys_file

    release = catalog.release(family, version) if catalog is not None else None
    if release is None:
        return None
    rel = f"builder/catalog/keys/{keys_file(release.family, release.version).name}"
    if ref is None:
        path = root / rel
        return path.read_text() if path.is_file() else None
    proc = subprocess.run(["git", "show", f"{ref}:{rel}"], cwd=root, capture_output=True, text=True, timeout=60)
    return proc.stdout if proc.returncode == 0 else None


# --- recipes --------------------------------------------------------------------------------------

def recipe_files(paths: list[str]) -> list[Path]:
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            from builder.commands.validate import is_recipe

            # a folder's YAML files that are recipes, as validate DIR reads a folder
            found += sorted(q for q in p.rglob("*") if q.suffix in (".yaml", ".yml") and q.is_file() and is_recipe(q))
        elif p.is_file():
            found.append(p)
        else:
            raise UsageError(f"{raw}: no such file or folder")
    return found


def _referenced(recipe, base: Path) -> list[Path]:
    m = recipe.model
    rels = [m.path, m.entry_point, m.requirements, *m.files]
    return [(base / r).resolve() for r in rels if r]


def _tree_bytes(path: Path) -> int | None:
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
    return None


def runner_needs(recipe, base: Path, catalog) -> dict[str, Any]:
    inst = catalog.instance(recipe.target.instance_type)
    if inst is None:
        raise BuilderError(f"instance type {recipe.target.instance_type!r} is not in the catalog", stage="plan")
    gpu = inst.kind == "gpu"
    neuron = inst.kind == "neuron"
    compiles = bool(recipe.compile.enabled)
    model_bytes = _tree_bytes((base / recipe.model.path).resolve()) if recipe.model.path else None
    notes: list[str] = []
    disk_gib = None
    if model_bytes is not None:
        # fetch cache copy + build context/layer + image layer in the engine (+ compiled artifacts,
        # about model-sized for TRT-LLM engines / NEFFs); the runtime base image comes on top.
        factor = 3 + (1 if compiles else 0)
        disk_gib = round(model_bytes * factor / GIB + 1, 1)
        notes.append(f"disk: {factor}x model size + 1 GiB, excluding the runtime base image")
    else:
        notes.append("model size not known offline (Hub/S3 or not yet generated); disk estimate omitted")
    labels = ["self-hosted", inst.kind]
    if gpu:
        labels += [inst.arch, f"gpus-{inst.devices}"]
    if neuron:
        labels += [inst.arch, f"neuron-devices-{inst.chips or 1}"]
    return {
        "instance_type": recipe.target.instance_type, "accelerator": inst.accelerator, "kind": inst.kind,
        "gpus": inst.devices if gpu else 0,
        "compute_capability": inst.compute_capability if gpu else None,
        "arch": inst.arch,
        "gpu_memory_gib": inst.memory_gib if gpu else None,
        "neuron_devices": (inst.chips or 1) if neuron else 0,  # /dev/neuron* devices
        "neuron_cores": inst.devices if neuron else 0,
        "compiles": compiles,
        "model_bytes": model_bytes, "disk_gib": disk_gib,
        "runner_labels": labels, "notes": notes,
    }


def image_tag_fields(recipe, catalog) -> dict[str, Any]:
    """What plan can say about the image tag before any fetch: the recipe hash, and that the tag is not
    known yet. The tag digests the model files (Hub/S3 ones are not fetched here), the handler files and
    the pinned base (a registry digest, or the dev-cpu runtime's local image id, built at the runtime
    stage), so plan never guesses it (docs/publish.md "plan")."""
    from builder.lmi.resolve import resolve

    try:
        recipe_hash: str | None = resolve(recipe, catalog).recipe_hash
    except BuilderError:
        recipe_hash = None  # `lmi-build validate` says why the recipe does not resolve
    return {"recipe_hash": recipe_hash, "image_tag": None,
            "image_tag_note": f"known after fetch and base pinning: {recipe.name}:<image-digest12> "
                              "(lmi-build build prints it; build-record inputs.image_digest)"}


def plan(paths: list[str], changed_since: str | None = None) -> dict[str, Any]:
    from builder.catalog import load_catalog
    from builder.recipe import load_recipe

    files = recipe_files(paths)
    catalog = load_catalog()
    root, changed = (None, set())
    if changed_since:
        root, changed = changed_files(changed_since, Path.cwd())
    diags = []
    include: list[dict[str, Any]] = []
    unaffected: list[str] = []
    from builder.multi import is_multi_file

    for f in files:
        if is_multi_file(f):  # one entry for all its models (builder/multi/plan.py)
            from builder.multi.plan import multi_entry

            entry, bad, affected = multi_entry(f, catalog, (root, changed, changed_since) if changed_since else None)
            diags += bad
            if entry is not None:
                (include.append(entry) if affected else unaffected.append(str(f)))
            continue
        loaded = load_recipe(f)
        if not loaded.ok:
            diags += loaded.diagnostics
            continue
        r = loaded.recipe
        assert r is not None
        entry = {"recipe": str(f), "name": r.name, "family": r.container.family, "version": r.container.version,
                 **runner_needs(r, loaded.base_dir, catalog), **image_tag_fields(r, catalog)}
        if changed_since:
            assert root is not None
            reasons = rebuild_reasons(f.resolve(), r, loaded.base_dir, root, changed, changed_since)
            if not reasons:
                unaffected.append(str(f))
                continue
            entry["reasons"] = reasons
        include.append(entry)
    if diags:
        raise DiagnosticError(diags, stage="plan")
    return {"changed_since": changed_since, "count": len(include), "matrix": {"include": include},
            "unaffected": unaffected}


def rebuild_reasons(file: Path, recipe, base: Path, root: Path, changed: set[Path], ref: str) -> list[str]:
    reasons = []
    if file in changed:
        reasons.append("recipe changed")
    for ref_path in _referenced(recipe, base):
        hit = [c for c in changed if c == ref_path or ref_path in c.parents]
        if hit:
            reasons.append(f"referenced file changed: {hit[0].relative_to(root)}")
    template_dir = (root / "images" / recipe.container.family).resolve()
    if any(template_dir in c.parents for c in changed):
        reasons.append(f"image template changed: images/{recipe.container.family}/")
    if any("builder/catalog" in c.as_posix() for c in changed):
        args = (recipe.container.family, recipe.container.version, recipe.target.instance_type)
        now_catalog, old_catalog = _catalog_at(root, None), _catalog_at(root, ref)
        now = _release_facts(now_catalog, *args, _keys_text(root, None, *args[:2], now_catalog))
        old = _release_facts(old_catalog, *args, _keys_text(root, ref, *args[:2], old_catalog))
        parts = [k for k in ("release", "family", "instance", "regions", "keys")
                 if now is None or old is None or now[k] != old[k]]
        if parts:
            reasons.append(f"catalog entry changed: {', '.join(parts)} ({recipe.container.family} "
                           f"{recipe.container.version} on {recipe.target.instance_type})")
    return reasons


def run(args) -> int:
    result = plan(args.paths, args.changed_since)
    text = json.dumps(result, indent=2)
    if args.output:
        Path(args.output).write_text(text + "\n")
    print(text)
    return 0
