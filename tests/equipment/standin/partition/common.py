"""Shared by the stand-in partition tools (runs inside the stand-in image or locally; stdlib only)."""

import json
import os
import sys


def read_properties(folder):
    props = {}
    with open(os.path.join(folder, "serving.properties")) as fh:
        for line in fh:
            line = line.strip()
            if line and not line.startswith(("#", "!")):
                key, _, value = line.partition("=")
                props[key.strip()] = value.strip().replace("\\:", ":").replace("\\=", "=")
    return props


def record(out_dir, tool, props, model_dir):
    """What the tool received, for the tests to assert on (argv, mounts' writability, devices, user)."""
    data = {
        "tool": tool, "argv": sys.argv[1:], "properties": props,
        "model_dir": model_dir, "model_files": sorted(os.listdir(model_dir)) if model_dir else [],
        "model_writable": bool(model_dir) and os.access(model_dir, os.W_OK),
        "uid": os.getuid(), "gid": os.getgid(),
        "neuron_devices": sorted(d for d in os.listdir("/dev") if d.startswith("neuron")),
        "env": {k: v for k, v in os.environ.items() if k.startswith(("STANDIN_", "HF_", "OPTION_"))},
    }
    with open(os.path.join(out_dir, "standin-call.json"), "w") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)


def maybe_fail(out_dir):
    """STANDIN_FAIL=1: leave half an output behind and fail, like a compile that dies midway."""
    if os.environ.get("STANDIN_FAIL") == "1":
        with open(os.path.join(out_dir, "rank0.engine.partial"), "wb") as fh:
            fh.write(b"\0" * 1024)
        print("stand-in: simulated failure", file=sys.stderr)
        sys.exit(3)
