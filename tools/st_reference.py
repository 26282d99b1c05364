#!/usr/bin/env python3
"""Reference safetensors file written by the `safetensors` package itself (not by takumi),
read by tests/test_safetensors.c in every run: F32, F16, BF16, F64, I8, I16, I32, I64,
0-4 dimensions, an empty tensor, metadata. Values follow val(i) below, which the C test
recomputes. Also a two-shard set with the index file transformers' save_pretrained writes.

Usage: python3 tools/st_reference.py   (needs torch + safetensors + transformers)
"""
import json
import os
import tempfile

import torch
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "hf")


def val(i):
    return ((i * 7919) % 1000) / 64.0 - 7.5  # exact in f32; the same formula as the C test


def vals(n):
    return torch.tensor([val(i) for i in range(n)], dtype=torch.float64)


def main():
    t = {
        "f32.2d": vals(12).float().reshape(3, 4),
        "f16.3d": vals(24).half().reshape(2, 3, 4),
        "bf16.1d": vals(7).bfloat16(),
        "f64.1d": vals(5),
        "i8.4d": (torch.arange(24) - 12).to(torch.int8).reshape(1, 2, 3, 4),
        "i16.1d": (torch.arange(3) * 9000 - 9000).to(torch.int16),
        "i32.2d": (torch.arange(6) * 1000003 - 7).to(torch.int32).reshape(2, 3),
        "i64.0d": torch.tensor(-(1 << 40), dtype=torch.int64),
        "empty": torch.zeros(0, 5),
    }
    path = os.path.join(OUT, "reference.safetensors")
    save_file(t, path, metadata={"format": "pt", "writer": "safetensors " + __import__("safetensors").__version__})
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")

    # a sharded checkpoint exactly as transformers writes one (tiny Llama, 2 shards)
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=24, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64)
    model = LlamaForCausalLM(cfg)
    shard_dir = os.path.join(OUT, "sharded")
    os.makedirs(shard_dir, exist_ok=True)
    for f in os.listdir(shard_dir):
        os.remove(os.path.join(shard_dir, f))
    model.save_pretrained(shard_dir, max_shard_size="4KB", safe_serialization=True)
    for f in os.listdir(shard_dir):
        if f.endswith(".json") and f != "model.safetensors.index.json" and f != "config.json":
            os.remove(os.path.join(shard_dir, f))  # generation_config.json: not needed
    # the C test checks every tensor against these sums (over the f32 values in order)
    sums = {k: float(v.double().sum()) for k, v in model.state_dict().items() if k != "lm_head.weight" or not cfg.tie_word_embeddings}
    with open(os.path.join(shard_dir, "sums.json"), "w") as f:
        json.dump(sums, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {shard_dir}: {sorted(os.listdir(shard_dir))}")


if __name__ == "__main__":
    main()
