"""Pure judging of LMI generation answers (no I/O), reference/lmi-runtime.md §14, §15:

- non-streaming: HTTP 200, ``generated_text`` a non-empty string (``{...}`` or the list form
  ``[{"generated_text": ...}]`` that the HF handler and ``tgi_compat`` give, §19), and
  ``details.finish_reason`` not ``error``; a ``{"error", "code"}`` body is a failure;
- streaming: ``application/jsonlines`` (or SSE ``data:`` lines), every line JSON, the last line
  carries ``generated_text``, no ``finish_reason: error`` anywhere.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, Field

from builder.smoke.models import Check

STREAM_CONTENT_TYPES = ("application/jsonlines", "application/json-lines", "application/x-ndjson",
                        "text/event-stream")


class Generation(BaseModel):
    """What one answer said, once judged."""

    checks: list[Check] = Field(default_factory=list)
    text: str | None = None
    tokens: int | None = None  # generated tokens, when the server said (details or token lines)
    tokens_source: str = ""

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def _snippet(body: bytes | str, limit: int = 800) -> str:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def http_failure(name: str, status: int, body: bytes | str) -> Check:
    return Check(name=name, ok=False, detail=f"HTTP {status}: {_snippet(body) or '(empty body)'}")


def _first_record(doc: Any) -> dict | None:
    if isinstance(doc, dict):
        return doc
    if isinstance(doc, list) and doc and isinstance(doc[0], dict):
        return doc[0]
    return None


def _finish_reason(record: dict) -> str | None:
    details = record.get("details")
    if isinstance(details, dict):
        reason = details.get("finish_reason")
        return str(reason) if reason is not None else None
    return None


def _detail_tokens(record: dict) -> int | None:
    details = record.get("details")
    if not isinstance(details, dict):
        return None
    n = details.get("generated_tokens")
    if isinstance(n, int) and not isinstance(n, bool):
        return n
    toks = details.get("tokens")
    return len(toks) if isinstance(toks, list) else None


def _error_body(record: dict) -> str | None:
    """LMI's validation/handler error shape ``{"error": ..., "code": 4xx}`` (§14)."""
    code = record.get("code")
    if "error" in record and "generated_text" not in record:
        return f"{record.get('error')}" + (f" (code {code})" if code is not None else "")
    if isinstance(code, int) and code != 200 and "generated_text" not in record:
        return f"code {code}: {record.get('message', '')}"
    return None


def judge_response(status: int, content_type: str, body: bytes, name: str = "generate") -> Generation:
    gen = Generation()
    if status != 200:
        gen.checks.append(http_failure(name, status, body))
        return gen
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        gen.checks.append(Check(name=name, ok=False,
                                detail=f"the answer is not JSON ({exc}; content-type {content_type or 'none'}): "
                                       f"{_snippet(body)}"))
        return gen
    record = _first_record(doc)
    if record is None:
        gen.checks.append(Check(name=name, ok=False, detail=f"expected an object or [{{...}}], got {_snippet(body)}"))
        return gen
    err = _error_body(record)
    if err:
        gen.checks.append(Check(name=name, ok=False, detail=f"the server reported an error: {err}"))
        return gen
    text = record.get("generated_text")
    if not isinstance(text, str):
        gen.checks.append(Check(name=name, ok=False,
                                detail=f"no generated_text string in the answer: {_snippet(body)}"))
        return gen
    if not text.strip():
        gen.checks.append(Check(name=name, ok=False, detail="generated_text is empty"))
        return gen
    reason = _finish_reason(record)
    if reason == "error":
        gen.checks.append(Check(name=name, ok=False,
                                detail=f"details.finish_reason is 'error' (generated so far: {text[:200]!r})"))
        return gen
    gen.text = text
    gen.tokens = _detail_tokens(record)
    gen.tokens_source = "details" if gen.tokens is not None else ""
    shape = "list" if isinstance(doc, list) else "object"
    gen.checks.append(Check(name=name, ok=True,
                            detail=f"200, {len(text)} chars ({shape} form"
                                   + (f", finish_reason {reason}" if reason else ", no details")
                                   + f"): {text[:120]!r}"))
    return gen


