"""What every rule shares: the registry of rule ids (for docs and tests), the registry of checks that
validate() runs, the checking context, and what the recipe resolves to, computed once per validation.

A check is one function registered with ``@check("id", needs=(...))``: validate() runs the checks in
registration order (the import order of the rule modules, pinned by a test, since diagnostics at one
position keep the order they were reported in) and skips a check whose preconditions (``NEEDS``) fail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict

from builder.catalog import Catalog, Instance, Release, version_tuple
from builder.catalog.facts import FamilyFacts, load_facts
from builder.diagnostics import Diagnostic
from builder.lmi.resolve import engine_of, pick_entry_point, rolling_batch_of
from builder.recipe.loader import LoadedRecipe
from builder.recipe.model import Recipe


@dataclass(frozen=True)
class Rule:
    id: str
    what: str  # the rule, one line
    fix: str  # how to fix a violation, one line
    source: str = ""  # where the rule comes from (reference section)


RULES: dict[str, Rule] = {}


def rule(id: str, what: str, fix: str, source: str = "") -> str:
    """Register a rule id; returns the id so modules can keep it in a constant."""
    RULES[id] = Rule(id, what, fix, source)
    return id


OPT = ("serving", "option")
ASYNC_ENTRY_POINT = "djl_python.lmi_vllm.vllm_async_service"


class Derived(BaseModel):
    """What the recipe resolves to, computed once per validation (``derive``) and read by every rule."""

    model_config = ConfigDict(frozen=True)

    rolling_batch: str
    engine: str | None  # what the render writes: explicit, else the backend's, else the release's
    required_engine: str | None  # what the backend needs (None: either)
    removed_at: str | None  # the DJL version that removed the rolling_batch, for this release
    rolling_batch_ok: bool  # offered by the release and not removed: backend rules apply
    entry_point: str | None  # the handler LMI runs (resolve.pick_entry_point); None without a release
    vllm_properties: bool  # VllmRbProperties is built: rolling_batch vllm, or the vLLM async service
    fits: bool  # the family runs on the instance's accelerator (no instance: nothing to judge)
    tp_pp: tuple[int, int] | None  # resolved (TP, PP); None without release/instance or unusable values
    workers: int | None  # model copies on the instance: devices // (TP x PP)


@dataclass
class Ctx:
    loaded: LoadedRecipe
    recipe: Recipe
    catalog: Catalog
    release: Release | None
    instance: Instance | None
    out: list[Diagnostic] = field(default_factory=list)
    model_bytes: int | None = None  # the local model's weight bytes, once model.check_paths has summed them

    @property
    def opts(self) -> dict[str, Any]:
        return self.recipe.serving.option

    @property
    def family(self) -> str:
        return self.recipe.container.family

    @cached_property
    def facts(self) -> FamilyFacts:
        return load_facts().of(self.family)

    @cached_property
    def derived(self) -> Derived:
        return derive(self)

    @property
    def rolling_batch(self) -> str:
        return self.derived.rolling_batch

    @property
    def engine(self) -> str | None:
        return self.derived.engine

    def error(self, path: tuple, rule_id: str, message: str, *, key: bool = False) -> None:
        assert rule_id in RULES, rule_id
        self.out.append(self.loaded.at(path, rule_id, message, "error", key=key))

    def warning(self, path: tuple, rule_id: str, message: str, *, key: bool = False) -> None:
        assert rule_id in RULES, rule_id
        self.out.append(self.loaded.at(path, rule_id, message, "warning", key=key))

    def add(self, diag: Diagnostic) -> None:
        self.out.append(diag)

    def opt_path(self, key: str) -> tuple:
        return (*OPT, key)


CheckFn = Callable[[Ctx], None]


@dataclass(frozen=True)
class Check:
    id: str
    fn: CheckFn
    needs: tuple[str, ...]


CHECKS: list[Check] = []


def _model_path_ok(ctx: Ctx) -> bool:
    return not any(d.path[:2] == ("model", "path") and d.severity == "error" for d in ctx.out)


# Preconditions a check may declare; each is read when the check is about to run.
NEEDS: dict[str, Callable[[Ctx], bool]] = {
    "release": lambda ctx: ctx.release is not None,
    "instance": lambda ctx: ctx.instance is not None,
    "rolling_batch_ok": lambda ctx: ctx.release is not None and ctx.derived.rolling_batch_ok,
    "fits": lambda ctx: ctx.derived.fits,
    "model_path_ok": _model_path_ok,  # no error at model.path so far (its files can be read)
}


def check(id: str, needs: tuple[str, ...] = ()) -> Callable[[CheckFn], CheckFn]:
    """Register a check under ``id``, run by validate() when every precondition in ``needs`` holds."""
    unknown = set(needs) - set(NEEDS)
    if unknown:
        raise ValueError(f"check {id!r} needs unknown preconditions {sorted(unknown)}")

    def register(fn: CheckFn) -> CheckFn:
        if any(c.id == id for c in CHECKS):
            raise ValueError(f"two checks are registered as {id!r}")
        CHECKS.append(Check(id, fn, tuple(needs)))
        return fn
    return register


def run_checks(ctx: Ctx) -> int:
    """Run every registered check whose preconditions hold, in order; returns how many ran."""
    ran = 0
    for c in CHECKS:
        if all(NEEDS[n](ctx) for n in c.needs):
            c.fn(ctx)
            ran += 1
    return ran


def derive(ctx: Ctx) -> Derived:
    rel, inst, facts, opts = ctx.release, ctx.instance, ctx.facts, ctx.opts
    # the same functions resolve() uses, so what is judged is what the render writes
    rb = rolling_batch_of(opts, rel.default_rolling_batch if rel else "auto")
    backend = ctx.catalog.backends.get(rb)
    engine = engine_of(ctx.recipe.serving.engine, ctx.catalog, rb, rel.default_engine if rel else None)
    need = facts.engine_for(rb) or (backend.engine if backend else None)
    removed = facts.removed_at(rb, rel.djl_version) if rel else None
    ok = rel is not None and rb in rel.rolling_batch and removed is None
    entry = pick_entry_point(ctx.recipe.model.entry_point, rel, ctx.catalog, rb, opts) if rel else None
    vllm = rb == "vllm" or (facts.vllm_async_service and not ctx.recipe.model.entry_point
                            and entry == ASYNC_ENTRY_POINT)
    tp = _tp_pp(ctx)
    workers = None
    if tp and inst is not None:
        workers = max(1, inst.devices // (tp[0] * tp[1])) if inst.kind != "cpu" else 1
    return Derived(rolling_batch=rb, engine=engine, required_engine=need, removed_at=removed, rolling_batch_ok=ok,
                   entry_point=entry, vllm_properties=vllm, fits=_fits(ctx), tp_pp=tp, workers=workers)


def _fits(ctx: Ctx) -> bool:
    inst, fam = ctx.instance, ctx.catalog.families.get(ctx.family)
    if inst is None or fam is None:
        return True
    if inst.kind not in fam.device_kinds:
        return False
    return not (fam.min_compute_capability and inst.kind == "gpu" and inst.compute_capability and
                version_tuple(inst.compute_capability) < version_tuple(fam.min_compute_capability))


def _tp_pp(ctx: Ctx) -> tuple[int, int] | None:
    """Resolved (TP, PP), or None if a value is not usable (tp-range reports it)."""
    inst, rel = ctx.instance, ctx.release
    if inst is None or rel is None:
        return None
    raw = ctx.opts.get("tensor_parallel_degree", rel.default_tensor_parallel_degree)
    if str(raw).strip().lower() == "max":
        tp: int | None = inst.devices if inst.kind != "cpu" else 1
    else:
        tp = as_int(raw)
    pp = as_int(ctx.opts.get("pipeline_parallel_degree", 1))
    if tp is None or pp is None or tp < 1 or pp < 1:
        return None
    return tp, pp


def as_bool(value: Any) -> bool | None:
    """LMI reads booleans as text; True/"true" (any case) -> True, False/"false" -> False, else None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def as_int(value: Any) -> int | None:
    """Integers as LMI parses them (Integer.parseInt / int()): ints or digit strings, never bools/floats."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None
