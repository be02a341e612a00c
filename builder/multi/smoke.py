"""The smoke stage for a multi-model image: start it once, wait for /ping, check that GET /models
lists exactly the recipe's models, and send one generate per model to /predictions/<name>."""

from __future__ import annotations

import json
import re

from pydantic import BaseModel, Field

from builder import console
from builder import labels as L
from builder.diagnostics import BuilderError

STAGE = "smoke"


class ModelCheck(BaseModel):
    model: str
    ok: bool
    status: int | None = None
    detail: str = ""
    generated_text: str | None = None


class MultiSmokeResult(BaseModel):
    status: str  # "passed" | "failed"
    reason: str = ""
    time_to_ready_s: float | None = None
    listed: list[str] = Field(default_factory=list)
    checks: list[ModelCheck] = Field(default_factory=list)


def models_of(info) -> list[str]:
    """The model names a multi-model image carries ([] if none), as the one label reader parsed them."""
    return list(info.models)


def generate(url: str, name: str, body: dict, *, timeout: float) -> tuple[int, bytes]:
    from builder.smoke.http_deadline import Deadline, open_request

    with open_request("POST", f"{url}/predictions/{name}", json=body,
                      deadline=Deadline(timeout, "smoke.request_timeout_s")) as r:
        return r.status, r.body()


def judge(name: str, status: int, raw: bytes, expect_regex: str | None) -> ModelCheck:
    if status != 200:
        return ModelCheck(model=name, ok=False, status=status, detail=f"HTTP {status}: {raw[:300]!r}")
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError:
        return ModelCheck(model=name, ok=False, status=status, detail=f"not JSON: {raw[:300]!r}")
    doc = doc[0] if isinstance(doc, list) and doc else doc
    text = doc.get("generated_text") if isinstance(doc, dict) else None
    if not isinstance(text, str) or not text.strip():
        return ModelCheck(model=name, ok=False, status=status, detail=f"no generated_text in {raw[:300]!r}")
    if expect_regex and not re.search(expect_regex, text):
        return ModelCheck(model=name, ok=False, status=status, generated_text=text,
                          detail=f"generated_text does not match smoke.expect_regex {expect_regex!r}")
    return ModelCheck(model=name, ok=True, status=status, generated_text=text)


def smoke_multi(image: str, names: list[str], *, accelerators: str = "auto", client=None) -> MultiSmokeResult:
    from builder.smoke.http_deadline import Deadline, HttpFailure, open_request
    from builder.smoke.image_info import inspect_image
    from builder.smoke.serving import make_server, pick_port, wait_until_ready

    if client is None:
        from builder.engine import docker_client

        client = docker_client("smoke")
    info = inspect_image(client, image)
    settings = info.settings
    if accelerators == "auto" and info.target_kind == "cpu":
        accelerators = "none"
    box = make_server(client, info, accelerators=accelerators, port=pick_port(None), env={}, ephemeral=True)
    result = MultiSmokeResult(status="failed")
    try:
        box.start()
        try:
            result.time_to_ready_s = round(wait_until_ready(box, info), 3)
        except BuilderError as exc:
            result.reason = str(exc)
            return result
        try:
            with open_request("GET", f"{box.url}/models", deadline=Deadline(30, "GET /models")) as r:
                listed = json.loads(r.body())
            result.listed = sorted(m.get("modelName", "") for m in listed.get("models", []))
        except (HttpFailure, json.JSONDecodeError, AttributeError) as exc:
            result.reason = f"GET /models failed: {exc}"
            return result
        if result.listed != sorted(names):
            result.reason = f"GET /models lists {result.listed}, the recipe has {sorted(names)}"
            return result
        body = {"inputs": settings.prompt, "parameters": {"max_new_tokens": settings.max_new_tokens}}
        for name in names:
            try:
                status, raw = generate(box.url, name, body, timeout=settings.request_timeout_s)
                check = judge(name, status, raw, settings.expect_regex)
            except HttpFailure as exc:
                check = ModelCheck(model=name, ok=False, detail=str(exc))
            result.checks.append(check)
            console.info(f"  {name}: {'ok' if check.ok else 'FAILED'} "
                         f"{(check.generated_text or check.detail)[:80]!r}")
        bad = [c for c in result.checks if not c.ok]
        result.status = "failed" if bad else "passed"
        result.reason = "; ".join(f"{c.model}: {c.detail}" for c in bad) or \
            f"{len(names)} model(s) listed by /models, one generate each"
        return result
    finally:
        box.remove()


def predict_path(info, model: str | None) -> str:
    """The path ``lmi-build predict`` posts to: /invocations for a single-model image (``--model`` refused),
    /predictions/NAME for a multi-model one (``--model`` required, one of its names)."""
    from builder.diagnostics import UsageError

    names = models_of(info)
    if not names:
        if model:
            raise UsageError(f"--model {model}: {info.ref} is a single-model image (no {_label()} label)",
                             hint="leave --model out")
        return "/invocations"
    if not model:
        raise UsageError(f"{info.ref} serves {len(names)} models ({', '.join(names)}); name one with --model NAME")
    if model not in names:
        raise UsageError(f"--model {model}: {info.ref} serves {', '.join(names)}")
    return f"/predictions/{model}"


def curl_lines(url: str, info) -> list[str]:
    """One ready-to-paste curl line per model of a multi-model image ([] for a single-model one)."""
    import shlex

    body = json.dumps({"inputs": info.settings.prompt, "parameters": {"max_new_tokens": info.settings.max_new_tokens}})
    return [f"curl -s {url}/predictions/{name} -H 'Content-Type: application/json' -d {shlex.quote(body)}"
            for name in models_of(info)]


def _label() -> str:
    return L.MODELS


def multi_smoke_command(image: str, args) -> int | None:
    """``lmi-build smoke IMAGE`` on a multi-model image: the multi-model smoke (None: not one, run the
    single-model smoke as before)."""
    from builder.engine import docker_client
    from builder.smoke.image_info import inspect_image

    client = docker_client("smoke")
    names = models_of(inspect_image(client, image))
    if not names:
        return None
    result = smoke_multi(image, names, accelerators=args.accelerators, client=client)
    console.info(f"smoke {result.status}: {result.reason}")
    if args.report:
        from builder.atomic import write_report

        write_report(args.report, result.model_dump_json(indent=2) + "\n", stage="smoke")
    return 0 if result.status == "passed" else 1
