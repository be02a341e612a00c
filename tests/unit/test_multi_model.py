"""Multi-model recipes (docs/multi-model.md): parsing, per-model located errors, the device and memory
budgets, deterministic model.tar.gz archives, the dev-cpu front end's multi-model store, predict --model."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from builder.diagnostics import UsageError
from builder.multi import is_multi_file
from builder.multi.layout import fetch, plan_models, tar_bytes, write_tar_gz
from builder.multi.loader import load_multi
from builder.multi.validate import validate_multi_path
from builder.smoke.container import free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "recipes" / "examples" / "multi-model-quickstart.yaml"
SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(ROOT / "recipes" / "examples" / "quickstart", tmp_path / "quickstart",
                    ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LMI_BUILD_CACHE", str(tmp_path / "cache"))
    return tmp_path


def entry(name: str, **serving_option) -> dict:
    return {"name": name, "path": "quickstart/model", "entry_point": "quickstart/model.py",
            "serving": {"engine": "Python", "option": {"rolling_batch": "disable", **serving_option}}}


def cpu_recipe(*models: dict, **extra) -> dict:
    return {"name": "pair", "container": {"family": "dev-cpu", "version": "0.34.0"},
            "target": {"instance_type": "ml.m5.xlarge"}, "models": list(models), **extra}


def gpu_entry(name: str, tp) -> dict:
    return {"name": name, "id": "org/model", "revision": SHA, "trust_remote_code": False,
            "serving": {"engine": "Python", "option": {"rolling_batch": "vllm", "tensor_parallel_degree": tp}}}


def gpu_recipe(*models: dict) -> dict:
    return {"name": "gpus", "container": {"family": "lmi", "version": "lmi-27.0.0"},
            "target": {"instance_type": "ml.g5.12xlarge"}, "models": list(models)}


def write(path: Path, data: dict) -> tuple[Path, list[str]]:
    text = yaml.safe_dump(data, sort_keys=False)
    path.write_text(text)
    return path, text.splitlines()


def line_of(lines: list[str], needle: str, start: int = 0) -> int:
    return next(i for i, t in enumerate(lines, 1) if i > start and needle in t)


# ------------------------------------------------------------------------ parsing


def test_example_validates_and_parses() -> None:
    assert is_multi_file(EXAMPLE) and not is_multi_file(ROOT / "recipes/examples/quickstart.yaml")
    loaded, diags = validate_multi_path(EXAMPLE, with_fit=False)
    assert loaded.ok and not [d for d in diags if d.severity == "error"], [d.format() for d in diags]
    assert loaded.recipe.names == ["alpha", "beta"]
    assert loaded.recipe.models[0].path == "quickstart/model"
    assert loaded.recipe.models[1].serving.option["model_loading_timeout"] == 90


def test_validate_command_finds_the_multi_model_example() -> None:
    from builder.commands.validate import find_recipes, validate_one

    files, _ = find_recipes([ROOT / "recipes"])
    assert EXAMPLE in files
    assert not [d for d in validate_one(EXAMPLE, with_fit=False) if d.severity == "error"]


def test_each_model_renders_what_its_single_model_recipe_renders(monkeypatch: pytest.MonkeyPatch) -> None:
    """alpha has the quickstart's serving section: the same serving.properties keys and values."""
    from builder.lmi.resolve import resolve
    from builder.recipe import load_recipe

    monkeypatch.chdir(ROOT)
    plans = plan_models(load_multi(EXAMPLE.relative_to(ROOT)))
    single = resolve(load_recipe("recipes/examples/quickstart.yaml").recipe)
    assert plans[0].resolved.properties == single.properties
    assert plans[1].resolved.properties["option.model_loading_timeout"] == "90"


def test_model_and_models_together_is_refused(workdir: Path) -> None:
    data = cpu_recipe(entry("a"))
    data["model"] = {"path": "quickstart/model"}
    path, lines = write(workdir / "r.yaml", data)
    [d] = validate_multi_path(path)[1]
    assert d.rule == "multi-model-shape" and d.location.line == line_of(lines, "model:")


# ------------------------------------------------------------------ located errors


