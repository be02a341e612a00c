"""Test handler: a 200 answer with empty generated text."""
from djl_python import Input, Output


def handle(inputs: Input):
    if inputs.is_empty():
        return None
    return Output().add_property("content-type", "application/json").add_as_json(
        {"generated_text": "", "details": {"finish_reason": "length", "generated_tokens": 0}})
