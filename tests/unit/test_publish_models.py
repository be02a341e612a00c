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
