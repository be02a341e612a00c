"""--tag and registry hosts are read as docker reads them, before any stage runs; the tool's own
namespace (lmi-build/*: runtime, rootfs, artifacts) is refused (issue 15 items 1 and 11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.cli import main
from builder.diagnostics import UsageError
from builder.publish.models import split_registry
from builder.registry.reference import parse, parse_local_tag


@pytest.mark.parametrize(("ref", "normal"), [
    ("myimage", "myimage:latest"), ("myimage:v1", "myimage:v1"), ("team/llama:2025.1", "team/llama:2025.1"),
    ("127.0.0.1:5000/lmi/tiny:t", "127.0.0.1:5000/lmi/tiny:t"), ("localhost/x", "localhost/x:latest"),
    ("my-lmi-build/x:y", "my-lmi-build/x:y"),
])
def test_valid_tags(ref: str, normal: str) -> None:
    assert parse_local_tag(ref) == normal


@pytest.mark.parametrize(("ref", "why"), [
    ("lmi-build/dev-cpu:0.34.0-0123456789ab", "own namespace"), ("lmi-build/artifacts:abc", "own namespace"),
    ("127.0.0.1:5000/lmi-build/bookworm-rootfs:x", "own namespace"),
    ("x:y:z", "repository"), ("x:", "empty tag"), ("x\n", "control"), ("x y:1", "spaces"), ("Upper/x", "repository"),
    ("127.0.0.1:abc/x", "not a registry host"), ("127.0.0.1:99999/x", "not in 1..65535"),
    ("u:p@host/x", "digest"), ("host name.example/x", "spaces"),
    ("a/" + "b" * 300, "at most 255"), ("x:" + "t" * 129, "not a valid tag"),
])
def test_refused_tags(ref: str, why: str) -> None:
    with pytest.raises(UsageError, match=why):
        parse_local_tag(ref)


@pytest.mark.parametrize("registry", ["127.0.0.1:abc/lmi/x", "127.0.0.1:99999/lmi/x", "u:p@127.0.0.1:5000/lmi/x",
                                      "bad host:5000/lmi/x"])
def test_registry_hosts_are_checked(registry: str) -> None:
    with pytest.raises(ValueError):
        split_registry(registry)
    with pytest.raises(UsageError):
        parse(registry, what="--registry", allow_tag=False)


def test_build_refuses_an_own_namespace_tag_before_any_stage(capsys: pytest.CaptureFixture[str]) -> None:
    recipe = Path(__file__).resolve().parents[2] / "recipes" / "examples" / "quickstart.yaml"
    rc = main(["build", str(recipe), "--tag", "lmi-build/dev-cpu:0.34.0-0123456789ab"])
    err = capsys.readouterr().err
    assert rc == 2 and "own namespace" in err and "==> validate" not in err and "Traceback" not in err
