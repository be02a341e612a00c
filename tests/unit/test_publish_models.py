from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from builder import labels
from builder.diagnostics import BuilderError
from builder.publish import PublishTarget, targets_from_recipe
from builder.publish.hints import deploy_hints


def test_recipe_publish_section():
    targets, tags = targets_from_recipe({"ecr": {"account": "123456789012", "region": "us-west-2",
                                                 "repository": "lmi/x"},
                                         "registry": "127.0.0.1:5000/lmi/x", "tags": ["sha-{git_sha}"]})
    assert [t.describe() for t in targets] == ["ecr 123456789012/us-west-2/lmi/x", "127.0.0.1:5000/lmi/x"]
    assert tags == ["sha-{git_sha}"]
    assert targets_from_recipe(None) == ([], [])


@pytest.mark.parametrize("section,fragment", [
    ({"ecr": {"account": "12", "region": "us-west-2", "repository": "x/y"}}, "12 digits"),
    ({"ecr": {"account": "123456789012", "region": "us-west-2", "repository": "Bad_Name"}}, "lower-case"),
    ({"registry": "no-host-here"}, "HOST"),
    ({"registry": "h:5000/repo:tag"}, "tag"),
    ({"bogus": 1}, "unknown key"),
])
def test_recipe_publish_errors(section, fragment):
    with pytest.raises(BuilderError, match=fragment):
        targets_from_recipe(section)


def test_target_needs_exactly_one():
    with pytest.raises(ValidationError):
        PublishTarget()


def test_deploy_hints_from_recipe_label_and_env():
    recipe = {"serving": {"properties": {"option.model_loading_timeout": "1800"}}}  # resolve.to_json()
    h = deploy_hints({labels.RECIPE_JSON: json.dumps(recipe), labels.TARGET_INSTANCE: "ml.g5.2xlarge"}, [])
    assert h.ContainerStartupHealthCheckTimeoutInSeconds == 1800 and h.instance_type == "ml.g5.2xlarge"
    h = deploy_hints({}, ["PATH=/bin", "MODEL_LOADING_TIMEOUT=1200"])
    assert h.ContainerStartupHealthCheckTimeoutInSeconds == 1200 and "env" in h.model_loading_timeout_source
    h = deploy_hints({labels.RECIPE_JSON: json.dumps({"serving": {"properties": {"option.model_loading_timeout": "7200"}}})}, [])
    assert h.ContainerStartupHealthCheckTimeoutInSeconds == 3600 and h.notes
    assert deploy_hints({}, []).ContainerStartupHealthCheckTimeoutInSeconds is None


@pytest.mark.parametrize("ecr,key,fragment", [
    ({"account": "12", "region": "us-west-2", "repository": "x/y"}, "account", "ECR account must be 12 digits"),
    ({"account": "123456789012", "region": "uswest2", "repository": "x/y"}, "region", "not an AWS region name"),
    ({"account": "123456789012", "region": "us-west-2", "repository": "Bad_Name"}, "repository", "lower-case"),
])
def test_recipe_ecr_is_checked_at_load_as_publish_checks_it(tmp_path, ecr, key, fragment):
    """One ECR schema: a recipe's publish.ecr gets the publish target's checks (the region too) as a
    located error at validate, not first when the build pushes."""
    from builder.publish.models import EcrTarget
    from builder.recipe import load_recipe
    from tests.support.model_fixtures import recipe_data, write_recipe

    data = {**recipe_data({"id": "org/m", "revision": "0" * 40}), "publish": {"ecr": ecr}}
    path = write_recipe(tmp_path, data)
    [d] = load_recipe(path).diagnostics
    assert d.rule == "invalid-value" and d.path == ("publish", "ecr", key) and fragment in d.message
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if text.strip().startswith(f"{key}:"))
    assert d.location.line == line
    with pytest.raises(ValidationError, match=fragment):
        EcrTarget(**ecr)
