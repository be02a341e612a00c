"""Test handler: a jsonlines stream with a broken line and no final generated_text."""
import json

from djl_python import Input, Output


def handle(inputs: Input):
    if inputs.is_empty():
        return None

    def lines():
        yield json.dumps({"token": {"id": 0, "text": " a", "log_prob": -0.1}}) + "\n"
        yield '{"token": {"id": 1, "text": " b"\n'
        yield json.dumps({"token": {"id": 2, "text": " c", "log_prob": -0.1}}) + "\n"
    return Output().add_property("content-type", "application/jsonlines").add_stream_content(
        lines(), output_formatter=None)
