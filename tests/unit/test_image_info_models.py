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


def _recipes():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "recipes/examples"
    return sorted(p for p in root.glob("*.yaml") if "multi" not in p.name)


def test_the_build_describes_its_image_exactly_as_the_label_reader_reads_it():
    """The smoke stage takes the build's typed description; ``lmi-build smoke IMAGE`` reads the labels. Over
    every example recipe (CPU, GPU, Neuron; streaming and not), the two agree field by field."""
    from builder.assembly.labels import model_labels
    from builder.lmi.resolve import resolve
    from builder.recipe import load_or_raise
    from builder.smoke.image_info import describe

    recipes = _recipes()
    assert len(recipes) >= 10
    kinds, not_streaming = set(), 0
    for path in recipes:
        resolved = resolve(load_or_raise(path).recipe)
        labels = model_labels(resolved, base_ref="base", base_digest="sha256:" + "1" * 64, model_digest=None,
                              compile_labels=None, recipe_file=None, created="2026-01-01T00:00:00Z")
        from_labels = parse_labels("img", "sha256:" + "2" * 64, labels, {"8080/tcp": {}})
        typed = describe("img", "sha256:" + "2" * 64, resolved)
        fields = set(type(typed).model_fields) - {"labels", "warnings"}
        assert typed.model_dump(include=fields) == from_labels.model_dump(include=fields), path.name
        kinds.add(typed.target_kind)
        not_streaming += bool(typed.settings.stream_not_applicable)
    assert kinds == {"cpu", "gpu", "neuron"} and not_streaming >= 1
