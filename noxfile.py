"""Entry points. Every session installs the project (editable) into a reused venv, then
delegates to ``lmi-build`` so that CI and people run exactly the same commands.

    nox -s build -- recipes/examples/quickstart.yaml     # the main job
    nox -s tests                                          # the whole test suite
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import nox

nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True
nox.options.sessions = ["lint", "tests"]

ROOT = Path(__file__).parent


def _install(session: nox.Session, extras: str = "") -> None:
    """pip install -e .[extras], skipped when pyproject.toml is unchanged since the last install."""
    stamp_text = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    stamp = Path(session.virtualenv.location) / ".lmi-build-installed"
    if stamp.exists() and stamp.read_text() == stamp_text:
        return
    target = f".[{extras}]" if extras else "."
    session.install("-q", "-e", target)
    stamp.write_text(stamp_text)


def _cli(session: nox.Session, *args: str) -> None:
    _install(session)
    session.run("lmi-build", *args, external=False)


@nox.session
def build(session: nox.Session) -> None:
    """validate -> fetch -> compile -> bake -> smoke -> (publish with --push). Pass lmi-build build's options."""
    # The examples' tiny models are committed (tests/unit/test_example_weights.py), so this is exactly
    # `lmi-build build ...`: nothing a user of the console script would have to do by hand.
    _cli(session, "build", *session.posargs)


@nox.session
def validate(session: nox.Session) -> None:
    """Validate recipes (files or folders)."""
    _cli(session, "validate", *(session.posargs or ["recipes/"]))


@nox.session
def render(session: nox.Session) -> None:
    """Render serving.properties, serving.env and resolved.json for a recipe."""
    _cli(session, "render", *session.posargs)


@nox.session
def smoke(session: nox.Session) -> None:
    """Smoke-test a built image (recipe or image reference)."""
    _cli(session, "smoke", *session.posargs)


@nox.session
def publish(session: nox.Session) -> None:
    """Publish a built image to ECR or an OCI registry."""
    _cli(session, "publish", *session.posargs)


@nox.session
def plan(session: nox.Session) -> None:
    """JSON matrix of affected recipes and the runner each needs."""
    _cli(session, "plan", *(session.posargs or ["recipes/"]))


@nox.session
def runtime(session: nox.Session) -> None:
    """Build the dev-cpu runtime image (cached by the digest of its inputs)."""
    _cli(session, "runtime", *(session.posargs or ["build", "dev-cpu"]))


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite: unit tests and Docker/registry integration tests."""
    _install(session, "test")
    # pytest exits 5 when it collected nothing: nox treats any non-zero code as failure.
    session.run("pytest", *(session.posargs or []))


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check."""
    session.install("-q", "ruff>=0.5")
    session.run("ruff", "check", ".")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks (not timed tests). `nox -s bench -- [suite ...]`; suites under benchmarks/."""
    _install(session, "test")
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session
def gpu_check(session: nox.Session) -> None:
    """On a GPU host: host preflight and hardware-fit estimate vs what torch allocates."""
    _install(session)
    session.run("python", "-m", "benchmarks.gpu_check", *session.posargs)
