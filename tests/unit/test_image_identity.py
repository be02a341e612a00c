"""The image identity digest (builder/assembly/identity.py): every input changes it, the same inputs give
the same value, and the order files are listed in or split into layers does not."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from builder import labels as L
from builder.assembly import identity
from builder.assembly.digests import FileDigestCache
from builder.assembly.labels import model_labels
from builder.assembly.layers import plan_layers
from builder.image.metadata import split_labels
from builder.lmi.resolve import resolve
from builder.publish.tags import default_tag
from builder.recipe.model import Recipe

BASE = "sha256:" + "b" * 64
HANDLER = b"def handle(inputs):\n    return None\n"


def _recipe(name: str = "idtest", **option) -> Recipe:
    return Recipe.model_validate({
        "name": name, "model": {"path": "model", "entry_point": "model.py"},
        "container": {"family": "dev-cpu", "version": "0.34.0"}, "target": {"instance_type": "ml.m5.xlarge"},
        "serving": {"engine": "Python", "option": {"rolling_batch": "disable", **option}}})


def _model(root: Path, weights: bytes = b"w" * 4096) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "model.safetensors").write_bytes(weights)
    (root / "config.json").write_text('{"model_type": "tiny"}')
    return root


def _identity(tmp_path: Path, *, resolved=None, model_dir: Path | None = None, config=None, base=BASE,
              compile_key=None, split_threshold=256 << 20) -> identity.ImageIdentity:
    resolved = resolved or resolve(_recipe())
    config = config if config is not None else {"serving.properties": b"engine=Python\n", "model.py": HANDLER}
    layers = plan_layers(model_dir if model_dir is not None else tmp_path / "model", None, config,
                         blob_dir=tmp_path / "blobs", split_threshold=split_threshold)
    return identity.for_layers(resolved, base_digest=base, layers=layers, config=config,
                               digests=FileDigestCache(tmp_path / "cache"), compile_key=compile_key)


def test_same_inputs_same_digest_and_tags(tmp_path):
    _model(tmp_path / "model")
    a, b = _identity(tmp_path), _identity(tmp_path)
    assert a == b and a.digest.startswith("sha256:") and len(a.digest) == 71
    assert a.digest == "sha256:" + hashlib.sha256(a.inputs.canonical()).hexdigest()
    assert a.tag("idtest") == f"idtest:{a.digest[7:19]}"
    assert a.publish_tag("idtest") == f"idtest-{a.digest[7:19]}" == default_tag("idtest", a.digest)
    assert a.inputs.recipe_hash == resolve(_recipe()).recipe_hash and a.inputs.base_digest == BASE


@pytest.mark.parametrize("change", ["handler", "extra-file", "weights", "weights-name", "recipe", "base",
                                    "compile-key", "serving-properties"])
def test_every_input_changes_the_digest(tmp_path, change):
    _model(tmp_path / "model")
    before = _identity(tmp_path)
    kwargs: dict = {}
    config = {"serving.properties": b"engine=Python\n", "model.py": HANDLER}
    if change == "handler":
        kwargs["config"] = {**config, "model.py": HANDLER + b"# edited\n"}
    elif change == "extra-file":
        kwargs["config"] = {**config, "helper.py": b"X = 1\n"}
    elif change == "serving-properties":  # e.g. compile overrides applied after resolve
        kwargs["config"] = {**config, "serving.properties": b"engine=Python\noption.x=1\n"}
    elif change == "weights":
        _model(tmp_path / "model", weights=b"v" * 4096)  # same name, same size, other bytes
    elif change == "weights-name":
        (tmp_path / "model" / "model.safetensors").rename(tmp_path / "model" / "other.safetensors")
    elif change == "recipe":
        kwargs["resolved"] = resolve(_recipe(predict_timeout=77))
    elif change == "base":
        kwargs["base"] = "sha256:" + "c" * 64
    elif change == "compile-key":
        kwargs["compile_key"] = "k" * 64
    after = _identity(tmp_path, **kwargs)
    assert after.digest != before.digest
    assert after.tag("idtest") != before.tag("idtest")


def test_compile_key_none_and_value_differ_and_model_absent(tmp_path):
    none = identity.image_identity(recipe_hash="r", base_digest=BASE, model=None, files={})
    keyed = identity.image_identity(recipe_hash="r", base_digest=BASE, model=None, files={}, compile_key="k")
    assert none.digest != keyed.digest and none.inputs.model is None
    assert identity.baked_tree_digest([], FileDigestCache(tmp_path)) is None


def test_order_of_files_and_layer_split_do_not_matter(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    for i in range(3):
        (model / f"model-0000{i}.safetensors").write_bytes(bytes([i]) * (3000 + i))
    one = _identity(tmp_path, config={"serving.properties": b"p", "model.py": HANDLER, "a.py": b"a"})
    # reversed listing order of the config files; every weights file its own layer
    other = _identity(tmp_path, config={"a.py": b"a", "model.py": HANDLER, "serving.properties": b"p"},
                      split_threshold=1)
    assert one.digest == other.digest
    assert list(one.inputs.files) == sorted(one.inputs.files)


def test_model_mode_change_changes_the_digest(tmp_path):
    model = _model(tmp_path / "model")
    before = _identity(tmp_path)
    (model / "config.json").chmod(0o755)  # baked as an executable: another image
    assert _identity(tmp_path).digest != before.digest


def test_labels_carry_the_identity_and_change_with_it(tmp_path):
    _model(tmp_path / "model")
    resolved = resolve(_recipe())
    ident = _identity(tmp_path, resolved=resolved)
    labels = model_labels(resolved, base_ref="b", base_digest=BASE, model_digest=None, compile_labels=None,
                          recipe_file=None, created=None, identity=ident)
    assert labels[L.INPUTS_DIGEST] == ident.digest
    assert identity.ImageInputs.model_validate_json(labels[L.INPUTS_JSON]) == ident.inputs
    assert labels["org.opencontainers.image.version"] == ident.digest[7:19]
    _, dependent = split_labels(labels)
    # applied in the last build step (they change with every input), never inherited from the artifacts image
    assert {L.INPUTS_DIGEST, L.INPUTS_JSON} <= set(dependent)
