"""The HTTP side of DJL Serving's contract for one model (reference/lmi-runtime.md §14).

- The model is loaded BEFORE the socket is bound: during loading a client gets connection refused.
- ``GET /ping``: 200 ``{"<model>": {"status": "Healthy"}}`` when ready.
- ``POST /invocations`` (also ``/predictions/<model>``, ``/models/<model>/invoke``,
  ``/v1/chat/completions``): body to the handler as content ``data``; the handler's ``Output``
  code, properties (as headers) and content come back. A streaming ``Output`` is sent chunked,
  ``application/jsonlines`` unless the handler names another content type.
- ``GET /models``, ``GET /models/<model>``: the management listing.
- Several models (a model store whose entries are all folders, §13): ``/predictions/<model>`` and
  ``/models/<model>/invoke`` address one; ``/invocations`` takes the name from ``model_name`` (query
  or header, as DJL's ``InferenceRequestHandler.handleInvocations`` reads it) or from SageMaker's
  ``X-Amzn-SageMaker-Target-Model`` header, else answers 400 "Parameter model_name is required.".
- Front-end errors use DJL's ``{"code", "type", "message"}`` body; handler errors keep LMI's
  ``{"code": 424, "message": "invoke handler failure", "error": ...}``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from .model import LoadedModel, invoke

log = logging.getLogger("lmi_dev_frontend")
access = logging.getLogger("lmi_dev_frontend.access")

_HOP_BY_HOP = {"content-length", "transfer-encoding", "connection", "keep-alive"}


class Knobs:
    """Failure modes for smoke tests, from env (documented in docs/runtime.md)."""

    def __init__(self, env: dict[str, str]):
        self.ping_status = int(env.get("LMI_DEV_PING_STATUS") or 0) or None
        self.hang = {h.strip() for h in (env.get("LMI_DEV_HANG") or "").split(",") if h.strip()}


TARGET_MODEL_HEADER = "X-Amzn-SageMaker-Target-Model"


class FrontEnd:
    def __init__(self, model: LoadedModel | list[LoadedModel], config: dict[str, str], knobs: Knobs):
        models = model if isinstance(model, list) else [model]
        self.models: dict[str, LoadedModel] = {m.name: m for m in models}
        self.model = models[0]  # the one model of a single-model store
        self.knobs = knobs
        self.queue_size = int(config.get("job_queue_size") or self.model.options.get("job_queue_size") or 1000)
        self.max_request_size = int(config.get("max_request_size") or 64 * 1024 * 1024)
        self.waiting = 0
        self.waiting_lock = threading.Lock()


def make_server(host: str, port: int, frontend: FrontEnd) -> ThreadingHTTPServer:
    handler = type("Handler", (_Handler,), {"frontend": frontend})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def _hang_forever() -> None:
    while True:
        time.sleep(3600)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "lmi-dev-frontend"
    frontend: FrontEnd

    # --- routing -----------------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        self._started = time.monotonic()
        self._status = 0
        self._sent = 0
        path = urlsplit(self.path).path.rstrip("/") or "/"
        parts = [p for p in path.split("/") if p]
        models = self.frontend.models
        try:
            if parts == ["ping"] and method in ("GET", "POST"):
                self._ping()
            elif (parts in (["invocations"], ["v1", "chat", "completions"])
                  or (len(parts) in (2, 3) and parts[0] == "predictions")
                  or (len(parts) == 3 and parts[0] == "models" and parts[2] == "invoke")):
                if method != "POST":
                    self._error(405, "MethodNotAllowedException", "Method not allowed")
                else:
                    target = self._target(parts)
                    if target is not None:
                        self._invoke(target)
            elif parts == ["models"] and method == "GET":
                self._json(200, {"models": [{"modelName": m.name, "modelUrl": f"file:{m.model_dir}/",
                                             "status": "READY"} for m in models.values()]})
            elif len(parts) == 2 and parts[0] == "models" and method == "GET":
                if parts[1] not in models:
                    self._error(404, "ModelNotFoundException", f"Model not found: {parts[1]}")
                else:
                    self._json(200, [self._describe(models[parts[1]])])
            else:
                self._error(404, "ResourceNotFoundException",
                            "Requested resource is not found, please refer to API document.")
        finally:
            ms = (time.monotonic() - self._started) * 1000
            access.info('%s "%s %s %s" %d %.1fms %dB', self.client_address[0], method, self.path,
                        self.request_version, self._status, ms, self._sent)

    # --- routes ------------------------------------------------------------------
    def _target(self, parts: list[str]) -> LoadedModel | None:
        """The model a request addresses (None: an error was sent). A path names it; /invocations reads
        ``model_name`` (query, then header, like DJL) or SageMaker's target-model header."""
        models = self.frontend.models
        if parts[0] in ("predictions", "models"):
            name = parts[1]
        elif len(models) == 1:  # one model: /invocations serves it whatever a request names, as before
            return self.frontend.model
        else:
            query = parse_qs(urlsplit(self.path).query)
            name = (query.get("model_name") or [""])[0] or self.headers.get("model_name") \
                or self.headers.get(TARGET_MODEL_HEADER) or ""
            if not name:
                self._error(400, "BadRequestException", "Parameter model_name is required.")
                return None
            if name not in models and name.endswith(".tar.gz"):  # an MME TargetModel names the archive
                name = name[:-len(".tar.gz")]
        if name not in models:
            self._error(404, "ModelNotFoundException", f"Model not found: {name}")
            return None
        return models[name]

    def _ping(self) -> None:
        if "ping" in self.frontend.knobs.hang:
            _hang_forever()
        status = self.frontend.knobs.ping_status
        names = list(self.frontend.models)
        if status and status != 200:
            self._json(status, {name: {"status": "Unhealthy"} for name in names})
        else:
            self._json(200, {name: {"status": "Healthy"} for name in names})

    def _describe(self, m: LoadedModel) -> dict:
        return {"modelName": m.name, "modelUrl": f"file:{m.model_dir}/", "minWorkers": 1, "maxWorkers": 1,
                "batchSize": 1, "maxBatchDelayMillis": 100, "maxIdleSeconds": 60,
                "queueSize": self.frontend.queue_size, "requestInQueue": self.frontend.waiting,
                "status": "Healthy", "loadedAtStartup": True,
                "workerGroups": [{"device": {"deviceType": "cpu", "deviceId": -1},
                                  "workers": [{"id": 1, "status": "READY"}]}],
                "entryPoint": m.entry_point, "devRuntime": True}

    def _invoke(self, model: LoadedModel) -> None:
        fe = self.frontend
        length = int(self.headers.get("Content-Length") or 0)
        if length > fe.max_request_size:
            self._error(413, "BadRequestException", f"Request too large: {length} > {fe.max_request_size}",
                        close=True)
            return
        body = self.rfile.read(length) if length else b""
        if not body:
            self._error(400, "BadRequestException", "Invalid request body: empty")
            return
        # Like DJL's Java side, the body is not parsed here: a bad JSON body is the handler's to
        # reject (LMI answers 424 with the handler's message).
        with fe.waiting_lock:
            if fe.waiting >= fe.queue_size:
                self._error(503, "ServiceUnavailableException", "Worker queue capacity exceeded")
                return
            fe.waiting += 1
        try:
            if "invocations" in fe.knobs.hang:
                _hang_forever()
            props = {k.lower(): v for k, v in self.headers.items()}
            props.setdefault("content-type", "application/json")
            with model.lock:
                output = invoke(model, props, body)
                self._send_output(output)
        finally:
            with fe.waiting_lock:
                fe.waiting -= 1

    # --- responses ---------------------------------------------------------------
    def _send_output(self, output) -> None:
        headers = {str(k).lower(): str(v) for k, v in output.properties.items()
                   if str(k).lower() not in _HOP_BY_HOP}
        if output.stream_content is not None:
            headers.setdefault("content-type", "application/jsonlines")
            self._status = output.code
            self.send_response(output.code, output.message)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self._stream(output)
            return
        body = b"".join(bytes(output.content.value_at(i)) for i in range(output.content.size()))
        if output.code == 204:
            body = b""
        if "content-type" not in headers and body:
            headers["content-type"] = "application/json" if body[:1] in (b"{", b"[") else "text/plain"
        self._raw(output.code, body, headers, reason=output.message)

    def _stream(self, output) -> None:
        try:
            while True:
                try:
                    item = next(output.stream_content)
                except StopIteration:
                    break
                if output.stream_output_formatter is not None:
                    item = output.stream_output_formatter(item)
                data = _as_bytes(item, output)
                if data:
                    self._chunk(data)
        except Exception:
            # DJL cannot change the status once streaming started; the client sees a cut stream.
            log.exception("Failed read streaming content from output")
            self.close_connection = True
            return
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        try:
            output.execute_finalize()
        except Exception:
            log.exception("Failed on finalize function")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()
        self._sent += len(data)

    def _json(self, code: int, doc) -> None:
        self._raw(code, json.dumps(doc, indent=2).encode() + b"\n", {"content-type": "application/json"})

    def _error(self, code: int, kind: str, message: str, *, close: bool = False) -> None:
        if close:
            self.close_connection = True
        self._json(code, {"code": code, "type": kind, "message": message})

    def _raw(self, code: int, body: bytes, headers: dict[str, str], reason: str | None = None) -> None:
        self._status = code
        self.send_response(code, reason if reason and reason.isprintable() and "\n" not in reason else None)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if body:
            self.wfile.write(body)
        self._sent = len(body)

    def log_message(self, fmt: str, *args) -> None:  # the access line above replaces http.server's
        if os.environ.get("LMI_DEV_DEBUG"):
            log.debug(fmt, *args)


def _as_bytes(item, output) -> bytes:
    if isinstance(item, str):
        return item.encode("utf-8")
    if isinstance(item, (bytes, bytearray)):
        return bytes(item)
    return bytes(output._encode_json(item))
