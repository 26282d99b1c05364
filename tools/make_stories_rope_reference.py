#!/usr/bin/env python3
"""Reference logits for RoPE scaling from HF transformers: the real stories260K weights
(../shared/models/stories260K/hf) with config.json's rope_scaling set to Llama-3 scaling
(factor 8, low_freq_factor 1, high_freq_factor 4, original_max_position_embeddings 64 —
with head_dim 8 the four frequencies then fall in all three regimes: kept, smoothed,
divided) and to linear scaling (factor 2). Full logits at every 8th position of the
golden sequence (BOS + 64 greedy ids) are written to tests/fixtures/model/stories_rope_ref.json,
read by tests/test_model_arch.c.

Usage: python3 tools/make_stories_rope_reference.py [../shared]
"""
import json
import os
import shutil
import sys
import tempfile

import torch
from transformers import AutoModelForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCALINGS = {
    "llama3": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 64},
    "linear": {"rope_type": "linear", "factor": 2.0},
}
POSITIONS = list(range(0, 65, 8))


def main():
    shared = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared")
    src = os.path.join(shared, "models", "stories260K")
    seq = json.load(open(os.path.join(src, "llama2c", "golden_logits_and_loss.json")))["seq"]
    torch.set_num_threads(2)
    out = {"source": "transformers %s, torch %s, float32" % (__import__("transformers").__version__, torch.__version__),
           "seq": seq, "positions": POSITIONS, "cases": []}
    for name, rs in SCALINGS.items():
        with tempfile.TemporaryDirectory() as d:
            cfg = json.load(open(os.path.join(src, "hf", "config.json")))
            cfg["rope_scaling"] = rs
            json.dump(cfg, open(os.path.join(d, "config.json"), "w"))
            shutil.copy(os.path.join(src, "hf", "model.safetensors"), d)
            model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
            with torch.no_grad():
                logits = model(torch.tensor([seq])).logits[0]
        out["cases"].append({"name": name, "rope_scaling": rs,
                             "logits": [[round(float(x), 6) for x in logits[p]] for p in POSITIONS]})
        print(name, "done", file=sys.stderr)
    path = os.path.join(ROOT, "tests", "fixtures", "model", "stories_rope_ref.json")
    json.dump(out, open(path, "w"), separators=(",", ":"))


if __name__ == "__main__":
    main()