def test_a_rule_error_points_at_its_model(workdir: Path) -> None:
    data = cpu_recipe(entry("a"), entry("b"))
    data["models"][1]["serving"]["engine"] = "Pythn"
    path, lines = write(workdir / "r.yaml", data)
    errors = [d for d in validate_multi_path(path)[1] if d.severity == "error"]
    [d] = [d for d in errors if d.rule == "engine-value"]
    assert d.location.line == line_of(lines, "engine: Pythn")
    assert d.message.startswith("models[1] 'b': ") and d.path[:2] == ("models", 1)


def test_a_missing_folder_points_at_its_model_path(workdir: Path) -> None:
    data = cpu_recipe(entry("a"), entry("b"))
    data["models"][0]["path"] = "quickstart/nope"
    path, lines = write(workdir / "r.yaml", data)
    [d] = [d for d in validate_multi_path(path)[1] if d.rule == "model-path"]
    assert d.location.line == line_of(lines, "path: quickstart/nope") and "models[0] 'a'" in d.message


def test_unknown_key_in_an_entry_is_located_with_a_suggestion(workdir: Path) -> None:
    data = cpu_recipe(entry("a"), entry("b"))
    data["models"][1]["entrypoint"] = "x.py"
    path, lines = write(workdir / "r.yaml", data)
    [d] = validate_multi_path(path)[1]
    assert d.rule == "unknown-key" and "did you mean 'entry_point'" in d.message
    assert d.location.line == line_of(lines, "entrypoint:")


def test_shared_errors_are_said_once(workdir: Path) -> None:
    data = cpu_recipe(entry("a"), entry("b"))
    data["target"]["instance_type"] = "ml.g5.12xlarge"  # dev-cpu on a GPU instance: one shared error
    path, _ = write(workdir / "r.yaml", data)
    hits = [d for d in validate_multi_path(path)[1] if d.rule == "family-accelerator"]
    assert len(hits) == 1 and not hits[0].message.startswith("models[")


def test_duplicate_and_unsafe_names(workdir: Path) -> None:
    path, lines = write(workdir / "r.yaml", cpu_recipe(entry("a"), entry("a")))
    [d] = validate_multi_path(path)[1]
    assert d.rule == "multi-model-name" and d.location.line == line_of(lines, "name: a", line_of(lines, "name: a"))
    path, lines = write(workdir / "s.yaml", cpu_recipe(entry("a"), entry("../x")))
    [d] = validate_multi_path(path)[1]
    assert d.rule == "invalid-value" and d.location.line == line_of(lines, "name: ../x")


def test_compile_is_refused_naming_the_models_and_why(workdir: Path) -> None:
    data = cpu_recipe(entry("a"), entry("b"), compile={"enabled": True})
    path, lines = write(workdir / "r.yaml", data)
    [d] = [d for d in validate_multi_path(path)[1] if d.rule == "multi-unsupported"]
    assert d.location.line == line_of(lines, "enabled: true")
    assert "models[0] 'a', models[1] 'b'" in d.message and "/opt/ml/model/<name>/" in d.message
    assert "single-model recipe" in d.message  # what to do instead


def test_image_publish_targets_are_accepted(workdir: Path) -> None:
    """publish.ecr / publish.registry go through the single-model publisher (docs/multi-model.md)."""
    data = cpu_recipe(entry("a"), entry("b"), publish={
        "registry": "localhost:5000/x", "tags": ["v-{image_digest12}"],
        "ecr": {"account": "123456789012", "region": "us-west-2", "repository": "lmi/pair"}})
    path, _ = write(workdir / "r.yaml", data)
    assert [d.format() for d in validate_multi_path(path)[1] if d.severity == "error"] == []


# ------------------------------------------------------------------------- budgets


