from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from builder.diagnostics import UsageError
from builder.publish import tags
from builder.registry.reference import is_tag

VARS = {"name": "tiny", "recipe_hash": "a" * 64, "recipe_hash12": "a" * 12, "git_sha": "abc1234",
        "lmi_version": "0.29.0"}


def test_default_tag_and_templates():
    got = tags.tags_for("Llama 3/8B", "0123456789abcdef" * 4, ["sha-{git_sha}", "{name}-{lmi_version}",
                                                               "sha-{git_sha}"], VARS)
    assert got == ["Llama-3-8B-0123456789ab", "sha-abc1234", "tiny-0.29.0"]


@pytest.mark.parametrize("template,fragment", [
    ("{nope}", "unknown variable"),
    ("-bad", "not a valid tag"),
    ("a" * 129, "not a valid tag"),
    ("has space", "not a valid tag"),
    ("{git_sha}", "not known"),
])
def test_bad_templates(template, fragment):
    with pytest.raises(UsageError, match=fragment):
        tags.render(template, {**VARS, "git_sha": None})


def test_missing_hash_is_usage_error():
    with pytest.raises(UsageError):
        tags.default_tag("x", "")


@given(st.text(max_size=300), st.text(alphabet="0123456789abcdef", min_size=12, max_size=64))
def test_default_tag_always_valid(name, h):
    assert is_tag(tags.default_tag(name, h))


@pytest.mark.parametrize("tag", ["v1\n", "v1\r", "-v1", "a" * 129, ""])
def test_a_tag_is_checked_whole(tag):
    # the tag grammar once matched with ^...$ and .match, which let a trailing newline through
    with pytest.raises(UsageError, match="is not a valid tag"):
        tags.validate(tag)
    assert not is_tag(tag)
