"""scripts/derive_keys.py derives the option keys a release reads from its own sources: a synthetic
djl-serving branch and vLLM sdist made here from small hand-written fixtures (tests/fixtures/derive_keys/),
compared with the key sets written down by hand in expected.yaml. The committed data in
builder/catalog/keys/ is checked for provenance; with DJL_SERVING_SRC set, a release is re-derived from
upstream and compared with the committed file."""

from __future__ import annotations

import importlib.util
import io
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from builder.catalog import load_catalog
from builder.lmi.keys import KEYS_DIR, PYTHON_ENGINE, derived_keys

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "derive_keys"
SPEC = importlib.util.spec_from_file_location("derive_keys", ROOT / "scripts" / "derive_keys.py")
derive_keys = importlib.util.module_from_spec(SPEC)  # type: ignore[arg-type]
sys.modules["derive_keys"] = derive_keys  # its dataclasses look their module up there
SPEC.loader.exec_module(derive_keys)  # type: ignore[union-attr]


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t"})


@pytest.fixture
def upstream(tmp_path: Path) -> Path:
    """A git repository whose branch fixture-lmi99 holds the fixture tree."""
    repo = tmp_path / "djl-serving"
    shutil.copytree(FIXTURES / "repo", repo)
    _git(repo, "init", "-q", "-b", "fixture-lmi99")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "fixture")
    return repo


