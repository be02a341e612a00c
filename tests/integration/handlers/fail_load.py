"""Test handler: fails in the initialising call DJL makes at load time."""
from djl_python import Input


def _load_weights(model_dir):
    raise RuntimeError("weights are corrupt (test handler)")


def handle(inputs: Input):
    _load_weights(inputs.get_properties().get("model_dir"))
