"""Publishing a multi-model image (docs/multi-model.md, "Publishing the image"): the bake's identity
labels are the ones the single-model publisher reads (inputs digest + inputs JSON -> default tag), the
deploy hint sums the models' loading timeouts, and the build options that stay refused say why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from builder import labels as L
from builder.cli import main
from builder.diagnostics import UsageError
from builder.multi.image import MultiImageInputs, labels_for
from builder.multi.layout import plan_models
from builder.multi.loader import load_multi
from builder.publish.hints import deploy_hints
from builder.publish.publisher import LocalImage, image_digest, tag_variables
from builder.publish.tags import tags_for

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "recipes" / "examples" / "multi-model-quickstart.yaml"
FILE = "sha256:" + "a" * 64


def inputs(**change) -> MultiImageInputs:
    base = {"recipe_hash": "r" * 64, "base_digest": "sha256:" + "b" * 64, "env": "e" * 64,
            "models": {"alpha": {"serving.properties": FILE, "model.py": FILE}, "beta": {"serving.properties": FILE}}}
    return MultiImageInputs(**{**base, **change})


@pytest.fixture
def example_labels(monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, str], MultiImageInputs]:
    monkeypatch.chdir(ROOT)
    loaded = load_multi(EXAMPLE.relative_to(ROOT))
    ident = inputs()
    return labels_for(plan_models(loaded), loaded.recipe, base_ref="base:x", base_digest=ident.base_digest,
                      inputs=ident), ident


def test_identity_labels_give_the_default_publish_tag(example_labels) -> None:
    got, ident = example_labels
    assert got[L.INPUTS_DIGEST] == ident.digest() and ident.digest().startswith("sha256:")
    assert json.loads(got[L.INPUTS_JSON])["format"] == "multi-image-identity-v1"
    # the publisher trusts this digest (a model image with its inputs JSON beside it) ...
    assert image_digest(got) == ident.digest()
    img = LocalImage(ref="x", id="sha256:" + "c" * 64, labels=got, env=[], repo_digests=[], obj=None)
    variables = tag_variables(img, None)
    hex12 = ident.digest()[7:19]
    assert variables["image_digest12"] == hex12 and variables["name"] == "multi-model-quickstart"
    # ... so the default tag is <name>-<inputs12>, the same 12 hex as the local tag <name>:<inputs12>
    assert tags_for("multi-model-quickstart", image_digest(got), ["v-{image_digest12}"], variables) == \
        [f"multi-model-quickstart-{hex12}", f"v-{hex12}"]
    assert got["org.opencontainers.image.version"] == hex12


def test_inputs_digest_follows_every_models_files() -> None:
    assert inputs().digest() == inputs().digest()
    changed = inputs(models={"alpha": {"serving.properties": "sha256:" + "f" * 64, "model.py": FILE},
                             "beta": {"serving.properties": FILE}})
    renamed = inputs(models={"alpha": {"serving.properties": FILE, "model.py": FILE},
                             "gamma": {"serving.properties": FILE}})
    assert len({inputs().digest(), changed.digest(), renamed.digest(), inputs(env="0" * 64).digest()}) == 4


def test_deploy_hint_sums_the_models_loading_timeouts(example_labels) -> None:
    got, _ = example_labels
    hints = deploy_hints(got, [])
    assert hints.model_loading_timeout_s == 150 and hints.ContainerStartupHealthCheckTimeoutInSeconds == 150
    assert "sum of the 2 models'" in (hints.model_loading_timeout_source or "")
    assert hints.instance_type == got[L.TARGET_INSTANCE]  # the same label as a single-model image


def test_registry_assembler_is_refused_with_what_to_do(capsys: pytest.CaptureFixture[str]) -> None:
    from builder.options import BuildOptions
    from builder.options import check_multi_options as _check_options

    with pytest.raises(UsageError, match="not available for multi-model recipes") as exc:
        _check_options(BuildOptions(recipe=EXAMPLE, assembler="registry", registry="127.0.0.1:5000/x"))
    assert "--push" in (exc.value.hint or "")
    with pytest.raises(UsageError, match="--registry"):
        _check_options(BuildOptions(recipe=EXAMPLE, registry="no repository"))
    _check_options(BuildOptions(recipe=EXAMPLE, registry="127.0.0.1:5000/team/mm"))  # now accepted


def test_push_without_any_target_is_a_usage_error_before_the_fetch(tmp_path: Path, capsys) -> None:
    rc = main(["build", str(EXAMPLE), "--push", "--cache-dir", str(tmp_path), "--report", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert rc == 2 and "no publish target (publish.ecr, publish.registry or publish.s3)" in err
    stages = [s["name"] for s in json.loads((tmp_path / "r.json").read_text())["stages"]]
    assert stages == ["validate"]
