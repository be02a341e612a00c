"""--env for smoke/serve/predict: KEY alone reads the value from lmi-build's environment (like docker
run -e KEY), so a secret never has to sit in argv; a secret given as KEY=VALUE is refused."""

from __future__ import annotations

import pytest

from builder.diagnostics import UsageError
from builder.smoke.cli_args import parse_env


def test_key_value_and_key_from_environment() -> None:
    env = parse_env(["MY_FLAG=1", "HF_TOKEN", "EMPTY="], environ={"HF_TOKEN": "hf_abc"})
    assert env == {"MY_FLAG": "1", "HF_TOKEN": "hf_abc", "EMPTY": ""}


def test_secret_value_on_the_command_line_is_refused() -> None:
    with pytest.raises(UsageError, match="process list") as exc:
        parse_env(["HF_TOKEN=hf_abc"], environ={})
    assert "hf_abc" not in str(exc.value) and "hf_abc" not in (exc.value.hint or "")


def test_unset_key_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="not set"):
        parse_env(["HF_TOKEN"], environ={})


@pytest.mark.parametrize("bad", ["1ABC=x", "A B=x", "A$B", "=x"])
def test_bad_names(bad: str) -> None:
    with pytest.raises(UsageError):
        parse_env([bad], environ={"A$B": "x"})