def parse_stream_line(raw: str) -> Any:
    line = raw.strip()
    if line.startswith("data:"):  # SSE (option.output_formatter=sse, tgi_compat), §14
        line = line[len("data:"):].strip()
    return json.loads(line)


def judge_stream(status: int, content_type: str, lines: list[str], *, body_if_error: bytes = b"",
                 name: str = "generate-stream") -> Generation:
    gen = Generation()
    if status != 200:
        gen.checks.append(http_failure(name, status, body_if_error or "\n".join(lines).encode()))
        return gen
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype not in STREAM_CONTENT_TYPES:
        gen.checks.append(Check(name=name, ok=False,
                                detail=f"content-type {content_type or 'none'}, expected application/jsonlines: "
                                       f"{_snippet(chr(10).join(lines))}"))
        return gen
    records: list[dict] = []
    for i, raw in enumerate(lines, 1):
        if not raw.strip() or raw.strip().startswith((":", "event:", "id:", "retry:")):
            continue
        try:
            doc = parse_stream_line(raw)
        except json.JSONDecodeError as exc:
            gen.checks.append(Check(name=name, ok=False, detail=f"line {i} is not JSON ({exc.msg}): {raw[:200]!r}"))
            return gen
        record = _first_record(doc.get("outputs") if isinstance(doc, dict) and "outputs" in doc else doc)
        if record is None:
            gen.checks.append(Check(name=name, ok=False, detail=f"line {i} is not a JSON object: {raw[:200]!r}"))
            return gen
        err = _error_body(record)
        if err and "token" not in record:
            gen.checks.append(Check(name=name, ok=False, detail=f"line {i}: the server reported an error: {err}"))
            return gen
        if _finish_reason(record) == "error":
            gen.checks.append(Check(name=name, ok=False, detail=f"line {i}: finish_reason 'error': {raw[:200]!r}"))
            return gen
        records.append(record)
    if not records:
        gen.checks.append(Check(name=name, ok=False, detail="the stream carried no lines"))
        return gen
    last = records[-1]
    text = last.get("generated_text")
    if not isinstance(text, str):
        gen.checks.append(Check(name=name, ok=False,
                                detail=f"the last of {len(records)} lines carries no generated_text: "
                                       f"{json.dumps(last)[:300]}"))
        return gen
    if not text.strip():
        gen.checks.append(Check(name=name, ok=False, detail="generated_text on the last line is empty"))
        return gen
    token_lines = sum(1 for r in records if isinstance(r.get("token"), dict))
    gen.text = text
    gen.tokens = _detail_tokens(last)
    gen.tokens_source = "details"
    if gen.tokens is None and token_lines:
        gen.tokens, gen.tokens_source = token_lines, "token lines"
    gen.checks.append(Check(name=name, ok=True,
                            detail=f"200 {ctype}, {len(records)} lines, {token_lines} token lines: {text[:120]!r}"))
    return gen


def judge_expectations(gen: Generation, *, expect_regex: str | None, min_tokens: int | None,
                       suffix: str = "") -> list[Check]:
    out: list[Check] = []
    if gen.text is None:
        return out
    if expect_regex:
        m = re.search(expect_regex, gen.text)
        out.append(Check(name=f"expect-regex{suffix}", ok=m is not None,
                         detail=(f"/{expect_regex}/ matched {m.group(0)[:80]!r}" if m
                                 else f"/{expect_regex}/ does not match {gen.text[:300]!r}")))
    if min_tokens:
        n, source = gen.tokens, gen.tokens_source
        if n is None:  # the server did not count: whitespace words are a lower bound we can state
            n, source = len(gen.text.split()), "whitespace words (the server gave no token count)"
        out.append(Check(name=f"min-tokens{suffix}", ok=n >= min_tokens,
                         detail=f"{n} tokens ({source}), at least {min_tokens} wanted"))
    return out
