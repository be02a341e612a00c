"""The serving.properties writer against the JDK's java.util.Properties (the reader LMI uses, §3)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builder.lmi.properties import dumps, loads
from builder.lmi.resolve import resolve
from builder.recipe.model import Recipe
from tests.support.javaprops import java_load, needs_java

KEY_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"
keys = st.text(alphabet=KEY_ALPHABET, min_size=1, max_size=30)
# every code point, surrogates included, plus the characters that matter to the format
specials = st.sampled_from(["\n", "\r", "\r\n", "=", ":", "\\", " ", "  lead", "#", "!", "\t", "\f", "\\u0041",
                            "\x00", "\ud800", "\udfff", "\U0001f600", "\u00e9"])
values = st.lists(st.one_of(st.characters(min_codepoint=0, max_codepoint=0x10FFFF,
                                          blacklist_categories=()), specials), max_size=40).map("".join)
documents = st.dictionaries(keys, values, min_size=1, max_size=150)


def utf16(text: str) -> bytes:
    """Compare as Java sees strings: UTF-16 units (a surrogate pair equals its code point)."""
    return text.encode("utf-16-le", "surrogatepass")


@needs_java
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(documents, min_size=4, max_size=8))
def test_writer_round_trips_through_java(tmp_path_factory, docs: list[dict[str, str]]) -> None:
    folder = tmp_path_factory.mktemp("props")
    files = []
    for i, doc in enumerate(docs):
        f = folder / f"{i}.properties"
        text = dumps(doc, header=["hypothesis"])
        assert text.isascii()  # Properties.load(InputStream) reads ISO-8859-1: ASCII + escapes is safe
        f.write_text(text, encoding="ascii")
        files.append(f)
    for doc, got in zip(docs, java_load(*files), strict=True):
        assert {k: utf16(v) for k, v in got.items()} == {k: utf16(v) for k, v in doc.items()}
        # our reader agrees with the JDK
        assert {k: utf16(v) for k, v in loads(dumps(doc)).items()} == {k: utf16(v) for k, v in doc.items()}


def _recipe(option_value: str) -> Recipe:
    # Built directly (not via YAML) to bypass the loader's newline check: the writer must hold on its own.
    return Recipe.model_validate({
        "name": "inject", "model": {"id": "org/m", "revision": "0" * 40, "trust_remote_code": False},
        "container": {"family": "lmi", "version": "lmi-27.0.0"}, "target": {"instance_type": "ml.g5.xlarge"},
        "serving": {"engine": "Python", "option": {"rolling_batch": "vllm", "max_model_len": option_value}}})


@needs_java
def test_no_recipe_value_can_inject_a_key(tmp_path: Path) -> None:
    payloads = ["1\noption.trust_remote_code=true", "1\r\nengine=MPI", "1\\\noption.evil=1", "1\u2028option.x=1",
                "x\n\\u000aoption.y=2", "1\n  option.entryPoint : evil", "1\x85option.z=3"]
    files, expected = [], []
    for i, payload in enumerate(payloads):
        resolved = resolve(_recipe(payload))
        f = tmp_path / f"{i}.properties"
        f.write_text(dumps(resolved.properties), encoding="ascii")
        files.append(f)
        expected.append(resolved.properties)
    for props, got in zip(expected, java_load(*files), strict=True):
        assert set(got) == set(props)
        assert got == props
        assert got["option.trust_remote_code"] == "false" and got["engine"] == "Python"
