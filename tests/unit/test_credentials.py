"""Registry credentials (builder.credentials): Docker's config and credential helpers through the Docker SDK
(docker.auth, docker.credentials), with a timeout on helpers and located errors."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest
from pydantic import SecretStr

from builder import credentials
from builder.diagnostics import BuilderError


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


def _helper(tmp_path, monkeypatch, name: str, script: str):
    helper = tmp_path / "bin" / f"docker-credential-{name}"
    helper.parent.mkdir(exist_ok=True)
    helper.write_text(script)
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{helper.parent}{os.pathsep}{os.environ['PATH']}")
    return helper


def test_helper_is_run_through_the_sdk_store_with_the_host_on_stdin_only(tmp_path, monkeypatch):
    """The SDK's helper protocol (docker.credentials.Store) runs it: argv is ``get`` alone."""
    import docker.credentials

    seen = tmp_path / "argv"
    _helper(tmp_path, monkeypatch, "rec", f'#!/bin/sh\nread host\necho "$@" > {seen}\n'
                                          'printf \'{"Username":"u","Secret":"s3cret"}\'\n')
    calls: list[str] = []
    real = docker.credentials.Store.get

    def spy(self, server):
        calls.append(server)
        return real(self, server)

    monkeypatch.setattr(docker.credentials.Store, "get", spy)
    (tmp_path / "config.json").write_text(json.dumps({"credHelpers": {"reg.example.com:5000": "rec"}}))
    c = credentials.credentials_for("reg.example.com:5000/team/model:1", str(tmp_path))
    assert c and c.source == "credential-helper:rec" and c.password.get_secret_value() == "s3cret"
    assert calls == ["reg.example.com:5000"]
    assert seen.read_text().split() == ["get"]


def test_a_helper_that_hangs_is_cut(tmp_path, monkeypatch):
    _helper(tmp_path, monkeypatch, "hang", "#!/bin/sh\nexec sleep 60\n")
    monkeypatch.setattr(credentials, "HELPER_TIMEOUT_S", 0.5)
    (tmp_path / "config.json").write_text(json.dumps({"credsStore": "hang"}))
    with pytest.raises(BuilderError, match=r"docker-credential-hang did not answer for h:5 within 0.5 s"):
        credentials.from_docker_config("h:5", str(tmp_path))


def test_helper_without_an_entry_falls_back_to_auths(tmp_path, monkeypatch):
    _helper(tmp_path, monkeypatch, "empty", "#!/bin/sh\necho 'credentials not found in native keychain'\nexit 1\n")
    raw = base64.b64encode(b"carol:pw").decode()
    (tmp_path / "config.json").write_text(json.dumps({"credsStore": "empty", "auths": {"h:5": {"auth": raw}}}))
    c = credentials.from_docker_config("h:5", str(tmp_path))
    assert c and c.username == "carol" and c.source == "docker-config"


def test_a_missing_helper_is_nothing_for_the_host(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"credsStore": "not-installed-anywhere"}))
    assert credentials.from_docker_config("h:5", str(tmp_path)) is None


def test_a_helper_answering_nonsense_is_nothing_for_the_host(tmp_path, monkeypatch):
    _helper(tmp_path, monkeypatch, "junk", "#!/bin/sh\necho not-json\n")
    (tmp_path / "config.json").write_text(json.dumps({"credsStore": "junk"}))
    assert credentials.from_docker_config("h:5", str(tmp_path)) is None


def test_unreadable_config_is_a_located_error(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(BuilderError, match=r"cannot read Docker config .*config.json"):
        credentials.from_docker_config("h:5", str(tmp_path))


def test_bad_auth_entry_names_the_key(tmp_path):
    good = base64.b64encode(b"a:b").decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"ok:1": {"auth": good}, "h:1": {"auth": "%%%"}}}))
    with pytest.raises(BuilderError, match=r"config.json: the 'auth' entry for h:1 is not base64"):
        credentials.from_docker_config("ok:1", str(tmp_path))


