"""Image assembly: one protocol for the two assemblers, and the layer planning both share.

``assemble(name, request)`` runs the assembler ``ASSEMBLERS[name]``: an ``Assembler`` is a function
``(AssemblyRequest) -> AssembledImage`` (``request.py``).

* ``docker``: ``builder.image.bake.assemble`` - ``docker build`` on the local engine;
* ``registry``: ``builder.registry.assemble.assemble`` - blobs and a manifest PUT straight into the
  target registry, no daemon.

Shared by both (and by the S3 layout and the multi-model image), here so that neither assembler imports
the other: ``layers`` (the layer plan and deterministic tars), ``digests`` (the file-digest memo),
``identity`` (the image inputs digest behind every tag), ``files`` (serving.properties and handler
files as bytes), ``labels`` (the model image's labels).
"""

from __future__ import annotations

from collections.abc import Callable

from builder.assembly.request import (
    AssembledImage,
    AssemblerName,
    AssemblyRequest,
    BaseInfo,
    LayerInfo,
)

Assembler = Callable[[AssemblyRequest], AssembledImage]


# imported when called: the assemblers import this package's modules (and docker / requests)
def _docker(request: AssemblyRequest) -> AssembledImage:
    from builder.image.bake import assemble as docker_assemble

    return docker_assemble(request)


def _registry(request: AssemblyRequest) -> AssembledImage:
    from builder.registry.assemble import assemble as registry_assemble

    return registry_assemble(request)


ASSEMBLERS: dict[str, Assembler] = {"docker": _docker, "registry": _registry}


def assemble(name: str, request: AssemblyRequest) -> AssembledImage:
    """The image ``request`` describes, made by the assembler ``name`` (a key of ``ASSEMBLERS``)."""
    try:
        assembler = ASSEMBLERS[name]
    except KeyError:
        from builder.diagnostics import UsageError

        raise UsageError(f"--assembler {name}: unknown assembler; choose one of {', '.join(ASSEMBLERS)}") from None
    return assembler(request)


__all__ = ["ASSEMBLERS", "AssembledImage", "Assembler", "AssemblerName", "AssemblyRequest", "BaseInfo",
           "LayerInfo", "assemble"]