def test_device_budget_sum_of_tp_degrees(workdir: Path) -> None:
    path, lines = write(workdir / "r.yaml", gpu_recipe(gpu_entry("big", "max"), gpu_entry("small", 2)))
    [d] = [d for d in validate_multi_path(path)[1] if d.severity == "error"]
    assert d.rule == "multi-device-budget" and "add up to 6 (big 4, small 2)" in d.message and "'small'" in d.message
    assert d.location.line == line_of(lines, "tensor_parallel_degree: 2")
    path, _ = write(workdir / "ok.yaml", gpu_recipe(gpu_entry("big", 2), gpu_entry("small", 2)))
    assert not [d for d in validate_multi_path(path)[1] if d.severity == "error"]
    piped = gpu_recipe(gpu_entry("big", 2), gpu_entry("small", 2))  # TRT-LLM: TP x PP devices per model
    piped["container"] = {"family": "tensorrt-llm", "version": "0.33.0"}
    for e in piped["models"]:
        e["serving"] = {"engine": "MPI", "option": {"rolling_batch": "trtllm", "tensor_parallel_degree": 2}}
    piped["models"][0]["serving"]["option"]["pipeline_parallel_degree"] = 2  # 2 x 2, plus 2 more: 6 > 4
    path, _ = write(workdir / "pp.yaml", piped)
    hits = [d for d in validate_multi_path(path)[1] if d.rule == "multi-device-budget"]
    assert len(hits) == 1 and "add up to 6 (big 4, small 2)" in hits[0].message, [d.format() for d in
                                                                                 validate_multi_path(path)[1]]


def test_memory_budget_sum_of_weights(workdir: Path) -> None:
    for name in ("m1", "m2"):
        folder = workdir / name
        shutil.copytree(workdir / "quickstart" / "model", folder)
        with open(folder / "big.bin", "wb") as fh:  # sparse: sizes count, no disk used
            fh.truncate(10 << 30)
    data = cpu_recipe(entry("a"), entry("b"))
    data["models"][0]["path"], data["models"][1]["path"] = "m1", "m2"
    path, _ = write(workdir / "r.yaml", data)
    hits = [d for d in validate_multi_path(path)[1] if d.rule == "multi-memory-budget"]
    assert len(hits) == 1 and "20.0 GiB" in hits[0].message and "16 GiB of host memory" in hits[0].message
    data["models"][1]["path"] = "quickstart/model"  # 10 GiB + 21 KB fits 16 GiB
    path, _ = write(workdir / "r.yaml", data)
    assert not [d for d in validate_multi_path(path)[1] if d.rule == "multi-memory-budget"]


# ------------------------------------------------------------- deterministic archives


def _archives(workdir: Path, out: Path) -> dict[str, bytes]:
    loaded, diags = validate_multi_path(workdir / "r.yaml")
    assert loaded.ok, [d.format() for d in diags]
    plans = fetch(plan_models(loaded), cache_dir=workdir / "cache")  # fetch returns new plans, with the files
    return {p.name: (write_tar_gz(p.layout(), out / f"{p.name}.tar.gz"), (out / f"{p.name}.tar.gz").read_bytes())[1]
            for p in plans}


def test_archives_are_byte_identical_across_runs(workdir: Path) -> None:
    write(workdir / "r.yaml", cpu_recipe(entry("a"), entry("b", model_loading_timeout=90)))
    first = _archives(workdir, workdir / "one")
    for f in (workdir / "quickstart" / "model").iterdir():  # new mtimes must not change a byte
        os.utime(f, (time.time() + 100, time.time() + 100))
    second = _archives(workdir, workdir / "two")
    assert first == second and first["a"] != first["b"]
    raw = first["a"]
    assert raw[4:8] == b"\0\0\0\0"  # gzip header mtime 0
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as tar:
        members = tar.getmembers()
        names = [m.name for m in members]
        assert names == sorted(names) and "serving.properties" in names and "model.py" in names
        assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 and m.uname == "" and m.mode == 0o644 for m in members)
        props = tar.extractfile("serving.properties").read().decode()
    assert "option.model_id" not in props and "option.entryPoint=model.py" in props


def test_tar_of_nested_files_lists_parent_folders_first(tmp_path: Path) -> None:
    from builder.publish.s3_layout import LayoutFile

    files = [LayoutFile(name=n, size=1, sha256="0" * 64, data=b"x", kind="model") for n in ("z", "d/b", "d/a")]
    raw = tar_bytes(files)
    assert raw == tar_bytes(list(reversed(files)))
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as tar:
        assert [m.name for m in tar.getmembers()] == ["d", "d/a", "d/b", "z"]
    assert gzip.decompress(raw)  # a well-formed gzip stream


# ---------------------------------------------------------------- front end and predict


