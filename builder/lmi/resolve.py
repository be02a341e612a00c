"""Resolve a recipe against the catalog: every value LMI would otherwise default, made explicit.

The result is what gets rendered (``serving.properties``, ``serving.env``, ``resolved.json``) and
what the recipe hash covers. Rules that *reject* configurations live in ``builder.lmi.rules``; this
module assumes a valid recipe and only fills in (reference/lmi-runtime.md §7, §18).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict

from builder import __version__
from builder.catalog import Catalog, Instance, Release, load_catalog
from builder.catalog.facts import load_facts
from builder.diagnostics import BuilderError
from builder.lmi.properties import format_value
from builder.recipe.model import Recipe

MODEL_DIR = "/opt/ml/model"  # §13: default model_store; serving.properties sits beside the artifacts
DEFAULT_REGION = "us-east-1"


class Resolved(BaseModel):
    """Made once per build by ``resolve`` and never changed: a stage that needs other properties (compile's
    overrides) gets a new value from ``with_properties``."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    recipe: Recipe
    release: Release
    instance: Instance
    region: str
    base_image: str | None  # None for dev-cpu: the locally built runtime is resolved at build time
    properties: dict[str, str]  # ordered as written to serving.properties
    tensor_parallel_degree: int
    workers: int
    rolling_batch: str
    engine: str
    entry_point: str | None
    recipe_hash: str

    # no ``tag`` here: the image tag digests the model, handler files and base too (builder.assembly.identity)

    def env(self) -> dict[str, str]:
        return env_form(self.properties)

    def with_properties(self, overrides: dict[str, str]) -> Resolved:
        """A new value whose serving.properties carry ``overrides`` (compile's: load the compiled artifacts
        instead of compiling again, §11.5). ``recipe_hash`` stays the recipe's: it names what the user wrote
        and finds the images built from it; the image's own digest (builder.assembly.identity) covers the
        properties baked."""
        if not overrides:
            return self
        return self.model_copy(update={"properties": {**self.properties, **overrides}})

    def to_json(self) -> dict[str, Any]:
        """The fully resolved recipe (``resolved.json`` and the image label)."""
        return {
            "builder_version": __version__,
            "recipe_hash": self.recipe_hash,
            "recipe": self.recipe.model_dump(mode="json", by_alias=True),
            "container": {
                "family": self.release.family, "version": self.release.version,
                "djl_version": self.release.djl_version, "tag": self.release.tag,
                "tag_evidence": self.release.tag_evidence, "base_image": self.base_image, "region": self.region,
                "cuda": self.release.cuda, "libraries": dict(self.release.libraries),
                "serving_features": list(self.release.serving_features),
            },
            "target": {
                "instance_type": self.instance.name, "accelerator": self.instance.accelerator,
                "kind": self.instance.kind, "devices": self.instance.devices, "arch": self.instance.arch,
                "device_memory_gib": self.instance.memory_gib, "host_memory_gib": self.instance.host_memory_gib,
            },
            "serving": {
                "engine": self.engine, "rolling_batch": self.rolling_batch, "entry_point": self.entry_point,
                "tensor_parallel_degree": self.tensor_parallel_degree, "workers": self.workers,
                "properties": dict(self.properties),
            },
        }


