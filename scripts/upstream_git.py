"""Read an upstream repository (djl-serving) with git, without checking anything out.

A bare mirror or a checkout both work. The one reader of the derive scripts (``derive_keys.py``,
``derive_releases.py``, ``list_validators.py``) and of ``tests/support/upstream_configs.py``. The scripts
import it from their own folder (put on ``sys.path`` first, since tests load them by file path).
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def is_repository(path: Path) -> bool:
    """A bare repository (``HEAD`` in it) or a work tree (``.git`` in it)."""
    return (path / "HEAD").is_file() or (path / ".git").exists()


class Repo:
    def __init__(self, path: Path):
        path = Path(path)
        self.git_dir = path if (path / "HEAD").is_file() and not (path / ".git").exists() else path / ".git"

    def git(self, *args: str, check: bool = True) -> str:
        """``git ARGS`` against this repository; its stdout (``check=False``: whatever the exit code)."""
        return subprocess.run(["git", f"--git-dir={self.git_dir}", *args], check=check, capture_output=True,
                              text=True).stdout

    def show(self, branch: str, path: str) -> str | None:
        """The file at ``BRANCH:PATH``, or None when the branch does not have it."""
        try:
            return self.git("show", f"{branch}:{path}")
        except subprocess.CalledProcessError:
            return None

    def ls(self, branch: str, path: str) -> list[str]:
        return self.git("ls-tree", "--name-only", f"{branch}:{path}").split()

    def commit(self, branch: str) -> str:
        return self.git("rev-parse", branch).strip()

    def branches(self, *refs: str) -> list[str]:
        """Short names of the refs under ``refs`` (default: the local branches, ``refs/heads``)."""
        return self.git("for-each-ref", "--format=%(refname:short)", *(refs or ("refs/heads",))).split()
