"""Tag templates and validation.

Default tag: ``<recipe-name>-<recipe-hash12>``, unique per resolved recipe, so it is safe to push to an
IMMUTABLE ECR repository (containers-and-registries.md §7). User templates may use ``{name}``,
``{recipe_hash}``, ``{recipe_hash12}``, ``{git_sha}`` (7 characters), ``{lmi_version}``.
"""

from __future__ import annotations

import re
import string

from builder.diagnostics import UsageError

# The OCI distribution spec's tag grammar.
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
VARIABLES = ("name", "recipe_hash", "recipe_hash12", "git_sha", "lmi_version")


def sanitize(text: str) -> str:
    """Make free text (a recipe name) usable inside a tag: invalid characters become ``-``."""
    out = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip(".-")
    return out or "image"


def default_tag(name: str, recipe_hash: str) -> str:
    if not recipe_hash:
        raise UsageError("the image has no recipe hash label; cannot form the default tag",
                         hint="pass --tag, or publish an image built by lmi-build")
    suffix = "-" + recipe_hash[:12]
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
                                  "org.opencontainers.image.revision label, or `git rev-parse`")
    try:
        tag = template.format(**{k: v or "" for k, v in variables.items()})
    except (ValueError, IndexError, KeyError) as exc:
        raise UsageError(f"tag template {template!r}: {exc}") from None
    validate(tag, origin=f"tag template {template!r}")
    return tag


def validate(tag: str, origin: str = "tag") -> str:
    if not TAG_RE.match(tag):
        raise UsageError(f"{origin}: {tag!r} is not a valid tag",
                         hint="a tag is 1-128 characters of [A-Za-z0-9_.-] and must not start "
                              "with '.' or '-'")
    return tag


def tags_for(name: str, recipe_hash: str, templates: list[str], variables: dict[str, str | None],
             include_default: bool = True) -> list[str]:
    """The default tag (first) followed by the rendered templates, duplicates removed, order kept."""
    tags: list[str] = [default_tag(name, recipe_hash)] if include_default else []
    for t in templates:
        tags.append(render(t, variables))
    seen: set[str] = set()
    return [t for t in tags if not (t in seen or seen.add(t))]
