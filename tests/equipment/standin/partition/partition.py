"""Stand-in for /opt/djl/partition/partition.py with the Transformers-NeuronX handler (§11.2, §11.3).

Checks what the real tool requires (serving.properties, an entry point, save_mp_checkpoint_path) and
writes the Neuron layout: config.json with a "neuron" block, checkpoint/, compiled/VERSION + a NEFF.
"""

import argparse
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import neuronxcc
from common import maybe_fail, read_properties, record

p = argparse.ArgumentParser()
p.add_argument("--model-dir", dest="properties_dir", default="/opt/ml/input/data/training")
p.add_argument("--model-id")
p.add_argument("--engine")
p.add_argument("--save-mp-checkpoint-path")
p.add_argument("--tensor-parallel-degree", type=int)
p.add_argument("--pipeline-parallel-degree", type=int)
p.add_argument("--skip-copy", action="store_true")
p.add_argument("--quantization", choices=["awq", "fp8"])
args = p.parse_args()

props = read_properties(args.properties_dir)
save = args.save_mp_checkpoint_path or props.get("option.save_mp_checkpoint_path")
if not save:
    sys.exit("Please specify save_mp_checkpoint_path")
if not (props.get("option.entryPoint") or os.environ.get("DJL_ENTRY_POINT")):
    sys.exit("Please specify engine")
model = args.model_id or props["option.model_id"]
record(save, "partition", props, model)
maybe_fail(save)
with open(os.path.join(model, "config.json")) as fh:
    cfg = json.load(fh)
tp = args.tensor_parallel_degree or int(props.get("option.tensor_parallel_degree", 1))
cfg["neuron"] = {"auto_cast_type": props.get("option.dtype", "fp16"), "compiler_type": "neuronx-cc",
                 "compiler_version": neuronxcc.__version__, "num_cores": tp,
                 "batch_size": int(props.get("option.max_rolling_batch_size", 1)),
                 "sequence_length": int(props.get("option.n_positions", 128))}
os.makedirs(os.path.join(save, "checkpoint"))
os.makedirs(os.path.join(save, "compiled"))
with open(os.path.join(save, "config.json"), "w") as fh:
    json.dump(cfg, fh)
for f in os.listdir(model):
    if f.endswith((".safetensors", ".json")):
        shutil.copy(os.path.join(model, f), os.path.join(save, "checkpoint"))
open(os.path.join(save, "compiled", "VERSION"), "w").write(neuronxcc.__version__)
open(os.path.join(save, "compiled", "graph.neff"), "wb").write(b"standin")
with open(os.path.join(save, "serving.properties"), "w") as fh:
    skip = ("option.model_id", "option.save_mp_checkpoint_path")
    fh.writelines(f"{k}={v}\n" for k, v in props.items() if k not in skip)
print(f"stand-in partition: neuronx-cc {neuronxcc.__version__}, tp={tp} -> {save}")
