"""scripts/derive_releases.py reads facts from release branches (a synthetic djl-serving made here, two
branches), records file:line provenance, and never borrows a value from another branch. The committed
catalog rows are checked for provenance; with DJL_SERVING_SRC set, they are re-derived from upstream."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from builder.catalog import load_catalog

ROOT = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("derive_releases", ROOT / "scripts" / "derive_releases.py")
derive_releases = importlib.util.module_from_spec(SPEC)  # type: ignore[arg-type]
SPEC.loader.exec_module(derive_releases)  # type: ignore[union-attr]


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t"})


def _branch(repo: Path, name: str, files: dict[str, str]) -> None:
    _git(repo, "checkout", "-q", "--orphan", name)
    _git(repo, "rm", "-rq", "--cached", "--ignore-unmatch", ".")
    for path, text in files.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
        _git(repo, "add", path)
    _git(repo, "commit", "-qm", name)
    for path in files:
        (repo / path).unlink()


@pytest.fixture()
def upstream(tmp_path: Path) -> Path:
    repo = tmp_path / "djl-serving"
    repo.mkdir()
    _git(repo, "init", "-q")
    _branch(repo, "0.35.0-dlc", {
        "serving/docker/lmi.Dockerfile": "FROM x\nARG version=12.8.1-devel-ubuntu24.04\nARG cuda_version=cu128\n"
                                         "ARG python_version=3.12\nENV SERVING_FEATURES=vllm\n",
        "serving/docker/lmi-container-requirements.txt": "torch==2.9.0\ntransformers==4.57.1\nlmcache\n",
        "serving/docs/lmi/release_notes.md": "# Notes\n## LMI V17 (DJL-Serving 0.35.0)\n"
                                             "djl-inference:0.35.0-lmi17.0.0-cu128\n* vLLM has been upgraded to `0.11.1`\n",
    })
    _branch(repo, "0.36.0-lmi27-dlc", {
        "serving/docker/lmi.Dockerfile": "ARG version=13.0.2-devel-ubuntu24.04\nARG cuda_version=cu130\n"
                                         "ARG python_version=3.12\nENV SERVING_FEATURES=vllm\n",
        "serving/docker/lmi-container-requirements.txt":
            "torch==2.11.0\ntransformers >= 4.56.0, <= 5.9.0\n"
            "https://example/publish/vllm/vllm-0.23.1.dev4%2Bgcd87ce883-cp312-cp312-linux_x86_64.whl\n",
        # v20's notes mention v17's vLLM line: it must not leak into v27's row.
        "serving/docs/lmi/release_notes.md": "## LMI V20\n* vLLM has been upgraded to `0.15.1`\n",
    })
    return repo


def test_facts_come_from_the_release_s_own_branch_with_file_and_line(upstream: Path) -> None:
    repo = derive_releases.Repo(upstream)
    tags = derive_releases.documented_tags(repo)
    assert tags == {"0.35.0-lmi17.0.0-cu128": "0.35.0-dlc:serving/docs/lmi/release_notes.md"}
    v17 = derive_releases.derive_release(repo, "lmi", "lmi-17.0.0", "0.35.0-dlc", "current", tags)
    assert v17["djl_version"] == "0.35.0" and v17["cuda"] == "12.8.1" and v17["python"] == "3.12"
    assert v17["libraries"] == {"torch": "2.9.0", "transformers": "4.57.1", "vllm": "0.11.1"}
    assert v17["tag"] == "0.35.0-lmi17.0.0-cu128" and v17["tag_evidence"] == "documented"
    prov = v17["provenance"]
    assert prov["cuda"] == "serving/docker/lmi.Dockerfile:2"
    assert prov["libraries.vllm"] == "serving/docs/lmi/release_notes.md:4"  # no pin: the notes of its own section
    assert prov["branch"] == "0.35.0-dlc" and len(prov["commit"]) == 40

    v27 = derive_releases.derive_release(repo, "lmi", "lmi-27.0.0", "0.36.0-lmi27-dlc", "current", tags)
    assert v27["cuda"] == "13.0.2" and v27["libraries"]["vllm"] == "0.23.1.dev4+gcd87ce883"
    assert v27["libraries"]["transformers"] == ">=4.56.0,<=5.9.0"  # a range is recorded as written
    # no documented tag: the scheme with the branch's own cuda_version, marked inferred
    assert v27["tag"] == "0.36.0-lmi27.0.0-cu130" and v27["tag_evidence"] == "inferred"
    assert "lmi.Dockerfile:2" in v27["provenance"]["tag"]


def test_every_derived_catalog_row_names_its_branch_commit_and_sources() -> None:
    data = yaml.safe_load((ROOT / "builder/catalog/releases.derived.yaml").read_text())
    for row in data["releases"]:
        prov = row["provenance"]
        assert prov["branch"] and len(prov["commit"]) == 40, row["version"]
        for fact in ("cuda", "python"):
            if row.get(fact):
                assert prov.get(fact, "").count(":") == 1, (row["version"], fact)
        for lib in row["libraries"]:
            assert f"libraries.{lib}" in prov, (row["version"], lib)
        if row["tag_evidence"] == "documented":
            assert row["tag"] and "serving/docs" in prov["tag"]


def test_the_catalog_names_every_lmi_release_from_v11_to_v27_once() -> None:
    cat = load_catalog()
    names = [r.version for r in cat.releases if r.family == "lmi"]
    assert [f"lmi-{n}.0.0" for n in range(11, 28)] == [n for n in names if n.startswith("lmi-")]
    assert len({(r.family, r.version) for r in cat.releases}) == len(cat.releases)
    assert cat.release("lmi", "0.29.0").version == "lmi-11.0.0"  # a DJL version naming one release
    assert cat.release("lmi", "0.36.0") is None and len(cat.by_djl("lmi", "0.36.0")) == 10
    v27 = cat.release("lmi", "lmi-27.0.0")
    assert v27.cuda == "13.0.2" and v27.libraries["torch"] == "2.11.0" and v27.djl_version == "0.36.0"
    assert cat.release("tensorrt-llm", "0.35.0").status == "not-published"


def test_duplicate_or_unprofiled_rows_fail_the_load() -> None:
    from builder.catalog import _releases
    containers = yaml.safe_load((ROOT / "builder/catalog/containers.yaml").read_text())
    derived = yaml.safe_load((ROOT / "builder/catalog/releases.derived.yaml").read_text())
    with pytest.raises(ValueError, match="two rows"):
        _releases(containers, {"releases": derived["releases"] + derived["releases"][:1]})
    with pytest.raises(ValueError, match="no profile"):
        _releases(containers, {"releases": derived["releases"] + [{**derived["releases"][0], "version": "lmi-99.0.0"}]})


@pytest.mark.skipif(not os.environ.get("DJL_SERVING_SRC"), reason="set DJL_SERVING_SRC to a djl-serving checkout "
                    "or mirror to re-derive the committed release rows from upstream")
def test_committed_rows_match_upstream() -> None:
    rc = derive_releases.main(["--djl-serving", os.environ["DJL_SERVING_SRC"], "--check"])
    assert rc == 0, "rerun scripts/derive_releases.py --djl-serving $DJL_SERVING_SRC"


def test_a_folder_that_is_no_repository_is_a_usage_error(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        derive_releases.main(["--djl-serving", str(tmp_path / "nowhere"), "-o", str(tmp_path / "out.yaml")])
    assert exit_.value.code == 2 and "not a git checkout or bare repository" in capsys.readouterr().err
    assert not (tmp_path / "out.yaml").exists()


def test_the_scripts_and_the_upstream_tests_share_one_git_reader() -> None:
    import tests.support.upstream_configs as upstream_configs

    assert derive_releases.Repo.__module__ == "upstream_git" and upstream_configs.Repo.__module__ == "scripts.upstream_git"
    for script in ("derive_keys.py", "derive_releases.py", "list_validators.py"):
        assert "--git-dir" not in (ROOT / "scripts" / script).read_text(), script