def resolve(recipe: Recipe, catalog: Catalog | None = None) -> Resolved:
    catalog = catalog or load_catalog()
    release = catalog.release(recipe.container.family, recipe.container.version)
    instance = catalog.instance(recipe.target.instance_type)
    if release is None or instance is None:  # validate() reports these with locations first
        raise BuilderError(f"unknown container release or instance type "
                           f"({recipe.container.family} {recipe.container.version}, {recipe.target.instance_type})",
                           stage="resolve")
    region = recipe.target.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    opts: dict[str, Any] = dict(recipe.serving.option)

    rolling_batch = rolling_batch_of(opts, release.default_rolling_batch)
    engine = engine_of(recipe.serving.engine, catalog, rolling_batch, release.default_engine)

    tp = _tensor_parallel(opts.get("tensor_parallel_degree", release.default_tensor_parallel_degree), instance)
    pp = int(opts.get("pipeline_parallel_degree", 1)) if str(opts.get("pipeline_parallel_degree", 1)).isdigit() else 1
    workers = max(1, instance.devices // max(1, tp * pp)) if instance.kind != "cpu" else 1

    entry_point = pick_entry_point(recipe.model.entry_point, release, catalog, rolling_batch, opts)

    props: dict[str, str] = {"engine": engine}
    server = recipe.serving.server_keys()
    server.pop("engine", None)
    server.setdefault("job_queue_size", 1000)  # §4 default, pinned (§18)
    for key in sorted(server):
        props[key] = format_value(server[key])

    option: dict[str, Any] = {}
    if not recipe.model.bake:
        option["model_id"] = recipe.model.id or recipe.model.s3 or MODEL_DIR
        if recipe.model.id and recipe.model.revision:
            option["revision"] = recipe.model.revision
    if recipe.model.trust_remote_code is not None:
        option["trust_remote_code"] = recipe.model.trust_remote_code
    option.update(opts)
    option["rolling_batch"] = rolling_batch
    if entry_point:
        option["entryPoint"] = entry_point
    option["tensor_parallel_degree"] = tp
    if rolling_batch not in ("disable",) or "max_rolling_batch_size" in opts:
        option["max_rolling_batch_size"] = opts.get("max_rolling_batch_size",
                                                    release.max_rolling_batch_default(rolling_batch))
    option.setdefault("model_loading_timeout", release.model_loading_timeout)
    option.setdefault("predict_timeout", release.predict_timeout)
    for key in sorted(option):
        props[f"option.{key}"] = format_value(option[key])

    base_image = _base_image(recipe, release, catalog, region)
    resolved = Resolved(recipe=recipe, release=release, instance=instance, region=region, base_image=base_image,
                        properties=props, tensor_parallel_degree=tp, workers=workers, rolling_batch=rolling_batch,
                        engine=engine, entry_point=entry_point, recipe_hash="")
    return resolved.model_copy(update={"recipe_hash": recipe_hash(resolved)})


def rolling_batch_of(opts: dict[str, Any], default: str) -> str:
    """option.rolling_batch as the rules judge it and the render writes it (resolve and the rules call this)."""
    return str(opts.get("rolling_batch", default)).strip().lower()


def engine_of(explicit: str | None, catalog: Catalog, rolling_batch: str, default: str | None) -> str | None:
    """The engine the render writes: the recipe's, else the backend's, else the release's default."""
    backend = catalog.backends.get(rolling_batch)
    return explicit or (backend.engine if backend and backend.engine else default)


def _tensor_parallel(value: Any, instance: Instance) -> int:
    if str(value).lower() == "max":
        return instance.devices if instance.kind != "cpu" else 1  # §5: max -> GPUs or NeuronCores
    return int(value)


def pick_entry_point(custom: str | None, release: Release, catalog: Catalog, rolling_batch: str,
                     opts: dict[str, Any]) -> str | None:
    """The handler LMI would pick (§5; PyModel.java of the release, see the profiles in containers.yaml),
    pinned (§18). The one place that decides it: resolve, the rules and import call this. ``custom`` is the
    recipe's model.entry_point (a handler file of the user's)."""
    if custom:
        return PurePosixPath(custom).name  # baked beside serving.properties
    if "entryPoint" in opts:
        return str(opts["entryPoint"])
    handler = load_facts().of(release.family).handler
    if handler:
        return handler  # neuronx v0.29.0: Neuron devices get the TNX handler (§5; builder/catalog/families.yaml)
    if release.forced_entry_point:
        return release.forced_entry_point  # v15: the vLLM image runs the async service whatever rolling_batch says
    async_mode = str(opts.get("async_mode", "")).lower() == "true"
    if async_mode or (rolling_batch == "auto" and release.auto_is_async):
        return release.async_entry_point or release.default_entry_point or "djl_python.huggingface"
    if rolling_batch == "auto":
        return release.default_entry_point or "djl_python.huggingface"
    if rolling_batch == "trtllm" or release.family == "tensorrt-llm":
        return release.default_entry_point
    backend = catalog.backends.get(rolling_batch)
    if backend and backend.entry_point:
        return backend.entry_point  # vllm/lmi-dist/scheduler: huggingface; deepspeed: djl_python.deepspeed
    return "djl_python.huggingface"  # rolling_batch=disable: HF accelerate (§8.5); also cpu families


def _base_image(recipe: Recipe, release: Release, catalog: Catalog, region: str) -> str | None:
    if recipe.container.image:
        return recipe.container.image
    family = catalog.families[release.family]
    if family.registry == "local":
        return None
    if family.registry:
        return f"{family.registry}/{family.repository}:{release.tag}"
    account = catalog.dlc_account(region)
    if account is None:
        return None
    return f"{catalog.registry_host(account, region)}/{family.repository}:{release.tag}"


def env_name(key: str) -> str:
    """The environment variable LMI reads a serving.properties key from (reference §10.1-10.2).

    §10.2: LMI lower-cases an ``OPTION_`` suffix only when it is all upper case, and renames
    ``entrypoint`` to ``entryPoint``; so a camelCase option other than entryPoint keeps its spelling
    (``OPTION_someKey``) to survive the round trip. '.' and '-' both become '_', so two keys can
    share one variable (rule ``env-name-collision``).
    """
    if key.startswith("option."):
        name = key[len("option."):]
        if name != "entryPoint" and name != name.lower():
            return "OPTION_" + name.replace(".", "_").replace("-", "_")
        return "OPTION_" + name.upper().replace(".", "_").replace("-", "_")
    return "SERVING_" + key.upper().replace(".", "_").replace("-", "_")


def env_form(properties: dict[str, str]) -> dict[str, str]:
    """The configuration guide's translation: engine=X -> SERVING_LOAD_MODELS=test::X=/opt/ml/model,
    option.<k> -> OPTION_<K>, other <k> -> SERVING_<K> (reference §10.1-10.2; see ``env_name``)."""
    env: dict[str, str] = {}
    for key, value in properties.items():
        if key == "engine":
            env["SERVING_LOAD_MODELS"] = f"test::{value}={MODEL_DIR}"
        else:
            name = env_name(key)
            if name in env:  # validation refuses this (env-name-collision); never drop a value quietly
                raise BuilderError(f"two serving keys map to the environment variable {name}",
                                   stage="render", hint="rename one of the option keys")
            env[name] = value
    return env


def recipe_hash(resolved: Resolved) -> str:
    """sha256 of everything that determines the image, in canonical JSON (publish targets excluded)."""
    data = resolved.recipe.model_dump(mode="json", by_alias=True, exclude={"publish", "description"})
    payload = {"recipe": data, "release": resolved.release.model_dump(mode="json"),
               "instance": resolved.instance.name, "base_image": resolved.base_image,
               "properties": resolved.properties}
    canon = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canon.encode()).hexdigest()
