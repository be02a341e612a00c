"""Import an existing LMI configuration (``serving.properties`` and/or an env file) as a recipe.

Precedence follows the configuration guide: the file wins over env where both set a key
(reference/lmi-runtime.md §10.1, §10.5). Env names are reversed with LMI's own case rule (§10.2).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder.catalog import load_catalog
from builder.lmi.keys import known_keys
from builder.recipe.model import NAME_RE, Serving

SNAKE_CASE = re.compile(r"^[A-Z_\d]+$")  # ModelInfo.SNAKE_CASE (§10.2)
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
_SERVER_FIELDS = {(f.alias or n): n for n, f in Serving.model_fields.items() if n not in ("option", "pass_through")}


@dataclass
class Imported:
    data: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def env_to_properties(env: dict[str, str]) -> dict[str, str]:
    """LMI's reverse translation of env names (§10.1, §10.2); empty values are skipped as LMI does."""
    props: dict[str, str] = {}
    for name, value in env.items():
        if value == "":
            continue
        if name == "SERVING_LOAD_MODELS":
            m = re.match(r"^[^:]*::([A-Za-z]+)=", value)
            if m:
                props["engine"] = m.group(1)
        elif name.startswith("OPTION_"):
            rest = name[len("OPTION_"):]
            key = rest.lower() if SNAKE_CASE.match(rest) else rest
            if key == "entrypoint":
                key = "entryPoint"
            props["engine" if key == "engine" else f"option.{key}"] = value
        elif name.startswith("SERVING_"):
            props[name[len("SERVING_"):].lower()] = value
        elif name == "HF_MODEL_ID":
            props["option.model_id"] = value
        elif name == "HF_REVISION":
            props["option.revision"] = value
        elif name == "HF_MODEL_TRUST_REMOTE_CODE":
            props["option.trust_remote_code"] = value
    return props


# docker's kvfile (docker/cli pkg/kvfile, docker 28): a line is what bufio.ScanLines gives (split on
# \n only, one trailing \r dropped), at most 64 KiB; a UTF-8 BOM is dropped from the first line;
# leading white space (Go's unicode.IsSpace) is trimmed, trailing white space is part of the value.
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
            "\u2028\u2029\u202f\u205f\u3000"
_DOCKER_MAX_LINE = 64 * 1024  # bufio.MaxScanTokenSize
_SURROGATE = re.compile("[\ud800-\udfff]")
MAX_INPUT_BYTES = 1 << 20  # the recipe it becomes must load (yamlpos.MAX_BYTES); a real file is < 10 KB


class ImportInputError(ValueError):
    """A line of an input file that LMI or docker would refuse; ``line`` is 1-based (0: whole file)."""

    def __init__(self, rule: str, message: str, line: int = 0):
        super().__init__(message)
        self.rule, self.message, self.line = rule, message, line


@dataclass(frozen=True)
class EnvEntry:
    name: str
    value: str | None  # None: a bare NAME (docker takes its value from the environment of `docker run`)
    line: int


