"""A second opinion from LMI itself: run djl_python's own pydantic validators over a set of options.

The validator classes import with pydantic alone (reference/lmi-runtime.md §19), so they run in a
child process of this Python with the jar's ``djl_python`` first on ``sys.path``; nothing of the jar
is imported into the builder's own process. The verdict names the djl_python version it came from,
because other LMI releases validate differently (§2, §8).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from filelock import FileLock
from pydantic import BaseModel

from builder.runtime import maven

# backend -> (module, class) in djl_python.properties_manager (0.34.0 layout, §2, §19)
VALIDATORS: dict[str, tuple[str, str]] = {
    "tensorrt-llm": ("trt_properties", "TensorRtLlmProperties"),
    "trtllm": ("trt_properties", "TensorRtLlmProperties"),
    "neuronx": ("tnx_properties", "TransformerNeuronXProperties"),
    "tnx": ("tnx_properties", "TransformerNeuronXProperties"),
    "lmi-dist": ("lmi_dist_rb_properties", "LmiDistRbProperties"),
}
DEFAULT_VALIDATOR = ("properties", "Properties")


class LmiVerdict(BaseModel):
    ok: bool | None  # None: the check could not run (see message)
    backend: str
    validator: str = ""  # e.g. "trt_properties.TensorRtLlmProperties"
    djl_python_version: str = ""
    errors: list[str] = []
    message: str = ""


_CHILD = r"""
import json, os, sys
sys.path.insert(0, sys.argv[1])
import importlib

def one(req):
    try:
        mod = importlib.import_module("djl_python.properties_manager." + req["module"])
        cls = getattr(mod, req["cls"])
    except Exception as exc:
        return {"ok": None, "errors": [f"{type(exc).__name__}: {exc}"]}
    saved = dict(os.environ)
    os.environ.update(req.get("env") or {})  # some validators read env defaults (tnx: NEURON_*)
    try:
        cls(**req["options"])
        return {"ok": True, "errors": []}
    except Exception as exc:
        errs = getattr(exc, "errors", None)
        out = []
        if callable(errs):
            try:
                for e in exc.errors():
                    loc = ".".join(str(p) for p in e.get("loc", ())) or "(model)"
                    out.append(f"{loc}: {e.get('msg')}")
            except Exception:
                out = [str(exc)]
        else:
            out = [f"{type(exc).__name__}: {exc}"]
        return {"ok": False, "errors": out}
    finally:  # validators also write env (NEURON_CC_FLAGS): undo it for the next request
        os.environ.clear()
        os.environ.update(saved)

reqs = json.load(sys.stdin)
print(json.dumps([one(r) for r in reqs]))
"""


def extracted_djl_python(cache_dir: str | os.PathLike | None = None) -> Path | None:
    """The jar's Python files unzipped next to it in the cache (once); None without the jar."""
    jar = maven.cached_jar(cache_dir=cache_dir)
    if jar is None:
        return None
    dest = jar.path.with_name(f"djl_python-{jar.sha256[:12]}")
    if (dest / "djl_python" / "__init__.py").is_file():
        return dest
    with FileLock(str(jar.path.parent / ".lock")):
        if not (dest / "djl_python" / "__init__.py").is_file():
            tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=jar.path.parent))
            maven.extract_djl_python(jar.path, tmp)
            os.replace(tmp, dest)
    return dest


def lmi_check(backend: str, options: dict[str, str], *, cache_dir: str | os.PathLike | None = None,
              timeout: float = 60.0, env: dict[str, str] | None = None) -> LmiVerdict:
    """Validate engine options (``option.`` prefix optional) with LMI's own validator for ``backend``.

    Backends: ``tensorrt-llm``/``trtllm``, ``neuronx``/``tnx``, ``lmi-dist``; anything else uses the
    base ``properties.Properties``. ``vllm`` and ``hf`` validators need vllm/torch and are not run.
    ``env`` is the worker's environment as far as validators read it (tnx reads ``NEURON_*``).
    """
    return lmi_check_many([(backend, options)], cache_dir=cache_dir, timeout=timeout, env=env)[0]


def lmi_check_many(requests: list[tuple[str, dict[str, str]]], *, cache_dir: str | os.PathLike | None = None,
                   timeout: float = 120.0, env: dict[str, str] | list[dict[str, str]] | None = None
                   ) -> list[LmiVerdict]:
    """``lmi_check`` for many option sets in one child process (one interpreter start, one pydantic import).

    ``env`` is one mapping for all requests or one per request.
    """
    version = maven.DJL_PYTHON_VERSION
    names = [(b, *VALIDATORS.get(b, DEFAULT_VALIDATOR)) for b, _ in requests]
    if not requests:
        return []

    def fail(message: str) -> list[LmiVerdict]:
        return [LmiVerdict(ok=None, backend=b, validator=f"{m}.{c}", djl_python_version=version, message=message)
                for b, m, c in names]

    root = extracted_djl_python(cache_dir)
    if root is None:
        return fail(f"djl_python {version} is not in the cache; run `lmi-build runtime fetch` "
                    "(needs Maven and Maven Central) and check again")
    envs = env if isinstance(env, list) else [env or {}] * len(requests)
    payload = []
    for (_, module, cls), (_, options), e in zip(names, requests, envs, strict=True):
        opts = {(k[len("option."):] if k.startswith("option.") else k): str(v) for k, v in options.items()}
        payload.append({"module": module, "cls": cls, "options": opts, "env": dict(e or {})})
    try:
        proc = subprocess.run([sys.executable, "-I", "-c", _CHILD, str(root)], input=json.dumps(payload),
                              capture_output=True, text=True, timeout=timeout,
                              # a clean environment: the host's NEURON_* must not leak into tnx defaults
                              env={"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8"})
    except subprocess.TimeoutExpired:
        return fail(f"LMI's validator did not answer within {timeout:.0f} s")
    try:
        answers = json.loads(proc.stdout.strip().splitlines()[-1])
        assert isinstance(answers, list) and len(answers) == len(requests)
    except (ValueError, IndexError, AssertionError):
        return fail(f"LMI's validator failed to run: {proc.stderr.strip()[-500:]}")
    out = []
    for (backend, module, cls), answer in zip(names, answers, strict=True):
        ok = answer["ok"]
        name = f"{module}.{cls}"
        message = ("accepted" if ok else "rejected" if ok is False else "could not import the validator") + \
            f" by djl_python {version} {name}"
        out.append(LmiVerdict(ok=ok, backend=backend, validator=name, djl_python_version=version,
                              errors=answer["errors"], message=message))
    return out
