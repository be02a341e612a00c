"""Test handler: loads, then raises on every request (LMI answers 424)."""
from djl_python import Input


def handle(inputs: Input):
    if inputs.is_empty():
        return None
    raise ValueError("handler exploded on request")
