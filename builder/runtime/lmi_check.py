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
import json, sys
sys.path.insert(0, sys.argv[1])
req = json.load(sys.stdin)
try:
    import importlib
    mod = importlib.import_module("djl_python.properties_manager." + req["module"])
    cls = getattr(mod, req["cls"])
except Exception as exc:
    print(json.dumps({"ok": None, "errors": [f"{type(exc).__name__}: {exc}"]})); sys.exit(0)
try:
    cls(**req["options"])
    print(json.dumps({"ok": True, "errors": []}))
except Exception as exc:
    errs = getattr(exc, "errors", None)
    if callable(errs):
        try:
            out = []
            for e in exc.errors():
                loc = ".".join(str(p) for p in e.get("loc", ())) or "(model)"
                out.append(f"{loc}: {e.get('msg')}")
        except Exception:
            out = [str(exc)]
    else:
        out = [f"{type(exc).__name__}: {exc}"]
    print(json.dumps({"ok": False, "errors": out}))
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
              timeout: float = 60.0) -> LmiVerdict:
    """Validate engine options (``option.`` prefix optional) with LMI's own validator for ``backend``.

    Backends: ``tensorrt-llm``/``trtllm``, ``neuronx``/``tnx``, ``lmi-dist``; anything else uses the
    base ``properties.Properties``. ``vllm`` and ``hf`` validators need vllm/torch and are not run.
    """
    module, cls = VALIDATORS.get(backend, DEFAULT_VALIDATOR)
    name = f"{module}.{cls}"
    version = maven.DJL_PYTHON_VERSION
    root = extracted_djl_python(cache_dir)
    if root is None:
        return LmiVerdict(ok=None, backend=backend, validator=name, djl_python_version=version,
                          message=f"djl_python {version} is not in the cache; run `lmi-build runtime fetch` "
                                  "(needs Maven and Maven Central) and check again")
    opts = {(k[len("option."):] if k.startswith("option.") else k): str(v) for k, v in options.items()}
    req = json.dumps({"module": module, "cls": cls, "options": opts})
    try:
        proc = subprocess.run([sys.executable, "-I", "-c", _CHILD, str(root)], input=req, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return LmiVerdict(ok=None, backend=backend, validator=name, djl_python_version=version,
                          message=f"LMI's validator did not answer within {timeout:.0f} s")
    try:
        answer = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return LmiVerdict(ok=None, backend=backend, validator=name, djl_python_version=version,
                          message=f"LMI's validator failed to run: {proc.stderr.strip()[-500:]}")
    ok = answer["ok"]
    message = ("accepted" if ok else "rejected" if ok is False else "could not import the validator") + \
        f" by djl_python {version} {name}"
    return LmiVerdict(ok=ok, backend=backend, validator=name, djl_python_version=version,
                      errors=answer["errors"], message=message)
