#!/usr/bin/env python3
"""Derive the ``option.*`` keys each LMI release reads, from the release's own sources (issue 16 item 3).

    python scripts/derive_keys.py --djl-serving /path/to/djl-serving[.git] --vllm-sdists DIR \
        [--release lmi-27.0.0 ...] [--vllm-arg-utils lmi-27.0.0=FILE ...] [-o builder/catalog/keys] [--check]

For each release of ``builder/catalog/releases.derived.yaml`` (its branch and bundled vLLM version come from
there) it reads, with ``git show BRANCH:PATH`` (nothing is checked out, nothing of djl-serving is copied):

* the properties managers (``djl_python/properties_manager/*.py``): every class-body field of the pydantic
  classes (with their bases), the ``Field(alias=...)`` of each (the field name counts too only where the
  class allows ``populate_by_name``), and the literal keys a class reads from ``properties`` or
  ``self.__pydantic_extra__`` in its validators; a key a ``mode='before'`` validator always overwrites
  (``model_id_or_path``) is not a key a user can set;
* the handlers and the async service (``huggingface.py``, ``lmi_vllm/vllm_async_service.py``, the modules
  they import among ``lmcache_utils`` and ``session_manager``, ``tensorrt_llm.py``, ...): literal keys read
  as ``properties.get("k")``, ``properties["k"]`` or ``"k" in properties``;
* for vLLM, where ``VllmRbProperties`` keeps extra keys ``if k in EngineArgs.__annotations__`` (0.32.0 on),
  every class-body annotated name of ``class EngineArgs`` in the bundled vLLM's ``vllm/engine/arg_utils.py``
  (exactly ``EngineArgs.__annotations__``). The file is read from the PyPI sdist
  ``DIR/vllm-<version>.tar.gz`` (one member, never extracted to disk; its sha256 is recorded), or, for a dev
  build (``0.23.1.dev4+gcd87ce883``: the local version names a vLLM commit, not on PyPI), from the file
  given with ``--vllm-arg-utils RELEASE=FILE``, which must be ``arg_utils.py`` at that commit. Without one,
  the release is written with ``engine_args: unknown`` (the rules then keep needing ``pass_through`` for
  keys outside the properties classes): a neighbouring version's file is never substituted;
* the Java front end's keys: ``builder/lmi/keys.py::PYTHON_ENGINE`` (PyModel / PyEnv, cited there);
* what ``rolling_batch=auto`` becomes (``wlm/.../LmiConfigRecommender.java``) and whether the default
  entry point forces async mode (``engines/python/.../PyModel.java``), with the line of each.

One YAML file per release goes to ``builder/catalog/keys/`` with provenance (branch, commit, vLLM version
and source); ``builder/lmi/keys.py`` reads them. ``--check`` re-derives and exits 1 when a committed file
differs. Sdists: ``pip download`` cannot fetch vLLM sdists without building them; fetch the file named
in PyPI's simple index for ``vllm`` (``https://pypi.org/simple/vllm/``) and check its sha256 there.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import io
import re
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))  # scripts/, also when a test loads this file by path
from upstream_git import Repo, is_repository

ROOT = Path(__file__).resolve().parent.parent
PY = "engines/python/setup/djl_python"
MANAGERS = f"{PY}/properties_manager"
RECOMMENDER = "wlm/src/main/java/ai/djl/serving/wlm/LmiConfigRecommender.java"
PYMODEL = "engines/python/src/main/java/ai/djl/python/engine/PyModel.java"
ASYNC_ENTRY = "djl_python.lmi_vllm.vllm_async_service"
# Modules a handler may import whose key reads count as the handler's (reference §2).
FOLLOW = {"djl_python.lmcache_utils": f"{PY}/lmcache_utils.py", "djl_python.session_manager": f"{PY}/session_manager.py"}
# Names a handler keeps the serving properties under.
PROPS_NAMES = re.compile(r"^(properties|props|properties_dict|model_properties)$")

# What each mode of a family is made of: properties classes, then handler files. A class or file a branch
# does not have is left out of that release's mode (and a mode with no class of its own is not written).
MODES: dict[str, dict[str, dict[str, list[str]]]] = {
    "lmi": {
        "disable": {"classes": ["Properties", "HuggingFaceProperties"], "files": [f"{PY}/huggingface.py"]},
        "vllm": {"classes": ["Properties", "HuggingFaceProperties", "VllmRbProperties"],
                 "files": [f"{PY}/huggingface.py"]},
        "async": {"classes": ["Properties", "HuggingFaceProperties", "VllmRbProperties"],
                  "files": [f"{PY}/lmi_vllm/vllm_async_service.py"]},
        "lmi-dist": {"classes": ["Properties", "HuggingFaceProperties", "LmiDistRbProperties"],
                     "files": [f"{PY}/huggingface.py"]},
        "scheduler": {"classes": ["Properties", "SchedulerRbProperties"], "files": [f"{PY}/huggingface.py"]},
    },
    "tensorrt-llm": {
        "trtllm": {"classes": ["Properties", "TensorRtLlmProperties"],
                   "files": [f"{PY}/tensorrt_llm.py", f"{PY}/lmi_trtllm/trtllm_async_service.py"]},
    },
    "neuronx": {
        "tnx": {"classes": ["Properties", "TransformerNeuronXProperties"], "files": [f"{PY}/transformers_neuronx.py"]},
        "vllm": {"classes": ["Properties", "VllmRbProperties"], "files": [f"{PY}/transformers_neuronx.py"]},
        "lmi-dist": {"classes": ["Properties", "LmiDistRbProperties"], "files": [f"{PY}/transformers_neuronx.py"]},
    },
}
# Where a family's key set is known to be a lower bound, and why (the rules add the hand-typed list then).
INCOMPLETE = {
    "tensorrt-llm": "the build-time keys are read by serving/docker/partition/trt_llm_partition.py and (0.29-0.32) "
                    "tensorrt_llm_toolkit, which this script does not parse",
}


# ---------------------------------------------------------------- reading Python sources (ast, never import)

@dataclass
class PydanticClass:
    name: str
    file: str
    bases: list[str]
    fields: dict[str, str | None] = field(default_factory=dict)  # field -> alias
    config: dict[str, Any] = field(default_factory=dict)  # literal ConfigDict(...) arguments
    reads: set[str] = field(default_factory=set)  # literal keys read from properties / __pydantic_extra__
    overwritten: set[str] = field(default_factory=set)  # properties['k'] = ... in a mode='before' validator
    engine_args_passthrough: bool = False  # ... if k in EngineArgs.__annotations__


def _literal_keys(node: ast.AST) -> set[str]:
    """Keys read as ``X.get("k")``, ``X["k"]`` (load) or ``"k" in X`` where X is a properties mapping."""
    out: set[str] = set()

    def is_props(expr: ast.AST) -> bool:
        if isinstance(expr, ast.Name):
            return bool(PROPS_NAMES.match(expr.id))
        if isinstance(expr, ast.Attribute):
            return expr.attr == "__pydantic_extra__" or bool(PROPS_NAMES.match(expr.attr))
        return False

    for n in ast.walk(node):
        if (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "get"
                and is_props(n.func.value) and n.args and isinstance(n.args[0], ast.Constant)
                and isinstance(n.args[0].value, str)):
            out.add(n.args[0].value)
        elif (isinstance(n, ast.Subscript) and isinstance(n.ctx, ast.Load) and is_props(n.value)
              and isinstance(n.slice, ast.Constant) and isinstance(n.slice.value, str)):
            out.add(n.slice.value)
        elif (isinstance(n, ast.Compare) and len(n.ops) == 1 and isinstance(n.ops[0], (ast.In, ast.NotIn))
              and isinstance(n.left, ast.Constant) and isinstance(n.left.value, str) and is_props(n.comparators[0])):
            out.add(n.left.value)
    return out


def _is_before_validator(fn: ast.FunctionDef) -> bool:
    for dec in fn.decorator_list:
        if isinstance(dec, ast.Call) and getattr(dec.func, "id", getattr(dec.func, "attr", "")) == "model_validator":
            if any(k.arg == "mode" and isinstance(k.value, ast.Constant) and k.value.value == "before"
                   for k in dec.keywords):
                return True
    return False


def _alias(value: ast.AST | None) -> str | None:
    if isinstance(value, ast.Call) and getattr(value.func, "id", getattr(value.func, "attr", "")) == "Field":
        for kw in value.keywords:
            if kw.arg in ("alias", "validation_alias") and isinstance(kw.value, ast.Constant):
                return str(kw.value.value)
    return None


def parse_classes(text: str, file: str) -> dict[str, PydanticClass]:
    """Every class of a properties-manager module, with its class-body fields and key reads."""
    tree = ast.parse(text, filename=file)
    classes: dict[str, PydanticClass] = {}
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        cls = PydanticClass(node.name, file, [b.id if isinstance(b, ast.Name) else getattr(b, "attr", "")
                                              for b in node.bases])
        for stmt in node.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                name = stmt.target.id
                if name.startswith("_") or "ClassVar" in ast.unparse(stmt.annotation):
                    continue
                cls.fields[name] = _alias(stmt.value)
            elif (isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "model_config"
                                                       for t in stmt.targets) and isinstance(stmt.value, ast.Call)):
                for kw in stmt.value.keywords:
                    if kw.arg and isinstance(kw.value, ast.Constant):
                        cls.config[kw.arg] = kw.value.value
            elif isinstance(stmt, ast.FunctionDef):
                cls.reads |= _literal_keys(stmt)
                if _is_before_validator(stmt):
                    for n in ast.walk(stmt):
                        if isinstance(n, ast.Assign):
                            for t in n.targets:
                                if (isinstance(t, ast.Subscript) and isinstance(t.slice, ast.Constant)
                                        and isinstance(t.slice.value, str)):
                                    cls.overwritten.add(t.slice.value)
                for n in ast.walk(stmt):
                    if (isinstance(n, ast.Compare) and isinstance(n.comparators[0], ast.Attribute)
                            and n.comparators[0].attr == "__annotations__"
                            and getattr(n.comparators[0].value, "id", "") == "EngineArgs"):
                        cls.engine_args_passthrough = True
        classes[node.name] = cls
    return classes


def class_keys(classes: dict[str, PydanticClass], name: str) -> tuple[dict[str, str], PydanticClass]:
    """key -> 'file:Class' for a class and its bases (a subclass's own declaration wins the origin)."""
    cls = classes[name]
    keys: dict[str, str] = {}
    config: dict[str, Any] = {}
    chain: list[PydanticClass] = []
    todo = [name]
    while todo:  # bases first, so the class's own config and fields override them
        c = classes.get(todo.pop())
        if c is None:
            continue
        chain.insert(0, c)
        todo.extend(b for b in c.bases if b in classes)
    for c in chain:
        config.update(c.config)
    overwritten = set().union(*(c.overwritten for c in chain))
    for c in chain:
        where = f"{Path(c.file).name}:{c.name}"
        for f_name, alias in c.fields.items():
            if alias:
                keys[alias] = where
                if config.get("populate_by_name"):
                    keys[f_name] = where
            elif f_name not in overwritten:
                keys[f_name] = where
        for k in c.reads:
            keys.setdefault(k, f"{where} (reads)")
    merged = PydanticClass(cls.name, cls.file, cls.bases, config=config,
                           engine_args_passthrough=any(c.engine_args_passthrough for c in chain))
    return keys, merged


def file_keys(text: str, file: str) -> tuple[set[str], list[str]]:
    """Literal keys a handler reads, and the FOLLOW modules it imports."""
    tree = ast.parse(text, filename=file)
    follows = []
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom) and n.module in FOLLOW:
            follows.append(n.module)
        elif isinstance(n, ast.Import):
            follows += [a.name for a in n.names if a.name in FOLLOW]
    return _literal_keys(tree), sorted(set(follows))


