"""The end-to-end tier's one fixture: a new user's machine, made once per session.

``user`` (session): a fresh ``git clone`` of this repository's HEAD in a temporary folder, the console
script installed there exactly as the README's "Install the console script" paragraph says
(``python3 -m venv .venv && .venv/bin/pip install -e .``), HOME set to an empty temporary folder and
every ``LMI_BUILD_*`` / ``XDG_*`` variable left out, so each command runs on its defaults: the cache is
``$HOME/.cache/lmi-builder``. ``user.run("validate", "recipes/")`` runs ``lmi-build`` there through a
subprocess with the environment of a fresh login shell (its PATH plus the venv's bin) and returns the
exit code, stdout and stderr.

What a clone holds is what is committed: uncommitted work in the checkout is not tested (a warning
says so). Only the pip download cache is shared with the caller (``PIP_CACHE_DIR``), for the install
step alone, so reruns do not download the wheels again; the commands under test never see it.
"""

from __future__ import annotations

import os
import subprocess
import time
import warnings
from pathlib import Path

import pytest

from tests.e2e.user import INSTALL_TIMEOUT_S, LOGIN_PATH, PASS_THROUGH, PIP_PASS_THROUGH, TIMINGS, User


def _repo_root() -> Path:
    here = Path(__file__).resolve().parent
    out = subprocess.run(["git", "-C", str(here), "rev-parse", "--show-toplevel"], capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip(f"the e2e tier clones the repository, and {here} is not in a git work tree: {out.stderr.strip()}")
    return Path(out.stdout.strip())


def _sh(cmd: list[str], *, env: dict[str, str], cwd: Path, what: str) -> None:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        pytest.fail(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-3000:]}\n"
                    f"{proc.stderr[-3000:]}", pytrace=False)


@pytest.fixture(scope="session")
def user(tmp_path_factory) -> User:
    root = _repo_root()
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    if dirty:
        warnings.warn(f"e2e: {len(dirty.splitlines())} modified tracked file(s) in {root} are not in the clone "
                      "under test (commit them to test them)", stacklevel=1)
    base = tmp_path_factory.mktemp("e2e")
    clone, home = base / "lmi-builder", base / "home"
    home.mkdir()
    started = time.monotonic()
    _sh(["git", "clone", "--quiet", str(root), str(clone)], env={"PATH": LOGIN_PATH, "HOME": str(home)},
        cwd=base, what="git clone")

    login = {"PATH": LOGIN_PATH, "HOME": str(home), "LANG": "C.UTF-8"}
    login.update({k: os.environ[k] for k in PASS_THROUGH if k in os.environ})
    # The README's install command, split where it says `&&`.
    pip_cache = os.environ.get("PIP_CACHE_DIR") or str(Path.home() / ".cache" / "pip")
    install_env = {**login, "PIP_CACHE_DIR": pip_cache, "PIP_DISABLE_PIP_VERSION_CHECK": "1",
                   **{k: os.environ[k] for k in PIP_PASS_THROUGH if k in os.environ}}
    _sh(["python3", "-m", "venv", ".venv"], env=install_env, cwd=clone, what="python3 -m venv .venv")
    _sh([".venv/bin/pip", "install", "-q", "-e", "."], env=install_env, cwd=clone, what="pip install -e .")
    venv = clone / ".venv"
    env = {**login, "PATH": f"{venv / 'bin'}:{LOGIN_PATH}"}
    made = User(clone=clone, home=home, venv=venv, env=env)
    made.timings.append(("clone + venv + pip install -e .", time.monotonic() - started))
    return made


def pytest_terminal_summary(terminalreporter) -> None:
    if TIMINGS:
        terminalreporter.write_sep("-", f"e2e: {sum(s for _, s in TIMINGS):.0f} s in lmi-build and set-up")
        for what, seconds in TIMINGS:
            terminalreporter.write_line(f"{seconds:7.1f} s  {what}")
