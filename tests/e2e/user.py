"""The e2e tier's user: a fresh clone with the console script installed, an empty HOME, a login shell's
environment (made by the ``user`` fixture in conftest.py)."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

# What `bash -l` on Debian puts on PATH for root (/etc/profile), without ~/.local/bin.
LOGIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Passed through only when the caller has them: how this machine reaches its engine and PyPI.
PASS_THROUGH = ("DOCKER_HOST", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY")
PIP_PASS_THROUGH = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST", "http_proxy", "https_proxy",
                    "HTTP_PROXY", "HTTPS_PROXY", "no_proxy", "NO_PROXY")
INSTALL_TIMEOUT_S = 600
TIMINGS: list[tuple[str, float]] = []  # (command, seconds), printed in the terminal summary


@dataclass(repr=False)
class Result:
    args: tuple[str, ...]
    rc: int
    stdout: str
    stderr: str
    seconds: float

    def __repr__(self) -> str:  # what an assertion message shows
        return (f"$ lmi-build {' '.join(self.args)}  (exit {self.rc}, {self.seconds:.1f} s)\n"
                f"--- stdout ---\n{self.stdout[-4000:]}\n--- stderr ---\n{self.stderr[-6000:]}")

    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("error:")]


@dataclass
class User:
    clone: Path
    home: Path
    venv: Path
    env: dict[str, str]
    timings: list[tuple[str, float]] = field(default_factory=lambda: TIMINGS)

    @property
    def cache(self) -> Path:
        """Where the default cache must be for this HOME (platformdirs' user cache dir on Linux)."""
        return self.home / ".cache" / "lmi-builder"

    def command(self, *args: str) -> list[str]:
        return [str(self.venv / "bin" / "lmi-build"), *args]

    def run(self, *args: str, timeout: float = 300, cwd: Path | None = None) -> Result:
        start = time.monotonic()
        proc = subprocess.run(self.command(*args), cwd=cwd or self.clone, env=self.env, capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        seconds = time.monotonic() - start
        self.timings.append((" ".join(args[:2]), seconds))
        return Result(args, proc.returncode, proc.stdout, proc.stderr, seconds)

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(self.command(*args), cwd=self.clone, env=self.env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