def engine_args_fields(text: str) -> list[str]:
    """The class-body annotated names of ``class EngineArgs`` (what ``EngineArgs.__annotations__`` holds)."""
    tree = ast.parse(text)
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "EngineArgs":
            return sorted(s.target.id for s in node.body if isinstance(s, ast.AnnAssign)
                          and isinstance(s.target, ast.Name))
    raise ValueError("no class EngineArgs in this file")


def arg_utils_from_sdist(path: Path) -> str:
    """``vllm/engine/arg_utils.py`` of an sdist, read from the tarball without extracting anything else."""
    with tarfile.open(path) as tar:
        for member in tar:
            parts = member.name.split("/")
            if member.isfile() and parts[1:] == ["vllm", "engine", "arg_utils.py"]:
                handle = tar.extractfile(member)
                assert handle is not None
                return io.TextIOWrapper(handle, encoding="utf-8").read()
    raise ValueError(f"{path}: no vllm/engine/arg_utils.py")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- vLLM versions

def vllm_build(version: str) -> tuple[str, str | None]:
    """(public version, vLLM commit or None). '+cu124' only names the CUDA variant of a published release;
    '+g<hex>' names the dev commit the wheel was built from."""
    public, _, local = version.partition("+")
    commit = next((p[1:] for p in local.split(".") if re.fullmatch(r"g[0-9a-f]{7,40}", p)), None)
    if commit is None and re.search(r"\.dev\d+|rc\d+", public) and local:
        commit = "?"  # a dev build whose local part names no commit
    return public, commit