def test_an_explicit_config_dir_is_the_only_one_read(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    raw = base64.b64encode(b"dave:pw").decode()
    (home / "config.json").write_text(json.dumps({"auths": {"h:5": {"auth": raw}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(home))
    empty = tmp_path / "explicit"
    empty.mkdir()
    assert credentials.from_docker_config("h:5", str(empty)) is None
    (empty / "config.json").write_text("{}")
    assert credentials.from_docker_config("h:5", str(empty)) is None
    assert credentials.credentials_for("h:5/repo") is not None  # DOCKER_CONFIG when none is given


@pytest.mark.parametrize("ref,host", [
    ("127.0.0.1:5000/r/m@sha256:" + "a" * 64, "127.0.0.1:5000"),
    ("reg.example.com/team/model:1", "reg.example.com"),
    ("localhost/x", "localhost"),
    ("localhost:5000", "localhost:5000"),
    ("reg.example.com", "reg.example.com"),
    ("https://reg.example.com/v2/", "reg.example.com"),
    ("ubuntu:22.04", None),
    ("library/ubuntu", None),
    ("ubuntu", None),
    ("", None),
])
def test_registry_host_of_a_reference_or_host(ref, host):
    assert credentials.registry_host(ref) == host


def test_credentials_for_a_hub_name_reads_nothing(tmp_path, monkeypatch):
    (tmp_path / "config.json").write_text("{not json")  # would be an error if it were read
    assert credentials.credentials_for("ubuntu:22.04", str(tmp_path)) is None


def test_the_model_keeps_its_secret():
    c = credentials.Credentials(username="u", password=SecretStr("pw-SECRET"))
    assert c.auth_config() == {"username": "u", "password": "pw-SECRET"}
    assert "pw-SECRET" not in repr(c) and "pw-SECRET" not in c.model_dump_json()


def test_what_a_build_sends_runs_helpers_with_the_timeout(tmp_path, monkeypatch):
    """docker-py's build sends every credential (X-Registry-Config), running the helper's list and get:
    the client's config is ours, so a hanging helper is cut there too."""
    _helper(tmp_path, monkeypatch, "hang", "#!/bin/sh\nexec sleep 60\n")
    monkeypatch.setattr(credentials, "HELPER_TIMEOUT_S", 0.5)
    (tmp_path / "config.json").write_text(json.dumps({"credsStore": "hang"}))
    config = credentials.sdk_auth_config(str(tmp_path), stage="bake")
    with pytest.raises(BuilderError, match=r"docker-credential-hang did not answer within 0.5 s") as info:
        config.get_all_credentials()
    assert info.value.stage == "bake"


def test_what_a_build_sends_with_a_missing_helper_is_the_file_alone(tmp_path):
    raw = base64.b64encode(b"f:pw").decode()
    (tmp_path / "config.json").write_text(json.dumps({"credsStore": "not-installed-anywhere",
                                                      "auths": {"h:5": {"auth": raw}}}))
    sent = credentials.sdk_auth_config(str(tmp_path)).get_all_credentials()
    assert sent["h:5"]["username"] == "f"  # the SDK's own store would raise StoreError and fail the build


def test_every_engine_client_carries_the_timed_config(tmp_path, monkeypatch):
    import docker.auth

    from builder.engine import client as engine_client

    class Api:
        _auth_configs = None

    class Fake:
        api = Api()

        def ping(self):
            return True

    monkeypatch.setattr(engine_client, "_from_env", lambda timeout: Fake())
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"credsStore": "x"}))
    client = engine_client.docker_client("bake")
    config = client.api._auth_configs
    assert isinstance(config, docker.auth.AuthConfig) and config.creds_store == "x"
    assert type(config._get_store_instance("x")).__name__ == "TimedStore"


def test_an_unreadable_config_does_not_stop_the_engine_client(tmp_path, monkeypatch):
    from builder.engine import client as engine_client

    class Api:
        _auth_configs = "the SDK's own"

    class Fake:
        api = Api()

        def ping(self):
            return True

    monkeypatch.setattr(engine_client, "_from_env", lambda timeout: Fake())
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    (tmp_path / "config.json").write_text("{not json")
    assert engine_client.docker_client("smoke").api._auth_configs == "the SDK's own"
    with pytest.raises(BuilderError, match="cannot read Docker config"):  # a registry call still says so
        credentials.credentials_for("h:5/r")
