"""SageMaker deployment hints that must travel with a published image.

``ContainerStartupHealthCheckTimeoutInSeconds`` must be >= the model loading timeout, or SageMaker
kills a container that is still loading (reference/lmi-runtime.md §17.6; the GPU images default
``MODEL_LOADING_TIMEOUT=1200``, §12).
"""

from __future__ import annotations

import json

from builder import labels
from builder.publish.models import DeployHints

SAGEMAKER_MAX_HEALTH_CHECK_S = 3600
SAGEMAKER_MIN_HEALTH_CHECK_S = 60


def _int(value) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def deploy_hints(image_labels: dict[str, str], image_env: list[str]) -> DeployHints:
    hints = DeployHints(instance_type=image_labels.get(labels.TARGET_INSTANCE) or None)
    timeout, source = None, None
    raw = image_labels.get(labels.RECIPE_JSON)
    if raw:
        try:
            recipe = json.loads(raw)
            # the label is resolve's to_json(): the rendered properties (every default pinned)
            properties = (recipe.get("serving") or {}).get("properties") or {}
            timeout = _int(properties.get("option.model_loading_timeout"))
            source = "the rendered option.model_loading_timeout" if timeout else None
            models = recipe.get("models")  # a multi-model image (builder/multi/image.py): serving per model
            if timeout is None and isinstance(models, dict) and models:
                each = [_int(((m or {}).get("properties") or {}).get("option.model_loading_timeout"))
                        for m in models.values()]
                if all(each):  # the server answers /ping once every model has loaded: the sum bounds it
                    timeout = sum(each)
                    source = f"sum of the {len(each)} models' option.model_loading_timeout"
        except (ValueError, AttributeError):
            hints.notes.append(f"label {labels.RECIPE_JSON} is not valid JSON; ignored")
    if timeout is None:
        env = dict(e.split("=", 1) for e in image_env if "=" in e)
        for key in ("OPTION_MODEL_LOADING_TIMEOUT", "MODEL_LOADING_TIMEOUT"):
            if _int(env.get(key)):
                timeout, source = _int(env[key]), f"image env {key}"
                break
    if timeout is None:
        hints.notes.append("no model loading timeout in the recipe or image env; "
                           "set ContainerStartupHealthCheckTimeoutInSeconds >= the server's load time")
        return hints
    hints.model_loading_timeout_s = timeout
    hints.model_loading_timeout_source = source
    value = max(timeout, SAGEMAKER_MIN_HEALTH_CHECK_S)
    if value > SAGEMAKER_MAX_HEALTH_CHECK_S:
        hints.notes.append(f"model loading timeout {timeout}s exceeds SageMaker's maximum health-check "
                           f"timeout ({SAGEMAKER_MAX_HEALTH_CHECK_S}s); loading must finish sooner")
        value = SAGEMAKER_MAX_HEALTH_CHECK_S
    hints.ContainerStartupHealthCheckTimeoutInSeconds = value
    return hints
