"""Usage errors of ``lmi-build publish`` are one-line messages with exit 2, never tracebacks."""

from __future__ import annotations

import pytest

from builder.cli import main


@pytest.mark.parametrize("argv,fragment", [
    (["img"], "no target"),
    (["img", "--ecr-account", "123456789012"], "together"),
    (["img", "--registry", "nohost"], "HOST"),
    (["img", "--registry", "h:1/r", "--username", "u"], "password-stdin"),
    (["img", "--ecr-account", "1", "--ecr-region", "us-west-2", "--ecr-repository", "r/x"], "12 digits"),
])
def test_usage_errors(argv, fragment, capsys):
    assert main(["publish", *argv]) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err
