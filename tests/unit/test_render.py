"""Renders of every example against golden files, parsed back by the JDK; env translation rules.

Regenerate the golden files after an intended change: ``LMI_UPDATE_GOLDEN=1 pytest tests/unit/test_render.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from builder.lmi.importer import env_to_properties
from builder.lmi.properties import loads
from builder.lmi.render import render, render_texts
from builder.lmi.resolve import MODEL_DIR, env_form, resolve
from builder.lmi.rules import validate
from builder.recipe import load_recipe
from tests.support.javaprops import java_load, needs_java

ROOT = Path(__file__).resolve().parents[2]
# multi-model-quickstart.yaml renders one folder per model (builder/multi/render.py, docs/multi-model.md); its
# per-model renders are the quickstart's handler config and are checked in tests/unit/test_multi_model.py.
EXAMPLES = sorted(p for p in (ROOT / "recipes" / "examples").glob("*.yaml")
                  if p.name not in ("quickstart.yaml", "multi-model-quickstart.yaml"))
GOLDEN = ROOT / "tests" / "golden"
UPDATE = os.environ.get("LMI_UPDATE_GOLDEN") == "1"


@pytest.fixture(autouse=True)
def _fixed_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.chdir(ROOT)


def _resolved(path: Path):
    loaded = load_recipe(path.relative_to(ROOT))
    assert not [d for d in validate(loaded) if d.severity == "error"]
    assert loaded.recipe is not None
    return resolve(loaded.recipe)


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_render_matches_golden(example: Path, tmp_path: Path) -> None:
    written = render(_resolved(example), tmp_path)
    assert [p.name for p in written] == ["serving.properties", "serving.env", "resolved.json"]
    folder = GOLDEN / example.stem
    for path in written:
        golden = folder / path.name
        if UPDATE:
            folder.mkdir(parents=True, exist_ok=True)
            golden.write_text(path.read_text())
        assert golden.exists(), f"missing {golden}; run with LMI_UPDATE_GOLDEN=1"
        assert path.read_text() == golden.read_text(), f"{path.name} differs from {golden}"


def test_render_is_deterministic(tmp_path: Path) -> None:
    a = render_texts(_resolved(EXAMPLES[0]))
    b = render_texts(_resolved(EXAMPLES[0]))
    assert a == b


@needs_java
def test_java_reads_what_we_wrote(tmp_path: Path) -> None:
    files, expected = [], []
    for i, example in enumerate(EXAMPLES):
        resolved = _resolved(example)
        f = tmp_path / f"{i}.properties"
        f.write_text(render_texts(resolved)["serving.properties"], encoding="ascii")
        files.append(f)
        expected.append(resolved.properties)
    got = java_load(*files)
    assert got == expected


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_pinned_keys_and_env_translation(example: Path) -> None:
    r = _resolved(example)
    props = loads(render_texts(r)["serving.properties"])
    assert props == r.properties
    # §18: everything auto-configuration would decide is pinned
    for key in ("engine", "job_queue_size", "option.rolling_batch", "option.entryPoint",
                "option.tensor_parallel_degree", "option.model_loading_timeout", "option.predict_timeout"):
        assert key in props, key
    assert props["option.tensor_parallel_degree"].isdigit()
    if props["option.rolling_batch"] != "disable":
        assert props["option.max_rolling_batch_size"].isdigit()
    env = dict(line.split("=", 1) for line in render_texts(r)["serving.env"].splitlines() if not line.startswith("#"))
    assert env["SERVING_LOAD_MODELS"] == f"test::{props['engine']}={MODEL_DIR}"
    for key, value in props.items():
        if key.startswith("option."):
            assert env["OPTION_" + key[7:].upper()] == value
        elif key != "engine":
            assert env["SERVING_" + key.upper()] == value
    # LMI's reverse translation (§10.2) gives the same configuration back
    assert env_to_properties(env) == props


def test_bake_points_at_baked_folder_and_download_sets_model_id() -> None:
    baked = _resolved(ROOT / "recipes/examples/vllm-llama3-8b-g5.yaml").properties
    assert "option.model_id" not in baked and "option.revision" not in baked
    s3 = _resolved(ROOT / "recipes/examples/s3-vllm-g6.yaml").properties
    assert s3["option.model_id"] == "s3://my-model-bucket/mistral-7b-instruct-v0.3/"


def test_backend_entry_points_and_engines() -> None:
    def props(name: str) -> dict[str, str]:
        return _resolved(ROOT / "recipes/examples" / name).properties

    ds = props("deepspeed-llama2-7b-g5.yaml")
    assert (ds["engine"], ds["option.entryPoint"], ds["option.max_rolling_batch_size"]) == \
        ("MPI", "djl_python.deepspeed", "4")
    tnx = props("neuronx-llama3-8b-inf2.yaml")
    assert (tnx["engine"], tnx["option.entryPoint"], tnx["option.rolling_batch"]) == \
        ("Python", "djl_python.transformers_neuronx", "auto")
    assert props("lmi-dist-llama3-8b-g5.yaml")["engine"] == "MPI"
    assert props("trtllm-jit-llama3-8b-g5.yaml")["option.entryPoint"] == "djl_python.tensorrt_llm"
    assert props("vllm-llama3-8b-g5.yaml")["option.entryPoint"] == "djl_python.huggingface"


def test_env_form_case_rule() -> None:
    env = env_form({"engine": "MPI", "option.entryPoint": "x", "option.someKey": "1", "minWorkers": "2"})
    assert env == {"SERVING_LOAD_MODELS": f"test::MPI={MODEL_DIR}", "OPTION_ENTRYPOINT": "x",
                   "OPTION_someKey": "1", "SERVING_MINWORKERS": "2"}
    back = env_to_properties(env)
    assert back["option.entryPoint"] == "x" and back["option.someKey"] == "1" and back["engine"] == "MPI"


def test_resolved_json_is_json() -> None:
    doc = json.loads(render_texts(_resolved(EXAMPLES[0]))["resolved.json"])
    assert doc["serving"]["properties"]["engine"] in ("Python", "MPI") and len(doc["recipe_hash"]) == 64
