"""Fetching the djl_python jar: cache hits, checksum verification, missing/offline Maven."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import zipfile
from pathlib import Path

import pytest

from builder.diagnostics import BuilderError
from builder.runtime import maven

COORD = "ai.djl.python:python:0.34.0"


def _jar_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("djl_python/__init__.py", "")
        zf.writestr("djl_python/inputs.py", "X = 1\n")
        zf.writestr("djl_python_engine.py", "")
        zf.writestr("ai/djl/python/Thing.class", b"\xca\xfe")
    return buf.getvalue()


def _fake_mvn(tmp_path: Path, *, jar: bytes | None, fail_text: str = "", m2: Path | None = None,
              published_sha1: str | None = None) -> Path:
    """A stand-in ``mvn`` that copies a jar to -DoutputDirectory (and a .sha1 into the fake ~/.m2)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (tmp_path / "payload.jar").write_bytes(jar or b"")
    count = tmp_path / "calls"
    script = bin_dir / "mvn"
    lines = ["#!/bin/sh", f'echo x >> "{count}"']
    if fail_text:
        lines += [f'echo "{fail_text}"', "exit 1"]
    else:
        lines += ['for a in "$@"; do case "$a" in -DoutputDirectory=*) out="${a#-DoutputDirectory=}";; esac; done',
                  f'cp "{tmp_path / "payload.jar"}" "$out/python-0.34.0.jar"']
        if m2 is not None and published_sha1:
            d = m2 / "ai/djl/python/python/0.34.0"
            d.mkdir(parents=True, exist_ok=True)
            (d / "python-0.34.0.jar.sha1").write_text(published_sha1)
    script.write_text("\n".join(lines) + "\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def _calls(tmp_path: Path) -> int:
    f = tmp_path / "calls"
    return len(f.read_text().splitlines()) if f.exists() else 0


def test_fetch_verifies_sha1_and_caches(tmp_path, monkeypatch):
    jar = _jar_bytes()
    m2 = tmp_path / "m2"
    monkeypatch.setenv("LMI_BUILD_M2_REPO", str(m2))
    mvn = _fake_mvn(tmp_path, jar=jar, m2=m2, published_sha1=hashlib.sha1(jar).hexdigest())
    got = maven.fetch_jar(COORD, tmp_path / "cache", mvn=str(mvn))
    assert got.fetched and got.path.read_bytes() == jar
    assert got.path == tmp_path / "cache/maven/ai/djl/python/python/0.34.0/python-0.34.0.jar"
    assert got.sha256 == hashlib.sha256(jar).hexdigest()
    again = maven.fetch_jar(COORD, tmp_path / "cache", mvn=str(mvn))
    assert not again.fetched and _calls(tmp_path) == 1  # second call: no mvn
    assert not [p for p in got.path.parent.iterdir() if p.name.startswith(".fetch-")]


def test_fetch_rejects_sha1_mismatch_and_leaves_no_entry(tmp_path, monkeypatch):
    m2 = tmp_path / "m2"
    monkeypatch.setenv("LMI_BUILD_M2_REPO", str(m2))
    mvn = _fake_mvn(tmp_path, jar=_jar_bytes(), m2=m2, published_sha1="0" * 40)
    with pytest.raises(BuilderError, match="does not match"):
        maven.fetch_jar(COORD, tmp_path / "cache", mvn=str(mvn))
    assert maven.cached_jar(COORD, tmp_path / "cache") is None


def test_offline_maven_gives_actionable_error(tmp_path, monkeypatch):
    monkeypatch.setenv("LMI_BUILD_M2_REPO", str(tmp_path / "m2"))
    mvn = _fake_mvn(tmp_path, jar=None, fail_text="Could not transfer artifact: UnknownHostException")
    with pytest.raises(BuilderError) as info:
        maven.fetch_jar(COORD, tmp_path / "cache", mvn=str(mvn))
    assert "not reachable" in info.value.hint


def test_missing_maven(tmp_path):
    with pytest.raises(BuilderError, match="not on PATH"):
        maven.fetch_jar(COORD, tmp_path / "cache", mvn=str(tmp_path / "no-such-mvn"))


def test_not_a_jar_is_rejected(tmp_path, monkeypatch):
    monkeypatch.setenv("LMI_BUILD_M2_REPO", str(tmp_path / "m2"))
    mvn = _fake_mvn(tmp_path, jar=b"not a zip")
    with pytest.raises(BuilderError, match="not a valid jar"):
        maven.fetch_jar(COORD, tmp_path / "cache", mvn=str(mvn))


def test_extract_only_python_parts(tmp_path):
    jar = tmp_path / "x.jar"
    jar.write_bytes(_jar_bytes())
    out = maven.extract_djl_python(jar, tmp_path / "out")
    names = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert names == ["djl_python/__init__.py", "djl_python/inputs.py", "djl_python_engine.py"]


def test_bad_coordinate(tmp_path):
    with pytest.raises(BuilderError, match="group:artifact:version"):
        maven.jar_cache_path("nonsense", tmp_path)
    assert os.fspath(maven.jar_cache_path(COORD, tmp_path)).endswith("python-0.34.0.jar")
