"""Validate a multi-model recipe: every model through the single-model rules (as a view), then
the models together on one instance (docs/multi-model.md, "Validation")."""

from __future__ import annotations

from pathlib import Path

from builder.diagnostics import BuilderError, Diagnostic, has_errors
from builder.multi.loader import LoadedMulti, back_path, load_multi, make_view

# Rule ids of the together checks (docs/multi-model.md). Not in builder.lmi.rules.RULES: that registry
# lists the single-model rules, each with a case in tests/unit/test_rules.py.
NAME_RULE = "multi-model-name"
DEVICE_RULE = "multi-device-budget"
MEMORY_RULE = "multi-memory-budget"
UNSUPPORTED_RULE = "multi-unsupported"

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".npz", ".msgpack", ".h5")
GiB = 1 << 30


def validate_multi(loaded: LoadedMulti, *, with_fit: bool = True, cache_dir: Path | None = None) -> list[Diagnostic]:
    """Loader diagnostics, each model's, then the together checks; ordered by position. Never raises."""
    return check_multi(loaded, with_fit=with_fit, cache_dir=cache_dir)[0]


def check_multi(loaded: LoadedMulti, *, with_fit: bool = True,
                cache_dir: Path | None = None) -> tuple[list[Diagnostic], list | None]:
    """The diagnostics, and when there is no error every model's plan (``builder.multi.layout.ModelPlan``)
    with the resolution its validation made: the build resolves each model once."""
    diags = list(loaded.diagnostics)
    if loaded.recipe is None or has_errors(diags):
        return _sorted(diags), None
    from builder.multi.layout import ModelPlan
    from builder.validation import check

    recipe = loaded.recipe
    diags += _unsupported(loaded)
    diags += _names(loaded)
    seen: set[tuple] = set()
    views, plans = [], []
    for i, entry in enumerate(recipe.models):
        view = make_view(loaded, i)
        views.append(view)
        model_diags, resolved = check(view, with_fit=with_fit, cache_dir=cache_dir) if view.recipe is not None \
            else (view.diagnostics, None)
        if resolved is not None:
            plans.append(ModelPlan(entry.name, i, view, resolved))
        for d in model_diags:
            path = back_path(d.path, i)
            own = path[:1] == ("models",)
            message = f"models[{i}] '{entry.name}': {d.message}" if own else d.message
            key = (d.rule, d.location, message)
            if key in seen:  # a shared key (container, target) is said once, not once per model
                continue
            seen.add(key)
            diags.append(Diagnostic(d.rule, d.severity, message, d.location, path))
    if not has_errors(diags):  # no error: every model resolved
        diags += _budget(loaded, views, [p.resolved for p in plans], cache_dir if with_fit else None, with_fit)
    ok = not has_errors(diags) and len(plans) == len(recipe.models)
    return _sorted(diags), plans if ok else None


def validate_multi_path(path: str | Path, **kwargs) -> tuple[LoadedMulti, list[Diagnostic]]:
    loaded = load_multi(path)
    return loaded, validate_multi(loaded, **kwargs)


def _sorted(diags: list[Diagnostic]) -> list[Diagnostic]:
    return sorted(diags, key=lambda d: (d.location.file, d.location.line, d.location.col))


def _unsupported(loaded: LoadedMulti) -> list[Diagnostic]:
    """AOT compilation stays refused (said, not ignored). Image publishing (publish.ecr/registry) is
    supported: the multi-model image goes through the single-model publisher (docs/multi-model.md)."""
    recipe = loaded.recipe
    out = []
    if recipe.compile.enabled:
        names = ", ".join(f"models[{i}] '{m.name}'" for i, m in enumerate(recipe.models))
        out.append(loaded.at(("compile", "enabled"), UNSUPPORTED_RULE, f"compile.enabled: ahead-of-time compilation "
                             f"is not available for multi-model recipes; it would apply to {names}, but the compile "
                             "stage builds one model's artifacts for the model store's root (/opt/ml/model), and a "
                             "multi-model image needs each model's own under /opt/ml/model/<name>/; compile each "
                             "model as a single-model recipe, or leave compile off (TensorRT-LLM and NeuronX then compile at model load)"))
    return out


def _names(loaded: LoadedMulti) -> list[Diagnostic]:
    out = []
    first: dict[str, int] = {}
    for i, entry in enumerate(loaded.recipe.models):
        if entry.name in first:
            line = loaded.doc.location(("models", first[entry.name], "name")).line
            out.append(loaded.at(("models", i, "name"), NAME_RULE, f"models[{i}].name '{entry.name}' is already the "
                                 f"name of models[{first[entry.name]}] (line {line}); each model needs its own "
                                 "folder under the model store"))
        else:
            first[entry.name] = i
    return out


def _budget(loaded: LoadedMulti, views: list, resolved: list, cache_dir: Path | None,
            with_fit: bool) -> list[Diagnostic]:
    """``resolved``: every model's resolution, as its own validation made it."""
    out: list[Diagnostic] = []
    instance = resolved[0].instance
    if instance.kind in ("gpu", "neuron"):
        # a model holds TP x PP devices (pipeline parallel stages each hold a TP group)
        held = [r.tensor_parallel_degree * _pp(r) for r in resolved]
        total = 0
        for i, n in enumerate(held):
            total += n
            if total > instance.devices:
                each = ", ".join(f"{m.name} {x}" for m, x in zip(loaded.recipe.models, held, strict=True))
                where = ("models", i, "serving", "option", "tensor_parallel_degree")
                out.append(loaded.at(where, DEVICE_RULE, f"models[{i}] '{loaded.recipe.models[i].name}': the models' "
                                     f"tensor-parallel degrees (x pipeline-parallel) add up to {sum(held)} ({each}), "
                                     f"more than the {instance.devices} {instance.accelerator} device(s) of "
                                     f"{instance.name}; each model holds its own devices"))
                break
    if with_fit:
        out += _memory(loaded, views, instance, cache_dir)
    return out


def _pp(resolved) -> int:
    raw = str(resolved.properties.get("option.pipeline_parallel_degree", "1")).strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else 1


def weight_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)


def _memory(loaded: LoadedMulti, views: list, instance, cache_dir: Path | None) -> list[Diagnostic]:
    from builder.artifacts.locate import local_model_dir
    from builder.paths import cache_dir as default_cache

    sizes = []
    for view in views:
        if not view.recipe.model.bake and view.recipe.model.path is None:
            return []  # downloaded at start: nothing local to measure
        try:
            folder, _ = local_model_dir(view.recipe, view.base_dir, default_cache(cache_dir))
        except BuilderError:
            return []  # not local or cached: the sum cannot be known (the single-model fit says the same)
        sizes.append(weight_bytes(folder))
    if instance.kind in ("gpu", "neuron"):
        budget, what = instance.devices * instance.memory_gib * GiB, (f"{instance.devices} x {instance.memory_gib:g} GiB "
                                                                    f"of {instance.accelerator} memory")
    else:
        budget, what = instance.host_memory_gib * GiB, f"{instance.host_memory_gib} GiB of host memory"
    total = sum(sizes)
    if total > budget:
        parts = ", ".join(f"{m.name} {s / GiB:.1f} GiB" for m, s in zip(loaded.recipe.models, sizes, strict=True))
        return [loaded.at(("models",), MEMORY_RULE, f"the models' weights add up to {total / GiB:.1f} GiB ({parts}), "
                          f"more than the {what} of {instance.name}", key=True)]
    return []
