"""Dockerfile templates, lint, escaping of recipe strings, labels (builder/image/render.py, builder/assembly/labels.py)."""

from __future__ import annotations

import json
import re

import pytest

from builder import labels as L
from builder.assembly import labels as image_labels
from builder.diagnostics import BuilderError
from builder.image import render
from builder.lmi.properties import dumps, loads
from builder.lmi.resolve import resolve
from builder.recipe.model import Recipe

BASE = "123456789012.dkr.ecr.us-west-2.amazonaws.com/djl-inference:0.29.0-lmi11.0.0-cu124@sha256:" + "a" * 64
IMAGE_ID = "sha256:" + "b" * 64
NASTY = [
    'quote " inside', "single ' quote", "back\\slash\\", "dollar $HOME ${PATH} $(id)", "{{ 7*7 }} {% raw %}",
    "`id`; rm -rf /", "trailing space ", "uni\u00e9\u4e2d", "RUN echo pwned",
]
LINE_BREAKS = ["a\nRUN echo pwned", "\\\n", "a\rb", "tab\tchar", "nul\x00"]


def _recipe(**over) -> Recipe:
    data = {"name": "tiny", "model": {"path": "m"}, "container": {"family": "dev-cpu", "version": "0.34.0"},
            "target": {"instance_type": "ml.m5.xlarge"},
            "serving": {"engine": "Python", "option": {"rolling_batch": "disable"}}}
    data.update(over)
    return Recipe.model_validate(data)


def _unquote_env(line: str) -> tuple[str, str]:
    """Undo env_assignment as the legacy builder's word parser does (in double quotes: \\ " $ escaped)."""
    key, _, rest = line[len("ENV "):].partition("=")
    assert rest.startswith('"') and rest.endswith('"')
    return key, re.sub(r'\\(["$\\])', r"\1", rest[1:-1])


@pytest.mark.parametrize("family", render.FAMILIES)
def test_every_family_renders_a_plain_legacy_dockerfile(family):
    text = render.render_model(family, from_ref=BASE, config_dir="layers/03-config", env={"A": "1"})
    lines = [x for x in text.splitlines() if x.strip()]
    assert lines[0] == f"FROM {BASE}"
    assert lines.count('COPY ["layers/03-config/", "/"]') == 1
    assert "EXPOSE 8080" in lines
    assert not any(x.startswith(("ENTRYPOINT", "CMD", "LABEL", "RUN")) for x in lines)  # runtime's own kept
    render.lint(text)


def test_artifacts_dockerfile_one_copy_per_layer():
    text = render.render_artifacts(from_ref=IMAGE_ID, layer_dirs=["layers/00-weights-a", "layers/01-weights-files"])
    assert text.splitlines() == [f"FROM {IMAGE_ID}", 'COPY ["layers/00-weights-a/", "/"]',
                                 'COPY ["layers/01-weights-files/", "/"]']


@pytest.mark.parametrize("value", NASTY)
def test_env_values_stay_one_instruction(value):
    text = render.render_model("lmi", from_ref=BASE, config_dir="layers/01-config", env={"MY_VAR": value})
    env_lines = [x for x in text.splitlines() if x.startswith("ENV ")]
    assert len(env_lines) == 1
    assert _unquote_env(env_lines[0]) == ("MY_VAR", value)
    assert len([x for x in text.splitlines() if x.strip()]) == 4  # FROM, ENV, COPY, EXPOSE: nothing added


@pytest.mark.parametrize("value", LINE_BREAKS)
def test_env_line_breaks_and_control_characters_refused(value):
    with pytest.raises(BuilderError, match="line break or control"):
        render.render_model("lmi", from_ref=BASE, config_dir="layers/01-config", env={"MY_VAR": value})


@pytest.mark.parametrize("key", ["HF_TOKEN", "AWS_SECRET_ACCESS_KEY", "DB_PASSWORD", "MY_API_KEY"])
def test_secret_env_names_never_rendered(key):
    with pytest.raises(BuilderError, match="secret"):
        render.render_model("lmi", from_ref=BASE, config_dir="layers/01-config", env={key: "x"})


@pytest.mark.parametrize("key", ["A B", "1X", "A=B", "A\nRUN", "{{x}}", ""])
def test_env_names_checked(key):
    with pytest.raises(BuilderError):
        render.render_model("lmi", from_ref=BASE, config_dir="layers/01-config", env={key: "x"})


@pytest.mark.parametrize("ref", [BASE + "\nRUN id", "repo:tag RUN", "a b", "x@sha256:short", "{{ x }}",
                                 "repo:tag\n", "UPPER/case:1"])
def test_bad_from_references_refused(ref):
    with pytest.raises(BuilderError, match="not a valid image reference"):
        render.render_model("lmi", from_ref=ref, config_dir="layers/01-config", env={})


