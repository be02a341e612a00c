"""Test handler: reverses the input; jsonlines streaming when asked."""
import json

from djl_python import Input, Output


def handle(inputs: Input):
    if inputs.is_empty():
        return None
    req = inputs.get_as_json()
    text = str(req.get("inputs", ""))[::-1]
    if req.get("stream"):
        def lines():
            for i, ch in enumerate(text):
                line = {"token": {"id": i, "text": ch, "log_prob": 0.0}}
                if i == len(text) - 1:
                    line["generated_text"] = text
                yield json.dumps(line) + "\n"
        return Output().add_property("content-type", "application/jsonlines").add_stream_content(
            lines(), output_formatter=None)
    return Output().add_property("content-type", "application/json").add_as_json({"generated_text": text})