# ---------------------------------------------------------------- Java facts

def java_facts(repo: Repo, branch: str) -> dict[str, Any]:
    """What ``rolling_batch=auto`` becomes for a text-generation model, and whether the default entry point
    forces async mode, with the lines that say so."""
    facts: dict[str, Any] = {}
    rec = repo.show(branch, RECOMMENDER)
    if rec is not None:
        lines = rec.splitlines()
        start = next((i for i, ln in enumerate(lines) if "void setRollingBatch(" in ln), None)
        if start is not None:
            end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("    }")), len(lines))
            body = lines[start:end]
            async_lines = [start + 1 + i for i, ln in enumerate(body) if '"option.async_mode", "true"' in ln]
            picks = sorted({m.group(1) for ln in body for m in [re.search(r'rollingBatch = "([\w-]+)"', ln)] if m})
            other = next((start + 1 + i for i, ln in enumerate(body) if "!isTextGenerationModel(" in ln), None)
            if async_lines:
                # Every text-generation architecture gets vLLM's async service; the only model-type branch
                # left is the fallback of architectures LMI does not optimise (HF Accelerate).
                facts["auto"] = {"text_generation": "disable + async_mode=true", "by_model_type": False,
                                 "source": f"{RECOMMENDER}:{async_lines[0]}",
                                 "other_architectures": f"disable ({RECOMMENDER}:{other})"}
            else:
                facts["auto"] = {"picks_one_of": picks, "by_model_type": True,
                                 "source": f"{RECOMMENDER}:{start + 1}"}
    model = repo.show(branch, PYMODEL)
    if model is not None:
        lines = model.splitlines()
        for i, ln in enumerate(lines):
            if ASYNC_ENTRY in ln:
                around = "\n".join(lines[max(0, i - 3):i + 3])
                forced = "setAsyncMode(true)" in "\n".join(lines[i:i + 3])
                gated = "isAsyncMode()" in around
                facts["default_entry_point"] = {
                    "vllm_async_service": "always (SERVING_FEATURES=vllm, no entryPoint)" if forced and not gated
                    else "when async_mode=true", "source": f"{PYMODEL}:{i + 1}"}
                break
    return facts


