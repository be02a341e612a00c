"""trust_remote_code as LMI reads it: left out is false (LMI's default, the safe one). A model that ships its
own Python code (``auto_map`` in config.json / tokenizer_config.json, or ``modeling_*.py`` and friends)
fails at load without trust, so that is an error; with trust, the files that will run are named.

Checked where the files can be seen without a download: a local ``model.path`` folder (``check``, run
with the rules) and a Hub or S3 model already in the artifact cache (``cached_diagnostics``, run by
``validate`` with its ``--cache-dir``). A model not seen yet is not judged: the build fetches it.

transformers loads the built-in code when the config's ``model_type`` is one it implements, whatever
``auto_map`` says, as long as trust is false (``resolve_trust_remote_code``): many checkpoints (Phi-3,
DeepSeek-V3, ...) keep an ``auto_map`` from before their type was added. So the verdict reads which types
the release's transformers implements (builder/catalog/transformers_model_types.yaml, derived from the
wheels by scripts/derive_model_types.py): no error for a type it implements, an error for one it does
not, a warning where the release pins only a range (``>=4.56.0``) and the type came later than its floor.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from builder.catalog import Release, load_catalog, version_tuple
from builder.diagnostics import Diagnostic
from builder.lmi.rules.base import Ctx, check, rule
from builder.recipe.loader import LoadedRecipe

NEEDED = rule("trust-remote-code-needed", "a local or cached model that ships its own Python code (config.json "
              "auto_map, modeling_*.py / configuration_*.py / tokenization_*.py) needs model.trust_remote_code: "
              "true unless the release's transformers implements its model_type; left out means false, and LMI "
              "then fails at load (a warning where the release pins only a transformers range)",
              "set model.trust_remote_code: true after reading the files the message names, or use a model "
              "without custom code", "seed guide, §6; builder/catalog/transformers_model_types.yaml")
FILES = rule("trust-remote-code-files", "model.trust_remote_code: true runs the model's own Python files at load; "
             "the warning names them", "read the named files (and pin model.revision for a Hub model)",
             "seed guide, §6")

CODE_RE = re.compile(r"^(modeling|configuration|tokenization|processing|image_processing|feature_extraction)_"
                     r"[A-Za-z0-9_]+\.py$")
CONFIGS = ("config.json", "tokenizer_config.json")
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
CONFIG_MAX = 4 << 20  # a config.json is kilobytes; a bigger one is not read for this check
MODEL_TYPES = Path(__file__).resolve().parents[2] / "catalog" / "transformers_model_types.yaml"


@lru_cache(maxsize=1)
def _implemented() -> dict[str, frozenset[str]]:
    data = yaml.safe_load(MODEL_TYPES.read_text())
    return {str(v): frozenset(x["model_types"]) for v, x in data["versions"].items()}


def native(release: Release | None, model_type: str | None) -> tuple[bool | None, str]:
    """Whether the release's transformers implements ``model_type`` (True / False / None: cannot tell),
    and the transformers version (or range) that verdict is about."""
    spec = (release.libraries.get("transformers") or "") if release else ""
    if not model_type or not spec:
        return None, spec
    table = _implemented()
    if spec in table:
        return model_type in table[spec], spec
    floor = re.search(r">=\s*([0-9][0-9.]*)", spec)
    if floor and floor.group(1) in table:
        if model_type in table[floor.group(1)]:
            return True, spec  # already in the lowest version the image may install
        newest = max(table, key=version_tuple)
        return (None if model_type in table[newest] else False), spec
    return None, spec


@dataclass
class RemoteCode:
    auto_map: dict[str, list[str]] = field(default_factory=dict)  # config file -> the modules it names
    code: list[str] = field(default_factory=list)  # modeling_*.py and friends in the folder
    python: list[str] = field(default_factory=list)  # every top-level *.py but LMI's handler model.py
    model_type: str | None = None  # config.json's

    @property
    def needed(self) -> bool:
        return bool(self.auto_map or self.code)

    def why(self) -> str:
        parts = [f"{name} has auto_map ({', '.join(mods)})" for name, mods in self.auto_map.items()]
        if self.code:
            parts.append(f"it ships {', '.join(self.code)}")
        return "; ".join(parts)

    def files_that_run(self) -> list[str]:
        # auto_map names modules of this repository ('modeling_x') or of another ('org/repo--modeling_x')
        named = {m + ".py" for mods in self.auto_map.values() for m in mods if "--" not in m and m != "auto_map"}
        out = sorted(set(self.python) | named)
        remote = sorted(m for mods in self.auto_map.values() for m in mods if "--" in m)
        return out + [f"{m} (another Hub repository)" for m in remote]


def _modules(auto_map: object) -> list[str]:
    """'AutoModelForCausalLM': 'modeling_x.XForCausalLM' -> 'modeling_x' (tokenizers give [slow, fast])."""
    mods: set[str] = set()
    values = auto_map.values() if isinstance(auto_map, dict) else []
    for v in values:
        for ref in (v if isinstance(v, list) else [v]):
            if isinstance(ref, str) and "." in ref:
                mods.add(ref.rsplit(".", 1)[0])
    return sorted(mods)


def inspect(names: list[str], read: dict[str, bytes]) -> RemoteCode:
    """What a folder with these top-level file ``names`` (and config contents ``read``) asks LMI to run."""
    found = RemoteCode()
    for name in CONFIGS:
        raw = read.get(name)
        if raw is None:
            continue
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            continue  # an unreadable config is model-weights' and the fit check's business
        if isinstance(data, dict) and data.get("auto_map"):
            found.auto_map[name] = _modules(data["auto_map"]) or ["auto_map"]
        if name == "config.json" and isinstance(data, dict) and isinstance(data.get("model_type"), str):
            found.model_type = data["model_type"]
    found.python = sorted(n for n in names if n.endswith(".py") and n != "model.py")
    found.code = [n for n in found.python if CODE_RE.match(n)]
    return found


def inspect_folder(folder: Path) -> RemoteCode:
    try:
        names = sorted(e.name for e in os.scandir(folder) if e.is_file())
    except OSError:
        return RemoteCode()
    read: dict[str, bytes] = {}
    for name in CONFIGS:
        p = folder / name
        try:
            if p.is_file() and p.stat().st_size <= CONFIG_MAX:
                read[name] = p.read_bytes()
        except OSError:
            pass
    return inspect(names, read)


def _judge(loaded: LoadedRecipe, found: RemoteCode, where: str, source_path: tuple,
           release: Release | None) -> list[Diagnostic]:
    m = loaded.recipe.model if loaded.recipe else None
    if m is None or not (found.needed or (m.trust_remote_code and found.python)):
        return []
    trust = m.trust_remote_code
    at = ("model", "trust_remote_code") if trust is not None else source_path
    builtin, tf = native(release, found.model_type)
    tf_name = f"transformers {tf}" if tf else "the image's transformers"
    if trust is True:
        files = found.files_that_run()
        if not files:
            return []
        instead = (f"; {tf_name} implements model_type '{found.model_type}' itself, which trust_remote_code: "
                   "false would load instead") if builtin and found.needed else ""
        return [loaded.at(at, FILES, f"trust_remote_code: true runs {where}'s own Python code at load: "
                          f"{', '.join(files)}; read them before you deploy"
                          + (" and pin model.revision" if m.id else "") + instead, "warning")]
    if m.entry_point or builtin:
        return []  # a custom handler loads the model its own way; a built-in type needs no remote code
    stated = "false" if trust is False else "left out, which is false (LMI's default)"
    names = ', '.join(found.files_that_run()) or 'the code it names'
    if builtin is None and found.model_type:
        unsure = "the release pins a range, and the type is newer than its floor" if tf else \
            "the catalog records no transformers version for this release"
        return [loaded.at(at, NEEDED, f"{where} ships its own Python code ({found.why()}) and trust_remote_code "
                          f"is {stated}: LMI loads it only if {tf_name} implements model_type "
                          f"'{found.model_type}' itself ({unsure}); set model.trust_remote_code: true once you "
                          f"have read {names}, or check the image's transformers version", "warning")]
    kind = f"model_type '{found.model_type}' is not built into {tf_name}" if found.model_type else \
        "config.json names no model_type"
    return [loaded.at(at, NEEDED, f"{where} needs its own Python code ({found.why()}; {kind}), but "
                      f"trust_remote_code is {stated}: LMI would fail loading it; set model.trust_remote_code: true "
                      f"once you have read {names}")]


@check("remote-code", needs=("model_path_ok",))
def check_remote_code(ctx: Ctx) -> None:
    """The local model.path folder (the path itself is checked by model-path / path-escape first)."""
    m = ctx.recipe.model
    if m.path is None:
        return
    folder = ctx.loaded.base_dir / m.path
    if not folder.is_dir():
        return
    for d in _judge(ctx.loaded, inspect_folder(folder), f"model.path '{m.path}'", ("model", "path"), ctx.release):
        ctx.add(d)


def cached_diagnostics(loaded: LoadedRecipe, cache_dir: Path | None) -> list[Diagnostic]:
    """A Hub or S3 model already in the artifact cache, read from its manifest without touching the cache."""
    from builder.paths import cache_dir as default_cache

    m = loaded.recipe.model if loaded.recipe else None
    if m is None or m.path is not None:
        return []
    root = default_cache(cache_dir) / "models"
    if not (root / "manifests").is_dir():
        return []
    from builder.artifacts.cache import Manifest

    source = f"hub:{m.id}" if m.id else (m.s3 or "")
    if source.startswith("s3://") and not source.endswith("/"):
        source += "/"
    # the manifest's name is a hash of its key (ArtifactCache._name): a pinned Hub model is one file; an
    # unpinned one or an S3 prefix (keyed by its ETags too, artifacts/s3.py) is the newest entry of that source
    key = f"{source}@{m.revision}" if m.id and m.revision and SHA_RE.match(m.revision) else None
    files = [root / "manifests" / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"] if key else \
        sorted((root / "manifests").glob("*.json"))
    best: tuple[float, Manifest] | None = None
    for p in files:
        try:
            man = Manifest.model_validate_json(p.read_text())
            mtime = p.stat().st_mtime
        except (OSError, ValueError):
            continue
        if man.source != source or (m.id and m.revision and man.revision != m.revision):
            continue
        if best is None or mtime > best[0]:
            best = (mtime, man)
    if best is None:
        return []
    man = best[1]
    top = [f for f in man.files if "/" not in f.name]
    read: dict[str, bytes] = {}
    for f in top:
        if f.name in CONFIGS and f.size <= CONFIG_MAX:
            try:
                read[f.name] = (root / "blobs" / "sha256" / f.sha256).read_bytes()
            except OSError:
                pass
    where = f"{m.id}@{man.revision[:12]}" if m.id and man.revision else source
    c = loaded.recipe.container
    return _judge(loaded, inspect([f.name for f in top], read), f"cached model {where}",
                  ("model", "id") if m.id else ("model", "s3"), load_catalog().release(c.family, c.version))