@pytest.mark.parametrize("ref", [BASE, IMAGE_ID, "localhost:5000/a/b:1", "lmi-build/artifacts:abc@sha256:" + "c" * 64])
def test_good_references(ref):
    assert render.docker_ref(ref) == ref


def test_context_paths_checked():
    for bad in ["layers/a b", "layers/*", "../x", "layers/[x]", 'a"b']:
        with pytest.raises(BuilderError):
            render.context_path(bad)


@pytest.mark.parametrize("line,why", [
    ("RUN --mount=type=cache,target=/root/.cache pip install x", "BuildKit"),
    ("COPY --chmod=755 a /a", "BuildKit"),
    ("COPY --link a /a", "BuildKit"),
    ("RUN <<EOF\necho\nEOF", "heredocs"),
    ("# syntax=docker/dockerfile:1", "syntax"),
    ("echo pwned", "not a Dockerfile instruction"),
])
def test_lint_refuses(line, why):
    with pytest.raises(BuilderError, match=why):
        render.lint(f"FROM {IMAGE_ID}\n{line}\n")


def test_lint_accepts_continuations():
    render.lint(f"FROM {IMAGE_ID}\nRUN echo a \\\n    && echo b\nCOPY a /a\n")


def test_template_refuses_raw_strings(tmp_path):
    (tmp_path / "_common").mkdir()
    (tmp_path / "_common" / "artifacts.Dockerfile.j2").write_text("FROM {{ from_ref }}\nLABEL x={{ raw }}\n")
    env = render.environment(tmp_path)
    with pytest.raises(BuilderError, match="unescaped"):
        env.get_template("_common/artifacts.Dockerfile.j2").render(from_ref=render.docker_ref(IMAGE_ID), raw="a\nb")


def test_template_undefined_is_an_error(tmp_path):
    (tmp_path / "_common").mkdir()
    (tmp_path / "_common" / "artifacts.Dockerfile.j2").write_text("FROM {{ from_ref }}\n{{ missing }}\n")
    with pytest.raises(BuilderError, match="undefined"):
        render.render_artifacts(from_ref=IMAGE_ID, layer_dirs=[], root=tmp_path)


@pytest.mark.parametrize("value", NASTY + LINE_BREAKS)
def test_properties_values_cannot_add_keys(value):
    resolved = resolve(_recipe(serving={"engine": "Python", "option": {"rolling_batch": "disable",
                                                                        "custom_text": value}}))
    text = dumps(resolved.properties)
    assert loads(text) == resolved.properties
    assert "RUN echo pwned" not in [line.split("=", 1)[0] for line in text.splitlines()]


@pytest.mark.parametrize("value", NASTY + LINE_BREAKS)
def test_labels_carry_strings_verbatim(value):
    recipe = _recipe(description=value, smoke={"prompt": value})
    resolved = resolve(recipe)
    out = image_labels.model_labels(resolved, base_ref="r@sha256:" + "a" * 64, base_digest="sha256:" + "a" * 64,
                                model_digest="sha256:" + "d" * 64, compile_labels=None,
                                recipe_file=None, created=None)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in out.items())
    assert json.loads(out[L.RECIPE_JSON]) == json.loads(json.dumps(resolved.to_json()))
    assert json.loads(out[L.SMOKE])["prompt"] == value
    assert json.loads(out[L.SMOKE])["model_loading_timeout"] == int(resolved.properties["option.model_loading_timeout"])
    assert out[L.ROLE] == "model" and out[L.MANAGED] == "true" and out[L.DEV_RUNTIME] == "true"
    assert out["org.opencontainers.image.created"] == image_labels.EPOCH  # deterministic: no clock
    assert out[L.RECIPE_HASH] == resolved.recipe_hash and L.COMPILE not in out


def test_created_from_source_date_epoch(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert image_labels.provenance(None, None, "h")["org.opencontainers.image.created"] == "2023-11-14T22:13:20Z"


def test_created_from_recipe_git_commit(tmp_path, monkeypatch):
    import subprocess

    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: x\n")
    env = {"GIT_AUTHOR_DATE": "2024-01-02T03:04:05Z", "GIT_COMMITTER_DATE": "2024-01-02T03:04:05Z",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e",
           "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    for args in (["init", "-q"], ["add", "r.yaml"], ["commit", "-q", "-m", "r"]):
        subprocess.run(["git", *args], cwd=tmp_path, env=env, check=True)
    out = image_labels.provenance(recipe, None, "h")
    assert out["org.opencontainers.image.created"] == "2024-01-02T03:04:05Z"
    assert re.fullmatch(r"[0-9a-f]{40}", out["org.opencontainers.image.revision"])
    recipe.write_text("name: y\n")  # uncommitted edit: no git provenance claimed
    assert image_labels.provenance(recipe, None, "h")["org.opencontainers.image.revision"] == "recipe-sha256:h"
