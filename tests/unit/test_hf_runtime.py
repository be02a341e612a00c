"""The dev-cpu hf variant: cache keys, wheel unpacking, and that the default dev-cpu runtime is untouched."""

from __future__ import annotations

import zipfile

from builder.cli import main
from builder.runtime import devcpu, hf


def test_rootfs_digest_covers_packages_and_wheels(monkeypatch):
    base = hf.rootfs_inputs_digest()
    assert hf.rootfs_inputs_digest() == base
    assert hf.rootfs_inputs_digest("http://mirror.example/debian") != base
    monkeypatch.setattr(hf, "WHEELS", (*hf.WHEELS[:-1], "accelerate==9.9.9"))
    assert hf.rootfs_inputs_digest() != base
    monkeypatch.undo()
    monkeypatch.setattr(hf, "PACKAGES", (*hf.PACKAGES, "python3-scipy"))
    assert hf.rootfs_inputs_digest() != base


def test_runtime_digest_and_ref_differ_from_default_devcpu():
    d = hf.runtime_inputs_digest("sha256:aa", "bb", "0.34.0")
    assert d == hf.runtime_inputs_digest("sha256:aa", "bb", "0.34.0")
    assert d != hf.runtime_inputs_digest("sha256:ab", "bb", "0.34.0")
    assert d != devcpu.inputs_digest("sha256:aa", "bb", "0.34.0")
    ref = hf.runtime_ref("0.34.0", d)
    assert ref.startswith("lmi-build/dev-cpu:0.34.0-hf-")
    assert ref != devcpu.runtime_ref("0.34.0", devcpu.inputs_digest("sha256:aa", "bb", "0.34.0"))


def test_dockerfile_checks_the_handler_imports():
    text = hf.render_dockerfile("lmi-build/trixie-hf-rootfs:abc", "0.34.0")
    assert "FROM lmi-build/trixie-hf-rootfs:abc" in text.splitlines()
    assert "djl_python.huggingface" in text and "import torch, transformers, peft" in text


def test_unpack_wheel_places_purelib_and_skips_scripts(tmp_path):
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("demo/__init__.py", "X = 1\n")
        zf.writestr("demo-1.0.dist-info/METADATA", "Name: demo\nVersion: 1.0\n")
        zf.writestr("demo-1.0.data/purelib/demo_extra.py", "Y = 2\n")
        zf.writestr("demo-1.0.data/scripts/demo-cli", "#!/bin/sh\n")
    site = tmp_path / "site"
    site.mkdir()
    hf.unpack_wheel(wheel, site)
    assert (site / "demo" / "__init__.py").read_text() == "X = 1\n"
    assert (site / "demo_extra.py").exists()
    assert not any(p.name == "demo-cli" for p in site.rglob("*"))
    assert (site / "demo-1.0.dist-info" / "INSTALLER").exists()


def test_runtime_base_is_refused_for_the_hf_variant(capsys):
    assert main(["runtime", "build", "dev-cpu", "--variant", "hf", "--runtime-base",
                 "debian:bookworm-slim@sha256:" + "0" * 64]) == 2
    assert "default variant only" in capsys.readouterr().err