def test_store_models_follows_djls_rule(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "images" / "dev-cpu" / "frontend"))
    try:
        from lmi_dev_frontend.__main__ import store_models
    finally:
        sys.path.pop(0)

    class Args:
        models = None

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / ".hidden").write_text("")
    assert [n for n, _ in store_models(Args, {}, str(tmp_path))] == ["a", "b"]
    (tmp_path / "serving.properties").write_text("engine=Python\n")  # a root serving.properties: one model
    assert store_models(Args, {}, str(tmp_path)) == []
    (tmp_path / "serving.properties").unlink()
    (tmp_path / "config.json").write_text("{}")  # a file among the entries: the root is one model
    assert store_models(Args, {}, str(tmp_path)) == []


def _djl_python() -> Path | None:
    base = Path(os.environ.get("LMI_BUILD_CACHE", Path.home() / ".cache" / "lmi-builder"))
    found = sorted((Path.home() / ".cache" / "lmi-builder" / "maven").glob("ai/djl/python/python/*/djl_python-*"))
    found += sorted((base / "maven").glob("ai/djl/python/python/*/djl_python-*"))
    return next((p for p in found if (p / "djl_python" / "service_loader.py").is_file()), None)


@contextlib.contextmanager
def frontend(tmp_path: Path, store: Path):
    """The dev-cpu front end on ``store`` (a subprocess on a free 127.0.0.1 port); yields call(path, body,
    headers) -> (status, JSON)."""
    djl = _djl_python()
    if djl is None:
        pytest.skip("djl_python is not in the cache (lmi-build runtime fetch puts it there)")
    pytest.importorskip("numpy")
    port = free_port()
    conf = tmp_path / "config.properties"
    conf.write_text(f"inference_address=http://127.0.0.1:{port}\n")
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'images/dev-cpu/frontend'}:{djl}"}
    proc = subprocess.Popen([sys.executable, "-m", "lmi_dev_frontend", "serve", "-s", str(store), "-f", str(conf)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}"

    def call(path: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url + path, data=data, headers={"Content-Type": "application/json",
                                                                     **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    try:
        for _ in range(300):
            try:
                call("/ping")
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, proc.stdout.read().decode()
                time.sleep(0.1)
        yield call
    finally:
        proc.terminate()
        proc.wait(10)


def _model_folder(folder: Path) -> Path:
    shutil.copytree(ROOT / "recipes/examples/quickstart/model", folder)
    shutil.copy(ROOT / "recipes/examples/quickstart/model.py", folder / "model.py")
    (folder / "serving.properties").write_text("engine=Python\noption.rolling_batch=disable\n"
                                               "option.entryPoint=model.py\n")
    return folder


ASK = {"inputs": "the quick brown fox", "parameters": {"max_new_tokens": 4}}


def test_frontend_serves_a_multi_model_store(tmp_path: Path) -> None:
    store = tmp_path / "store"
    for name in ("alpha", "beta"):
        _model_folder(store / name)
    with frontend(tmp_path, store) as call:
        status, ping = call("/ping")
        assert status == 200 and set(ping) == {"alpha", "beta"}
        assert [m["modelName"] for m in call("/models")[1]["models"]] == ["alpha", "beta"]
        for name in ("alpha", "beta"):
            status, doc = call(f"/predictions/{name}", ASK)
            assert status == 200 and doc["generated_text"].strip()
        assert call("/invocations", ASK)[0] == 400  # several models: the name is required, as in DJL
        assert call("/invocations?model_name=beta", ASK)[0] == 200
        assert call("/invocations", ASK, {"model_name": "alpha"})[0] == 200
        assert call("/invocations", ASK, {"X-Amzn-SageMaker-Target-Model": "beta.tar.gz"})[0] == 200
        assert call("/invocations?model_name=zeta", ASK)[0] == 404
        status, doc = call("/predictions/zeta", ASK)
        assert status == 404 and doc["message"] == "Model not found: zeta"


def test_frontend_single_model_store_is_served_as_before(tmp_path: Path) -> None:
    store = _model_folder(tmp_path / "model")  # serving.properties at the root: one model
    with frontend(tmp_path, store) as call:
        assert list(call("/ping")[1]) == ["model"]
        assert call("/invocations", ASK)[0] == 200
        assert call("/invocations?model_name=zeta", ASK, {"X-Amzn-SageMaker-Target-Model": "x"})[0] == 200
        assert call("/predictions/model", ASK)[0] == 200 and call("/predictions/zeta", ASK)[0] == 404


def test_predict_path_needs_a_model_for_a_multi_model_image() -> None:
    from builder.multi.image import MODELS_LABEL
    from builder.multi.smoke import curl_lines, predict_path
    from builder.smoke.image_info import parse_labels

    multi = parse_labels("img", "sha256:x", {MODELS_LABEL: '["alpha", "beta"]'})
    single = parse_labels("one", "sha256:y", {})
    assert predict_path(multi, "beta") == "/predictions/beta"
    assert predict_path(single, None) == "/invocations"
    for info, model in ((multi, None), (multi, "zeta"), (single, "alpha")):
        with pytest.raises(UsageError):
            predict_path(info, model)
    assert [line.split()[2] for line in curl_lines("http://h", multi)] == ["http://h/predictions/alpha",
                                                                           "http://h/predictions/beta"]
    assert curl_lines("http://h", single) == []


# ---------------------------------------------------------------------------- import


def _store(root: Path, lines: dict[str, str]) -> Path:
    store = root / "store"
    for name, text in lines.items():
        shutil.copytree(ROOT / "recipes/examples/quickstart/model", store / name)
        shutil.copy(ROOT / "recipes/examples/quickstart/model.py", store / name / "model.py")
        (store / name / "serving.properties").write_text(text)
    return store


def test_import_a_folder_of_models_writes_a_valid_multi_model_recipe(workdir: Path, capsys) -> None:
    from builder.cli import main

    _store(workdir, {"Alpha": "engine=Python\noption.rolling_batch=disable\n",
                     "beta": "engine=Python\noption.rolling_batch=disable\noption.model_loading_timeout=90\n"})
    rc = main(["import", "store", "--family", "dev-cpu", "--version", "0.34.0", "--instance-type", "ml.m5.xlarge",
               "-o", "multi.yaml"])
    assert rc == 0, capsys.readouterr().err
    data = yaml.safe_load((workdir / "multi.yaml").read_text())
    assert [m["name"] for m in data["models"]] == ["alpha", "beta"]
    assert [m["path"] for m in data["models"]] == ["store/Alpha", "store/beta"]
    assert data["models"][1]["serving"]["option"]["model_loading_timeout"] == 90
    loaded, diags = validate_multi_path(workdir / "multi.yaml")
    assert loaded.ok and not [d for d in diags if d.severity == "error"]


def test_import_locates_a_models_error_in_its_own_serving_properties(workdir: Path, capsys) -> None:
    from builder.cli import main

    _store(workdir, {"a": "engine=Python\noption.rolling_batch=disable\n",
                     "b": "option.rolling_batch=disable\nengine=Pythn\n"})
    rc = main(["import", "store", "--family", "dev-cpu", "--version", "0.34.0", "--instance-type", "ml.m5.xlarge"])
    err = capsys.readouterr().err
    assert rc == 1 and "store/b/serving.properties:2:" in err and "[engine-value]" in err and "Traceback" not in err
    assert not (workdir / "multi.yaml").exists()


def test_import_a_folder_that_is_not_a_store_is_a_usage_error(workdir: Path, capsys) -> None:
    from builder.cli import main

    store = _store(workdir, {"a": "engine=Python\n"})
    rc = main(["import", str(store / "a"), "--family", "dev-cpu", "--version", "0.34.0"])
    assert rc == 2 and "lmi-build import" in capsys.readouterr().err


def test_plan_gives_one_entry_for_all_models(monkeypatch: pytest.MonkeyPatch) -> None:
    from builder.commands.plan import plan

    monkeypatch.chdir(ROOT)
    result = plan(["recipes/examples"])
    [entry] = [e for e in result["matrix"]["include"] if e["recipe"].endswith("multi-model-quickstart.yaml")]
    assert entry["models"] == ["alpha", "beta"] and entry["kind"] == "cpu" and entry["recipe_hash"]
    single = next(e for e in result["matrix"]["include"] if e["name"] == "quickstart")
    assert entry["model_bytes"] == 2 * single["model_bytes"]  # the same model folder, counted per model


def test_is_multi_file_never_reads_a_special_file(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)  # opening it for reading would block with no writer
    (tmp_path / "zero.yaml").symlink_to("/dev/zero")
    assert not is_multi_file(fifo) and not is_multi_file(tmp_path / "zero.yaml")
    assert not is_multi_file(tmp_path / "missing.yaml")
