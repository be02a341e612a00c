"""The rule registry (builder.lmi.rules.base.check), the value computed once per validation, and the family
facts the rules read from builder/catalog/families.yaml instead of if-chains."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from builder.catalog import load_catalog
from builder.catalog.facts import FAMILIES, load_facts
from builder.lmi.rules import CHECKS, validate
from builder.lmi.rules import base as rules_base
from builder.lmi.rules.base import NEEDS, check, run_checks
from builder.recipe import load_recipe

SHA = "0123456789abcdef0123456789abcdef01234567"

# The run order. Diagnostics are sorted by position, and two at one position keep the order they were
# reported in, so a change here changes output: update it only on purpose.
ORDER = [
    "release", "instance", "region", "model-hub", "model-paths", "model-files", "remote-code", "env", "env-names",
    "option-keys", "option-aliases", "engine", "entry-point", "rolling-batch", "rolling-batch-engine",
    "mpi-mode-python-backend", "batch-size-rolling-batch", "async-mode-rolling-batch", "cpu-full-transformers",
    "tp-range", "vllm-pipeline-parallel", "batch-limits", "timeouts", "output-formatter", "quantize-value",
    "lmi-dist-lora-draft", "dtype", "parallel-loading", "compile", "tnx-properties", "streaming-dynamic-batching",
    "option-requirements", "option-value-formats", "bitsandbytes-device-map", "fit",
]


def recipe(tmp_path: Path, **over: object) -> Path:
    data = {"name": "t", "model": {"id": "org/model", "revision": SHA},
            "container": {"family": "lmi", "version": "lmi-12.0.0"}, "target": {"instance_type": "ml.g5.12xlarge"},
            "serving": {"engine": "MPI", "option": {"rolling_batch": "lmi-dist"}}}
    data.update(over)
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_registry_order_is_pinned() -> None:
    assert [c.id for c in CHECKS] == ORDER
    assert all(set(c.needs) <= set(NEEDS) for c in CHECKS)


def test_check_refuses_unknown_precondition_and_duplicate_id() -> None:
    before = list(CHECKS)
    with pytest.raises(ValueError, match="unknown preconditions"):
        check("x-new", needs=("no-such",))
    with pytest.raises(ValueError, match="two checks"):
        check("fit")(lambda ctx: None)
    assert CHECKS == before


def test_preconditions_skip_checks_without_a_release(tmp_path: Path) -> None:
    from builder.lmi.rules.base import Ctx

    loaded = load_recipe(recipe(tmp_path, container={"family": "lmi", "version": "0.28.0"}))
    cat = load_catalog()
    ctx = Ctx(loaded, loaded.recipe, cat, None, cat.instance("ml.g5.12xlarge"))
    ran = run_checks(ctx)
    no_release = [c for c in CHECKS if not {"release", "rolling_batch_ok"} & set(c.needs)]
    assert ran == len(no_release) < len(CHECKS)
    assert [d.rule for d in ctx.out] == ["unknown-release"]


def test_derived_is_computed_once_per_validation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    real = rules_base.derive

    def counting(ctx: rules_base.Ctx) -> rules_base.Derived:
        calls.append(ctx)
        return real(ctx)

    monkeypatch.setattr(rules_base, "derive", counting)
    validate(load_recipe(recipe(tmp_path, serving={"option": {"rolling_batch": "vllm", "dtype": "fp16",
                                                              "parallel_loading": True}})))
    assert len(calls) == 1


def test_derived_values(tmp_path: Path) -> None:
    from builder.lmi.rules.base import Ctx

    loaded = load_recipe(recipe(tmp_path, container={"family": "lmi", "version": "lmi-27.0.0"},
                                serving={"option": {"tensor_parallel_degree": 2}}))
    cat = load_catalog()
    ctx = Ctx(loaded, loaded.recipe, cat, cat.release("lmi", "lmi-27.0.0"), cat.instance("ml.g5.12xlarge"))
    d = ctx.derived
    assert (d.rolling_batch, d.entry_point, d.vllm_properties) == ("auto", "djl_python.lmi_vllm.vllm_async_service",
                                                                    True)
    assert (d.tp_pp, d.workers, d.fits, d.rolling_batch_ok) == ((2, 1), 2, True, True)
    assert ctx.derived is d


def test_family_list_is_the_catalogs() -> None:
    from typing import get_args

    from builder.image.render import FAMILIES as RENDER_FAMILIES
    from builder.recipe.model import FAMILIES as SCHEMA_FAMILIES
    from builder.recipe.model import Family

    assert FAMILIES == tuple(load_catalog().families)  # families.yaml and containers.yaml name the same
    assert SCHEMA_FAMILIES == RENDER_FAMILIES == get_args(Family) == FAMILIES


def test_removed_backend_is_read_from_the_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """lmi-dist on lmi-12 is fine; with the data saying it was removed at 0.30 the rule refuses it."""
    path = recipe(tmp_path)
    assert "backend-removed" not in {d.rule for d in validate(load_recipe(path))}
    facts = load_facts()
    lmi = facts.families["lmi"].model_copy(update={"removed_backends": {"lmi-dist": "0.30"}})
    changed = facts.model_copy(update={"families": {**facts.families, "lmi": lmi}})
    monkeypatch.setattr(rules_base, "load_facts", lambda: changed)
    [d] = [d for d in validate(load_recipe(path)) if d.rule == "backend-removed"]
    assert "removed in LMI 0.30 (LMI would silently rewrite it to vllm)" in d.message


def test_facts_refuse_a_bad_version() -> None:
    from pydantic import ValidationError

    from builder.catalog.facts import FamilyFacts

    with pytest.raises(ValidationError, match="not a DJL version"):
        FamilyFacts(removed_backends={"lmi-dist": "soon"})


def _with_family(monkeypatch: pytest.MonkeyPatch, module: object, family: str, **update: object) -> None:
    facts = load_facts()
    changed = facts.model_copy(update={"families": {**facts.families,
                                                    family: facts.families[family].model_copy(update=update)}})
    monkeypatch.setattr(module, "load_facts", lambda: changed)


def test_compile_option_map_is_read_from_the_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """tensorrt-llm 0.33.0 uses quant_algo; data that moves the toolkit era past 0.33 makes it quantize."""
    from builder.compile import settings
    from builder.lmi.resolve import resolve
    from tests.support.model_fixtures import recipe_data, write_recipe

    loaded = load_recipe(write_recipe(tmp_path, recipe_data({"path": "m"}, family="tensorrt-llm", version="0.33.0",
                                                            compile={"enabled": True, "quantization": "fp8"})))
    resolved = resolve(loaded.recipe)
    assert settings.compile_options(resolved) == {"quant_algo": "fp8"}
    trt = load_facts().families["tensorrt-llm"].compile
    _with_family(monkeypatch, settings, "tensorrt-llm", compile=trt.model_copy(update={"toolkit_before": "0.34"}))
    assert settings.compile_options(resolved) == {"quantize": "fp8"}


def test_lmi_dist_rewrite_is_read_from_the_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from builder import lmi_check_compare
    from builder.lmi.resolve import resolve

    resolved = resolve(load_recipe(recipe(tmp_path)).recipe)  # lmi-12.0.0 (DJL 0.30.0) keeps lmi-dist
    assert lmi_check_compare.validator_input(resolved).options["rolling_batch"] == "lmi-dist"
    _with_family(monkeypatch, lmi_check_compare, "lmi", removed_backends={"lmi-dist": "0.30"})
    lmi_in = lmi_check_compare.validator_input(resolved)
    assert (lmi_in.options["rolling_batch"], lmi_in.backend) == ("vllm", "properties")


def test_keys_since_is_read_from_the_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """lmi 0.27.0 (hand-typed keys) does not read limit_mm_per_prompt for lmi-dist; data that adds it from
    0.27 makes the key known."""
    from builder.lmi import keys

    path = recipe(tmp_path, container={"family": "lmi", "version": "0.27.0"},
                  serving={"engine": "MPI", "option": {"rolling_batch": "lmi-dist", "limit_mm_per_prompt": "image=1"}})
    assert "unknown-option" in {d.rule for d in validate(load_recipe(path))}
    _with_family(monkeypatch, keys, "lmi", keys_since={"lmi-dist": {"0.27": ["limit_mm_per_prompt"]}})
    keys._known_keys.cache_clear()
    try:
        assert "unknown-option" not in {d.rule for d in validate(load_recipe(path))}
    finally:
        monkeypatch.undo()
        keys._known_keys.cache_clear()


def test_validator_ranges_are_data_and_open_ended() -> None:
    """A release branch newer than the newest one read keeps the validators that were still there."""
    from pydantic import ValidationError

    from builder.catalog.facts import Span

    spans = load_facts().lmi_validators
    v27 = load_catalog().release("lmi", "lmi-27.0.0")
    v28 = v27.model_copy(update={"provenance": {**v27.provenance, "branch": "0.37.0-lmi28-dlc"}})
    assert spans["vllm_pp"].covers(v27) and spans["vllm_pp"].covers(v28)
    assert not spans["tnx"].covers(v27) and not spans["tnx"].covers(v28)
    assert spans["tnx"].covers(load_catalog().release("neuronx", "0.29.0"))
    with pytest.raises(ValidationError, match="not a djl-serving release branch"):
        Span(first="main")


def test_rules_and_resolve_read_rolling_batch_alike(tmp_path: Path) -> None:
    """'vllm ' validates as vllm, so the render must write vllm (and its engine), not 'vllm '."""
    from builder.lmi.resolve import resolve

    path = recipe(tmp_path, container={"family": "lmi", "version": "lmi-27.0.0"},
                  serving={"option": {"rolling_batch": "VLLM "}})
    loaded = load_recipe(path)
    assert not [d for d in validate(loaded) if d.severity == "error"]
    resolved = resolve(loaded.recipe)
    assert (resolved.rolling_batch, resolved.engine) == ("vllm", "Python")
    assert resolved.properties["option.rolling_batch"] == "vllm"


def test_catalog_load_refuses_families_out_of_step(monkeypatch: pytest.MonkeyPatch) -> None:
    from builder.catalog import facts as facts_mod

    facts = load_facts()
    fewer = facts.model_copy(update={"families": {k: v for k, v in facts.families.items() if k != "dev-cpu"}})
    monkeypatch.setattr(facts_mod, "load_facts", lambda: fewer)
    with pytest.raises(ValueError, match="families.yaml names"):
        load_catalog.__wrapped__()
