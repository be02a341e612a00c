"""Import an existing LMI configuration (``serving.properties`` and/or an env file) as a recipe.

Precedence follows the configuration guide: the file wins over env where both set a key
(reference/lmi-runtime.md §10.1, §10.5). Env names are reversed with LMI's own case rule (§10.2).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder.catalog import load_catalog
from builder.lmi.keys import known_keys
from builder.recipe.model import NAME_RE, Serving

SNAKE_CASE = re.compile(r"^[A-Z_\d]+$")  # ModelInfo.SNAKE_CASE (§10.2)
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
_SERVER_FIELDS = {(f.alias or n): n for n, f in Serving.model_fields.items() if n not in ("option", "pass_through")}


@dataclass
class Imported:
    data: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def env_to_properties(env: dict[str, str]) -> dict[str, str]:
    """LMI's reverse translation of env names (§10.1, §10.2); empty values are skipped as LMI does."""
    props: dict[str, str] = {}
    for name, value in env.items():
        if value == "":
            continue
        if name == "SERVING_LOAD_MODELS":
            m = re.match(r"^[^:]*::([A-Za-z]+)=", value)
            if m:
                props["engine"] = m.group(1)
        elif name.startswith("OPTION_"):
            rest = name[len("OPTION_"):]
            key = rest.lower() if SNAKE_CASE.match(rest) else rest
            if key == "entrypoint":
                key = "entryPoint"
            props["engine" if key == "engine" else f"option.{key}"] = value
        elif name.startswith("SERVING_"):
            props[name[len("SERVING_"):].lower()] = value
        elif name == "HF_MODEL_ID":
            props["option.model_id"] = value
        elif name == "HF_REVISION":
            props["option.revision"] = value
        elif name == "HF_MODEL_TRUST_REMOTE_CODE":
            props["option.trust_remote_code"] = value
    return props


def parse_env_file(text: str) -> dict[str, str]:
    """docker --env-file syntax: KEY=VALUE lines, '#' comments, no quoting."""
    env: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        k, v = line.split("=", 1)
        if k.startswith("export "):
            k = k[len("export "):]
        env[k.strip()] = v
    return env


def typed(value: str) -> Any:
    low = value.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if re.fullmatch(r"-?\d+", value.strip()):
        return int(value.strip())
    return value


def build_recipe(props: dict[str, str], *, family: str, version: str, instance_type: str | None, name: str | None,
                 model_path: str | None) -> Imported:
    catalog = load_catalog()
    notes: list[str] = []
    props = dict(props)
    model: dict[str, Any] = {}
    model_id = props.pop("option.model_id", None)
    revision = props.pop("option.revision", None)
    trust = props.pop("option.trust_remote_code", None)
    props.pop("option.model_dir", None)
    if model_id and model_id.startswith("s3://"):
        model["s3"] = model_id
    elif model_id and not model_id.startswith("/"):
        model["id"] = model_id
        if revision:
            model["revision"] = revision
        model["trust_remote_code"] = typed(trust) if trust is not None else False
        if trust is None:
            notes.append("trust_remote_code was not set; wrote model.trust_remote_code: false (LMI's default)")
        if not revision or not SHA_RE.match(revision):
            notes.append("the Hub model has no full commit revision; pin model.revision before building")
    else:
        model["path"] = model_path or "."
        notes.append(f"no Hub/S3 model_id; model.path is '{model['path']}' (the folder of the weights, "
                     "relative to the recipe)")
    release = catalog.release(family, version)
    serving: dict[str, Any] = {}
    option: dict[str, Any] = {}
    for key, value in props.items():
        if key.startswith("option."):
            option[key[len("option."):]] = typed(value)
        elif key in _SERVER_FIELDS:
            serving[key] = value if key in ("engine", "load_on_devices", "translatorFactory") else typed(value)
        else:
            notes.append(f"dropped '{key}': not a per-model serving.properties key (reference §4)")
    if release is not None:
        rb = str(option.get("rolling_batch", release.default_rolling_batch)).lower()
        known = known_keys(release, rb)
        unknown = sorted(k for k in option if k not in known and k != "engine")
        if unknown:
            serving["pass_through"] = unknown
            described = []
            for k in unknown:
                close = difflib.get_close_matches(k, sorted(known), n=1, cutoff=0.75)
                described.append(f"{k} (did you mean '{close[0]}'?)" if close else k)
            notes.append(f"not in the {family} {version} key catalogue, kept as pass_through (check the "
                         f"spelling): {', '.join(described)}")
    if option:
        serving["option"] = option
    serving = dict(sorted(serving.items(), key=lambda kv: (kv[0] != "engine", kv[0] in ("option", "pass_through"))))
    if instance_type is None:
        instance_type = _default_instance(family, option)
        notes.append(f"no --instance-type; wrote target.instance_type: {instance_type}")
    if not name:
        base = str(model.get("id") or model.get("s3") or "imported").rstrip("/").split("/")[-1]
        name = re.sub(r"[^a-z0-9._-]+", "-", base.lower()).strip("-._") or "imported"
    if not re.match(NAME_RE, name):
        name = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._")[:63] or "imported"
    data = {"name": name, "model": model, "container": {"family": family, "version": version},
            "target": {"instance_type": instance_type}, "serving": serving}
    return Imported(data, notes)


def _default_instance(family: str, option: dict[str, Any]) -> str:
    tp = option.get("tensor_parallel_degree")
    need = tp if isinstance(tp, int) and tp > 0 else 1
    pool = {"lmi": "g5", "tensorrt-llm": "g5", "neuronx": "inf2"}.get(family, "m5")
    catalog = load_catalog()
    fits = sorted((i for i in catalog.instances.values() if i.family == pool and i.devices >= need),
                  key=lambda i: (i.devices, i.host_memory_gib))
    return "ml." + (fits[0].name if fits else f"{pool}.xlarge")


def read_sources(properties: Path | None, env_file: Path | None) -> dict[str, str]:
    """File wins over env (§10.1 putIfAbsent)."""
    from builder.lmi.properties import loads

    merged: dict[str, str] = {}
    if env_file is not None:
        merged.update(env_to_properties(parse_env_file(env_file.read_text(encoding="utf-8"))))
    if properties is not None:
        merged.update(loads(properties.read_text(encoding="utf-8")))
    return merged
