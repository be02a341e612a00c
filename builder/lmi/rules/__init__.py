"""Cross-field, version- and hardware-aware recipe rules: ``validate(loaded) -> [Diagnostic]``.

Every rule has a stable id (``RULES``, listed in docs/recipes.md), states the rule and the fix, and
points at the offending YAML node. The checks only read; resolve() relies on them having passed.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

from builder.catalog import Catalog, load_catalog
from builder.diagnostics import Diagnostic, has_errors
from builder.lmi.rules.base import CHECKS, RULES, Check, Ctx, Rule, run_checks
from builder.recipe.loader import LoadedRecipe, load_recipe

# The rule modules register their checks on import, each in the order it defines them; this is the order the
# modules are imported in, so the order validate() runs the checks in (diagnostics at one position keep the
# order they were reported in). tests/unit/test_rule_registry.py pins the resulting order of CHECKS.
MODULES = ("target", "model", "files", "remote_code", "options", "backend", "values", "compile", "crossfield",
           "hardware")
for _name in MODULES:
    import_module(f"{__name__}.{_name}")


def validate(loaded: LoadedRecipe, catalog: Catalog | None = None) -> list[Diagnostic]:
    """Loader diagnostics plus every registered check's, ordered by position. Never raises for bad input."""
    diags = list(loaded.diagnostics)
    if loaded.recipe is None or has_errors(diags):
        return diags
    catalog = catalog or load_catalog()
    recipe = loaded.recipe
    ctx = Ctx(loaded, recipe, catalog, catalog.release(recipe.container.family, recipe.container.version),
              catalog.instance(recipe.target.instance_type))
    run_checks(ctx)
    diags.extend(ctx.out)
    return sorted(diags, key=lambda d: (d.location.file, d.location.line, d.location.col))


def validate_file(path: str | Path) -> list[Diagnostic]:
    return validate(load_recipe(path))


__all__ = ["CHECKS", "MODULES", "RULES", "Check", "Rule", "validate", "validate_file"]
