"""The assembler registry (builder/assembly): the names the CLI offers, one signature, a refused name."""

from __future__ import annotations

import inspect
import os
import typing

import pytest

from builder.assembly import ASSEMBLERS, AssembledImage, AssemblyRequest, assemble
from builder.diagnostics import UsageError
from builder.lmi.resolve import resolve
from builder.options import BuildOptions
from builder.paths import REPO_DIR
from builder.recipe import load_or_raise

QUICKSTART = REPO_DIR / "recipes" / "examples" / "quickstart.yaml"


def test_the_registry_holds_every_assembler_the_options_offer():
    offered = typing.get_args(BuildOptions.model_fields["assembler"].annotation)
    assert sorted(ASSEMBLERS) == sorted(offered) == ["docker", "registry"]


def test_both_assemblers_have_one_signature():
    from builder.image.bake import assemble as docker
    from builder.registry.assemble import assemble as registry

    for fn in (docker, registry):
        sig = inspect.signature(fn)
        assert [p.name for p in sig.parameters.values()] == ["request"]
        assert sig.parameters["request"].annotation in (AssemblyRequest, "AssemblyRequest")
        assert sig.return_annotation in (AssembledImage, "AssembledImage")


def test_a_registry_request_without_a_registry_is_refused_before_any_connection():
    request = AssemblyRequest(resolved=resolve(load_or_raise(QUICKSTART).recipe), base_image="127.0.0.1:1/base@sha256:"
                              + "a" * 64)
    with pytest.raises(UsageError, match="needs a target registry"):
        assemble("registry", request)


def test_an_unknown_assembler_is_a_usage_error():
    request = AssemblyRequest(resolved=resolve(load_or_raise(QUICKSTART).recipe))
    with pytest.raises(UsageError, match="--assembler podman: unknown assembler; choose one of docker, registry"):
        assemble("podman", request)


def test_credentials_never_reach_a_dump_or_a_repr():
    from pydantic import SecretStr

    from builder.credentials import Credentials

    secret = "s3cr3t-" + "x" * 8
    request = AssemblyRequest(resolved=resolve(load_or_raise(QUICKSTART).recipe), registry="127.0.0.1:1/r",
                              credentials=Credentials(username="u", password=SecretStr(secret)))
    assert secret not in request.model_dump_json() and secret not in repr(request)
    assert "credentials" not in request.model_dump()


def test_the_docker_assemblers_tag_lock_is_one_for_every_cache_on_the_host(tmp_path, monkeypatch):
    """Two builds with two cache folders lock the same file for one tag (else both build and both tag)."""
    from builder.image.bake import engine_lock

    monkeypatch.setattr("tempfile.gettempdir", lambda: str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    a, b = engine_lock("tag|m:abc", tmp_path / "cache-a"), engine_lock("tag|m:abc", tmp_path / "cache-b")
    shared = tmp_path / "tmp" / f"lmi-build-locks-{os.getuid()}"
    assert a.lock_file == b.lock_file and a.lock_file.startswith(str(shared))
    assert engine_lock("tag|m:def", tmp_path / "cache-a").lock_file != a.lock_file
    assert shared.stat().st_mode & 0o777 == 0o700  # no other user can hold our builds' lock
    with a:  # usable
        pass


def test_the_tag_lock_falls_back_to_the_cache_where_the_shared_folder_cannot_be_made(tmp_path, monkeypatch):
    from builder.image.bake import engine_lock

    monkeypatch.setattr("tempfile.gettempdir", lambda: str(tmp_path))
    (tmp_path / f"lmi-build-locks-{os.getuid()}").write_text("a file where the folder would go")
    (tmp_path / "cache").mkdir()
    lock = engine_lock("tag|m:abc", tmp_path / "cache")
    assert lock.lock_file.startswith(str(tmp_path / "cache"))
    with lock:
        pass
