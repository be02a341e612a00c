"""Nothing left behind on a failure, and failures that name their stage and path (issue 15 item 8).

A full disk is simulated by monkeypatching: the file object's ``write`` raises ``OSError(ENOSPC)``
with no file name, as the kernel's answer to ``write(2)`` does."""

from __future__ import annotations

import errno
import io
import os
import time
from pathlib import Path

import pytest

from builder import atomic
from builder.cli import main
from builder.record import BuildRecord

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "recipes" / "examples" / "quickstart.yaml"


class _Full(io.TextIOBase):
    """A file whose every write fails as on a full disk (a few bytes may have reached the file)."""

    def __init__(self, real):
        self.real = real

    def write(self, data):  # type: ignore[override]
        self.real.write(data[:3])
        raise OSError(errno.ENOSPC, "No space left on device")

    def close(self) -> None:
        self.real.close()


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """``full_disk()``: from now on every file opened for writing under tmp_path (by fd or name) is full."""
    return lambda: _fill(monkeypatch, tmp_path)


def _fill(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import builtins

    real_fdopen, real_open = os.fdopen, io.open

    def opener(file, mode="r", *a, **k):
        f = real_open(file, mode, *a, **k)
        writing = isinstance(file, (str, os.PathLike)) and str(file).startswith(str(tmp_path)) and \
            any(c in mode for c in "wax")
        return _Full(f) if writing else f

    monkeypatch.setattr(os, "fdopen", lambda fd, mode="r", *a, **k: _Full(real_fdopen(fd, mode, *a, **k)))
    monkeypatch.setattr(io, "open", opener)
    monkeypatch.setattr(builtins, "open", opener)


def _entries(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and ".lock" not in p.name)


def test_record_write_on_a_full_disk_leaves_nothing_and_names_the_file(tmp_path: Path, full_disk) -> None:
    target = tmp_path / "builds" / "x" / "build-record.json"
    full_disk()
    with pytest.raises(OSError) as info:
        BuildRecord().write(target)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    assert _entries(tmp_path) == []  # no .tmp-record-*


def test_digest_memo_on_a_full_disk_leaves_no_temporary(tmp_path: Path, full_disk) -> None:
    from builder.artifacts.hashing import memo_for

    f = tmp_path / "w.bin"
    f.write_text("weights")
    memo = memo_for(tmp_path / "cache")
    memo.digest(f)
    full_disk()
    with pytest.raises(OSError):
        memo.save()
    assert _entries(tmp_path / "cache") == []


def test_ledger_blob_and_manifest_writers_leave_no_temporary(tmp_path: Path, full_disk) -> None:
    from builder import ledger
    from builder.artifacts.cache import ArtifactCache, Manifest
    from builder.assembly.layers import write_blob

    cache = tmp_path / "cache"
    full_disk()
    with pytest.raises(OSError):
        ledger.record(ledger.SmokeOutcome(image_id="sha256:" + "a" * 64, status="passed"), cache)
    with pytest.raises(OSError):
        write_blob(cache / "image" / "blobs", b"serving.properties bytes")
    store = ArtifactCache(cache)
    m = Manifest(key="k", source="org/m", source_kind="hub", digest="sha256:" + "b" * 64, files=[], created=0.0)
    with pytest.raises(OSError):
        store.write_manifest(m, publish=False)
    assert _entries(cache) == []


def test_put_blob_copy_on_a_full_disk_leaves_no_half_blob(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from builder.artifacts.cache import ArtifactCache

    store = ArtifactCache(tmp_path / "cache")
    src = tmp_path / "src.bin"
    src.write_bytes(b"x" * 1000)

    def no_link(a, b):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    def half_copy(a, b):
        Path(b).write_bytes(b"x" * 10)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "link", no_link)
    monkeypatch.setattr(shutil, "copyfile", half_copy)
    with pytest.raises(OSError):
        store.put_blob(src, "c" * 64)
    assert list(store.tmp.iterdir()) == [] and src.exists()


def test_prune_removes_stale_temporaries_and_keeps_fresh_ones(tmp_path: Path) -> None:
    from builder.artifacts.cache import prune

    cache = tmp_path / "cache"
    old = time.time() - atomic.STALE_AFTER_S - 60
    stale = [cache / "builds" / "20260101T000000-1" / ".tmp-record-abc", cache / ".file-digests.json.x1y2z3",
             cache / "smoke-results" / ".tmp-q", cache / "image" / "blobs" / "ab" / ".abcdef.123.tmp"]
    fresh = cache / "builds" / "20260101T000000-2" / ".tmp-record-def"
    keep = [cache / "file-digests.json", cache / "file-digests.json.lock",
            cache / "builds" / "20260101T000000-1" / "build-record.json", fresh]
    for p in stale + keep:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x")
    for p in stale + keep[:3]:
        os.utime(p, (old, old))
    dry = prune(cache, older_than_days=None, dry_run=True)
    assert {i.path for i in dry if i.kind == "tmp"} == set(stale)
    assert all(p.exists() for p in stale)
    prune(cache, older_than_days=None, dry_run=False)
    assert not any(p.exists() for p in stale) and all(p.exists() for p in keep)


def test_cache_prune_cli_lists_the_temporaries(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache = tmp_path / "cache"
    leftover = cache / "builds" / "b" / ".tmp-record-zzz"
    leftover.parent.mkdir(parents=True)
    leftover.write_text("{")
    old = time.time() - 3600
    os.utime(leftover, (old, old))
    assert main(["cache", "prune", "--cache-dir", str(cache)]) == 0
    assert "tmp builds/b/.tmp-record-zzz" in capsys.readouterr().err and not leftover.exists()


def test_build_report_to_a_folder_is_a_usage_error_before_any_stage(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["build", str(QUICKSTART), "--cache-dir", str(tmp_path / "c"), "--report", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and f"--report {tmp_path} is a folder" in err and "==> validate" not in err


def test_build_record_on_a_full_disk_fails_the_build_with_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import builder.pipeline as pipeline

    monkeypatch.setattr(pipeline, "run_stages", lambda ctx, stages, record, results: results)  # the stages passed
    real = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda fd, mode="r", *a, **k: _Full(real(fd, mode, *a, **k)))
    report = tmp_path / "out" / "record.json"
    rc = main(["build", str(QUICKSTART), "--cache-dir", str(tmp_path / "c"), "--report", str(report)])
    err = capsys.readouterr().err
    assert rc == 1, err
    assert "record:" in err and str(report) in err and "No space left on device" in err and "hint:" in err
    assert _entries(tmp_path / "out") == []


def test_an_os_error_in_a_stage_names_the_stage_and_the_path() -> None:
    from builder.diagnostics import BuilderError

    record = BuildRecord()
    with pytest.raises(BuilderError) as info:
        with record.timed("bake"):
            raise atomic.with_path(OSError(errno.ENOSPC, "No space left on device"), "/cache/image/blobs/x")
    assert info.value.stage == "bake" and "/cache/image/blobs/x" in str(info.value)
    assert record.failed_stage == "bake" and record.stages[0].status == "failed"
    assert "prune" in (info.value.hint or "")


def test_cli_fallback_names_the_command_and_the_path(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    import builder.commands.schema as schema

    def full(args):
        raise OSError(errno.ENOSPC, "No space left on device", "/out/schema.json")

    monkeypatch.setattr(schema, "run", full)
    assert main(["schema"]) == 1
    err = capsys.readouterr().err
    assert "schema: No space left on device: /out/schema.json" in err and "Traceback" not in err


def test_import_output_on_a_full_disk_leaves_no_temporary(tmp_path: Path, full_disk,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    props = tmp_path / "serving.properties"
    props.write_text("engine=Python\noption.model_id=org/model\noption.rolling_batch=disable\n")
    out = tmp_path / "out" / "recipe.yaml"
    out.parent.mkdir()
    full_disk()
    rc = main(["import", str(props), "--family", "lmi", "--version", "lmi-27.0.0", "--instance-type",
               "ml.g5.12xlarge", "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 1, err
    assert f"cannot write {out}" in err and os.listdir(out.parent) == []


def test_report_writers_fail_with_the_path(tmp_path: Path) -> None:
    from builder.diagnostics import BuilderError

    with pytest.raises(BuilderError) as info:
        atomic.write_report(tmp_path, "{}", stage="publish")
    assert info.value.stage == "publish" and str(tmp_path) in str(info.value)


def test_push_without_a_target_is_a_usage_error_before_the_bake(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "r.json"
    rc = main(["build", str(QUICKSTART), "--cache-dir", str(tmp_path / "c"), "--report", str(report), "--push"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "--push" in err and "no publish target" in err
    assert "==> fetch" not in err and "==> bake" not in err