# ---------------------------------------------------------------- one release

def python_engine_keys() -> list[str]:
    sys.path.insert(0, str(ROOT))
    from builder.lmi.keys import PYTHON_ENGINE  # the Java front end's keys, cited in that module

    return sorted(PYTHON_ENGINE)


@dataclass
class EngineArgsSource:
    version: str
    text: str | None
    provenance: dict[str, str]


def engine_args_source(version: str | None, release: str, sdists: Path | None,
                       arg_utils: dict[str, Path]) -> EngineArgsSource | None:
    if not version:
        return None
    public, commit = vllm_build(version)
    if release in arg_utils:
        path = arg_utils[release]
        return EngineArgsSource(version, path.read_text(), {
            "file": "vllm/engine/arg_utils.py", "vllm_commit": commit or "(given)", "given_file_sha256": sha256(path)})
    if commit is None and sdists is not None:
        sdist = sdists / f"vllm-{public}.tar.gz"
        if sdist.is_file():
            return EngineArgsSource(version, arg_utils_from_sdist(sdist), {
                "sdist": sdist.name, "sha256": sha256(sdist), "file": "vllm/engine/arg_utils.py"})
        return EngineArgsSource(version, None, {"unknown": f"no {sdist.name} in {sdists} (PyPI sdist of {public})"})
    if commit is not None:
        return EngineArgsSource(version, None, {
            "unknown": f"dev build of vLLM commit {commit}, not on PyPI; give its vllm/engine/arg_utils.py with "
                       f"--vllm-arg-utils {release}=FILE"})
    return EngineArgsSource(version, None, {"unknown": "no --vllm-sdists directory given"})


