"""Quickstart handler: a tiny word-level language model in numpy, served through djl_python.

Written against djl_python's handler API (``handle(inputs: Input) -> Output``) and LMI's text
generation schema (reference/lmi-runtime.md §14):

- request ``{"inputs": str | [str], "parameters": {...}, "stream": bool}``
- response ``{"generated_text": ..., "details": {...}}`` (details only with ``parameters.details``)
- streaming (``"stream": true`` or ``option.output_formatter=jsonlines``): ``application/jsonlines``,
  one ``{"token": {"id", "text", "log_prob"}}`` per line, the last line adding ``generated_text``
  (and ``details`` when asked).

Weights are read from ``model.safetensors`` with numpy alone (the runtime image has no safetensors
package): 8-byte little-endian header length, JSON header, raw little-endian data.
Generation is greedy by default; ``do_sample`` samples with ``seed`` (default 0), so every answer
is reproducible.
"""

import json
import logging
import os
import re
import struct

import numpy as np
from djl_python import Input, Output

_DTYPES = {"F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4"}


def read_safetensors(path):
    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(n))
        data = fh.read()
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        arr = np.frombuffer(data[start:end], dtype=_DTYPES[meta["dtype"]])
        out[name] = arr.reshape(meta["shape"]).astype(np.float32)
    return out


class TinyWordLM:
    def __init__(self, model_dir, properties):
        with open(os.path.join(model_dir, "tokenizer.json")) as fh:
            self.vocab = json.load(fh)["model"]["vocab"]
        with open(os.path.join(model_dir, "config.json")) as fh:
            self.config = json.load(fh)
        self.words = {i: w for w, i in self.vocab.items()}
        w = read_safetensors(os.path.join(model_dir, "model.safetensors"))
        self.embed, self.mix, self.head = w["embed.weight"], w["mix.weight"], w["lm_head.weight"]
        self.eos = self.config.get("eos_token_id")
        self.unk = self.vocab["<unk>"]
        # Special tokens other than </s> are never generated.
        self.banned = [i for w_, i in self.vocab.items() if w_.startswith("<") and i != self.eos]
        self.stream_default = properties.get("output_formatter") == "jsonlines"
        logging.info("TinyWordLM loaded: vocab %d, hidden %d", len(self.vocab), self.embed.shape[1])

    def encode(self, text):
        # Same split as the tokenizer.json Whitespace pre-tokenizer: words and punctuation runs.
        return [self.vocab.get(t, self.unk) for t in re.findall(r"\w+|[^\w\s]+", text.lower())]

    def generate(self, text, params):
        max_new = int(params.get("max_new_tokens", 30))  # LMI's default (§14)
        if max_new < 1:
            raise ValueError("max_new_tokens must be at least 1")
        ids = self.encode(text) or [self.vocab["<s>"]]
        h = self.embed[ids].mean(axis=0)
        rng = np.random.default_rng(int(params.get("seed", 0)))
        temperature = float(params.get("temperature", 1.0)) or 1.0
        tokens, finish = [], "length"
        for _ in range(max_new):
            logits = np.tanh(h @ self.mix) @ self.head
            logits[self.banned] = -np.inf
            if tokens:  # no immediate repeats: keeps the toy output readable
                logits[tokens[-1]["id"]] = -np.inf
            logp = logits - np.logaddexp.reduce(logits)
            if params.get("do_sample"):
                p = np.exp((logits - logits.max()) / temperature)
                nxt = int(rng.choice(len(p), p=p / p.sum()))
            else:
                nxt = int(np.argmax(logp))
            if nxt == self.eos:
                finish = "eos_token"
                break
            tokens.append({"id": nxt, "text": " " + self.words[nxt], "log_prob": float(logp[nxt])})
            h = 0.5 * h + 0.5 * self.embed[nxt]
        generated = "".join(t["text"] for t in tokens)
        if params.get("return_full_text"):
            generated = text + generated
        details = {"finish_reason": finish, "generated_tokens": len(tokens), "inputs": text,
                   "tokens": tokens}
        return generated, tokens, details


_model = None


def handle(inputs: Input):
    global _model
    if _model is None:
        _model = TinyWordLM(inputs.get_properties()["model_dir"], inputs.get_properties())
    if inputs.is_empty():
        return None  # the initialising call DJL makes at load time
    request = inputs.get_as_json()
    if not isinstance(request, dict) or "inputs" not in request:
        raise ValueError("request must be a JSON object with 'inputs'")
    params = request.get("parameters") or {}
    stream = bool(request.get("stream", _model.stream_default))
    prompts = request["inputs"]
    if isinstance(prompts, list):  # dynamic-batch shape: a list in, a list out (§14)
        results = []
        for prompt in prompts:
            text, _, details = _model.generate(str(prompt), params)
            results.append(_answer(text, details, params))
        return Output().add_property("content-type", "application/json").add_as_json(results)
    text, tokens, details = _model.generate(str(prompts), params)
    if not stream:
        return Output().add_property("content-type", "application/json").add_as_json(
            _answer(text, details, params))

    def lines():
        for i, tok in enumerate(tokens):
            line = {"token": tok}
            if i == len(tokens) - 1:
                line.update(_answer(text, details, params))
            yield json.dumps(line) + "\n"
        if not tokens:
            yield json.dumps(_answer(text, details, params)) + "\n"

    out = Output().add_property("content-type", "application/jsonlines")
    return out.add_stream_content(lines(), output_formatter=None)


def _answer(text, details, params):
    answer = {"generated_text": text}
    if params.get("details"):
        answer["details"] = details
    return answer
