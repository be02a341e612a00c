"""Stand-in for /opt/djl/partition/trt_llm_partition.py (reference/lmi-runtime.md §11.4).

Same required arguments as the real script; writes the layout the runtime checks for, by the
tensorrt_llm version it finds (0.11.x: the v0.29.0 Triton repo; later: config.json with build_config,
§11.5), plus standin-call.json with what it received. It builds no engine.
"""

import argparse
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tensorrt_llm
from common import maybe_fail, read_properties, record

p = argparse.ArgumentParser()
p.add_argument("--properties_dir", required=True)
p.add_argument("--trt_llm_model_repo", required=True)
p.add_argument("--tensor_parallel_degree", type=int, required=True)
p.add_argument("--pipeline_parallel_degree", type=int, required=True)
p.add_argument("--model_path", default=None)
args = p.parse_args()

props = read_properties(args.properties_dir)
model = args.model_path or props.get("option.model_id")
out = args.trt_llm_model_repo
if not os.path.isfile(os.path.join(model, "config.json")):
    sys.exit(f"stand-in: {model}/config.json missing")
record(out, "trt_llm_partition", props, model)
maybe_fail(out)
opts = {k[len("option."):]: v for k, v in props.items() if k.startswith("option.")}
build = {"max_batch_size": int(opts.get("max_rolling_batch_size", 256)),
         "max_input_len": int(opts.get("max_input_len", 1024)),
         "max_seq_len": int(opts.get("max_seq_len", 2048)),
         "max_num_tokens": int(opts.get("max_num_tokens", 16384))}
ranks = args.tensor_parallel_degree * args.pipeline_parallel_degree
tok = [f for f in os.listdir(model) if f.startswith(("tokenizer", "special_tokens"))]
if tensorrt_llm.__version__.startswith("0.11."):
    repo = os.path.join(out, "tensorrt_llm")
    os.makedirs(os.path.join(repo, "1"))
    with open(os.path.join(repo, "config.pbtxt"), "w") as fh:
        fh.write('backend: "tensorrtllm"\nparameters { key: "gpt_model_path" value: { string_value: '
                 '"/opt/ml/model/tensorrt_llm/1" } }\n')
    for r in range(ranks):
        open(os.path.join(repo, "1", f"rank{r}.engine"), "wb").write(b"standin")
    for f in tok:
        shutil.copy(os.path.join(model, f), repo)
else:
    with open(os.path.join(model, "config.json")) as fh:
        pretrained = json.load(fh)
    with open(os.path.join(out, "config.json"), "w") as fh:
        json.dump({"version": tensorrt_llm.__version__, "pretrained_config": pretrained, "build_config": build}, fh)
    for r in range(ranks):
        open(os.path.join(out, f"rank{r}.engine"), "wb").write(b"standin")
    for f in tok:
        shutil.copy(os.path.join(model, f), out)
with open(os.path.join(out, "serving.properties"), "w") as fh:
    fh.writelines(f"{k}={v}\n" for k, v in props.items() if k != "option.model_id")
print(f"stand-in trt_llm_partition: tensorrt_llm {tensorrt_llm.__version__}, {ranks} rank(s) -> {out}")
