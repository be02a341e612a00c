"""The example models ``lmi-build example-model`` writes (builder/commands/example_model.py).

``quickstart``: the tiny word-level model the quickstart handler reads with numpy;
``tiny_llama``: a tiny random ``LlamaForCausalLM`` for the HF-accelerate handler on CPU. Both are
seeded, so the committed copies under recipes/examples/ are exactly what the command writes
(tests/unit/test_example_weights.py). ``files`` holds what both write with: the folder check and
the atomic JSON and safetensors writers.
"""
