"""``lmi-build inspect RECIPE --layers``: the image's layer plan before anything is read or built.

The same plan the assemblers make (``builder.assembly.layers.plan_groups``), from ``stat`` alone: no file
is hashed, read or copied (a cached Hub or S3 model is found as plain ``inspect`` finds it: through the
cache's snapshot folder of links). The base's layer count comes from the local
Docker engine when it has the base image, else from the newest build record of this recipe that
recorded it (the registry assembler lists the base's layers); otherwise it is unknown and the plan is
made as the build would make it without one (``RESERVED_BASE_LAYERS``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from builder.assembly import layers as L
from builder.diagnostics import BuilderError

STAGE = "inspect"


class PlannedLayer(BaseModel):
    name: str
    kind: str
    files: list[str]  # relative to /opt/ml/model
    bytes: int


class BaseLayers(BaseModel):
    reference: str | None
    layers: int | None  # None: unknown
    source: str  # where the count came from, or why it is unknown


class LayerPlanReport(BaseModel):
    recipe: str
    model: str  # where the model files were found, or why there are none
    layers: list[PlannedLayer]
    base: BaseLayers
    budget: dict[str, int]  # total, overlay_limit, ours (the most we may add), max_layer_bytes
    total_layers: int | None  # base + ours, when the base's count is known
    notes: list[str]


def _engine_layers(ref: str) -> int | None:
    """The base's layer count from the local engine, never pulling; None when it or the image is absent."""
    from builder.engine import docker_client

    try:
        attrs = docker_client("plan", timeout=5).api.inspect_image(ref)
    except Exception:  # no engine, no such image, no SDK: the count is simply not known here
        return None
    return len((attrs.get("RootFS") or {}).get("Layers") or [])


def _recorded_layers(recipe_file: Path, cache: Path) -> tuple[int, str, str | None] | None:
    """(count, record path, base reference) from the newest build record of this recipe listing the base's layers."""
    builds = cache / "builds"
    try:
        records = sorted(builds.glob("*/build-record.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return None
    want = recipe_file.resolve()
    for path in records:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not data.get("recipe_file") or Path(data["recipe_file"]).resolve() != want:
            continue
        image = data.get("image") or {}
        base = [x for x in image.get("layers") or [] if isinstance(x, dict) and x.get("kind") == "base"]
        if base:
            ref = (image.get("base") or {}).get("reference") if isinstance(image.get("base"), dict) else None
            return len(base), str(path), ref
    return None


def base_layer_count(resolved: Any, recipe_file: Path, cache: Path) -> BaseLayers:
    ref = resolved.base_image
    if ref:
        count = _engine_layers(ref)
        if count is not None:
            return BaseLayers(reference=ref, layers=count, source="local Docker engine")
    recorded = _recorded_layers(recipe_file, cache)
    if recorded is not None:
        count, path, rec_ref = recorded
        return BaseLayers(reference=rec_ref or ref, layers=count, source=f"build record {path}")
    why = ("the dev-cpu runtime is built at build time" if not ref
           else "the local Docker engine does not have it and no build record lists its layers")
    return BaseLayers(reference=ref, layers=None,
                      source=f"unknown ({why}); planned as {L.RESERVED_BASE_LAYERS} layers")


def _config_sizes(resolved: Any, base_dir: Path) -> dict[str, int]:
    """serving.properties as the build renders it, and the handler files' sizes (stat only)."""
    from builder.lmi.properties import dumps
    from builder.recipe.files import handler_files as _handler_files

    sizes = {"serving.properties": len(dumps(resolved.properties).encode())}
    for name, src in sorted(_handler_files(resolved.recipe, base_dir).items()):
        rel = L.check_relative(name, "handler file")
        try:
            sizes[rel] = Path(src).stat().st_size
        except OSError as exc:
            raise BuilderError(f"handler file {src} cannot be read: {exc.strerror}", stage=STAGE) from None
    return sizes


def layer_plan(loaded: Any, resolved: Any, cache: Path) -> LayerPlanReport:
    from builder.artifacts.locate import local_model_dir

    recipe = loaded.recipe
    notes: list[str] = []
    config = _config_sizes(resolved, loaded.base_dir)
    model: dict[str, int] = {}
    if recipe.model.bake:
        folder, where = local_model_dir(recipe, loaded.base_dir, cache)
        files, _ = L.plan_sources(folder, None, dict.fromkeys(config))
        model = {name: size for name, (_, size, _) in files.items()}
        if recipe.compile.enabled:
            notes.append("compile.enabled: the compiled repository is baked in place of these files; "
                         "its layers follow the same rules once it exists")
    else:
        where = "not baked (model.bake is false: the image downloads the model at start)"
    base = base_layer_count(resolved, Path(loaded.file), cache)
    groups = L.plan_groups(model, {}, config, base_layers=base.layers)
    sizes = {**model, **config}
    planned = [PlannedLayer(name=g.name, kind=g.kind, files=list(g.files), bytes=sum(sizes[f] for f in g.files))
               for g in groups]
    own = L.own_layer_budget(base.layers)
    budget = {"total": L.TOTAL_LAYERS, "overlay_limit": L.OVERLAY_MAX_LAYERS, "ours": own,
              "max_layer_bytes": L.MAX_LAYER_BYTES}
    return LayerPlanReport(recipe=str(loaded.file), model=where, layers=planned, base=base, budget=budget,
                           total_layers=base.layers + len(planned) if base.layers is not None else None, notes=notes)


def print_table(report: LayerPlanReport) -> None:
    """One line a layer (plain, so a CI log keeps whole names), then the base and the budget."""
    from builder.console import info

    info(f"layer plan for {report.recipe} ({report.model}):")
    width = max((len(x.name) for x in report.layers), default=0)
    for i, layer in enumerate(report.layers):
        span = layer.files[0] if len(layer.files) == 1 else \
            f"{layer.files[0]} .. {layer.files[-1]}" if layer.files else "(empty: creates /opt/ml/model)"
        count = f"{len(layer.files)} file" + ("" if len(layer.files) == 1 else "s")
        info(f"  {i:3d}  {layer.name:<{width}}  {count:>9}  {layer.bytes:>16,} B ({L.human_bytes(layer.bytes)})  "
             f"{span}")
    b = report.base
    count = f"{b.layers} layers ({b.source})" if b.layers is not None else b.source
    info(f"base {b.reference or '(none)'}: {count}")
    total = f"{report.total_layers} in all" if report.total_layers is not None else "base unknown"
    info(f"ours: {len(report.layers)} layers of at most {report.budget['ours']} allowed ({total}; budget "
         f"{report.budget['total']}, overlay limit {report.budget['overlay_limit']}); at most "
         f"{L.human_bytes(report.budget['max_layer_bytes'])} per layer")
    for note in report.notes:
        info(f"note: {note}")


def run(args: Any) -> int:
    """``inspect --layers``: one JSON object on stdout (``--format json``) or a table on stderr."""
    from builder.lmi.resolve import resolve
    from builder.paths import cache_dir
    from builder.recipe.loader import load_or_raise

    loaded = load_or_raise(args.recipe)
    assert loaded.recipe is not None
    report = layer_plan(loaded, resolve(loaded.recipe), cache_dir(args.cache_dir))
    if args.format == "json":
        sys.stdout.write(json.dumps(report.model_dump(mode="json"), indent=2) + "\n")
    else:
        print_table(report)
    return 0
