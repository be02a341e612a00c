"""Review fixes: the compile stage names itself when the engine is missing; `cache prune` leaves
the compile cache's lock and work folders alone."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from builder.artifacts.cache import prune
from builder.compile import compile_artifacts
from builder.diagnostics import BuilderError
from tests.unit.test_compile_local import A10G, IMAGE, _setup


def test_docker_executor_without_engine_fails_in_the_compile_stage(tiny_model_dir: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    resolved, art = _setup(tmp_path, tiny_model_dir)
    with pytest.raises(BuilderError) as info:
        compile_artifacts(resolved, art, IMAGE, executor="docker", cache_dir=tmp_path / "cache", host=A10G,
                          preflight=False)
    assert info.value.stage == "compile"
    assert "no Docker engine" in str(info.value)


def test_prune_older_than_keeps_compile_locks_and_work_folders(tmp_path: Path) -> None:
    root = tmp_path / "compile"
    old = time.time() - 10 * 86400
    for name in (".locks", ".tmp", "a" * 64):
        (root / name).mkdir(parents=True)
        os.utime(root / name, (old, old))
    (root / ".locks" / "k.lock").write_text("")
    removed = {item.path.name for item in prune(tmp_path, older_than_days=1, dry_run=False)}
    assert removed == {"a" * 64}
    assert (root / ".locks" / "k.lock").exists() and (root / ".tmp").is_dir()
