"""``python3 -m lmi_dev_frontend [serve] [-m NAME=file:DIR] [-s MODEL_STORE]``: the dev-cpu server.

Start-up order follows DJL Serving (reference/lmi-runtime.md §14): read configuration, load the model
(handler import + initialising call), and only then bind the port. A load failure prints the
handler's traceback and exits 1; a load that outlives ``option.model_loading_timeout`` exits 1 too.

Env knobs for smoke tests (development runtime only):
  LMI_DEV_LOAD_DELAY_S   seconds to sleep before loading (the port stays closed meanwhile)
  LMI_DEV_PING_STATUS    status code /ping answers with (e.g. 500) once serving
  LMI_DEV_HANG           comma list of load | ping | invocations: never answer there
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
import traceback
from urllib.parse import urlsplit

from .properties import PropertiesError, global_config, merge_model_properties, parse_properties

DEFAULT_ADDRESS = "http://0.0.0.0:8080"
DEFAULT_MODEL_STORE = "/opt/ml/model"
DEFAULT_LOADING_TIMEOUT_S = 240  # PyModel's code default (§5); the LMI images set 1200 via env


def _read_props(path: str) -> dict[str, str]:
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as fh:  # DJL reads it as UTF-8 through a Reader
        return parse_properties(fh.read())


def _model_location(args, config: dict[str, str]) -> tuple[str, str]:
    """(name, dir) of the one model: ``-m name=file:DIR`` or the model store root (§13)."""
    url = args.models or config.get("load_models")
    if url and url not in ("ALL", "NONE"):
        name, sep, rest = url.partition("=")
        if not sep:
            name, rest = "", url
        path = rest[len("file:"):] if rest.startswith("file:") else rest
        path = path.rstrip("/") or "/"
        return (name or os.path.basename(path) or "model"), path
    store = (args.model_store or config.get("model_store") or DEFAULT_MODEL_STORE).rstrip("/") or "/"
    store = store[len("file:"):] if store.startswith("file:") else store
    return os.path.basename(store) or "model", store


def store_models(args, config: dict[str, str], store: str) -> list[tuple[str, str]]:
    """The models of a multi-model store, [(name, dir)], else []: no ``-m``/``load_models`` list, no
    serving.properties at the store's root, and every entry not starting with '.' a folder -- DJL's rule
    for ``load_models=ALL`` (reference/lmi-runtime.md §13: "if every entry in it is a directory or an
    archive, each entry is loaded as its own model")."""
    url = args.models or config.get("load_models")
    if (url and url != "ALL") or not os.path.isdir(store) or os.path.isfile(os.path.join(store, "serving.properties")):
        return []
    entries = sorted(e for e in os.listdir(store) if not e.startswith("."))
    if not entries or not all(os.path.isdir(os.path.join(store, e)) for e in entries):
        return []
    return [(e, os.path.join(store, e)) for e in entries]


def _bind_address(config: dict[str, str]) -> tuple[str, int]:
    address = config.get("inference_address") or DEFAULT_ADDRESS
    parts = urlsplit(address if "://" in address else f"http://{address}")
    return parts.hostname or "0.0.0.0", parts.port or 8080


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(stream=sys.stdout, level=logging.DEBUG if os.environ.get("LMI_DEV_DEBUG") else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    log = logging.getLogger("lmi_dev_frontend")
    parser = argparse.ArgumentParser(prog="lmi-dev-frontend")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve"])
    parser.add_argument("-m", "--models", help="NAME=file:DIR of the one model")
    parser.add_argument("-s", "--model-store")
    parser.add_argument("-f", "--config-file")
    args = parser.parse_args(argv)
    env = dict(os.environ)
    # As PID 1 in a container, SIGTERM has no default action: without this, `docker stop` waits 10 s.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    try:
        conf_file = args.config_file or os.path.join(env.get("MODEL_SERVER_HOME", "/opt/djl"), "conf",
                                                     "config.properties")
        config = global_config(_read_props(conf_file), env)
        name, model_dir = _model_location(args, config)
        several = store_models(args, config, model_dir)
        if several:
            return _serve_several(several, config, env, log)
        props_path = os.path.join(model_dir, "serving.properties")
        model_props = merge_model_properties(_read_props(props_path), env)
    except (PropertiesError, OSError, ValueError) as exc:
        log.error("Invalid configuration: %s", exc)
        return 1
    if not os.path.isdir(model_dir):
        log.error("Model folder %s does not exist", model_dir)
        return 1

    from . import model as model_mod
    from .server import FrontEnd, Knobs, make_server

    knobs = Knobs(env)
    timeout = float(model_props.get("option.model_loading_timeout") or env.get("MODEL_LOADING_TIMEOUT")
                    or DEFAULT_LOADING_TIMEOUT_S)
    result: dict = {}

    def _load() -> None:
        try:
            delay = float(env.get("LMI_DEV_LOAD_DELAY_S") or 0)
            if delay > 0:
                log.info("LMI_DEV_LOAD_DELAY_S: delaying model loading by %.1f s", delay)
                time.sleep(delay)
            if "load" in knobs.hang:
                log.info("LMI_DEV_HANG=load: never finishing model loading")
                while True:
                    time.sleep(3600)
            result["model"] = model_mod.load(name, model_dir, model_props, env)
        except BaseException:  # the handler's own traceback is the useful part
            result["error"] = traceback.format_exc()

    started = time.monotonic()
    loader = threading.Thread(target=_load, name="model-loader", daemon=True)
    loader.start()
    loader.join(timeout)
    if loader.is_alive():
        log.error("Model %s did not load within %.0f s (option.model_loading_timeout)", name, timeout)
        return 1
    if "error" in result:
        sys.stdout.flush()
        sys.stderr.write(f"Failed to load model {name} from {model_dir}:\n{result['error']}")
        sys.stderr.flush()
        return 1
    log.info("Model %s loaded in %.2f s", name, time.monotonic() - started)

    host, port = _bind_address(config)
    server = make_server(host, port, FrontEnd(result["model"], config, knobs))
    log.info("Initialize BOTH server with: http://%s:%d (dev-cpu front end, djl_python %s)",
             host, port, _djl_python_version())
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _load_one(name: str, model_dir: str, model_props: dict[str, str], env: dict[str, str], knobs, timeout: float,
              log) -> object | None:
    """Load one model of a multi-model store within its loading timeout; None (logged) on failure."""
    import importlib

    from . import model as model_mod

    result: dict = {}

    def _load() -> None:
        try:
            if "load" in knobs.hang:
                while True:
                    time.sleep(3600)
            # DJL gives each model its own Python process; here they share one, so each handler is
            # imported as a fresh ``model`` module (two model.py files must not share their globals)
            sys.modules.pop("model", None)
            importlib.invalidate_caches()
            result["model"] = model_mod.load(name, model_dir, model_props, env)
        except BaseException:
            result["error"] = traceback.format_exc()

    loader = threading.Thread(target=_load, name=f"model-loader-{name}", daemon=True)
    loader.start()
    loader.join(timeout)
    if loader.is_alive():
        log.error("Model %s did not load within %.0f s (option.model_loading_timeout)", name, timeout)
        return None
    if "error" in result:
        sys.stdout.flush()
        sys.stderr.write(f"Failed to load model {name} from {model_dir}:\n{result['error']}")
        sys.stderr.flush()
        return None
    return result["model"]


def _serve_several(models: list[tuple[str, str]], config: dict[str, str], env: dict[str, str], log) -> int:
    """A multi-model store: load every model (each with its own serving.properties), then bind."""
    from .server import FrontEnd, Knobs, make_server

    knobs = Knobs(env)
    delay = float(env.get("LMI_DEV_LOAD_DELAY_S") or 0)
    if delay > 0:
        time.sleep(delay)
    loaded = []
    for name, model_dir in models:
        props = merge_model_properties(_read_props(os.path.join(model_dir, "serving.properties")), env)
        timeout = float(props.get("option.model_loading_timeout") or env.get("MODEL_LOADING_TIMEOUT")
                        or DEFAULT_LOADING_TIMEOUT_S)
        started = time.monotonic()
        one = _load_one(name, model_dir, props, env, knobs, timeout, log)
        if one is None:
            return 1  # like DJL with wait_model_loading: a model that fails to load stops the server
        log.info("Model %s loaded in %.2f s", name, time.monotonic() - started)
        loaded.append(one)
    host, port = _bind_address(config)
    server = make_server(host, port, FrontEnd(loaded, config, knobs))
    log.info("Initialize BOTH server with: http://%s:%d (dev-cpu front end, djl_python %s, %d models: %s)",
             host, port, _djl_python_version(), len(loaded), ", ".join(m.name for m in loaded))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _djl_python_version() -> str:
    return os.environ.get("DJL_PYTHON_VERSION", "unknown")


if __name__ == "__main__":
    sys.exit(main())
