"""The tiny example model and the quickstart handler (run through djl_python's own TestHandler)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from safetensors import safe_open

from builder.diagnostics import BuilderError
from builder.examples.files import write_safetensors
from builder.examples.quickstart import weights, write_example_model
from builder.paths import REPO_DIR


def test_weights_round_trip_through_the_safetensors_package(tmp_path):
    from safetensors.numpy import load_file

    write_example_model(tmp_path)
    loaded = load_file(str(tmp_path / "model.safetensors"))
    for name, arr in weights().items():
        np.testing.assert_array_equal(loaded[name], arr)
    config = json.loads((tmp_path / "config.json").read_text())
    vocab = json.loads((tmp_path / "tokenizer.json").read_text())["model"]["vocab"]
    assert config["vocab_size"] == len(vocab) == loaded["embed.weight"].shape[0]


def test_the_same_bytes_from_every_process(tmp_path):
    # safetensors writes several __metadata__ entries in a per-process random order (#584): fresh
    # interpreters, not one process twice, are what would tell the committed copy from a rewrite
    code = "import sys; from builder.examples.quickstart import write_example_model; write_example_model(sys.argv[1])"
    for i in range(4):
        subprocess.run([sys.executable, "-c", code, str(tmp_path / str(i))], check=True, cwd=REPO_DIR, timeout=60)
    data = {(tmp_path / str(i) / "model.safetensors").read_bytes() for i in range(4)}
    assert len(data) == 1
    with safe_open(str(tmp_path / "0" / "model.safetensors"), "np") as f:
        assert f.metadata() == {"format": "np"}


def test_the_writer_refuses_metadata_it_would_write_in_random_order(tmp_path):
    write_safetensors(tmp_path / "one.safetensors", {"x": np.zeros(2, np.float32)}, {"format": "np"})
    with pytest.raises(ValueError, match="one metadata entry at most"):
        write_safetensors(tmp_path / "two.safetensors", {"x": np.zeros(2, np.float32)},
                          {"format": "np", "generator": "lmi-builder"})
    assert not (tmp_path / "two.safetensors").exists()


def test_refuses_to_overwrite_without_force(tmp_path):
    write_example_model(tmp_path)
    with pytest.raises(BuilderError, match="already holds") as info:
        write_example_model(tmp_path)
    assert "--force" in info.value.hint
    write_example_model(tmp_path, force=True)


_DRIVER = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from djl_python.test_model import TestHandler, create_json_request, extract_output_as_string
h = TestHandler("model.py", sys.argv[2])
from djl_python import Input
h.inference(Input())  # the initialising call
req = json.loads(sys.argv[3])
out = h.inference(create_json_request(req))
if out.stream_content is not None:
    print(json.dumps({"code": out.code, "lines": [l for l in out.stream_content]}))
else:
    print(json.dumps({"code": out.code, "body": extract_output_as_string(out)}))
"""


@pytest.fixture
def djl_python_dir():
    from builder.runtime.lmi_check import extracted_djl_python

    root = extracted_djl_python()
    if root is None:
        pytest.skip("djl_python jar not cached; run `lmi-build runtime fetch`")
    return root


def _run(djl_python_dir, model_dir, request) -> dict:
    proc = subprocess.run([sys.executable, "-c", _DRIVER, str(djl_python_dir), str(model_dir), json.dumps(request)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_quickstart_handler_lmi_schema(tmp_path, djl_python_dir):
    write_example_model(tmp_path)
    shutil.copy(REPO_DIR / "recipes/examples/quickstart/model.py", tmp_path / "model.py")
    req = {"inputs": "deep learning inference", "parameters": {"max_new_tokens": 5, "details": True}}
    res = _run(djl_python_dir, tmp_path, req)
    assert res["code"] == 200
    body = json.loads(res["body"])
    assert body["details"]["finish_reason"] == "length" and body["details"]["generated_tokens"] == 5
    assert body["generated_text"] == "".join(t["text"] for t in body["details"]["tokens"])
    plain = json.loads(_run(djl_python_dir, tmp_path, {"inputs": "deep learning inference",
                                                      "parameters": {"max_new_tokens": 5}})["body"])
    assert plain == {"generated_text": body["generated_text"]}  # no details unless asked

    streamed = _run(djl_python_dir, tmp_path, {**req, "stream": True})
    lines = [json.loads(x) for x in streamed["lines"]]
    assert [x["token"]["text"] for x in lines] == [t["text"] for t in body["details"]["tokens"]]
    assert lines[-1]["generated_text"] == body["generated_text"]
