"""Review fixes: CLI output and option checks that a user hits before any stage runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder import console
from builder.cli import main
from builder.context import record_dir as _record_dir
from builder.options import BuildOptions
from builder.pipeline import run_build

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "recipes" / "examples" / "quickstart.yaml"


def test_rich_emoji_codes_are_not_substituted(capsys: pytest.CaptureFixture[str]) -> None:
    # an image reference such as 'UPPER/Case:x: invalid' printed ':x:' as an emoji
    console.error("no such image: Case:x: invalid reference")
    console.info("ref a:smile:b")
    err = capsys.readouterr().err
    assert "Case:x: invalid" in err and "a:smile:b" in err


def test_unwritable_cache_dir_is_one_line_not_a_traceback(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc = main(["cache", "ls", "--cache-dir", str(blocker / "cache")])
    err = capsys.readouterr().err
    assert rc == 1
    assert "Traceback" not in err and "error:" in err


def test_bug_exceptions_keep_their_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    import builder.commands.schema as schema

    def boom(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(schema, "run", boom)
    with pytest.raises(ZeroDivisionError):
        main(["schema"])


@pytest.mark.parametrize("argv, says", [
    (["--assembler", "registry"], "--assembler registry needs --registry"),
    (["--registry", "bad!!/x", "--push"], "--registry: registry target"),
    (["--registry", "127.0.0.1:5000/Upper"], "not a valid OCI repository name"),
])
def test_bad_registry_options_are_usage_errors_before_any_stage(tmp_path: Path, argv: list[str], says: str,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "record.json"
    rc = main(["build", str(QUICKSTART), "--cache-dir", str(tmp_path / "c"), "--report", str(report), *argv])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert says in err
    assert "==> fetch" not in err and not report.exists()  # nothing ran


def test_failed_validation_prints_each_error_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n")
    rc = main(["build", str(bad), "--cache-dir", str(tmp_path / "c"), "--report", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.count("missing required key 'model'") == 1


def test_two_builds_in_the_same_second_get_their_own_record_folder(tmp_path: Path) -> None:
    opts = BuildOptions(recipe=QUICKSTART, cache_dir=tmp_path)
    assert _record_dir(opts).name.endswith(f"-{__import__('os').getpid()}")


def test_validation_failure_still_writes_the_record(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n")
    report = tmp_path / "r.json"
    with pytest.raises(Exception):  # noqa: B017 - DiagnosticError
        run_build(BuildOptions(recipe=bad, cache_dir=tmp_path / "c", report=report))
    assert report.exists()


def test_a_bad_tag_is_a_usage_error_before_any_stage(tmp_path, capsys):
    from builder.cli import main

    rc = main(["build", "recipes/examples/quickstart.yaml", "--tag", "Bad Tag", "--report", str(tmp_path / "r.json")])
    assert rc == 2
    assert "--tag 'Bad Tag'" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()  # nothing ran, nothing recorded
