"""The one credential model for registries (publish, assemble, smoke pulls, tag moves), and where it comes from.

``credentials_for(reference_or_host)``: Docker's client config (``$DOCKER_CONFIG/config.json`` or
``~/.docker/config.json``) read through the Docker SDK: ``docker.auth`` parses ``auths`` (base64
``user:pass``) and picks the ``credHelpers`` / ``credsStore`` helper, ``docker.credentials`` speaks the
helper protocol. ``resolve(...)`` adds explicit ``--username/--password-stdin``.

What the SDK does not do, kept here:

* a helper that hangs is cut after ``HELPER_TIMEOUT_S`` (the SDK's ``Store`` runs it with
  ``subprocess.check_output`` and no timeout; ``_TimedStore`` runs the same command with one);
* a helper that is missing, exits non-zero or answers nonsense means "nothing for this host", as
  ``docker login`` users expect when a copied config names a helper this machine lacks;
* an unreadable config or a bad ``auth`` entry is a located error naming the file (the SDK falls back
  to the legacy format silently, or raises a bare ``binascii.Error``).

Secrets stay in memory: never logged, never in argv (helpers get the host on stdin), never in a report
(``SecretStr``).
"""

from __future__ import annotations

import binascii
import functools
import json
import os
import subprocess
import warnings
from pathlib import Path

from pydantic import BaseModel, ConfigDict, SecretStr

from builder.diagnostics import BuilderError

HELPER_TIMEOUT_S = 30.0
TOKEN_USERNAME = "<token>"  # a helper's user name for an identity token (docker.auth.TOKEN_USERNAME)


class Credentials(BaseModel):
    """Username + password/token for one registry; ``source`` is safe to print."""

    model_config = ConfigDict(frozen=True)

    username: str
    password: SecretStr
    source: str = "given"  # "options" | "docker-config" | "credential-helper:<name>" | "ecr" | "given"

    def auth_config(self) -> dict[str, str]:
        """The engine API's ``auth_config`` (push/pull); it travels in a header, never in argv. A helper's
        identity token (user ``<token>``) is the engine's ``identitytoken``."""
        if self.username == TOKEN_USERNAME:
            return {"identitytoken": self.password.get_secret_value()}
        return {"username": self.username, "password": self.password.get_secret_value()}


def registry_host(reference_or_host: str) -> str | None:
    """The registry host of ``HOST[:PORT]/REPO[:TAG|@DIGEST]`` or of a bare ``HOST[:PORT]``; None for a
    Docker Hub short name (``ubuntu:22.04``, ``library/x``), which has no host of its own here."""
    text = reference_or_host.strip()
    if "://" in text:
        text = text.split("://", 1)[1]
    head, slash, _ = text.partition("/")
    if not head:
        return None
    if slash:  # Docker's rule: the first component is a registry when it looks like a host
        return head if ("." in head or ":" in head or head == "localhost") else None
    name, colon, port = head.partition(":")
    if head == "localhost" or (colon and port.isdigit()) or (not colon and "." in name):
        return head
    return None


def credentials_for(reference_or_host: str, config_dir: str | None = None, *,
                    stage: str = "publish") -> Credentials | None:
    """Credentials for the registry of an image reference or a host, from Docker's config; None when
    there is no host (Docker Hub short names) or nothing is configured for it."""
    host = registry_host(reference_or_host)
    return from_docker_config(host, config_dir, stage=stage) if host else None


def resolve(host: str, username: str | None, password: SecretStr | None,
            config_dir: str | None = None) -> Credentials | None:
    """Explicit ``--username``/``--password-stdin`` (both or neither), else Docker's config."""
    if username is not None or password is not None:
        if not (username and password is not None):
            raise BuilderError("--username and --password-stdin go together", stage="publish")
        return Credentials(username=username, password=password, source="options")
    return from_docker_config(host, config_dir)


def config_path(config_dir: str | None = None) -> Path:
    """``DIR/config.json`` for an explicit ``--docker-config DIR``, else ``$DOCKER_CONFIG`` or ``~/.docker``.
    An explicit folder is the only one read (no fallback to the user's own config)."""
    base = config_dir or os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
    return Path(base) / "config.json"


def sdk_auth_config(config_dir: str | None = None, *, host: str = "", stage: str = "publish"):
    """Docker's config as the SDK's ``docker.auth.AuthConfig`` whose helpers are timed (``TimedStore``);
    an empty one when there is no config. ``engine.docker_client`` gives it to the SDK client too: a
    build sends every credential (``X-Registry-Config``), running each helper, and without this the
    SDK would run them without a timeout."""
    import docker.errors

    path = config_path(config_dir)
    raw: dict = {}
    if path.exists():
        try:
            loaded = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise BuilderError(f"cannot read Docker config {path}: {exc}", stage=stage) from None
        if not isinstance(loaded, dict):
            raise BuilderError(f"cannot read Docker config {path}: not a JSON object", stage=stage)
        raw = loaded
    cls = _auth_config_class()
    if not raw:  # load_config would go looking for another file
        config = cls({})
    else:
        try:
            config = cls.load_config(None, dict(raw))
        except (ValueError, binascii.Error, docker.errors.InvalidConfigFile):  # decode_auth of some entry
            key = _bad_auth_key(raw)
            raise BuilderError(f"{path}: the 'auth' entry for {key} is not base64 user:password", stage=stage,
                               hint=f"log in again (docker login {key}), remove the entry, or point DOCKER_CONFIG "
                                    "at another folder") from None
    config.context = (host, stage)
    return config


