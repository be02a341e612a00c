"""Render a resolved recipe: ``serving.properties``, ``serving.env`` and ``resolved.json``.

Deterministic (same recipe, same bytes): no timestamps, no absolute paths, fixed key order. The
properties file is the single source of truth inside the image (reference/lmi-runtime.md §18);
``serving.env`` is the same configuration in the configuration guide's environment form, for
experiments (docker ``--env-file`` syntax).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from builder import __version__
from builder.diagnostics import BuilderError
from builder.lmi.properties import dumps
from builder.lmi.resolve import Resolved

ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
FILES = ("serving.properties", "serving.env", "resolved.json")


def properties_text(resolved: Resolved) -> str:
    r = resolved
    header = [
        f"serving.properties for recipe '{r.recipe.name}' (recipe hash {r.recipe_hash[:12]}), "
        f"rendered by lmi-builder {__version__}",
        f"LMI {r.release.label} on {r.instance.name} ({r.instance.devices} x "
        f"{r.instance.accelerator}): TP {r.tensor_parallel_degree}, {r.workers} worker(s)",
        "Every value LMI would otherwise default is pinned (reference/lmi-runtime.md section 18). Do not edit: "
        "change the recipe and render again.",
    ]
    return dumps(r.properties, header=header)


def env_text(resolved: Resolved) -> str:
    lines = ["# The same configuration as serving.properties in LMI's environment form (docker --env-file).",
             "# If both are present, serving.properties wins for option.* keys (reference/lmi-runtime.md section 10.5)."]
    for key, value in resolved.env().items():
        if not ENV_NAME_RE.match(key) or any(c in value for c in "\r\n\x00"):
            raise BuilderError(f"cannot write {key} to serving.env: the name or value is not env-file safe",
                               stage="render", hint="keep option keys to letters, digits and '_'")
        lines.append(f"{key}={value}")
    return "\n".join(lines) + "\n"


def resolved_text(resolved: Resolved) -> str:
    return json.dumps(resolved.to_json(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_texts(resolved: Resolved) -> dict[str, str]:
    return {"serving.properties": properties_text(resolved), "serving.env": env_text(resolved),
            "resolved.json": resolved_text(resolved)}


def render(resolved: Resolved, output_dir: str | os.PathLike) -> list[Path]:
    """Write the three files into ``output_dir`` atomically; returns their paths."""
    out = Path(output_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BuilderError(f"cannot create {out}: {exc.strerror}", stage="render") from None
    written = []
    for name, text in render_texts(resolved).items():
        path = out / name
        tmp = out / f".{name}.tmp-{os.getpid()}"
        try:
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise BuilderError(f"cannot write {path}: {exc.strerror}", stage="render") from None
        written.append(path)
    return written
