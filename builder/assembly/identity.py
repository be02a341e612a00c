"""The image's identity: one digest of everything that determines a model image, and the tags made of it.

The local tag ``<name>:<digest12>`` and the default publish tag ``<name>-<digest12>`` both come from
``ImageIdentity``, so a tag names one set of inputs: editing the handler, a ``model.files`` entry or
the weights, recompiling, or a new base makes a new tag, and the old image keeps its own (docs/image.md,
"Image tags"). Computed in one place, here, by both assemblers (Docker bake, registry assembly); publish
reads it back from the image's ``dev.lmi-builder.inputs.digest`` label.

Not inputs: the provenance labels (``org.opencontainers.image.created/revision/source`` come from the
recipe file's git history, not its content) and the compile stage's toolchain/duration label. An image
already tagged for the same inputs is reused as it is, so those keep the values of its first build.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from builder import __version__
from builder.assembly.layers import Layer

FORMAT = "image-identity-v1"


class _Digests(Protocol):
    def digest(self, path) -> str: ...  # "sha256:<hex>" (builder.assembly.digests.FileDigestCache)


def canonical_json(model: BaseModel) -> bytes:
    """The bytes an inputs digest is taken over (single- and multi-model images): sorted keys, so the order
    files were listed in never changes the digest."""
    return json.dumps(model.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


class ImageInputs(BaseModel):
    """The component digests the identity is made of (recorded in the build record and a label)."""

    model_config = ConfigDict(frozen=True)

    format: str = FORMAT
    builder_version: str = __version__  # the Dockerfile/label layout and layer format follow the builder
    recipe_hash: str  # the resolved recipe (builder.lmi.resolve.recipe_hash), publish targets excluded
    base_digest: str  # the pinned base: registry manifest digest or local image id
    model: str | None = None  # the files baked under /opt/ml/model besides the config (weights or compiled)
    compile_key: str | None = None  # the compiled artifacts' cache key, when compile ran
    files: dict[str, str] = {}  # config layer file -> sha256: serving.properties, handler, model.files, ...

    def canonical(self) -> bytes:
        return canonical_json(self)


class ImageIdentity(BaseModel):
    model_config = ConfigDict(frozen=True)

    digest: str  # "sha256:<hex>" of ImageInputs.canonical()
    inputs: ImageInputs

    @property
    def hex12(self) -> str:
        return self.digest.removeprefix("sha256:")[:12]

    def tag(self, name: str) -> str:
        """The local image reference ``<name>:<digest12>``."""
        return f"{name}:{self.hex12}"

    def publish_tag(self, name: str) -> str:
        """The default publish tag ``<name>-<digest12>`` (builder.publish.tags.default_tag)."""
        from builder.publish.tags import default_tag

        return default_tag(name, self.digest)

    def label_json(self) -> str:
        return self.inputs.canonical().decode()


def file_digests(files: Mapping[str, bytes]) -> dict[str, str]:
    return {name: "sha256:" + hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())}


def baked_tree_digest(layers: Iterable[Layer], digests: _Digests) -> str | None:
    """Digest of what the weights/compiled layers put in the image: (path, mode, size, sha256) of every
    entry, sorted by path. Independent of how the files are split into layers, equal iff the files are;
    ``digests`` is the builder's file-digest memo, so a file hashed at fetch is not read again."""
    # files only: every layer repeats its parent folders, and those must not make the split count
    entries = sorted((e for layer in layers if layer.kind != "config" for e in layer.files), key=lambda e: e.arcname)
    if not entries:
        return None
    h = hashlib.sha256(b"baked-tree-v1\n")
    for e in entries:
        h.update(f"{e.arcname}\0{e.mode:o}\0{e.size}\0{digests.digest(e.source)}\n".encode())
    return "sha256:" + h.hexdigest()


def image_identity(*, recipe_hash: str, base_digest: str, model: str | None, files: Mapping[str, bytes],
                   compile_key: str | None = None) -> ImageIdentity:
    inputs = ImageInputs(recipe_hash=recipe_hash, base_digest=base_digest, model=model,
                         compile_key=compile_key, files=file_digests(files))
    return ImageIdentity(digest="sha256:" + hashlib.sha256(inputs.canonical()).hexdigest(), inputs=inputs)


def for_layers(resolved, *, base_digest: str, layers: list[Layer], config: Mapping[str, bytes],
               digests: _Digests, compile_key: str | None) -> ImageIdentity:
    """The identity of an image made of ``resolved``'s recipe, ``base_digest`` and these planned layers
    (what both assemblers call, with their own base pin and the same layer plan)."""
    return image_identity(recipe_hash=resolved.recipe_hash, base_digest=base_digest,
                          model=baked_tree_digest(layers, digests), files=config, compile_key=compile_key)


__all__ = ["FORMAT", "ImageIdentity", "ImageInputs", "baked_tree_digest", "file_digests", "for_layers",
           "image_identity"]
