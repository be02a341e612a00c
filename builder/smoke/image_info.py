"""What the smoke stage needs to know about an image, read from its labels (images are
self-describing, builder/labels.py): smoke settings, target kind and device count, LMI family."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from builder import labels as L
from builder.diagnostics import BuilderError
from builder.smoke.models import SmokeSettings, TargetKind

STAGE = "smoke"


class ImageInfo(BaseModel):
    ref: str
    image_id: str
    labels: dict[str, str] = Field(default_factory=dict)
    settings: SmokeSettings = Field(default_factory=SmokeSettings)
    target_kind: TargetKind | None = None  # None: the image does not say (not built by lmi-build)
    devices: int | None = None
    family: str | None = None
    models: list[str] = Field(default_factory=list)  # a multi-model image's model names ([]: single-model)
    exposed_port: int = 8080
    warnings: list[str] = Field(default_factory=list)


def _json_label(labels: dict[str, str], key: str, warnings: list[str]) -> dict[str, Any]:
    raw = labels.get(key)
    if not raw:
        return {}
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        warnings.append(f"label {key} is not valid JSON ({exc}); ignoring it")
        return {}
    return doc if isinstance(doc, dict) else {}


def parse_labels(ref: str, image_id: str, labels: dict[str, str] | None,
                 exposed_ports: dict[str, Any] | None = None) -> ImageInfo:
    labels = dict(labels or {})
    warnings: list[str] = []
    smoke_doc = _json_label(labels, L.SMOKE, warnings)
    try:
        settings = SmokeSettings.model_validate(smoke_doc)
    except ValidationError as exc:
        raise BuilderError(f"image {ref}: label {L.SMOKE} does not describe a smoke test: "
                           f"{exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}", stage=STAGE) from None
    recipe = _json_label(labels, L.RECIPE_JSON, warnings)
    target = recipe.get("target") if isinstance(recipe.get("target"), dict) else {}
    kind = target.get("kind")
    if kind not in ("gpu", "neuron", "cpu"):
        kind = None
    devices = target.get("devices")
    if isinstance(devices, list):
        devices = len(devices)
    devices = devices if isinstance(devices, int) and not isinstance(devices, bool) else None
    if not settings.model_loading_timeout:  # fall back to the resolved serving properties
        serving = recipe.get("serving") if isinstance(recipe.get("serving"), dict) else {}
        props = serving.get("properties") if isinstance(serving.get("properties"), dict) else {}
        value = props.get("option.model_loading_timeout")
        if isinstance(value, (int, str)) and str(value).isdigit() and int(value) > 0:
            settings = settings.model_copy(update={"model_loading_timeout": int(value)})
    reason = _stream_not_applicable(recipe)
    if reason and not settings.stream_not_applicable:
        settings = settings.model_copy(update={"stream_not_applicable": reason})
    family = labels.get(L.LMI_FAMILY) or ((recipe.get("container") or {}).get("family")
                                          if isinstance(recipe.get("container"), dict) else None)
    models = _models(labels, warnings)
    port = 8080
    for spec in (exposed_ports or {}):
        num, _, proto = str(spec).partition("/")
        if num.isdigit() and proto in ("", "tcp"):
            port = int(num)
            break
    return ImageInfo(ref=ref, image_id=image_id, labels=labels, settings=settings, target_kind=kind,
                     devices=devices, family=family, models=models, exposed_port=port, warnings=warnings)


def _models(labels: dict[str, str], warnings: list[str]) -> list[str]:
    raw = labels.get(L.MODELS)
    if not raw:
        return []
    try:
        names = json.loads(raw)
    except json.JSONDecodeError as exc:
        warnings.append(f"label {L.MODELS} is not valid JSON ({exc}); ignoring it")
        return []
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


def _stream_not_applicable(recipe: dict[str, Any]) -> str | None:
    """LMI streams when rolling batch is on, or when ``option.enable_streaming`` is set (§6); a
    built-in handler with rolling batch disabled answers ``"stream": true`` with plain JSON. A custom
    ``model.py`` decides for itself, so it is always asked to stream."""
    serving = recipe.get("serving") if isinstance(recipe.get("serving"), dict) else {}
    props = serving.get("properties") if isinstance(serving.get("properties"), dict) else {}
    rolling = str(props.get("option.rolling_batch", "")).lower()
    entry = str(props.get("option.entryPoint", ""))
    streaming = str(props.get("option.enable_streaming", "false")).lower()
    formatter = str(props.get("option.output_formatter", "")).lower()
    if rolling == "disable" and entry.startswith("djl_python.") and streaming in ("false", "") \
            and "jsonlines" not in formatter and "sse" not in formatter:
        return (f"{entry} with rolling_batch=disable does not stream unless option.enable_streaming is set "
                "(reference/lmi-runtime.md §6)")
    return None


def describe(ref: str, image_id: str, resolved: Any) -> ImageInfo:
    """What ``parse_labels`` reads from the labels the bake writes, taken from the build's own resolved value:
    the build's smoke stage tests the image it just made without reading its data back from labels. A test
    holds the two equal (tests/unit/test_image_info_models.py)."""
    from builder.assembly.labels import smoke_document

    settings = SmokeSettings.model_validate(smoke_document(resolved))  # carries option.model_loading_timeout
    reason = _stream_not_applicable({"serving": {"properties": dict(resolved.properties)}})
    if reason and not settings.stream_not_applicable:
        settings = settings.model_copy(update={"stream_not_applicable": reason})
    return ImageInfo(ref=ref, image_id=image_id, settings=settings, target_kind=resolved.instance.kind,
                     devices=resolved.instance.devices, family=resolved.release.family)


def inspect_image(client, ref: str) -> ImageInfo:
    """Inspect ``ref`` on the local engine; a located error when there is no such image."""
    import docker.errors

    try:
        attrs = client.api.inspect_image(ref)
    except docker.errors.ImageNotFound:
        raise BuilderError(f"no image {ref!r} on the local Docker engine", stage=STAGE,
                           hint="build it first (lmi-build build RECIPE) or check the tag with 'docker images'") \
            from None
    except docker.errors.APIError as exc:
        raise BuilderError(f"cannot inspect image {ref!r}: {exc.explanation or exc}", stage=STAGE) from None
    config = attrs.get("Config") or {}
    return parse_labels(ref, attrs["Id"], config.get("Labels") or {}, config.get("ExposedPorts") or {})
