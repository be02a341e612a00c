"""Judging LMI generation answers: every way an answer can be wrong (reference/lmi-runtime.md §14)."""

from __future__ import annotations

import json

import pytest

from builder.smoke.judge import judge_expectations, judge_response, judge_stream


def _body(doc) -> bytes:
    return json.dumps(doc).encode()


def test_object_with_details_passes():
    g = judge_response(200, "application/json", _body(
        {"generated_text": "Deep learning is", "details": {"finish_reason": "length", "generated_tokens": 3}}))
    assert g.ok and g.text == "Deep learning is" and g.tokens == 3 and g.tokens_source == "details"


def test_list_form_passes():
    g = judge_response(200, "application/json", _body([{"generated_text": "hello"}]))
    assert g.ok and g.text == "hello" and g.tokens is None
    assert "list form" in g.checks[0].detail


@pytest.mark.parametrize("doc, words", [
    ({"generated_text": ""}, "generated_text is empty"),
    ({"generated_text": "   "}, "generated_text is empty"),
    ({"generated_text": None}, "no generated_text string"),
    ({"text": "x"}, "no generated_text string"),
    ([], "expected an object"),
    ({"generated_text": "half", "details": {"finish_reason": "error"}}, "finish_reason is 'error'"),
    ({"error": "Input too long", "code": 424}, "Input too long (code 424)"),
])
def test_bad_answers_fail(doc, words):
    g = judge_response(200, "application/json", _body(doc))
    assert not g.ok and words in g.checks[0].detail


def test_http_error_reports_status_and_body():
    body = _body({"code": 424, "message": "invoke handler failure", "error": "handler exploded"})
    g = judge_response(424, "application/json", body)
    assert not g.ok
    assert g.checks[0].detail.startswith("HTTP 424:") and "handler exploded" in g.checks[0].detail


def test_http_error_with_empty_body():
    g = judge_response(503, "", b"")
    assert "HTTP 503: (empty body)" in g.checks[0].detail


def test_not_json_fails():
    g = judge_response(200, "text/plain", b"<html>oops</html>")
    assert not g.ok and "not JSON" in g.checks[0].detail and "oops" in g.checks[0].detail


def _lines(*docs, prefix=""):
    return [prefix + json.dumps(d) for d in docs]


def test_jsonlines_stream_passes_and_counts_token_lines():
    lines = _lines({"token": {"id": 1, "text": "a"}}, {"token": {"id": 2, "text": " b"}},
                   {"token": {"id": 3, "text": " c"}, "generated_text": "a b c"})
    g = judge_stream(200, "application/jsonlines", lines)
    assert g.ok and g.text == "a b c" and g.tokens == 3 and g.tokens_source == "token lines"


def test_sse_stream_passes():
    lines = _lines({"token": {"id": 1, "text": "a"}}, {"token": {"id": 2, "text": "b"}, "generated_text": "ab",
                                                       "details": {"finish_reason": "eos_token",
                                                                   "generated_tokens": 2}}, prefix="data: ")
    g = judge_stream(200, "text/event-stream", ["", *lines, ""])
    assert g.ok and g.tokens == 2 and g.tokens_source == "details"


@pytest.mark.parametrize("ctype, lines, words", [
    ("application/jsonlines", ['{"token": {"id": 1}}', "not json", '{"generated_text": "x"}'], "line 2 is not JSON"),
    ("application/jsonlines", ['{"token": {"id": 1, "text": "a"}}'], "carries no generated_text"),
    ("application/jsonlines", [], "no lines"),
    ("application/jsonlines", ['{"token": {"id": 1}}', '{"generated_text": "a", "details": {"finish_reason": "error"}}'],
     "finish_reason 'error'"),
    ("application/jsonlines", ['{"token": {"id": 1}}', '{"generated_text": ""}'], "empty"),
    ("application/jsonlines", ['{"error": "CUDA OOM", "code": 507}'], "CUDA OOM"),
    ("application/json", ['{"generated_text": "a"}'], "expected application/jsonlines"),
    ("application/jsonlines", ["[1, 2]"], "not a JSON object"),
])
def test_bad_streams_fail(ctype, lines, words):
    g = judge_stream(200, ctype, lines)
    assert not g.ok and words in g.checks[0].detail, g.checks[0].detail


def test_stream_http_error_uses_body():
    g = judge_stream(400, "application/json", [], body_if_error=b'{"code":400,"message":"Parameter model_name"}')
    assert "HTTP 400" in g.checks[0].detail and "model_name" in g.checks[0].detail


def test_expectations():
    g = judge_response(200, "application/json", _body({"generated_text": "Deep learning is a kind of ML"}))
    checks = judge_expectations(g, expect_regex=r"(?i)deep\s+learning", min_tokens=10)
    assert checks[0].ok and "Deep learning" in checks[0].detail
    assert not checks[1].ok and "whitespace words" in checks[1].detail  # 7 words < 10, server gave no count
    checks = judge_expectations(g, expect_regex=r"^GPU", min_tokens=None)
    assert len(checks) == 1 and not checks[0].ok


def test_expectations_skip_failed_answers():
    g = judge_response(500, "", b"boom")
    assert judge_expectations(g, expect_regex="x", min_tokens=3) == []
