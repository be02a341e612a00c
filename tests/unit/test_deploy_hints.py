"""The SageMaker health-check hint reads the loading timeout from the label the bake really writes
(resolve's to_json: the rendered properties), not only from hand-made labels."""

from __future__ import annotations

import json
from pathlib import Path

from builder import labels
from builder.lmi.resolve import resolve
from builder.publish.hints import deploy_hints
from builder.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[2]


def test_hint_from_the_real_recipe_label_of_the_quickstart() -> None:
    resolved = resolve(load_recipe(ROOT / "recipes/examples/quickstart.yaml").recipe)
    hints = deploy_hints({labels.RECIPE_JSON: json.dumps(resolved.to_json())}, [])
    assert hints.model_loading_timeout_s == 60  # the quickstart's option.model_loading_timeout
    assert hints.ContainerStartupHealthCheckTimeoutInSeconds == 60
    assert "rendered" in (hints.model_loading_timeout_source or "")
