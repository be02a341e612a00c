"""Dockerfiles from ``images/<family>/Dockerfile.j2`` (jinja2, StrictUndefined), linted before use.

Recipe strings never reach a template as they are: every ``{{ }}`` output must be a ``Safe`` value
(made by ``docker_ref``, ``context_path`` or ``env_assignment`` below), anything else raises. Labels
never go through a template (they are passed to the engine's ``labels=``), and the properties file is
a context file written by ``builder.lmi.properties.dumps``. Templates never receive a secret.
The legacy builder is all the SDK has (containers-and-registries.md §2.1), so BuildKit-only syntax
is refused by ``lint``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import jinja2

from builder.catalog.facts import FAMILIES as CATALOG_FAMILIES
from builder.diagnostics import BuilderError
from builder.paths import images_dir
from builder.secrets import SECRET_NAME_RE as SECRET_ENV_RE  # one rule for validate and bake

STAGE = "bake"
FAMILIES = CATALOG_FAMILIES  # builder/catalog/families.yaml
COMMON_MODEL = "_common/model.Dockerfile.j2"
ARTIFACTS = "_common/artifacts.Dockerfile.j2"

_REF_RE = re.compile(
    r"^(?:sha256:[0-9a-f]{64}|"
    r"(?:(?:localhost|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)(?::[0-9]+)?/|[A-Za-z0-9-]+:[0-9]+/)?"  # registry host
    r"[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?)$")
_CTX_RE = re.compile(r"^[a-z0-9][a-z0-9._/-]*$")
_ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Names that carry credentials never go into an image (DESIGN.md "Secrets never enter an image").


class Safe(str):
    """Text already made safe for the one Dockerfile position it is rendered at."""


def docker_ref(ref: str) -> Safe:
    """An image reference or image id, as FROM accepts it (no spaces, no instruction can follow)."""
    text = str(ref)
    if not _REF_RE.fullmatch(text):
        raise BuilderError(f"not a valid image reference: {ref!r}", stage=STAGE,
                           hint="use REPO[:TAG]@sha256:<64 hex> or an image id sha256:<64 hex>")
    return Safe(text)


def context_path(path: str) -> Safe:
    """A path inside the build context, as one JSON-form COPY source (no globs, no spaces)."""
    if not _CTX_RE.match(path) or ".." in path.split("/"):
        raise BuilderError(f"unsafe build-context path {path!r}", stage=STAGE)
    return Safe(json.dumps(path))


def env_assignment(key: str, value: str) -> Safe:
    """``KEY="value"`` for ENV: backslash, double quote and ``$`` escaped; line breaks refused
    (a Dockerfile line cannot hold one, and it could otherwise start a new instruction)."""
    if not _ENV_KEY_RE.match(key):
        raise BuilderError(f"env: {key!r} is not a valid environment variable name", stage=STAGE,
                           hint="use letters, digits and '_', not starting with a digit")
    if SECRET_ENV_RE.search(key):
        raise BuilderError(f"env: {key} looks like a secret and is never baked into an image", stage=STAGE,
                           hint="pass it at run time (docker run -e / the SageMaker endpoint's environment)")
    text = str(value)
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise BuilderError(f"env: the value of {key} contains a line break or control character", stage=STAGE,
                           hint="environment values baked into an image must be one line")
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return Safe(f'{key}="{escaped}"')


_LABEL_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def label_instruction(labels: Mapping[str, str]) -> Safe:
    """One ``LABEL "k"="v" ...`` instruction for all labels: each ``labels=`` entry of the SDK is a
    separate legacy-builder step (~0.27 s each here), one instruction is one step. Values are
    escaped like ENV values (backslash, double quote, ``$``); line breaks and control characters
    are refused, so no value can end the instruction or start another."""
    parts = []
    for key in sorted(labels):
        if not _LABEL_KEY_RE.match(key):
            raise BuilderError(f"label key {key!r} is not reverse-DNS lower-case text", stage=STAGE)
        text = str(labels[key])
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
            raise BuilderError(f"label {key}: the value contains a line break or control character", stage=STAGE,
                               hint="label values are one line (JSON values escape their newlines)")
        escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
        parts.append(f'"{key}"="{escaped}"')
    return Safe(" ".join(parts))


def _finalize(value: object) -> object:
    if isinstance(value, jinja2.Undefined):
        str(value)  # StrictUndefined raises here, naming the missing variable
    if isinstance(value, Safe):
        return value
    if isinstance(value, (int,)) and not isinstance(value, bool):
        return value
    raise BuilderError(f"template received an unescaped value {value!r}", stage=STAGE,
                       hint="this is a bug in the template context: wrap the value with a builder.image.render helper")


def environment(root: Path | None = None) -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(root or images_dir())),
                              undefined=jinja2.StrictUndefined, finalize=_finalize, autoescape=False,
                              keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)


def template_for(family: str, root: Path | None = None) -> str:
    """``<family>/Dockerfile.j2``; a family without its own template uses the common one."""
    if family not in FAMILIES:
        raise BuilderError(f"unknown container family {family!r}", stage=STAGE)
    own = f"{family}/Dockerfile.j2"
    return own if ((root or images_dir()) / own).is_file() else COMMON_MODEL


def render_model(family: str, *, from_ref: str, config_dir: str, env: Mapping[str, str],
                 labels: Mapping[str, str] | None = None, root: Path | None = None) -> str:
    """The final image: FROM the artifacts image (or the base) + the configuration layer."""
    ctx = {"from_ref": docker_ref(from_ref), "config_copy": context_path(config_dir + "/"),
           "env": [env_assignment(k, v) for k, v in sorted(env.items())], "family": Safe(family),
           "labels": label_instruction(labels) if labels else None}
    return _render(template_for(family, root), ctx, root)


def render_artifacts(*, from_ref: str, layer_dirs: Sequence[str], labels: Mapping[str, str] | None = None,
                     root: Path | None = None) -> str:
    """The intermediate artifacts image: FROM the pinned base, one COPY per weights/compiled layer."""
    ctx = {"from_ref": docker_ref(from_ref), "layer_copies": [context_path(d + "/") for d in layer_dirs],
           "labels": label_instruction(labels) if labels else None}
    return _render(ARTIFACTS, ctx, root)


def _render(name: str, ctx: dict, root: Path | None) -> str:
    try:
        text = environment(root).get_template(name).render(**ctx)
    except jinja2.TemplateError as exc:
        raise BuilderError(f"template {name}: {exc}", stage=STAGE) from None
    lint(text, source=name)
    return text


# --------------------------------------------------------------------- lint

_ALLOWED = {"FROM", "COPY", "ENV", "EXPOSE", "WORKDIR", "USER", "ARG", "LABEL", "RUN", "ENTRYPOINT", "CMD",
            "HEALTHCHECK", "STOPSIGNAL", "SHELL", "VOLUME", "ONBUILD", "ADD"}
_BUILDKIT = [
    (re.compile(r"^\s*#\s*syntax\s*=", re.I), "'# syntax=' frontends need BuildKit"),
    (re.compile(r"--mount\b"), "'RUN --mount' needs BuildKit"),
    (re.compile(r"^\s*RUN\s+--(network|security)\b", re.I), "'RUN --network/--security' needs BuildKit"),
    (re.compile(r"^\s*(COPY|ADD)\b.*--(chmod|link|parents|exclude|checksum)\b", re.I), "this COPY/ADD flag needs BuildKit"),
    (re.compile(r"<<-?\s*[\"']?[A-Za-z_]"), "heredocs need BuildKit"),
]


def lint(text: str, *, source: str = "Dockerfile") -> None:
    """Refuse what the legacy builder cannot do, and anything that is not one instruction per line."""
    problems: list[str] = []
    continued = False
    for no, line in enumerate(text.splitlines(), 1):
        for pattern, why in _BUILDKIT:
            if pattern.search(line):
                problems.append(f"{source}:{no}: {why}: {line.strip()}")
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not continued:
            word = stripped.split(None, 1)[0].upper()
            if word not in _ALLOWED:
                problems.append(f"{source}:{no}: not a Dockerfile instruction: {stripped[:80]}")
        continued = stripped.endswith("\\")
    if not text.lstrip().upper().startswith("FROM") and not re.search(r"^FROM\s", text, re.M):
        problems.append(f"{source}: no FROM instruction")
    if problems:
        raise BuilderError("rendered Dockerfile refused:\n  " + "\n  ".join(problems), stage=STAGE,
                           hint="the legacy builder (the only one the Docker SDK drives) has no BuildKit syntax")