def derive_release(repo: Repo, row: dict[str, Any], sdists: Path | None, arg_utils: dict[str, Path],
                   java_keys: list[str]) -> dict[str, Any] | None:
    family, name, branch = row["family"], row["version"], row["provenance"]["branch"]
    modes_spec = MODES.get(family)
    if modes_spec is None:
        return None
    classes: dict[str, PydanticClass] = {}
    manager_files = [f for f in repo.ls(branch, MANAGERS) if f.endswith(".py")]
    for f in manager_files:
        text = repo.show(branch, f"{MANAGERS}/{f}")
        if text is not None:
            classes.update(parse_classes(text, f"{MANAGERS}/{f}"))
    if "Properties" not in classes:
        return None

    sources: dict[str, dict[str, Any]] = {"java": {"file": "builder/lmi/keys.py:PYTHON_ENGINE (PyModel.java / "
                                                   "PyEnv.java)", "keys": java_keys}}
    source_of_class: dict[str, str] = {}
    wanted = {c for spec in modes_spec.values() for c in spec["classes"] if c in classes}
    for cname in sorted(wanted | {b for c in wanted for b in _bases(classes, c)}):
        if cname not in classes:
            continue
        keys, merged = class_keys(classes, cname)
        sid = f"class:{cname}"
        own = {k: o for k, o in keys.items() if o.split(":")[1].split(" ")[0] == cname}
        sources[sid] = {"file": classes[cname].file, "keys": sorted(own)}
        if merged.engine_args_passthrough:
            sources[sid]["extra_keys"] = "kept when in EngineArgs.__annotations__"
        elif merged.config.get("extra") == "allow":
            sources[sid]["extra_keys"] = "allowed (read by the code above)"
        source_of_class[cname] = sid

    ea = None
    if "VllmRbProperties" in classes and cname_passthrough(classes, "VllmRbProperties"):
        ea = engine_args_source(row.get("libraries", {}).get("vllm"), name, sdists, arg_utils)
        if ea is not None:
            entry: dict[str, Any] = {"vllm_version": ea.version, **ea.provenance}
            if ea.text is not None:
                entry["keys"] = engine_args_fields(ea.text)
            sources["engine_args"] = entry

    file_sources: dict[str, str] = {}
    for spec in modes_spec.values():
        for path in spec["files"]:
            todo = [path]
            while todo:
                p = todo.pop()
                if p in file_sources:
                    continue
                text = repo.show(branch, p)
                if text is None:
                    continue
                keys, follows = file_keys(text, p)
                sid = f"file:{Path(p).name}"
                sources[sid] = {"file": p, "keys": sorted(keys)}
                file_sources[p] = sid
                for mod in follows:
                    todo.append(FOLLOW[mod])
                    sources[sid].setdefault("imports", []).append(FOLLOW[mod])

    modes: dict[str, list[str]] = {}
    for mode, spec in modes_spec.items():
        own_class = spec["classes"][-1]
        if own_class not in classes:
            continue
        if mode == "async" and f"{PY}/lmi_vllm/vllm_async_service.py" not in file_sources:
            continue
        parts = ["java"]
        for cname in spec["classes"]:
            if cname in source_of_class:
                parts += [source_of_class[cname]] + [f"class:{b}" for b in _bases(classes, cname)
                                                     if f"class:{b}" in sources and f"class:{b}" not in parts]
        if cname_passthrough(classes, own_class) and "engine_args" in sources:
            parts.append("engine_args")
        todo = [p for p in spec["files"] if p in file_sources]
        while todo:
            p = todo.pop(0)
            sid = file_sources[p]
            if sid not in parts:
                parts.append(sid)
                todo += sources[sid].get("imports", [])
        modes[mode] = list(dict.fromkeys(parts))

    out: dict[str, Any] = {
        "family": family, "release": name, "djl_version": row["djl_version"],
        "provenance": {"branch": branch, "commit": repo.commit(branch)},
    }
    if family in INCOMPLETE:
        out["complete"] = False
        out["incomplete_because"] = INCOMPLETE[family]
    if "engine_args" in sources:
        out["engine_args"] = "derived" if "keys" in sources["engine_args"] else "unknown"
    out.update(java_facts(repo, branch))
    out["modes"] = modes
    out["counts"] = {m: len(mode_keys(out | {"sources": sources}, m)) for m in modes}
    out["sources"] = sources
    return out