def parse_env_entries(raw: bytes | str) -> list[EnvEntry]:
    """Every variable of a docker ``--env-file``, exactly as docker reads it, with its line."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    parts = data.split(b"\n")
    if parts and parts[-1] == b"":
        parts.pop()  # the newline at the end of the last line
    out: list[EnvEntry] = []
    for number, part in enumerate(parts, 1):
        if len(part) + 1 > _DOCKER_MAX_LINE:
            raise ImportInputError("env-line-too-long", f"line is longer than {_DOCKER_MAX_LINE - 1} bytes; "
                                   "docker refuses it (token too long)", number)
        if part.endswith(b"\r"):
            part = part[:-1]
        try:
            text = part.decode("utf-8")
        except UnicodeDecodeError:
            raise ImportInputError("env-encoding", "not UTF-8; docker refuses the file", number) from None
        if number == 1 and text.startswith("\ufeff"):
            text = text[1:]
        line = text.lstrip(_GO_SPACE)
        if not line or line.startswith("#"):
            continue
        name, eq, value = line.partition("=")
        if not name:
            raise ImportInputError("env-no-name", "no variable name before '='; docker refuses the file", number)
        if " " in name or "\t" in name:
            raise ImportInputError("env-name-space", f"variable name {name!r} contains white space; docker "
                                   "refuses the file (no 'export', no spaces around '=')", number)
        out.append(EnvEntry(name, value if eq else None, number))
    return out


def parse_env_file(text: bytes | str) -> dict[str, str]:
    """docker --env-file syntax: KEY=VALUE lines, '#' comments, no quoting; a later line wins."""
    return {e.name: e.value for e in parse_env_entries(text) if e.value is not None}


def properties_lines(text: str) -> dict[str, int]:
    """The line each key of a ``java.util.Properties`` file is defined on (the last one, as Java keeps)."""
    from builder.lmi.properties import ends_with_continuation, loads

    raw = re.split(r"\r\n|\r|\n", text)  # Java's LineReader: \n, \r, \r\n and nothing else
    where: dict[str, int] = {}
    i = 0
    while i < len(raw):
        start = i + 1
        line = raw[i].lstrip(" \t\f")
        i += 1
        if not line or line[0] in "#!":
            continue
        while ends_with_continuation(line):
            line = line[:-1] + (raw[i].lstrip(" \t\f") if i < len(raw) else "")
            i += 1
        for key in loads(line):
            where[key] = start
    return where


def typed(value: str) -> Any:
    """An ``option.*`` value as the recipe writes it: a bool or int only where rendering it gives back
    exactly ``value`` (``true``, ``42``); anything else (``TRUE``, ``007``, ``42  ``) stays the string
    LMI reads, quoted in the YAML."""
    if value in ("true", "false"):
        return value == "true"
    if re.fullmatch(r"-?(0|[1-9][0-9]*)", value) and value != "-0":
        return int(value)
    return value


def java_typed(key: str, value: str) -> Any:
    """A server key as LMI's Java front end reads it: ``Integer.parseInt`` (sign, leading zeros, no
    spaces) for numbers, ``Boolean.parseBoolean`` (``true`` in any case, anything else false)."""
    field_ = Serving.model_fields[_SERVER_FIELDS[key]]
    if field_.annotation in (bool, bool | None):
        return value.lower() == "true"
    if key in ("engine", "load_on_devices", "translatorFactory"):
        return value
    if re.fullmatch(r"[+-]?[0-9]+", value):
        return int(value)
    return value  # refused by validation, located at the input line


def build_recipe(props: dict[str, str], *, family: str, version: str, instance_type: str | None, name: str | None,
                 model_path: str | None) -> Imported:
    catalog = load_catalog()
    notes: list[str] = []
    props = dict(props)
    model: dict[str, Any] = {}
    model_id = props.pop("option.model_id", None)
    revision = props.pop("option.revision", None)
    trust = props.pop("option.trust_remote_code", None)
    if props.pop("option.model_dir", None) is not None:
        notes.append("option.model_dir not imported: LMI sets it to the folder it loads the model from (the "
                     "image's /opt/ml/model); the recipe's model: section says what goes there")
    if revision is not None and not (model_id and not model_id.startswith(("s3://", "/"))):
        notes.append(f"option.revision '{revision}' not imported: it selects a Hub commit, and this model is "
                     f"{'an S3 prefix' if model_id and model_id.startswith('s3://') else 'a local folder'}")
    if model_id and model_id.startswith("s3://"):
        model["s3"] = model_id
    elif model_id and not model_id.startswith("/"):
        model["id"] = model_id
        if revision:
            model["revision"] = revision
        # LMI's Python properties read it as a pydantic bool: 'true'/'True'/'TRUE' are all true
        model["trust_remote_code"] = ({"true": True, "false": False}.get(trust.strip().lower(), trust)
                                      if trust is not None else False)
        if trust is None:
            notes.append("trust_remote_code was not set; wrote model.trust_remote_code: false (LMI's default)")
        if not revision or not SHA_RE.match(revision):
            notes.append("the Hub model has no full commit revision; pin model.revision before building")
    else:
        model["path"] = model_path or "."
        inside = f"option.model_id '{model_id}' is a path inside the container, not a Hub/S3 model; " \
            if model_id else "no Hub/S3 model_id; "
        notes.append(f"{inside}model.path is '{model['path']}' (the folder of the weights, relative to the "
                     "recipe; --model-path sets it)")
    if "id" not in model and trust is not None:
        # S3 and local models read option.trust_remote_code too (7 of upstream's v27 configurations set it
        # on an S3 model): keep it, never drop it quietly.
        model["trust_remote_code"] = {"true": True, "false": False}.get(trust.strip().lower(), trust)
    release = catalog.release(family, version)
    if release is not None and release.version != version:
        notes.append(f"container.version: wrote the release's name '{release.version}' (DJL {version} names it)")
        version = release.version  # a recipe names the LMI release, not the DJL version
    serving: dict[str, Any] = {}
    option: dict[str, Any] = {}
    for key, value in props.items():
        if key.startswith("option."):
            option[key[len("option."):]] = typed(value)
        elif key in _SERVER_FIELDS:
            serving[key] = java_typed(key, value)
        else:
            notes.append(f"dropped '{key}': not a per-model serving.properties key (reference §4)")
    if release is not None:
        from builder.lmi.resolve import pick_entry_point

        rb = str(option.get("rolling_batch", release.default_rolling_batch)).lower()
        # the keys of the handler LMI will run (v15 runs the async service even for rolling_batch vllm)
        known = known_keys(release, rb, pick_entry_point(None, release, catalog, rb, option))
        unknown = sorted(k for k in option if k not in known and k != "engine")
        if unknown:
            serving["pass_through"] = unknown
            described = []
            for k in unknown:
                close = difflib.get_close_matches(k, sorted(known), n=1, cutoff=0.75)
                described.append(f"{k} (did you mean '{close[0]}'?)" if close else k)
            notes.append(f"not in the {family} {version} key catalogue, kept as pass_through (check the "
                         f"spelling): {', '.join(described)}")
    if option:
        serving["option"] = option
    serving = dict(sorted(serving.items(), key=lambda kv: (kv[0] != "engine", kv[0] in ("option", "pass_through"))))
    if instance_type is None:
        instance_type = _default_instance(family, option)
        notes.append(f"no --instance-type; wrote target.instance_type: {instance_type}")
    if not name:
        base = str(model.get("id") or model.get("s3") or "imported").rstrip("/").split("/")[-1]
        name = re.sub(r"[^a-z0-9._-]+", "-", base.lower()).strip("-._") or "imported"
    if not re.match(NAME_RE, name):
        name = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._")[:63] or "imported"
    data = {"name": name, "model": model, "container": {"family": family, "version": version},
            "target": {"instance_type": instance_type}, "serving": serving}
    return Imported(data, notes)


# Input keys whose value the recipe holds under another name (docs/recipes.md "Import").
RENAMES = {"option.model_id": ("model", ("id", "s3", "path")), "option.revision": ("model", ("revision",)),
           "option.trust_remote_code": ("model", ("trust_remote_code",))}


def unaccounted(props: dict[str, str], data: dict[str, Any], notes: list[str]) -> list[str]:
    """Input keys that are neither in the recipe ``data`` (as themselves or a RENAMES entry) nor named by a
    note that says why they were not imported: what an import would lose without a word."""
    serving = data.get("serving") or {}
    option = serving.get("option") or {}
    lost = []
    for key in props:
        if key in RENAMES:
            section, names = RENAMES[key]
            kept = any(n in (data.get(section) or {}) for n in names)
        elif key.startswith("option."):
            kept = key[len("option."):] in option
        else:
            kept = key in serving
        said = any(re.search(rf"(?<![\w.]){re.escape(key)}(?![\w.])", n) and ("not imported" in n or "dropped" in n)
                   for n in notes)
        if not kept and not said:
            lost.append(key)
    return lost


def _default_instance(family: str, option: dict[str, Any]) -> str:
    tp = option.get("tensor_parallel_degree")
    need = tp if isinstance(tp, int) and tp > 0 else 1
    pool = {"lmi": "g5", "tensorrt-llm": "g5", "neuronx": "inf2"}.get(family, "m5")
    catalog = load_catalog()
    fits = sorted((i for i in catalog.instances.values() if i.family == pool and i.devices >= need),
                  key=lambda i: (i.devices, i.host_memory_gib))
    return "ml." + (fits[0].name if fits else f"{pool}.xlarge")


@dataclass(frozen=True)
class Origin:
    """Where an LMI key of the import came from, to locate errors in the input, not the recipe."""

    file: Path
    line: int
    name: str  # as written there: option.dtype, OPTION_DTYPE


@dataclass
class Sources:
    props: dict[str, str]
    origins: dict[str, Origin]
    notes: list[str] = field(default_factory=list)


def read_sources(properties: Path | None, env_file: Path | None) -> Sources:
    """Both inputs, read as LMI reads them; the file wins over env (§10.1 putIfAbsent).

    Raises ``LocatedImportError`` (the file, and the line where there is one) for anything LMI or
    docker would refuse to read, or that is not a regular file within ``MAX_INPUT_BYTES``."""
    from builder.lmi.properties import PropertiesError, loads
    from builder.userfile import InputFileError, read_bytes

    merged: dict[str, str] = {}
    origins: dict[str, Origin] = {}
    notes: list[str] = []

    def read(path: Path, what: str) -> bytes:
        try:
            return read_bytes(path, limit=MAX_INPUT_BYTES, what=what)
        except InputFileError as exc:
            raise LocatedImportError(path, ImportInputError(exc.rule, exc.message)) from None

    if env_file is not None:
        raw = read(env_file, "env file")
        try:
            entries = parse_env_entries(raw)
        except ImportInputError as exc:
            raise LocatedImportError(env_file, exc) from None
        fallbacks: list[tuple[str, EnvEntry]] = []
        for e in entries:
            if e.value is None:
                notes.append(f"{env_file}:{e.line}: '{e.name}' has no value (docker would take it from the "
                             "environment of `docker run`); not imported")
                continue
            translated = env_to_properties({e.name: e.value})
            for key, value in translated.items():
                if key in merged and merged[key] != value:
                    o = origins[key]
                    notes.append(f"{o.file}:{o.line}: '{o.name}' not imported: line {e.line} ('{e.name}') sets "
                                 f"{key} again, and the later line wins")
                merged[key] = value
                origins[key] = Origin(env_file, e.line, e.name)
            if not translated:
                if e.name in ENV_FALLBACKS and e.value != "":
                    fallbacks.append((ENV_FALLBACKS[e.name], e))
                else:
                    notes.append(f"{env_file}:{e.line}: '{e.name}' not imported: {_env_not_read(e)}")
    if properties is not None:
        raw = read(properties, "properties file")
        if raw.startswith(b"\xef\xbb\xbf"):
            raise LocatedImportError(properties, ImportInputError(
                "properties-bom", "starts with a UTF-8 byte order mark; LMI reads serving.properties as "
                "ISO-8859-1, so the mark becomes part of the first key and that key is lost; save the file "
                "without a BOM", 1))
        # LMI loads serving.properties with Properties.load(InputStream): ISO-8859-1, every byte one
        # char, non-ASCII text only through \uXXXX escapes. Reading it the same way keeps the value LMI sees.
        text = raw.decode("iso-8859-1")
        try:
            values = loads(text)
        except PropertiesError as exc:
            line = _bad_escape_line(text)
            raise LocatedImportError(properties, ImportInputError("properties-syntax", f"{exc} (Java's "
                                     "Properties.load refuses the file)", line)) from None
        if any(b > 0x7E for b in raw):
            notes.append(f"{properties}: has non-ASCII bytes; LMI reads the file as ISO-8859-1, so they were "
                         "imported as LMI reads them (write \\uXXXX escapes in serving.properties for other text)")
        lines = properties_lines(text)
        for key, value in values.items():
            if _SURROGATE.search(key + value):  # \ud800 alone: Java keeps it, UTF-8 text cannot hold it
                raise LocatedImportError(properties, ImportInputError(
                    "properties-surrogate", f"'{key}' holds a lone UTF-16 surrogate (a \\uD800-\\uDFFF escape "
                    "without its pair); a recipe is UTF-8 text and cannot hold it", lines.get(key, 0)))
            if key in merged and origins[key].file != properties and merged[key] != value:
                o = origins[key]
                notes.append(f"{o.file}:{o.line}: '{o.name}' not imported: {properties}:{lines.get(key, 0)} sets "
                             f"{key} too, and the file wins (as in LMI, §10.1)")
            merged[key] = value
            origins[key] = Origin(properties, lines.get(key, 0), key)
    if env_file is not None:
        for key, e in fallbacks:
            if key in merged:
                notes.append(f"{env_file}:{e.line}: '{e.name}' not imported: LMI reads it only when {key} is not "
                             f"set, and {origins[key].name} sets it")
            else:
                merged[key] = e.value or ""
                origins[key] = Origin(env_file, e.line, e.name)
                notes.append(f"{env_file}:{e.line}: '{e.name}' (LMI's fallback for {key}) imported as "
                             f"serving.option.{key[len('option.'):]}")
    return Sources(merged, origins, notes)


# Plain variables LMI reads as the default of an option when serving.properties does not set it
# (reference/lmi-runtime.md §5, §7 step 5): imported as that option.
ENV_FALLBACKS = {"TENSOR_PARALLEL_DEGREE": "option.tensor_parallel_degree",
                 "PIPELINE_PARALLEL_DEGREE": "option.pipeline_parallel_degree",
                 "MODEL_LOADING_TIMEOUT": "option.model_loading_timeout", "PREDICT_TIMEOUT": "option.predict_timeout"}


def _env_not_read(e: EnvEntry) -> str:
    """Why an env-file variable is not part of the recipe (import loses nothing without saying so)."""
    from builder.secrets import SECRET_NAME_RE

    if e.value == "":
        return "empty, and LMI skips empty variables"
    if SECRET_NAME_RE.search(e.name):
        return "looks like a secret; a recipe is baked into the image, so pass it at run time instead"
    if e.name == "SERVING_LOAD_MODELS":
        return "only its engine (test::ENGINE=...) is LMI configuration; the model URL is the image's own"
    return ("not an LMI configuration variable (OPTION_*, SERVING_*, HF_MODEL_ID, HF_REVISION, "
            "HF_MODEL_TRUST_REMOTE_CODE); if the container needs it, add it under the recipe's env:")


def _bad_escape_line(text: str) -> int:
    for number, line in enumerate(re.split(r"\r\n|\r|\n", text), 1):
        if re.search(r"(?<!\\)(\\\\)*\\u(?![0-9a-fA-F]{4})", line):
            return number
    return 0


class LocatedImportError(Exception):
    def __init__(self, file: Path, error: ImportInputError):
        super().__init__(f"{file}: {error.message}")
        self.file, self.error = file, error
