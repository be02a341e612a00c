"""Inputs and result of the bake stage (pydantic at the boundary with the pipeline)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from builder.image.identity import ImageIdentity


class BakeOptions(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    base_image: str | None = None  # --base-image / container.image; default: Resolved.base_image
    allow_unpinned_base: bool = False  # --allow-unpinned-base: build FROM the local image id of a tag
    no_cache: bool = False  # rebuild every step, the artifacts image included
    pull: bool = False  # refresh a tagged base from its registry before pinning it
    tags: list[str] = Field(default_factory=list)  # extra tags besides <name>:<image-digest-12> (identity.py)
    cache_dir: Path | None = None
    docker: Any = None  # a docker.DockerClient; default docker.from_env()
    compile_labels: dict[str, Any] | None = None  # toolchain versions etc. for the compile label
    compile_key: str | None = None  # the compiled artifacts' cache key: part of the image identity
    recipe_file: Path | None = None  # for org.opencontainers.image.{created,revision,source} from git
    created: str | None = None  # RFC 3339; overrides the derived value (see docs/image.md)
    progress: bool = True  # rich progress bar for the context upload


class LayerInfo(BaseModel):
    name: str
    kind: Literal["weights", "compiled", "config"]
    digest: str | None = None  # the layer's diff_id in the engine (sha256 of the uncompressed tar)
    content_digest: str | None = None  # our digest over names, modes and file digests
    size: int
    files: int = 0


class BakeResult(BaseModel):
    image_id: str
    tags: list[str]
    base_ref: str
    base_digest: str
    base_pin: str = ""
    artifacts_ref: str | None = None
    layers: list[LayerInfo]
    bytes_sent: int
    artifacts_image_reused: bool
    reused: bool = False  # the tag already named an image of these inputs: that image, nothing built
    identity: ImageIdentity | None = None  # the tag digest and its component digests
    cache_hits: list[str] = Field(default_factory=list)
    seconds: float