def from_docker_config(host: str, config_dir: str | None = None, *, stage: str = "publish") -> Credentials | None:
    """Credentials for ``host`` from Docker's config file and its credential helpers, or None."""
    import docker.auth
    import docker.errors

    config = sdk_auth_config(config_dir, host=host, stage=stage)
    if config.is_empty:
        return None
    try:
        found = docker.auth.resolve_authconfig(config, host)
    except docker.errors.DockerException as exc:  # a store error other than "not found"
        raise BuilderError(f"the credential helper for {host} failed: {exc}", stage=stage) from None
    return _credentials(found, config.get_credential_store(host))


def _credentials(found: dict | None, store: str | None) -> Credentials | None:
    if not found:
        return None
    if "ServerAddress" in found:  # the SDK's shape for a helper's answer
        secret = found.get("Password") or found.get("IdentityToken")
        user = found.get("Username") or (TOKEN_USERNAME if found.get("IdentityToken") else "")
        source = f"credential-helper:{store}"
    else:  # an ``auths`` entry of the file
        secret = found.get("password") or found.get("IdentityToken")
        user = found.get("username") or (TOKEN_USERNAME if found.get("IdentityToken") else "")
        source = "docker-config"
    if not secret:
        return None
    return Credentials(username=user, password=SecretStr(secret), source=source)


def _bad_auth_key(raw: dict) -> str:
    """The first ``auths`` key whose ``auth`` does not decode (for the message)."""
    import docker.auth

    for key, entry in (raw.get("auths") or {}).items():
        if isinstance(entry, dict) and "auth" in entry:
            try:
                docker.auth.decode_auth(entry["auth"])
            except (ValueError, binascii.Error, TypeError):
                return key
    return "a registry"


@functools.cache
def _auth_config_class() -> type:
    """The SDK's ``AuthConfig`` whose helper stores are ``TimedStore``s (``_get_store_instance`` is the
    one place the SDK makes a ``Store``). Built on first use: ``docker`` is imported lazily."""
    import docker.auth
    import docker.credentials

    class TimedStore(docker.credentials.Store):
        """``docker.credentials.Store`` whose helper call ends after HELPER_TIMEOUT_S."""

        def __init__(self, program: str, environment=None, *, host: str = "", stage: str = "publish"):
            with warnings.catch_warnings():  # the SDK warns about a missing helper; we answer None instead
                warnings.simplefilter("ignore")
                super().__init__(program, environment=environment)
            self.host, self.stage = host, stage

        def get(self, server):
            try:
                return super().get(server)
            except (ValueError, KeyError, TypeError):  # an answer that is not the protocol's JSON
                raise docker.credentials.CredentialsNotFound(f"{self.program} gave no usable answer") from None

        def list(self):  # what a build sends: every credential the helper has, or none
            try:
                found = super().list()
            except (docker.credentials.StoreError, ValueError):  # CredentialsNotFound is a StoreError
                return {}
            return found if isinstance(found, dict) else {}

        def _execute(self, subcmd, data_input):
            if self.exe is None:  # not installed here: nothing for this host, as before
                raise docker.credentials.CredentialsNotFound(f"{self.program} is not installed")
            env = docker.credentials.utils.create_environment_dict(self.environment)
            try:
                proc = subprocess.run([self.exe, subcmd], input=data_input, env=env, capture_output=True,
                                      timeout=HELPER_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                whom = f" for {self.host}" if self.host else ""
                raise BuilderError(f"{self.program} did not answer{whom} within {HELPER_TIMEOUT_S:g} s",
                                   stage=self.stage, hint="unlock the credential store, or pass --username/"
                                                          "--password-stdin") from None
            except OSError as exc:
                raise BuilderError(f"{self.program} cannot run: {exc.strerror}", stage=self.stage) from None
            if proc.returncode != 0:  # "credentials not found", a locked store, ...: nothing for this host
                raise docker.credentials.CredentialsNotFound(f"{self.program} exited {proc.returncode}")
            return proc.stdout

    class AuthConfig(docker.auth.AuthConfig):
        context: tuple[str, str] = ("", "publish")  # (host, stage) for the helper's messages

        def _get_store_instance(self, name):
            if name not in self._stores:
                host, stage = self.context
                self._stores[name] = TimedStore(name, environment=self._credstore_env, host=host, stage=stage)
            return self._stores[name]

    return AuthConfig
