"""What every rule shares: the registry of rule ids (for docs and tests) and the checking context."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from builder.catalog import Catalog, Instance, Release
from builder.diagnostics import Diagnostic
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


@dataclass
class Ctx:
    loaded: LoadedRecipe
    recipe: Recipe
    catalog: Catalog
    release: Release | None
    instance: Instance | None
    out: list[Diagnostic] = field(default_factory=list)

    @property
    def opts(self) -> dict[str, Any]:
        return self.recipe.serving.option

    @property
    def family(self) -> str:
        return self.recipe.container.family

    @property
    def rolling_batch(self) -> str:
        default = self.release.default_rolling_batch if self.release else "auto"
        return str(self.opts.get("rolling_batch", default)).strip().lower()

    @property
    def engine(self) -> str | None:
        """The engine the render will write (explicit, else the backend's, else the release's)."""
        if self.recipe.serving.engine:
            return self.recipe.serving.engine
        backend = self.catalog.backends.get(self.rolling_batch)
        if backend and backend.engine:
            return backend.engine
        return self.release.default_engine if self.release else None

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


Check = Callable[[Ctx], None]


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


def iter_keys(mapping: dict[str, Any]) -> Iterator[str]:
    return iter(sorted(mapping))
