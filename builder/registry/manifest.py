"""The manifest of an assembled image: Docker v2 schema 2 (default) or OCI, and the media-type rules.

Why Docker schema 2 by default: SageMaker ``CreateModel`` refuses OCI image manifests ("Unsupported
manifest media type application/vnd.oci.image.manifest.v1+json", aws/amazon-sagemaker-feedback#180),
while Docker, containerd, ECR and every registry accept schema 2. OCI stays available
(``--manifest-format oci``) for targets that want it.

Media-type rule (one format per manifest, never mixed): every layer descriptor of a manifest carries
a media type of that manifest's format. A base layer keeps its bytes and digest; only its media type
is renamed to the other format's name for the same bytes:

====================================================  ==================================================
Docker                                                OCI
====================================================  ==================================================
application/vnd.docker.image.rootfs.diff.tar.gzip     application/vnd.oci.image.layer.v1.tar+gzip
application/vnd.docker.image.rootfs.foreign.diff...   application/vnd.oci.image.layer.nondistributable
  .tar.gzip                                             .v1.tar+gzip
application/vnd.docker.image.rootfs.diff.tar          application/vnd.oci.image.layer.v1.tar
====================================================  ==================================================

A base layer with no Docker name (zstd, OCI non-distributable uncompressed, anything else) cannot go
into a Docker manifest: schema 2 with OCI layer types is refused by some clients, so the assembler
refuses it before uploading anything and says to use ``--manifest-format oci`` or a gzip base.
In an OCI manifest unknown layer types are kept as the base has them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from builder.registry.client import DOCKER_MANIFEST, OCI_MANIFEST
from builder.registry.layerblobs import Compression, LayerBlob, canonical_json

ManifestFormat = Literal["docker", "oci"]
FORMATS: tuple[ManifestFormat, ...] = ("docker", "oci")
DEFAULT_FORMAT: ManifestFormat = "docker"

DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_FOREIGN_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_NONDIST_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"

MANIFEST_MEDIA = {"docker": DOCKER_MANIFEST, "oci": OCI_MANIFEST}
CONFIG_MEDIA = {"docker": DOCKER_CONFIG, "oci": OCI_CONFIG}
# the same bytes under each format's name (the table in the module docstring)
_PAIRS = [(DOCKER_LAYER_GZIP, OCI_LAYER_GZIP), (DOCKER_FOREIGN_GZIP, OCI_NONDIST_GZIP),
          (DOCKER_LAYER_TAR, OCI_LAYER_TAR)]
_TO_DOCKER = {oci: docker for docker, oci in _PAIRS} | {docker: docker for docker, _ in _PAIRS}
_TO_OCI = {docker: oci for docker, oci in _PAIRS} | {oci: oci for _, oci in _PAIRS}
UNCOMPRESSED = {DOCKER_LAYER_TAR, OCI_LAYER_TAR}

SAGEMAKER_OCI = ("SageMaker refuses OCI image manifests (CreateModel: 'Unsupported manifest media type "
                 "application/vnd.oci.image.manifest.v1+json', aws/amazon-sagemaker-feedback#180)")


class FormatError(ValueError):
    """A layer or target that the chosen manifest format cannot honour; the message says why."""


def layer_media(fmt: ManifestFormat, compression: Compression) -> str:
    """Media type of one of our layers."""
    if fmt == "docker":
        if compression != "gzip":
            raise FormatError("Docker v2 schema 2 layers are gzip: uncompressed layers need --manifest-format oci")
        return DOCKER_LAYER_GZIP
    return OCI_LAYER_GZIP if compression == "gzip" else OCI_LAYER_TAR


def base_layer_media(fmt: ManifestFormat, media: str, index: int) -> str:
    """The base layer's media type under ``fmt`` (same bytes, same digest), or FormatError."""
    if fmt == "oci":
        return _TO_OCI.get(media, media)
    if media in _TO_DOCKER:
        return _TO_DOCKER[media]
    raise FormatError(f"base layer {index} has media type {media!r}, which has no Docker v2 schema 2 "
                      "equivalent (schema 2 manifests with OCI layer types are refused by some clients)")


def target_refusal(fmt: ManifestFormat, instance_type: str | None) -> str | None:
    """Why the deployment target cannot use ``fmt`` (None when it can). ``ml.*`` is a SageMaker instance."""
    if fmt == "oci" and instance_type and instance_type.startswith("ml."):
        return f"target {instance_type} is a SageMaker instance and {SAGEMAKER_OCI}"
    return None


def build_manifest(base_layers: Sequence[dict[str, Any]], config_blob: bytes, config_digest: str,
                   layers: Sequence[LayerBlob], *, base_digest: str, fmt: ManifestFormat = DEFAULT_FORMAT,
                   compression: Compression = "gzip") -> bytes:
    """The image manifest (canonical JSON): base layers (same digests and sizes, media types named
    for ``fmt``) then ours (compressed blob digest and size; their diff_ids are in the config)."""
    items = [{"mediaType": base_layer_media(fmt, d["mediaType"], i), "digest": d["digest"], "size": int(d["size"]),
              **({"urls": d["urls"]} if d.get("urls") else {})} for i, d in enumerate(base_layers)]
    ours = layer_media(fmt, compression)
    items += [{"mediaType": ours, "digest": b.digest, "size": b.size} for b in layers]
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA[fmt],
        "config": {"mediaType": CONFIG_MEDIA[fmt], "digest": config_digest, "size": len(config_blob)},
        "layers": items,
    }
    if fmt == "oci":
        # schema 2 has no annotations; in OCI the base's name is deliberately absent (it differs
        # between registries, the digest does not)
        manifest["annotations"] = {"org.opencontainers.image.base.digest": base_digest}
    return canonical_json(manifest)
