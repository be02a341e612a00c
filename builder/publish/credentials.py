"""Registry credentials for non-ECR targets: explicit ``--username/--password-stdin``, else Docker's
client config (``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``: ``auths`` with base64
``user:pass``, ``credHelpers`` / ``credsStore`` helpers). Secrets stay in memory: never logged,
never in argv (helpers get the host on stdin), never in a report.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

from pydantic import BaseModel, SecretStr

from builder.diagnostics import BuilderError


class Credentials(BaseModel):
    username: str
    password: SecretStr
    source: str  # "options" | "docker-config" | "credential-helper:<name>" (safe to print)

    def auth_config(self) -> dict[str, str]:
        return {"username": self.username, "password": self.password.get_secret_value()}


def _config_path(config_dir: str | None) -> Path:
    base = config_dir or os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
    return Path(base) / "config.json"


def _host_keys(host: str) -> list[str]:
    # config.json keys come as "host", "https://host", "http://host/v1/" ...
    return [host, f"https://{host}", f"http://{host}", f"https://{host}/v1/", f"http://{host}/v1/",
            f"https://{host}/v2/", f"http://{host}/v2/"]


def from_docker_config(host: str, config_dir: str | None = None) -> Credentials | None:
    path = _config_path(config_dir)
    if not path.exists():
        return None
    try:
        cfg = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BuilderError(f"cannot read Docker config {path}: {exc}", stage="publish") from None
    helper = (cfg.get("credHelpers") or {}).get(host) or cfg.get("credsStore")
    auths = cfg.get("auths") or {}
    for key in _host_keys(host):
        entry = auths.get(key)
        if entry and entry.get("auth"):
            try:
                user, sep, pw = base64.b64decode(entry["auth"], validate=True).decode().partition(":")
                if not sep:
                    raise ValueError("no ':'")
            except (ValueError, UnicodeDecodeError):
                raise BuilderError(f"{path}: the 'auth' entry for {key} is not base64 user:password",
                                   stage="publish") from None
            return Credentials(username=user, password=SecretStr(pw), source="docker-config")
    if helper:
        return _from_helper(helper, host)
    return None


def _from_helper(helper: str, host: str) -> Credentials | None:
    exe = shutil.which(f"docker-credential-{helper}")
    if not exe:
        return None
    try:
        proc = subprocess.run([exe, "get"], input=host, capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        raise BuilderError(f"docker-credential-{helper} did not answer for {host} within 30 s",
                           stage="publish", hint="unlock the credential store, or pass --username/"
                                                 "--password-stdin") from None
    except OSError as exc:
        raise BuilderError(f"docker-credential-{helper} cannot run: {exc.strerror}", stage="publish") from None
    if proc.returncode != 0:
        return None  # helper has nothing for this host ("credentials not found")
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        return None
    if not data.get("Secret"):
        return None
    return Credentials(username=data.get("Username") or "", password=SecretStr(data["Secret"]),
                       source=f"credential-helper:{helper}")


def resolve(host: str, username: str | None, password: SecretStr | None,
            config_dir: str | None = None) -> Credentials | None:
    if username is not None or password is not None:
        if not (username and password is not None):
            raise BuilderError("--username and --password-stdin go together", stage="publish")
        return Credentials(username=username, password=password, source="options")
    return from_docker_config(host, config_dir)
