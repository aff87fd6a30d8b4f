#!/usr/bin/env python3
"""Reference sentence embeddings for all-MiniLM-L6-v2, computed without any of the crate's code.

BERT is written out here in float64 numpy straight from the safetensors file; token ids come
from the `tokenizers` PyPI package reading the same tokenizer.json, with its padding turned off
(the file pads to 128, and mean pooling over [PAD] rows would be wrong) and truncation at 256
(sentence_bert_config.json's max_seq_length). Each sentence runs alone, so no attention mask
is involved: the Rust side batches with padding, and agreeing with this checks its masking.

Run from the repository root after scripts/fetch-models.sh:
    pip install numpy tokenizers
    python3 inference-gateway/tests/reference/minilm_reference.py
It rewrites minilm_reference.json next to this file.
"""
import json
import math
import os
import struct
import sys

import numpy as np
from tokenizers import Tokenizer

MODEL_DIR = os.path.join(".cache", "models", "all-minilm-l6-v2")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "minilm_reference.json")

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Escrow vouchers pay for GPU inference in TORA.",
    "Hello, world!",
]

# Over 256 tokens: checks truncation and position embeddings far past the short sentences.
LONG_TEXT = " ".join([
    "A user signs a voucher that moves TORA from an escrow to the gateway once a request is served.",
    "The gateway counts the tokens it ran through the model and charges for exactly those.",
    "Vouchers carry a nonce, so replaying one pays nothing twice; the escrow refunds what was not spent.",
    "Embeddings come back normalised, ready for cosine similarity in any vector store.",
] * 4)

LAYERS = 6
HEADS = 12
HEAD_DIM = 32
LN_EPS = 1e-12


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32":
            continue
        start, end = info["data_offsets"]
        tensors[name] = np.frombuffer(data[start:end], dtype="<f4").reshape(info["shape"]).astype(np.float64)
    return tensors


def layer_norm(x, w, b):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + LN_EPS) * w + b


_erf = np.vectorize(math.erf)


def gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def linear(x, t, prefix):
    # PyTorch stores Linear weights as [out, in].
    return x @ t[prefix + ".weight"].T + t[prefix + ".bias"]


def embed(t, ids):
    n = len(ids)
    x = t["embeddings.word_embeddings.weight"][ids]
    x = x + t["embeddings.position_embeddings.weight"][:n]
    x = x + t["embeddings.token_type_embeddings.weight"][0]
    x = layer_norm(x, t["embeddings.LayerNorm.weight"], t["embeddings.LayerNorm.bias"])
    for l in range(LAYERS):
        p = f"encoder.layer.{l}."
        q = linear(x, t, p + "attention.self.query").reshape(n, HEADS, HEAD_DIM).transpose(1, 0, 2)
        k = linear(x, t, p + "attention.self.key").reshape(n, HEADS, HEAD_DIM).transpose(1, 0, 2)
        v = linear(x, t, p + "attention.self.value").reshape(n, HEADS, HEAD_DIM).transpose(1, 0, 2)
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(HEAD_DIM)
        scores = scores - scores.max(axis=-1, keepdims=True)
        probs = np.exp(scores)
        probs = probs / probs.sum(axis=-1, keepdims=True)
        ctx = (probs @ v).transpose(1, 0, 2).reshape(n, HEADS * HEAD_DIM)
        attn = linear(ctx, t, p + "attention.output.dense")
        x = layer_norm(x + attn, t[p + "attention.output.LayerNorm.weight"], t[p + "attention.output.LayerNorm.bias"])
        h = gelu(linear(x, t, p + "intermediate.dense"))
        out = linear(h, t, p + "output.dense")
        x = layer_norm(x + out, t[p + "output.LayerNorm.weight"], t[p + "output.LayerNorm.bias"])
    pooled = x.mean(axis=0)
    return pooled / np.linalg.norm(pooled)


def main():
    if not os.path.exists(os.path.join(MODEL_DIR, "model.safetensors")):
        sys.exit(f"{MODEL_DIR} is missing: run scripts/fetch-models.sh first")
    tok = Tokenizer.from_file(os.path.join(MODEL_DIR, "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    full_len = len(tok.encode(LONG_TEXT).ids)
    assert full_len > 256, full_len
    tok.enable_truncation(256)
    t = load_safetensors(os.path.join(MODEL_DIR, "model.safetensors"))
    def case(text):
        enc = tok.encode(text)
        return {
            "text": text,
            "tokens": enc.tokens,
            "ids": enc.ids,
            "embedding": [round(float(v), 8) for v in embed(t, enc.ids)],
        }

    long_case = case(LONG_TEXT)
    assert len(long_case["ids"]) == 256, len(long_case["ids"])
    out = {"model": "all-MiniLM-L6-v2", "cases": [case(s) for s in SENTENCES], "truncated": long_case}
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
