"""Test handler: runs out of memory on every request (LMI answers 507)."""
from djl_python import Input


def handle(inputs: Input):
    if inputs.is_empty():
        return None
    raise MemoryError("no memory left for the KV cache (test handler)")