@pytest.fixture
def sdists(tmp_path: Path) -> Path:
    """vllm-9.9.9.tar.gz holding the fixture arg_utils.py (and a decoy file that must not be read)."""
    folder = tmp_path / "sdists"
    folder.mkdir()
    with tarfile.open(folder / "vllm-9.9.9.tar.gz", "w:gz") as tar:
        for name, data in (("vllm-9.9.9/vllm/engine/arg_utils.py", (FIXTURES / "arg_utils.py").read_bytes()),
                           ("vllm-9.9.9/tests/vllm/engine/arg_utils.py", b"class EngineArgs:\n    decoy: int = 1\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return folder


def _mode_keys(data: dict, mode: str) -> set[str]:
    return set(derive_keys.mode_keys(data, mode))


def _derive(upstream: Path, sdists: Path | None, out: Path, *extra: str) -> int:
    args = ["--djl-serving", str(upstream), "--releases-file", str(FIXTURES / "releases.yaml"), "-o", str(out)]
    if sdists is not None:
        args += ["--vllm-sdists", str(sdists)]
    return derive_keys.main([*args, *extra])


def test_derives_the_expected_keys_from_fixtures(upstream: Path, sdists: Path, tmp_path: Path) -> None:
    assert _derive(upstream, sdists, tmp_path / "out", "--release", "lmi-99.0.0") == 0
    data = yaml.safe_load((tmp_path / "out" / "lmi-99.0.0.yaml").read_text())
    expected = yaml.safe_load((FIXTURES / "expected.yaml").read_text())
    for mode in ("disable", "vllm", "async"):
        assert _mode_keys(data, mode) == set(expected[mode]) | PYTHON_ENGINE, mode
    # what must not count: a before-validator's own output, a private attribute, a write, another class's
    # field, a read from a dict that is not the properties, annotations inside a method, a decoy file
    everything = set().union(*(set(s.get("keys", [])) for s in data["sources"].values()))
    assert not everything & {"model_id_or_path", "_private", "written_not_read", "async_only_key",
                             "not_a_properties_read", "local_annotated", "decoy"}
    ea = data["sources"]["engine_args"]
    assert ea["sdist"] == "vllm-9.9.9.tar.gz" and len(ea["sha256"]) == 64 and data["engine_args"] == "derived"
    assert data["provenance"]["branch"] == "fixture-lmi99" and len(data["provenance"]["commit"]) == 40
    assert data["auto"]["by_model_type"] is False and data["auto"]["source"].endswith("LmiConfigRecommender.java:12")
    assert data["default_entry_point"]["vllm_async_service"] == "when async_mode=true"
    assert data["sources"]["class:VllmRbProperties"]["extra_keys"] == "kept when in EngineArgs.__annotations__"


def test_dev_build_is_unknown_without_its_file_and_never_borrows(upstream: Path, sdists: Path,
                                                                 tmp_path: Path) -> None:
    """lmi-98 bundles 9.8.1.dev3+gabc1234: the 9.9.9 sdist beside it must not stand in for it."""
    assert _derive(upstream, sdists, tmp_path / "out", "--release", "lmi-98.0.0") == 0
    data = yaml.safe_load((tmp_path / "out" / "lmi-98.0.0.yaml").read_text())
    assert data["engine_args"] == "unknown" and "abc1234" in data["sources"]["engine_args"]["unknown"]
    assert "gpu_memory_utilization" not in _mode_keys(data, "vllm")
    # given arg_utils.py at that commit, the release is derived, with the commit and the file's hash recorded
    assert _derive(upstream, sdists, tmp_path / "out2", "--release", "lmi-98.0.0",
                   "--vllm-arg-utils", f"lmi-98.0.0={FIXTURES / 'arg_utils.py'}") == 0
    data = yaml.safe_load((tmp_path / "out2" / "lmi-98.0.0.yaml").read_text())
    assert data["engine_args"] == "derived" and data["sources"]["engine_args"]["vllm_commit"] == "abc1234"
    assert "melon_backend" in _mode_keys(data, "vllm")


def test_check_reports_drift(upstream: Path, sdists: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _derive(upstream, sdists, out, "--release", "lmi-99.0.0") == 0
    assert _derive(upstream, sdists, out, "--release", "lmi-99.0.0", "--check") == 0
    path = out / "lmi-99.0.0.yaml"
    path.write_text(path.read_text().replace("melon_backend", "melon_backend_x"))
    assert _derive(upstream, sdists, out, "--release", "lmi-99.0.0", "--check") == 1


def test_bad_arguments_are_one_line_errors(upstream: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        _derive(upstream, None, tmp_path / "out", "--release", "lmi-1.0.0")
    assert exc.value.code == 2 and "not in" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _derive(tmp_path / "nowhere", None, tmp_path / "out")
    assert "not a git checkout" in capsys.readouterr().err


def test_vllm_build_names_the_commit() -> None:
    assert derive_keys.vllm_build("0.5.3.post1+cu124") == ("0.5.3.post1", None)  # CUDA variant of a release
    assert derive_keys.vllm_build("0.23.1.dev4+gcd87ce883.gemma426blora") == ("0.23.1.dev4", "cd87ce883")
    assert derive_keys.vllm_build("0.15.1.dev2+gb225806e5.cu128") == ("0.15.1.dev2", "b225806e5")


def test_committed_key_data_has_provenance_and_matches_the_catalog() -> None:
    cat = load_catalog()
    files = sorted(KEYS_DIR.glob("*.yaml"))
    assert len(files) >= 17
    for path in files:
        data = yaml.safe_load(path.read_text())
        rel = cat.release(data["family"], data["release"])
        assert rel is not None, path
        assert data["provenance"]["branch"] == rel.provenance["branch"]
        assert data["provenance"]["commit"] == rel.provenance["commit"], path  # same commit as the catalog row
        if "engine_args" in data["sources"]:
            ea = data["sources"]["engine_args"]
            assert ea["vllm_version"] == rel.libraries["vllm"]
            assert ("keys" in ea) == (data["engine_args"] == "derived")
            assert ("sha256" in ea or "vllm_commit" in ea) if "keys" in ea else "unknown" in ea
    for n in range(11, 28):
        assert derived_keys(cat.release("lmi", f"lmi-{n}.0.0")) is not None  # type: ignore[arg-type]


@pytest.mark.skipif(not os.environ.get("DJL_SERVING_SRC"), reason="set DJL_SERVING_SRC to a djl-serving checkout "
                    "or mirror (and DJL_SERVING_VLLM_SDISTS to a folder of vllm-<version>.tar.gz) to re-derive")
def test_committed_keys_rederive_from_upstream() -> None:
    """lmi-11.0.0 needs no vLLM source (0.29.0-dlc keeps no extra key); lmi-19.0.0 needs vllm-0.14.0.tar.gz."""
    releases = ["lmi-11.0.0", "tensorrt-llm-0.33.0"]
    sdists = os.environ.get("DJL_SERVING_VLLM_SDISTS")
    args = ["--djl-serving", os.environ["DJL_SERVING_SRC"], "--check", "--release", "lmi-11.0.0",
            "--release", "0.33.0"]
    if sdists:
        args += ["--vllm-sdists", sdists, "--release", "lmi-19.0.0"]
        releases.append("lmi-19.0.0")
    assert derive_keys.main(args) == 0, f"re-deriving {releases} differs from builder/catalog/keys/"
