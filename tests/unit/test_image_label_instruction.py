"""Recipe labels rendered as one escaped LABEL instruction (builder/image/render.label_instruction).

The real-engine round trip of hostile strings is in tests/integration/test_image_bake.py (NASTY)."""

from __future__ import annotations

import pytest

from builder.diagnostics import BuilderError
from builder.image.render import label_instruction, render_model


def test_one_instruction_with_escaped_values():
    text = label_instruction({"dev.lmi-builder.b": 'say "hi" $HOME \\n', "dev.lmi-builder.a": "x"})
    assert text == '"dev.lmi-builder.a"="x" "dev.lmi-builder.b"="say \\"hi\\" \\$HOME \\\\n"'


@pytest.mark.parametrize("value", ["a\nRUN rm -rf /", "a\rb", "tab\there", "nul\x00"])
def test_line_breaks_and_control_characters_are_refused(value):
    with pytest.raises(BuilderError, match="line break or control character"):
        label_instruction({"dev.lmi-builder.x": value})


@pytest.mark.parametrize("key", ['a" RUN x', "A.Upper", "with space", ""])
def test_keys_are_restricted(key):
    with pytest.raises(BuilderError, match="label key"):
        label_instruction({key: "v"})


def test_model_template_puts_labels_in_a_single_step_after_the_config_copy():
    text = render_model("lmi", from_ref="sha256:" + "a" * 64, config_dir="layers/01-config", env={},
                        labels={"dev.lmi-builder.recipe.hash": "h", "dev.lmi-builder.recipe": '{"a": "$b"}'})
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert sum(line.startswith("LABEL ") for line in lines) == 1
    assert lines.index(next(x for x in lines if x.startswith("COPY"))) < lines.index(
        next(x for x in lines if x.startswith("LABEL")))
