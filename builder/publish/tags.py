"""Tag templates and validation.

Default tag: ``<recipe-name>-<image-digest12>``, the image inputs digest (``builder.assembly.identity``:
resolved recipe, model files, handler files, compile key, base), so one tag names one image and it is
safe to push to an IMMUTABLE ECR repository (containers-and-registries.md §7). User templates may use
``{name}``, ``{image_digest}``, ``{image_digest12}``, ``{recipe_hash}``, ``{recipe_hash12}``, ``{git_sha}``
(7 characters), ``{lmi_version}``.
"""

from __future__ import annotations

import re
import string

from builder.diagnostics import UsageError
from builder.registry.reference import is_tag  # the OCI distribution spec's tag grammar, one copy

VARIABLES = ("name", "image_digest", "image_digest12", "recipe_hash", "recipe_hash12", "git_sha", "lmi_version")


def sanitize(text: str) -> str:
    """Make free text (a recipe name) usable inside a tag: invalid characters become ``-``."""
    out = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip(".-")
    return out or "image"


def default_tag(name: str, image_digest: str) -> str:
    """``<name>-<12 hex of the image inputs digest>`` (``sha256:`` prefix or bare hex)."""
    hex_ = image_digest.removeprefix("sha256:")
    if not hex_:
        raise UsageError("the image has no inputs digest label (dev.lmi-builder.inputs.digest); cannot form "
                         "the default tag",
                         hint="pass --tag TEMPLATE, or rebuild the image with this lmi-build")
    suffix = "-" + hex_[:12]
    return sanitize(name)[: 128 - len(suffix)] + suffix


def render(template: str, variables: dict[str, str | None]) -> str:
    """Expand one template; unknown or unavailable variables and invalid results are usage errors."""
    fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    for f in fields:
        if f not in VARIABLES:
            raise UsageError(f"tag template {template!r}: unknown variable {{{f}}}",
                             hint="variables: " + ", ".join("{" + v + "}" for v in VARIABLES))
        if not variables.get(f):
            raise UsageError(f"tag template {template!r}: {{{f}}} is not known for this image",
                             hint="git_sha comes from --git-sha, the image's "
                                  "org.opencontainers.image.revision label, or `git rev-parse`; image_digest "
                                  "from the dev.lmi-builder.inputs.digest label")
    try:
        tag = template.format(**{k: v or "" for k, v in variables.items()})
    except (ValueError, IndexError, KeyError) as exc:
        raise UsageError(f"tag template {template!r}: {exc}") from None
    validate(tag, origin=f"tag template {template!r}")
    return tag


def validate(tag: str, origin: str = "tag") -> str:
    if not is_tag(tag):
        raise UsageError(f"{origin}: {tag!r} is not a valid tag",
                         hint="a tag is 1-128 characters of [A-Za-z0-9_.-] and must not start "
                              "with '.' or '-'")
    return tag


def tags_for(name: str, image_digest: str, templates: list[str], variables: dict[str, str | None],
             include_default: bool = True) -> list[str]:
    """The default tag (first) followed by the rendered templates, duplicates removed, order kept."""
    tags: list[str] = [default_tag(name, image_digest)] if include_default else []
    for t in templates:
        tags.append(render(t, variables))
    seen: set[str] = set()
    return [t for t in tags if not (t in seen or seen.add(t))]
