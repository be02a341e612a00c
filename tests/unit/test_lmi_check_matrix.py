"""LMI's own validators (djl_python 0.34.0) beside ours: the agreement matrix of docs/lmi-check.md.

Every rule fixture (tests/unit/test_rules.py) of the trtllm, neuronx and lmi-dist bases, and every
example recipe of those backends, goes through ``validate --lmi-check``'s comparison. The expected
verdicts are the documented table: a change on either side (a rule, the resolver, the derivations,
or the djl_python jar) fails here until the table and the docs are updated together.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from builder.commands.validate import validate_one
from builder.lmi_check_compare import LmiComparison, compare_paths, validator_input
from tests.unit.test_rules import BASES, CASES, merge

ROOT = Path(__file__).resolve().parents[2]
CHECKED_BASES = ("trtllm", "neuronx", "lmi-dist")

# (rule, base, fail|ok, n-th case of that rule and base) -> (ours valid, LMI accepts)
# Rows where the two differ are the disagreement table in docs/lmi-check.md (each with its reason).
EXPECTED: dict[tuple[str, str, str, int], tuple[bool, bool]] = {
    ("family-accelerator", "neuronx", "fail", 0): (False, True),  # hardware: not LMI's validator's business
    ("family-accelerator", "neuronx", "ok", 0): (True, True),
    ("trtllm-compute-capability", "trtllm", "fail", 0): (False, True),  # hardware
    ("trtllm-compute-capability", "trtllm", "ok", 0): (True, True),
    ("backend-removed", "lmi-dist", "fail", 0): (False, True),  # Java rewrites lmi-dist to vllm silently
    ("backend-removed", "lmi-dist", "ok", 0): (True, True),
    ("rolling-batch-engine", "lmi-dist", "fail", 0): (False, True),  # Java forces mpi_mode (v0.29.0 §7)
    ("rolling-batch-engine", "lmi-dist", "ok", 0): (True, True),
    ("rolling-batch-engine", "trtllm", "fail", 0): (False, True),  # Java forces mpi_mode (§5, §7)
    ("rolling-batch-engine", "trtllm", "ok", 0): (True, True),
    ("tp-range", "neuronx", "fail", 0): (False, True),  # hardware (NeuronCores)
    ("tp-range", "neuronx", "ok", 0): (True, True),
    ("dtype-value", "neuronx", "fail", 0): (False, False),  # agree: tnx dtype enum
    ("dtype-value", "neuronx", "ok", 0): (True, True),
    ("quantize-value", "lmi-dist", "fail", 0): (False, True),  # 0.34.0 made quantize a free string
    ("quantize-value", "lmi-dist", "ok", 0): (True, True),
    ("lmi-dist-lora-draft", "lmi-dist", "fail", 0): (False, False),  # agree: LoRA + draft model
    ("lmi-dist-lora-draft", "lmi-dist", "ok", 0): (True, True),
    ("unknown-option", "lmi-dist", "fail", 0): (False, True),  # key exists in 0.34.0, not 0.29.0
    ("unknown-option", "lmi-dist", "ok", 0): (True, True),
    ("compile-runtime-limits", "neuronx", "fail", 0): (False, True),  # compile settings, not runtime options
    ("compile-runtime-limits", "neuronx", "ok", 0): (True, True),
    ("compile-runtime-limits", "trtllm", "fail", 0): (False, True),
    ("compile-runtime-limits", "trtllm", "ok", 0): (True, True),
    ("compile-runtime-limits", "trtllm", "fail", 1): (False, True),
    ("compile-runtime-limits", "trtllm", "ok", 1): (True, True),
    ("compile-only-option", "trtllm", "fail", 0): (True, True),  # ours is a warning: valid
    ("compile-only-option", "trtllm", "ok", 0): (True, True),
    ("release-unpublished", "trtllm", "fail", 0): (False, True),  # a catalog fact: no image was published
    ("release-unpublished", "trtllm", "ok", 0): (True, True),
    # properties-manager validators as rules (builder/lmi/rules/crossfield.py): all agree with djl_python 0.34.0
    **{(r, b, kind, n): (kind == "ok", kind == "ok") for r, b, n in (
        ("tnx-loader-partition", "neuronx", 0), ("tnx-loader-partition", "neuronx", 1),
        ("tnx-aot-vllm-loader", "neuronx", 0), ("tnx-group-query-attention", "neuronx", 0),
        ("tnx-context-length-estimate", "neuronx", 0), ("lmi-dist-fast-loader-draft", "lmi-dist", 0),
        ("limit-mm-per-prompt-format", "lmi-dist", 0)) for kind in ("fail", "ok")},
}
BASE_EXPECTED = {b: (True, True) for b in CHECKED_BASES}
# example recipe -> (validator, ours valid, LMI accepts)
EXAMPLES: dict[str, tuple[str, bool, bool]] = {
    "lmi-dist-llama3-8b-g5.yaml": ("LmiDistRbProperties", True, True),
    "neuronx-llama3-8b-inf2.yaml": ("TransformerNeuronXProperties", True, True),
    "trtllm-aot-llama3-8b-g6.yaml": ("TensorRtLlmProperties", True, True),
    "trtllm-jit-llama3-8b-g5.yaml": ("TensorRtLlmProperties", True, True),
}


@pytest.fixture(scope="session")
def djl_jar() -> None:
    from builder.runtime.lmi_check import extracted_djl_python
    from builder.runtime.maven import cached_jar, fetch_jar

    if cached_jar() is None:
        if shutil.which("mvn") is None:
            pytest.skip("djl_python jar not cached and Maven (mvn) is not on PATH to fetch it")
        fetch_jar()
    assert extracted_djl_python() is not None


def _fixture_files(tmp: Path) -> dict[tuple[str, str, str, int], Path]:
    d = tmp / "recipes"
    (d / "m").mkdir(parents=True)
    (d / "m" / "config.json").write_text("{}")
    (d / "model.py").write_text("def handle(inputs):\n    return None\n")
    files: dict[tuple[str, str, str, int], Path] = {}
    seen: dict[tuple[str, str], int] = {}
    for rule, base, fail, ok in CASES:
        if base not in CHECKED_BASES:
            continue
        n = seen.get((rule, base), 0)
        seen[(rule, base)] = n + 1
        for kind, patch in (("fail", fail), ("ok", ok)):
            p = d / f"{rule}-{base}-{kind}-{n}.yaml"
            p.write_text(yaml.safe_dump(merge(BASES[base], patch), sort_keys=False))
            files[(rule, base, kind, n)] = p
    return files


def _compare(files: list[Path]) -> dict[Path, LmiComparison]:
    results = {f: validate_one(f, with_fit=False) for f in files}
    return compare_paths(files, results)


def test_rule_fixture_matrix(djl_jar: None, tmp_path: Path) -> None:
    files = _fixture_files(tmp_path)
    assert set(files) == set(EXPECTED), "a rule fixture of a checked backend was added or removed: " \
        "update EXPECTED and the table in docs/lmi-check.md"
    bases = {}
    for b in CHECKED_BASES:
        p = tmp_path / "recipes" / f"base-{b}.yaml"
        p.write_text(yaml.safe_dump(BASES[b], sort_keys=False))
        bases[b] = p
    got = _compare(list(files.values()) + list(bases.values()))
    for c in got.values():
        assert c.checked and c.djl_python_version == "0.34.0", c
    actual = {k: (got[p].ours_valid, got[p].lmi_ok) for k, p in files.items()}
    assert actual == EXPECTED
    assert {b: (got[p].ours_valid, got[p].lmi_ok) for b, p in bases.items()} == BASE_EXPECTED


def test_agreeing_rejections_name_the_reason(djl_jar: None, tmp_path: Path) -> None:
    files = _fixture_files(tmp_path)
    got = _compare([files[("dtype-value", "neuronx", "fail", 0)], files[("lmi-dist-lora-draft", "lmi-dist", "fail", 0)]])
    errors = [" ".join(c.lmi_errors) for c in got.values()]
    assert "dtype" in errors[0] and "fp16" in errors[0]
    assert "Cannot enable lora and speculative decoding" in errors[1]
    assert all(c.validator in ("TransformerNeuronXProperties", "LmiDistRbProperties") for c in got.values())


def test_example_recipes(djl_jar: None) -> None:
    examples = sorted((ROOT / "recipes" / "examples").glob("*.yaml"))
    got = _compare(examples)
    checked = {p.name: (c.validator, c.ours_valid, c.lmi_ok) for p, c in got.items()
               if c.backend in ("tensorrt-llm", "neuronx", "lmi-dist")}
    assert checked == EXAMPLES
    for p, c in got.items():
        if p.name in EXAMPLES:
            assert c.version_differs and "0.34.0 is not the recipe's release" in c.line()


def test_derivations_follow_the_java_front_end() -> None:
    """mpi_mode and model_dir are what Java would add (§4, §5, §7); each is named with its reason."""
    from builder.lmi.resolve import resolve
    from builder.recipe import load_recipe

    jit = resolve(load_recipe(ROOT / "recipes/examples/trtllm-jit-llama3-8b-g5.yaml").recipe)
    li = validator_input(jit)
    assert li.backend == "tensorrt-llm" and li.options["mpi_mode"] == "true"
    assert li.options["model_dir"] == "/opt/ml/model" and "§4" in li.derived["mpi_mode"]
    assert li.options["rolling_batch"] == "trtllm" and "engine" in li.options
    assert not any(k.startswith("option.") for k in li.options)
    neuron = validator_input(resolve(load_recipe(ROOT / "recipes/examples/neuronx-llama3-8b-inf2.yaml").recipe))
    assert neuron.backend == "neuronx" and "mpi_mode" not in neuron.options