def _bases(classes: dict[str, PydanticClass], name: str) -> list[str]:
    seen: list[str] = []
    todo = list(classes[name].bases)
    while todo:
        b = todo.pop(0)
        if b in classes and b not in seen:
            seen.append(b)
            todo += classes[b].bases
    return seen


def cname_passthrough(classes: dict[str, PydanticClass], name: str) -> bool:
    return class_keys(classes, name)[1].engine_args_passthrough


def mode_keys(data: dict[str, Any], mode: str) -> dict[str, str]:
    """key -> first source that reads it (what builder/lmi/keys.py computes from the same file)."""
    keys: dict[str, str] = {}
    for sid in data["modes"][mode]:
        for k in data["sources"][sid].get("keys", []):
            keys.setdefault(k, sid)
    return keys


def file_name(row: dict[str, Any]) -> str:
    version = row["version"]
    return f"{version}.yaml" if version.startswith(f"{row['family']}-") else f"{row['family']}-{version}.yaml"


HEADER = ("# Generated by scripts/derive_keys.py from the release's djl-serving branch (and the bundled vLLM's\n"
          "# EngineArgs): do not edit by hand; rerun it (the command is in that script's docstring).\n"
          "# modes: the sources whose keys LMI reads for each rolling_batch / handler; sources: each source's keys.\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--djl-serving", required=True, type=Path, help="djl-serving checkout or bare mirror")
    parser.add_argument("--vllm-sdists", type=Path, help="folder holding vllm-<version>.tar.gz from PyPI")
    parser.add_argument("--vllm-arg-utils", action="append", default=[], metavar="RELEASE=FILE",
                        help="vllm/engine/arg_utils.py at the commit of a dev build (not on PyPI)")
    parser.add_argument("--release", action="append", default=[], help="only these releases (default: all)")
    parser.add_argument("--releases-file", type=Path, default=ROOT / "builder/catalog/releases.derived.yaml")
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "builder/catalog/keys")
    parser.add_argument("--check", action="store_true", help="exit 1 when a committed file differs")
    args = parser.parse_args(argv)
    arg_utils: dict[str, Path] = {}
    for item in args.vllm_arg_utils:
        release, sep, path = item.partition("=")
        if not sep or not Path(path).is_file():
            parser.error(f"--vllm-arg-utils {item}: write RELEASE=FILE with an existing file")
        arg_utils[release] = Path(path)
    if not is_repository(args.djl_serving):
        parser.error(f"--djl-serving {args.djl_serving}: not a git checkout or bare repository")
    repo = Repo(args.djl_serving)
    rows = yaml.safe_load(args.releases_file.read_text())["releases"]
    wanted = set(args.release)
    unknown = wanted - {r["version"] for r in rows}
    if unknown:
        parser.error(f"--release {', '.join(sorted(unknown))}: not in {args.releases_file}")
    java_keys = python_engine_keys()
    differs = 0
    args.output.mkdir(parents=True, exist_ok=True)
    for row in rows:
        if wanted and row["version"] not in wanted:
            continue
        data = derive_release(repo, row, args.vllm_sdists, arg_utils, java_keys)
        if data is None:
            print(f"{row['family']} {row['version']}: no properties manager on {row['provenance']['branch']}; "
                  "skipped", file=sys.stderr)
            continue
        text = HEADER + yaml.safe_dump(data, sort_keys=False, width=120)
        target = args.output / file_name(row)
        counts = ", ".join(f"{m} {n}" for m, n in data["counts"].items())
        if args.check:
            same = target.is_file() and target.read_text() == text
            differs += not same
            print(f"{target}: {'up to date' if same else 'differs from what the sources say'}", file=sys.stderr)
        else:
            target.write_text(text)
            print(f"wrote {target} ({counts}; engine_args {data.get('engine_args', 'n/a')})", file=sys.stderr)
    return 1 if differs else 0


if __name__ == "__main__":
    sys.exit(main())
