"""Test handler: a mid-generation error, as LMI reports it (HTTP 200, finish_reason "error")."""
import json

from djl_python import Input, Output


def handle(inputs: Input):
    if inputs.is_empty():
        return None
    req = inputs.get_as_json()
    last = {"token": {"id": 1, "text": " partial", "log_prob": -0.5}, "generated_text": " partial",
            "details": {"finish_reason": "error", "generated_tokens": 1}}
    if req.get("stream"):
        def lines():
            yield json.dumps({"token": {"id": 0, "text": " x", "log_prob": -0.1}}) + "\n"
            yield json.dumps(last) + "\n"
        return Output().add_property("content-type", "application/jsonlines").add_stream_content(
            lines(), output_formatter=None)
    return Output().add_property("content-type", "application/json").add_as_json(
        {"generated_text": " partial", "details": {"finish_reason": "error", "generated_tokens": 1}})
