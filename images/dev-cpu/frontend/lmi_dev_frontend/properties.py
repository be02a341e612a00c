"""serving.properties the way DJL Serving's Java front end reads it, and env merged the way it merges.

Standard library only: this module runs inside the dev-cpu image under Debian's python3.

- Parsing follows ``java.util.Properties.load(Reader)``: ``#``/``!`` comments, ``=``, ``:`` or
  whitespace separators, backslash line continuation, ``\\t \\n \\r \\f \\uXXXX`` escapes, last
  duplicate wins (DJL reads serving.properties with ``Properties.load``; reference/lmi-runtime.md §10.4
  notes that the Python re-implementations differ, so we follow Java).
- ``OPTION_<KEY>`` env becomes ``option.<key>``; the file wins (``putIfAbsent``). The suffix is
  lower-cased only when it matches ``[A-Z_\\d]+``; ``entrypoint`` becomes ``entryPoint`` and
  ``engine`` the top-level key; empty values are skipped (reference §10.1, §10.2).
- ``SERVING_<KEY>`` env becomes the global key ``<key>`` (always lower-cased); env wins (§10.1).
- ``SAGEMAKER_*`` overrides win over the file (§10.1, §10.5).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_WS = " \t\f"
_SNAKE_CASE = re.compile(r"[A-Z_\d]+")  # ModelInfo.SNAKE_CASE


class PropertiesError(ValueError):
    """A serving.properties line Java would reject (malformed \\uXXXX escape)."""


def _logical_lines(text: str) -> list[str]:
    """Java's LineReader: natural lines joined on an odd number of trailing backslashes."""
    natural = re.split(r"\r\n|\r|\n", text)
    out: list[str] = []
    pending: str | None = None  # a logical line being continued
    for raw in natural:
        line = raw.lstrip(_WS)
        if pending is None:
            if not line or line[0] in "#!":
                continue  # blank or comment; a comment line is never continued
        trailing = len(line) - len(line.rstrip("\\"))
        continued = trailing % 2 == 1
        if continued:
            line = line[:-1]
        pending = line if pending is None else pending + line
        if not continued:
            out.append(pending)
            pending = None
    if pending:
        out.append(pending)  # a backslash at end of file is dropped, as in Java
    return out


def _convert(text: str) -> str:
    """Java's loadConvert: undo escapes."""
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        i += 1
        if c != "\\" or i >= len(text):
            out.append(c)
            continue
        c = text[i]
        i += 1
        if c == "u":
            digits = text[i:i + 4]
            if len(digits) != 4 or not all(ch in "0123456789abcdefABCDEF" for ch in digits):
                raise PropertiesError("Malformed \\uxxxx encoding.")
            out.append(chr(int(digits, 16)))
            i += 4
        else:
            out.append({"t": "\t", "r": "\r", "n": "\n", "f": "\f"}.get(c, c))
    return "".join(out)


def parse_properties(text: str) -> dict[str, str]:
    """Parse properties text with java.util.Properties rules (insertion order kept, last wins)."""
    props: dict[str, str] = {}
    for line in _logical_lines(text):
        key_len = 0
        value_start = len(line)
        has_sep = False
        backslash = False
        while key_len < len(line):
            c = line[key_len]
            if c in "=:" and not backslash:
                value_start = key_len + 1
                has_sep = True
                break
            if c in _WS and not backslash:
                value_start = key_len + 1
                break
            backslash = (not backslash) if c == "\\" else False
            key_len += 1
        while value_start < len(line):
            c = line[value_start]
            if c not in _WS:
                if not has_sep and c in "=:":
                    has_sep = True
                else:
                    break
            value_start += 1
        key = _convert(line[:key_len])
        props.pop(key, None)  # last duplicate wins, and takes the later position
        props[key] = _convert(line[value_start:])
    return props


def env_model_properties(env: Mapping[str, str]) -> dict[str, str]:
    """The per-model keys DJL derives from ``OPTION_*`` env (reference §10.1, §10.2)."""
    out: dict[str, str] = {}
    for name, value in env.items():
        if not value or not name.startswith("OPTION_") or len(name) == len("OPTION_"):
            continue
        rest = name[len("OPTION_"):]
        if _SNAKE_CASE.fullmatch(rest):
            rest = rest.lower()
        if rest == "entrypoint":
            key = "option.entryPoint"
        elif rest == "engine":
            key = "engine"
        else:
            key = f"option.{rest}"
        out.setdefault(key, value)
    return out


def merge_model_properties(file_props: Mapping[str, str], env: Mapping[str, str]) -> dict[str, str]:
    """serving.properties + env, with DJL's precedence: SAGEMAKER_* > file > OPTION_* (§10.5)."""
    merged = dict(file_props)
    for key, value in env_model_properties(env).items():
        merged.setdefault(key, value)  # putIfAbsent: the file wins
    # SageMakerCompatibility overrides the file (§10.1).
    if env.get("SAGEMAKER_STARTUP_TIMEOUT"):
        merged["option.model_loading_timeout"] = env["SAGEMAKER_STARTUP_TIMEOUT"]
    if env.get("SAGEMAKER_MODEL_SERVER_TIMEOUT_SECONDS"):
        merged["option.predict_timeout"] = env["SAGEMAKER_MODEL_SERVER_TIMEOUT_SECONDS"]
    if env.get("SAGEMAKER_NUM_MODEL_WORKERS"):
        merged["minWorkers"] = merged["maxWorkers"] = env["SAGEMAKER_NUM_MODEL_WORKERS"]
    return merged


def global_config(config_file_props: Mapping[str, str], env: Mapping[str, str]) -> dict[str, str]:
    """Global server keys: config.properties, then ``SERVING_*`` env on top (env wins, §10.1)."""
    merged = dict(config_file_props)
    for name, value in env.items():
        if value and name.startswith("SERVING_") and len(name) > len("SERVING_"):
            merged[name[len("SERVING_"):].lower()] = value
    size = env.get("SAGEMAKER_MAX_REQUEST_SIZE")
    if size:
        merged["max_request_size"] = size
    elif env.get("SAGEMAKER_MAX_PAYLOAD_IN_MB"):
        merged["max_request_size"] = str(int(env["SAGEMAKER_MAX_PAYLOAD_IN_MB"]) * 1024 * 1024)
    return merged


def engine_options(model_props: Mapping[str, str]) -> dict[str, str]:
    """What the Python engine sees: ``option.*`` keys with the prefix stripped (ModelInfo.initialize)."""
    return {k[len("option."):]: v for k, v in model_props.items() if k.startswith("option.")}
