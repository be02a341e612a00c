"""A multi-model image's model names come from the one label reader (builder/smoke/image_info.py)."""

from builder import labels as L
from builder.multi.smoke import models_of, predict_path
from builder.smoke.image_info import parse_labels


def test_the_models_label_is_parsed_once_by_the_image_reader():
    info = parse_labels("mm:1", "sha256:" + "0" * 64, {L.MODELS: '["alpha", "beta", 3]'})
    assert info.models == ["alpha", "beta"] and models_of(info) == ["alpha", "beta"]
    assert predict_path(info, "beta") == "/predictions/beta"


def test_a_broken_models_label_is_a_warning_and_a_single_model_image():
    info = parse_labels("mm:1", "sha256:" + "0" * 64, {L.MODELS: "[alpha"})
    assert info.models == [] and any(L.MODELS in w for w in info.warnings)
    assert predict_path(info, None) == "/invocations"
