"""Label keys the builder writes on images and containers (one reverse-DNS namespace of our own;
``org.opencontainers.*`` is reserved for the OCI keys, containers-and-registries.md §8).

Images are self-describing: ``smoke`` and ``publish`` given only an image read what they need here.
"""

from __future__ import annotations

NS = "dev.lmi-builder"

MANAGED = f"{NS}.managed"  # "true" on every image/container the tool creates
BUILDER_VERSION = f"{NS}.builder.version"
RECIPE_NAME = f"{NS}.recipe.name"
RECIPE_HASH = f"{NS}.recipe.hash"  # full sha256 hex of the canonical resolved recipe
RECIPE_JSON = f"{NS}.recipe"  # the fully resolved recipe, JSON
LMI_VERSION = f"{NS}.lmi.version"
LMI_FAMILY = f"{NS}.lmi.family"
TARGET_INSTANCE = f"{NS}.target.instance-type"
TARGET_ARCH = f"{NS}.target.arch"  # e.g. sm_86, inf2, trn1, cpu
MODEL_ID = f"{NS}.model.id"
MODEL_REVISION = f"{NS}.model.revision"
MODEL_DIGEST = f"{NS}.model.digest"  # content digest of the model artifacts
SMOKE = f"{NS}.smoke"  # JSON: prompt, max_new_tokens, deadlines, accelerators, ...
COMPILE = f"{NS}.compile"  # JSON: toolchain versions, duration, cache key (when compiled)
DEV_RUNTIME = f"{NS}.dev-runtime"  # "true": built on the dev-cpu development runtime
DJL_PYTHON_VERSION = f"{NS}.djl-python.version"
ROLE = f"{NS}.role"  # "model" | "artifacts" | "runtime" | "rootfs" | "smoke" | "compile" | "serve"
SMOKE_RUN = f"{NS}.smoke.run"  # per-run id on smoke containers
INPUTS_DIGEST = f"{NS}.inputs.digest"  # cache key of runtime/rootfs/artifact images; a model image's tag digest
MODELS = f"{NS}.models"  # multi-model images: JSON list of the model names (serve, predict and smoke read it)
INPUTS_JSON = f"{NS}.inputs"  # model images: JSON of the component digests behind INPUTS_DIGEST
