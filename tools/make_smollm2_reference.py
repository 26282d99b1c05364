#!/usr/bin/env python3
"""Reference logits for SmolLM2-135M-Instruct from HF transformers, loaded from the SAME
GGUF file takumi reads (transformers dequantizes every tensor to float32 with the `gguf`
package and un-permutes llama.cpp's q/k rows), computed in float32.

Writes tests/fixtures/model/smollm2_ref.json (prompts, token ids, per position the top-5
ids/logits and the logsumexp, 20 greedy ids) and smollm2_ref_logits.bin (little-endian
f32 last-position logits of the prompts marked full_logits), read by
tests/test_model_smollm2.c.

Usage: HF_HUB_OFFLINE=1 python3 tools/make_smollm2_reference.py [models/SmolLM2-135M-Instruct.Q4_1.gguf]
"""
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "model")
N_GREEDY = 20


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
    d, f = os.path.split(os.path.abspath(path))
    torch.set_num_threads(2)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32)
    model.eval()
    assert next(model.parameters()).dtype == torch.float32

    chat = tok.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France? Answer in one short sentence."}],
        add_generation_prompt=True, tokenize=False)
    prompts = [
        # (name, text, parse special tokens, store full last-position logits)
        ("chat", chat, True, True),
        ("english", "The quick brown fox jumps over the lazy dog. Every morning, the old farmer walked "
                    "down the hill to the market, where he sold", False, True),
        ("japanese", "東京は日本の首都です。春には桜が咲き、多くの人々が公園で花見を楽しみます。", False, False),
    ]
    out = {"model": f, "source": "transformers %s, torch %s, float32, GGUF dequantized by transformers/gguf"
           % (__import__("transformers").__version__, torch.__version__), "prompts": []}
    blob = []
    offset = 0
    for name, text, special, full in prompts:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].double()  # [T, V]
        lse = torch.logsumexp(logits, dim=-1)
        top = torch.topk(logits, 5, dim=-1)
        entry = {
            "name": name, "text": text, "ids": ids,
            "top5_ids": top.indices.tolist(),
            "top5_logits": [[round(float(x), 6) for x in row] for row in top.values],
            "logsumexp": [round(float(x), 6) for x in lse],
            "max_abs_logit": [round(float(x), 6) for x in logits.abs().max(dim=-1).values],
        }
        if full:
            last = logits[-1].float().numpy().astype("<f4")
            entry["full_logits_offset"] = offset
            entry["n_vocab"] = int(last.shape[0])
            blob.append(last.tobytes())
            offset += last.nbytes
        # greedy continuation by repeated full forwards (no cache: an independent path)
        seq = list(ids)
        greedy = []
        with torch.no_grad():
            for _ in range(N_GREEDY):
                nxt = int(model(torch.tensor([seq])).logits[0, -1].argmax())
                greedy.append(nxt)
                seq.append(nxt)
        entry["greedy_ids"] = greedy
        entry["greedy_text"] = tok.decode(greedy)
        out["prompts"].append(entry)
        print(f"{name}: {len(ids)} tokens, greedy: {entry['greedy_text']!r}", file=sys.stderr)
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "smollm2_ref.json"), "w") as fp:
        json.dump(out, fp, ensure_ascii=False, indent=0)
    with open(os.path.join(OUT, "smollm2_ref_logits.bin"), "wb") as fp:
        fp.write(b"".join(blob))


if __name__ == "__main__":
    main()
