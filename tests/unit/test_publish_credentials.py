from __future__ import annotations

import base64
import json
import os
import stat

import pytest
from pydantic import SecretStr

from builder.diagnostics import BuilderError
from builder.publish import credentials


def test_auths_entry(tmp_path):
    raw = base64.b64encode(b"alice:pa:ss").decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"https://reg.example.com": {"auth": raw}}}))
    c = credentials.from_docker_config("reg.example.com", str(tmp_path))
    assert c and c.username == "alice" and c.password.get_secret_value() == "pa:ss"
    assert "pa:ss" not in repr(c) and "pa:ss" not in c.model_dump_json()
    assert credentials.from_docker_config("other.example.com", str(tmp_path)) is None


def test_bad_auth_entry_is_located_error(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"h:1": {"auth": "%%%"}}}))
    with pytest.raises(BuilderError, match="config.json"):
        credentials.from_docker_config("h:1", str(tmp_path))


def test_credential_helper_gets_host_on_stdin(tmp_path, monkeypatch):
    helper = tmp_path / "bin" / "docker-credential-fake"
    helper.parent.mkdir()
    helper.write_text('#!/bin/sh\nread host\n[ "$1" = get ] || exit 3\n'
                      'printf \'{"Username":"bob","Secret":"tok-%s"}\' "$host"\n')
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{helper.parent}{os.pathsep}{os.environ['PATH']}")
    (tmp_path / "config.json").write_text(json.dumps({"credHelpers": {"h:5": "fake"}}))
    c = credentials.from_docker_config("h:5", str(tmp_path))
    assert c and c.username == "bob" and c.password.get_secret_value() == "tok-h:5"


def test_explicit_options_win_and_must_pair(tmp_path):
    c = credentials.resolve("h", "u", SecretStr("p"), str(tmp_path))
    assert c and c.source == "options"
    with pytest.raises(BuilderError):
        credentials.resolve("h", "u", None, str(tmp_path))


def test_credential_helper_that_cannot_run_is_an_error_not_a_traceback(tmp_path, monkeypatch):
    # review: an unrunnable helper (bad interpreter line) raised OSError out of the publish stage
    helper = tmp_path / "bin" / "docker-credential-broken"
    helper.parent.mkdir()
    helper.write_text("#!/nonexistent/interpreter\n")
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{helper.parent}{os.pathsep}{os.environ['PATH']}")
    (tmp_path / "config.json").write_text(json.dumps({"credsStore": "broken"}))
    with pytest.raises(BuilderError, match="docker-credential-broken cannot run"):
        credentials.from_docker_config("h:5", str(tmp_path))
