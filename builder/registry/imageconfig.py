"""Image config of an assembled image, derived from the base's config (the manifest: ``manifest.py``).

Kept from the base: everything (Entrypoint, Cmd, Env, WorkingDir, ExposedPorts, User, ...); ours are
merged on top (labels, env: ours win on the same key), one history entry per added layer. Every
timestamp is fixed (``1970-01-01T00:00:00Z``) so the digest depends only on the inputs
(reference/containers-and-registries.md §5.5: the docker path's ``created`` makes a new digest every
build; this one does not).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from builder.assembly.layers import Layer
from builder.registry.layerblobs import LayerBlob

EPOCH = "1970-01-01T00:00:00Z"


def _merge_env(base: Sequence[str], ours: Mapping[str, str]) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for item in base:
        key = item.split("=", 1)[0]
        if key in ours:
            out.append(f"{key}={ours[key]}")
            seen.add(key)
        else:
            out.append(item)
    out.extend(f"{k}={ours[k]}" for k in sorted(ours) if k not in seen)
    return out


def build_config(base_config: dict[str, Any], layers: Sequence[tuple[Layer, LayerBlob]], *,
                 labels: Mapping[str, str], env: Mapping[str, str]) -> dict[str, Any]:
    cfg = copy.deepcopy(base_config)
    cfg["created"] = EPOCH
    cfg.pop("container", None)  # docker build leftovers describing the base's last build step
    cfg.pop("container_config", None)
    inner = cfg.setdefault("config", {}) or {}
    cfg["config"] = inner
    inner["Labels"] = {**(inner.get("Labels") or {}), **labels}
    if env:
        inner["Env"] = _merge_env(inner.get("Env") or [], env)
    rootfs = cfg.setdefault("rootfs", {"type": "layers", "diff_ids": []})
    rootfs["diff_ids"] = list(rootfs.get("diff_ids") or []) + [blob.diff_id for _, blob in layers]
    history = list(cfg.get("history") or [])
    for layer, _ in layers:
        history.append({"created": EPOCH, "created_by": f"lmi-builder: {layer.kind} layer {layer.name}",
                        "comment": f"{len(layer.files)} file(s), {layer.size} bytes"})
    cfg["history"] = history
    return cfg
