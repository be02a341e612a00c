"""What an assembler is asked for and what it answers: one request type, one result type.

Both assemblers (``docker``: ``builder.image.bake``; ``registry``: ``builder.registry.assemble``) take
an ``AssemblyRequest`` and return an ``AssembledImage``. Fields only one of them reads are said so; the
result's assembler-specific fields are None/empty from the other, so the build record's ``image``
section (``AssembledImage.model_dump``) keeps the keys each assembler wrote before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from builder.assembly.identity import ImageIdentity
from builder.credentials import Credentials
from builder.lmi.resolve import Resolved

AssemblerName = Literal["docker", "registry"]
ManifestFormat = Literal["docker", "oci"]  # builder.registry.manifest
Compression = Literal["gzip", "none"]  # builder.registry.layerblobs
LayerKind = Literal["base", "weights", "compiled", "config"]


class AssemblyRequest(BaseModel):
    """Everything that goes into one model image (frozen: an assembler never changes its inputs)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    resolved: Resolved
    model_dir: Path | None = None  # what is baked under /opt/ml/model: the compiled repository or the weights
    model_digest: str | None = None  # the fetch stage's digest of the model (a label)
    extra_files: dict[str, Path] = Field(default_factory=dict)  # handler files, beside serving.properties
    # docker: a local reference or image id, or a registry reference (default: resolved.base_image);
    # registry: a registry reference HOST/REPO[:TAG|@DIGEST]
    base_image: str | None = None
    compile_labels: dict[str, Any] | None = None  # toolchain versions etc. for the compile label
    compile_key: str | None = None  # the compiled artifacts' cache key: part of the image identity
    recipe_file: Path | None = None  # for org.opencontainers.image.{created,revision,source} from git
    created: str | None = None  # RFC 3339; overrides the derived value (docs/image.md)
    cache_dir: Path | None = None
    split_threshold: int = 256 << 20  # files at least this big get a layer of their own (layers.plan_layers)
    progress: bool = True  # progress bars for the context upload / layer uploads (on a terminal)
    # docker assembler
    tags: tuple[str, ...] = ()  # extra local tags besides <name>:<image-digest-12> (check_tags)
    no_cache: bool = False  # rebuild every step, the artifacts image included
    pull: bool = False  # refresh a tagged base from its registry before pinning it
    allow_unpinned_base: bool = False  # build FROM the local image id of a tag that has no digest
    docker: Any = Field(default=None, exclude=True, repr=False)  # an SDK client (default builder.engine's)
    # registry assembler
    registry: str | None = None  # HOST[:PORT]/REPO the image is assembled in
    manifest_format: ManifestFormat = "docker"
    compression: Compression = "gzip"
    platform: str = "linux/amd64"  # picked from a multi-platform base
    workers: int | None = None  # layers uploaded at once (builder.registry.transfer.upload_workers)
    # for the target and for a base in another registry (builder.credentials.credentials_for); never dumped
    credentials: Credentials | None = Field(default=None, exclude=True, repr=False)
    base_credentials: Credentials | None = Field(default=None, exclude=True, repr=False)


class LayerInfo(BaseModel):
    """One layer of the assembled image. ``digest``: the engine's diff_id (docker) or the blob digest in
    the registry (registry: compressed); the base's layers are listed by the registry assembler only."""

    model_config = ConfigDict(frozen=True)

    name: str
    kind: LayerKind
    digest: str | None = None
    size: int
    files: int = 0
    content_digest: str | None = None  # docker: our digest over names, modes and file digests
    uploaded: bool = False  # registry: sent in this build
    mounted: bool = False  # registry: mounted from another repository of the registry
    skipped: bool = False  # registry: the registry had it already
    bytes_uploaded: int = 0
    resumed: int = 0  # times an interrupted upload went on where the registry stood
    restarted: int = 0  # times it began again in a new session


class BaseInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    reference: str  # as given (docker: the local name or reference; registry: the registry reference)
    digest: str  # the pinned base: registry manifest digest, or the local image id (docker, pin image-id)
    pin: str = ""  # docker: repo-digest | image-id (builder.image.base); registry: digest | tag
    platform: str | None = None  # registry: the platform picked


class AssembledImage(BaseModel):
    """The one result of an assembler (the build record's ``image`` section)."""

    model_config = ConfigDict(frozen=True)

    assembler: AssemblerName
    reference: str  # what smoke and publish use: the local image id (docker), HOST/REPO@sha256:... (registry)
    image_id: str  # the engine's id: docker image id; registry: the config digest (the id after a pull)
    identity: ImageIdentity  # the tag digest and its component digests (builder.assembly.identity)
    tags: list[str] = Field(default_factory=list)  # local tags (docker); a registry image is tagged at publish
    base: BaseInfo
    layers: list[LayerInfo]
    bytes_sent: int  # build-context bytes sent to the engine (docker), bytes uploaded (registry)
    reused: bool = False  # nothing was built (docker: the tag named an image of these inputs) or uploaded
    seconds: float
    # docker assembler
    artifacts_ref: str | None = None  # the intermediate weights image lmi-build/artifacts:<inputs12>
    artifacts_image_reused: bool = False
    cache_hits: list[str] = Field(default_factory=list)
    # registry assembler
    digest: str | None = None  # of the manifest
    media_type: str | None = None  # of the manifest (Docker v2 schema 2 or OCI)
    repository: str | None = None  # HOST/REPO
    inputs: dict[str, Any] = Field(default_factory=dict)  # everything the manifest digest depends on
