#!/usr/bin/env python3
"""Reference RoPE tables from Hugging Face transformers (LlamaRotaryEmbedding), for
tests/test_ops.c: cos/sin at a few positions for default, linear and Llama-3 scaling.
Writes tests/fixtures/ops/rope_hf.txt. Usage: python3 tools/make_rope_fixture.py"""
import torch
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

CASES = [
    # name, theta, head_dim, scaling dict (None = default)
    ("none", 100000.0, 64, None),
    ("linear", 10000.0, 32, {"rope_type": "linear", "factor": 2.0}),
    ("llama3", 500000.0, 64, {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                              "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}),
]
POS = [0, 1, 7, 100, 1000, 5000, 8191, 30000]

def main():
    out = []
    for name, theta, d, sc in CASES:
        params = {"rope_type": "default", "rope_theta": theta} if sc is None else dict(sc, rope_theta=theta)
        cfg = LlamaConfig(hidden_size=d * 4, num_attention_heads=4, head_dim=d, max_position_embeddings=131072,
                          rope_parameters=params)
        emb = LlamaRotaryEmbedding(cfg)
        pos = torch.tensor([POS])
        x = torch.zeros(1, len(POS), d)
        cos, sin = emb(x, pos)  # [1, P, d], halves layout: [freqs, freqs]
        f = sc or {}
        out.append("case %s %r %d %r %r %r %d %d" % (name, theta, d, f.get("factor", 0.0), f.get("low_freq_factor", 0.0),
                   f.get("high_freq_factor", 0.0), f.get("original_max_position_embeddings", 0), len(POS)))
        for i, p in enumerate(POS):
            c = cos[0, i, : d // 2].tolist()
            s = sin[0, i, : d // 2].tolist()
            out.append("%d %s %s" % (p, " ".join("%.9g" % v for v in c), " ".join("%.9g" % v for v in s)))
    with open("tests/fixtures/ops/rope_hf.txt", "w") as fh:
        fh.write("# cos/sin (first D/2) from transformers %s LlamaRotaryEmbedding; tools/make_rope_fixture.py\n" % __import__("transformers").__version__)
        fh.write("\n".join(out) + "\n")

if __name__ == "__main__":
    main()
