"""Loading one model through djl_python's own service loader, and invoking its handler.

Mirrors what DJL Serving's Python engine does (reference/lmi-runtime.md §5; djl_python's
``python_sync_engine.PythonSyncEngine.run_server``): resolve the entry point, import it with
``djl_python.service_loader.load_model_service``, send one initialising request whose properties are
the model's ``option.*`` keys, then turn handler results and exceptions into ``Output``s.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from dataclasses import dataclass, field

from .properties import engine_options

log = logging.getLogger("lmi_dev_frontend")

HF_DEFAULT_ENTRY_POINT = "djl_python.huggingface"


def resolve_entry_point(model_props: dict[str, str], model_dir: str, env: dict[str, str]) -> str:
    """option.entryPoint, then env DJL_ENTRY_POINT, then model.py, then the HF handler (§5)."""
    explicit = model_props.get("option.entryPoint") or env.get("DJL_ENTRY_POINT")
    if explicit:
        # A relative path with a folder part cannot be imported as a module name; give
        # service_loader the absolute file, which it loads with SourceFileLoader.
        if explicit.endswith(".py") and "/" in explicit and not os.path.isabs(explicit):
            return os.path.join(model_dir, explicit)
        return explicit
    if os.path.isfile(os.path.join(model_dir, "model.py")):
        return "model.py"
    return HF_DEFAULT_ENTRY_POINT


@dataclass
class LoadedModel:
    name: str
    model_dir: str
    entry_point: str
    handler: str
    options: dict[str, str]
    service: object
    lock: threading.Lock = field(default_factory=threading.Lock)  # one worker, like DJL's one process


def load(name: str, model_dir: str, model_props: dict[str, str], env: dict[str, str]) -> LoadedModel:
    """Import the handler and run its initialising call; raises whatever the handler raises."""
    from djl_python.inputs import Input  # imported late: the unit tests import this module without it
    from djl_python.outputs import Output
    from djl_python.service_loader import load_model_service

    options = engine_options(model_props)
    for pair in filter(None, (options.get("env") or "").split(",")):  # option.env, §5
        key, _, value = pair.partition("=")
        os.environ[key.strip()] = value.strip()
    entry_point = resolve_entry_point(model_props, model_dir, env)
    handler = options.get("handler") or "handle"
    # The Python engine runs with the model folder as cwd and on sys.path (PyEnv).
    os.chdir(model_dir)
    if model_dir not in sys.path:
        sys.path.insert(0, model_dir)
    log.info("Loading model %s from %s (entry point %s, handler %s)", name, model_dir, entry_point, handler)
    service = load_model_service(model_dir, entry_point, "-1")
    model = LoadedModel(name=name, model_dir=model_dir, entry_point=entry_point, handler=handler,
                        options=options, service=service)
    init = Input()
    init.function_name = handler
    init.properties = dict(options)
    init.properties["device_id"] = "-1"
    result = service.invoke_handler(handler, init)
    if isinstance(result, Output) and result.code >= 400:
        raise RuntimeError(f"handler initialisation returned {result.code} {result.message}: "
                           f"{_body(result)[:500]!r}")
    if result is not None and not isinstance(result, Output):
        raise RuntimeError(f"handler initialisation returned {type(result).__name__}, not Output or None")
    return model


def invoke(model: LoadedModel, properties: dict[str, str], body: bytes):
    """One request through the handler; always returns an Output (errors as LMI shapes them)."""
    from djl_python.inputs import Input
    from djl_python.outputs import Output

    inputs = Input()
    inputs.function_name = model.handler
    inputs.properties = dict(properties)
    inputs.properties["device_id"] = "-1"
    if body:
        inputs.content.add(key="data", value=body)
    try:
        outputs = model.service.invoke_handler(model.handler, inputs)
        if outputs is None:
            return Output(code=204, message="No content")
        if not isinstance(outputs, Output):
            return Output().error(f"Invalid output type: {type(outputs)}")
        return outputs
    except Exception as exc:  # the handler's failure becomes the response, as in run_server
        log.exception("Failed invoke service.invoke_handler()")
        name = type(exc).__name__
        if name in ("OutOfMemoryError", "MemoryError") or "CUDA error: out of memory" in str(exc) \
                or "No available memory for the cache blocks" in str(exc):
            out = Output(code=507, message=str(exc) or name)
            out.add_property("content-type", "application/json")
            out.add_as_json({"code": 507, "message": str(exc) or name, "error": name})
            return out
        return Output().error(str(exc))


def _body(output) -> bytes:
    return b"".join(bytes(output.content.value_at(i)) for i in range(output.content.size()))
