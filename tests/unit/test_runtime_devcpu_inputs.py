"""The dev-cpu runtime's cache key covers the front end and the template."""

from __future__ import annotations

import shutil

from builder.paths import REPO_DIR
from builder.runtime import devcpu


def test_digest_follows_frontend_and_template(tmp_path, monkeypatch):
    shutil.copytree(REPO_DIR / "images" / "dev-cpu", tmp_path / "dev-cpu",
                    ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setenv("LMI_BUILD_IMAGES_DIR", str(tmp_path))
    base = devcpu.inputs_digest("sha256:aa", "bb", "0.34.0")
    assert devcpu.inputs_digest("sha256:aa", "bb", "0.34.0") == base
    assert devcpu.inputs_digest("sha256:ab", "bb", "0.34.0") != base
    assert devcpu.inputs_digest("sha256:aa", "bc", "0.34.0") != base
    server = tmp_path / "dev-cpu/frontend/lmi_dev_frontend/server.py"
    server.write_text(server.read_text() + "\n# changed\n")
    changed = devcpu.inputs_digest("sha256:aa", "bb", "0.34.0")
    assert changed != base
    tpl = tmp_path / "dev-cpu/runtime.Dockerfile.j2"
    tpl.write_text(tpl.read_text() + "\n")
    assert devcpu.inputs_digest("sha256:aa", "bb", "0.34.0") != changed


def test_dockerfile_renders_strictly():
    text = devcpu.render_dockerfile("lmi-build/bookworm-rootfs:abc", "0.34.0")
    assert text.splitlines()[4] == "FROM lmi-build/bookworm-rootfs:abc"
    assert 'ENTRYPOINT ["python3", "-m", "lmi_dev_frontend"]' in text and "EXPOSE 8080" in text
    assert devcpu.runtime_ref("0.34.0", "f" * 64) == "lmi-build/dev-cpu:0.34.0-ffffffffffff"
