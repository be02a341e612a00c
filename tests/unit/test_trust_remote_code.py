"""trust_remote_code as users need it (issue 16 item 6): left out is false; a model with its own code
needs true (error located at the setting, or at the model line when it is left out); true names the files."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import yaml

from builder.artifacts.cache import Manifest
from builder.artifacts.models import FileEntry
from builder.lmi.resolve import resolve
from builder.recipe import load_recipe
from builder.validation import validate_loaded

SHA = "0123456789abcdef0123456789abcdef01234567"
SAFETENSORS = b"\x08" + b"\0" * 7 + b"{}      "  # empty but well-formed
AUTO_MAP = {"auto_map": {"AutoConfig": "configuration_x.XConfig", "AutoModelForCausalLM": "modeling_x.XForCausalLM"}}


def recipe(tmp: Path, model: dict) -> Path:
    data = {"name": "t", "model": model, "container": {"family": "lmi", "version": "lmi-27.0.0"},
            "target": {"instance_type": "ml.g5.12xlarge"},
            "serving": {"engine": "Python", "option": {"rolling_batch": "vllm", "tensor_parallel_degree": "max"}}}
    path = tmp / "recipe.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def folder(tmp: Path, name: str, config: dict, files: dict[str, str]) -> Path:
    d = tmp / name
    d.mkdir()
    (d / "config.json").write_text(json.dumps(config))
    (d / "model.safetensors").write_bytes(SAFETENSORS)
    for n, text in files.items():
        (d / n).write_text(text)
    return d


def diags(path: Path, cache: Path | None = None) -> list:
    return [d for d in validate_loaded(load_recipe(path), with_fit=False, cache_dir=cache)
            if d.rule.startswith("trust-remote-code")]


def line_of(path: Path, text: str) -> int:
    return next(i for i, t in enumerate(path.read_text().splitlines(), 1) if text in t)


def test_left_out_is_false_and_valid_for_a_hub_model(tmp_path: Path) -> None:
    path = recipe(tmp_path, {"id": "org/model", "revision": SHA})
    loaded = load_recipe(path)
    assert not [d for d in validate_loaded(loaded, with_fit=False, cache_dir=tmp_path / "c") if d.severity == "error"]
    # nothing written: LMI's own default (false) applies
    assert "option.trust_remote_code" not in resolve(loaded.recipe).properties


def test_auto_map_without_trust_is_an_error_at_the_model_path_line(tmp_path: Path) -> None:
    folder(tmp_path, "m", AUTO_MAP, {"modeling_x.py": "", "configuration_x.py": ""})
    path = recipe(tmp_path, {"path": "m"})
    [d] = diags(path)
    assert d.rule == "trust-remote-code-needed" and d.severity == "error"
    assert d.location.line == line_of(path, "path: m")
    assert "left out, which is false" in d.message and "auto_map" in d.message
    assert "configuration_x.py, modeling_x.py" in d.message and "model.trust_remote_code: true" in d.message


def test_explicit_false_is_located_at_the_setting(tmp_path: Path) -> None:
    folder(tmp_path, "m", AUTO_MAP, {})
    path = recipe(tmp_path, {"path": "m", "trust_remote_code": False})
    [d] = diags(path)
    assert d.rule == "trust-remote-code-needed" and d.location.line == line_of(path, "trust_remote_code: false")
    assert "is false" in d.message


def test_shipped_modeling_file_without_auto_map_is_an_error(tmp_path: Path) -> None:
    folder(tmp_path, "m", {"model_type": "x"}, {"modeling_x.py": ""})
    [d] = diags(recipe(tmp_path, {"path": "m"}))
    assert d.rule == "trust-remote-code-needed" and "ships modeling_x.py" in d.message


def test_plain_model_and_its_handler_file_need_no_trust(tmp_path: Path) -> None:
    folder(tmp_path, "m", {"model_type": "llama"}, {"model.py": "def handle(x):\n    pass\n"})
    assert diags(recipe(tmp_path, {"path": "m"})) == []


def test_true_warns_and_names_the_files_that_run(tmp_path: Path) -> None:
    folder(tmp_path, "m", AUTO_MAP, {"modeling_x.py": "", "configuration_x.py": "", "utils_x.py": "",
                                     "model.py": "def handle(x):\n    pass\n"})
    path = recipe(tmp_path, {"path": "m", "trust_remote_code": True})
    [d] = diags(path)
    assert d.rule == "trust-remote-code-files" and d.severity == "warning"
    assert d.location.line == line_of(path, "trust_remote_code: true")
    assert "configuration_x.py, modeling_x.py, utils_x.py" in d.message and "model.py" not in d.message


def test_custom_handler_decides_itself(tmp_path: Path) -> None:
    folder(tmp_path, "m", AUTO_MAP, {"modeling_x.py": ""})
    (tmp_path / "handler.py").write_text("def handle(inputs):\n    return None\n")
    assert diags(recipe(tmp_path, {"path": "m", "entry_point": "handler.py"})) == []


def _cache_with(cache: Path, source: str, revision: str | None, files: dict[str, bytes],
                key: str | None = None) -> None:
    root = cache / "models"
    (root / "manifests").mkdir(parents=True)
    (root / "blobs" / "sha256").mkdir(parents=True)
    entries = []
    for name, data in files.items():
        sha = hashlib.sha256(data).hexdigest()
        (root / "blobs" / "sha256" / sha).write_bytes(data)
        entries.append(FileEntry(name=name, size=len(data), sha256=sha))
    key = key or (f"{source}@{revision}" if revision else source)
    man = Manifest(key=key, source=source, source_kind="s3" if source.startswith("s3://") else "hub", revision=revision, files=entries, digest="sha256:0",
                   created=0.0)
    (root / "manifests" / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json").write_text(man.model_dump_json())


def test_cached_hub_model_with_auto_map_needs_trust(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    # fetched without trust: the *.py files were not downloaded, config.json still names them
    _cache_with(cache, "hub:org/custom", SHA, {"config.json": json.dumps(AUTO_MAP).encode(),
                                               "model.safetensors": SAFETENSORS})
    path = recipe(tmp_path, {"id": "org/custom", "revision": SHA})
    [d] = diags(path, cache)
    assert d.rule == "trust-remote-code-needed" and d.location.line == line_of(path, "id: org/custom")
    assert "cached model org/custom@0123456789ab" in d.message and "modeling_x.py" in d.message
    # another revision is not judged by this cache entry
    other = recipe(tmp_path, {"id": "org/custom", "revision": "f" * 40})
    assert diags(other, cache) == []


def test_cached_s3_model_is_found_by_its_source(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    # S3 manifests are keyed by prefix and ETags (artifacts/s3.py); the check finds them by source
    _cache_with(cache, "s3://bucket/custom/", None, {"config.json": json.dumps(AUTO_MAP).encode(),
                                                     "model.safetensors": SAFETENSORS}, key="s3://bucket/custom/#ab")
    path = recipe(tmp_path, {"s3": "s3://bucket/custom/"})
    [d] = diags(path, cache)
    assert d.rule == "trust-remote-code-needed" and d.location.line == line_of(path, "s3: s3://bucket/custom/")


def test_cached_hub_model_with_trust_names_its_files(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _cache_with(cache, "hub:org/custom", SHA, {"config.json": json.dumps(AUTO_MAP).encode(),
                                               "modeling_x.py": b"", "model.safetensors": SAFETENSORS})
    [d] = diags(recipe(tmp_path, {"id": "org/custom", "revision": SHA, "trust_remote_code": True}), cache)
    assert d.rule == "trust-remote-code-files" and "modeling_x.py" in d.message and "pin model.revision" in d.message


def test_cli_validate_exits_1_with_a_located_line(tmp_path: Path) -> None:
    folder(tmp_path, "m", AUTO_MAP, {"modeling_x.py": ""})
    path = recipe(tmp_path, {"path": "m"})
    env = {"LMI_BUILD_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    p = subprocess.run([sys.executable, "-m", "builder.cli", "validate", "--no-fit", str(path)], capture_output=True,
                       text=True, env=env, cwd=Path(__file__).resolve().parents[2])
    assert p.returncode == 1, p.stderr
    assert "Traceback" not in p.stderr
    assert f"recipe.yaml:{line_of(path, 'path: m')}:" in p.stderr and "[trust-remote-code-needed]" in p.stderr


def test_auto_map_of_a_type_transformers_implements_needs_no_trust(tmp_path: Path) -> None:
    # Phi-3 checkpoints keep the auto_map of before transformers 4.40 added phi3: trust false loads the
    # built-in code, so no error; with true the warning says the repository's code runs instead
    phi3 = {"model_type": "phi3", "auto_map": {"AutoConfig": "configuration_phi3.Phi3Config",
                                               "AutoModelForCausalLM": "modeling_phi3.Phi3ForCausalLM"}}
    folder(tmp_path, "m", phi3, {"modeling_phi3.py": "", "configuration_phi3.py": ""})
    assert diags(recipe(tmp_path, {"path": "m"})) == []
    [d] = diags(recipe(tmp_path, {"path": "m", "trust_remote_code": True}))
    assert d.rule == "trust-remote-code-files" and "implements model_type 'phi3' itself" in d.message


def test_type_never_built_in_is_an_error_and_a_newer_one_on_a_range_a_warning(tmp_path: Path) -> None:
    folder(tmp_path, "m", {**AUTO_MAP, "model_type": "qwen"}, {"modeling_x.py": ""})
    [d] = diags(recipe(tmp_path, {"path": "m"}))
    assert d.severity == "error" and "model_type 'qwen' is not built into transformers" in d.message
    # lmi-27 pins transformers >=4.56.0; qwen3_vl came in 4.57: the image may or may not have it
    (tmp_path / "m" / "config.json").write_text(json.dumps({**AUTO_MAP, "model_type": "qwen3_vl"}))
    [d] = diags(recipe(tmp_path, {"path": "m"}))
    assert d.rule == "trust-remote-code-needed" and d.severity == "warning" and "pins a range" in d.message


def test_model_types_cover_every_transformers_the_catalog_pins() -> None:
    from builder.catalog import load_catalog
    from builder.lmi.rules.remote_code import _implemented

    pinned = {r.libraries["transformers"] for r in load_catalog().releases
              if r.libraries.get("transformers", "")[:1].isdigit()}
    assert pinned and pinned <= set(_implemented()), "run scripts/derive_model_types.py for " + \
        ", ".join(sorted(pinned - set(_implemented())))


def test_derive_model_types_reads_the_wheel(tmp_path: Path) -> None:
    import zipfile
    from importlib import util

    spec = util.spec_from_file_location("derive_model_types", Path(__file__).resolve().parents[2] / "scripts" /
                                        "derive_model_types.py")
    d = util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(d)  # type: ignore[union-attr]

    wheel = tmp_path / "transformers-9.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(d.MEMBER, "from collections import OrderedDict\nCONFIG_MAPPING_NAMES = OrderedDict(\n"
                   "    [\n        # Add configs here\n        (\"llama\", \"LlamaConfig\"),\n"
                   "        (\"phi3\", \"Phi3Config\"),\n    ]\n)\nOTHER = OrderedDict([(\"x\", \"y\")])\n")
    out = tmp_path / "types.yaml"
    assert d.main([str(wheel), "-o", str(out)]) == 0
    data = yaml.safe_load(out.read_text())["versions"]["9.1.0"]
    assert data["model_types"] == ["llama", "phi3"] and data["sha256"] == hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert d.main([str(wheel), "-o", str(out), "--check"]) == 0
    out.write_text(out.read_text().replace("phi3", "phi4"))
    assert d.main([str(wheel), "-o", str(out), "--check"]) == 1
