#!/usr/bin/env python3
"""Reference log-likelihoods for `takumi eval`'s multiple choice (tests/eval_cli.sh): for every record of
tests/fixtures/eval/mc.jsonl, the log-probability of " " + choice after the question, computed as
lm-evaluation-harness does (context and context + continuation encoded whole without special tokens, the
continuation = the tokens past the context's; trailing white space of the context moves to the continuation),
by HF transformers on stories260K (../shared/models/stories260K/hf, f32). Token ids come from `takumi tokenize
--no-special` (takumi's tokenizer is checked against the reference tokenizers elsewhere; transformers cannot read
llama2.c's tokenizer.bin). Writes tests/fixtures/eval/mc_reference.json.

Usage: python3 tools/make_eval_reference.py [--takumi build/takumi] [--shared ../shared]
"""
import argparse
import json
import os
import subprocess

import torch
from transformers import AutoModelForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ids(args, text):
    s = os.path.join(args.shared, "models/stories260K")
    out = subprocess.run([args.takumi, "tokenize", "--model", s + "/hf", "--tokenizer", s + "/llama2c/tok512.bin", "--no-special", text],
                         check=True, capture_output=True, text=True).stdout.split()
    return [int(x) for x in out]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--takumi", default=os.path.join(ROOT, "build/takumi"))
    ap.add_argument("--shared", default=os.path.join(ROOT, "../shared"))
    args = ap.parse_args()
    model = AutoModelForCausalLM.from_pretrained(os.path.join(args.shared, "models/stories260K/hf"), torch_dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    out = []
    for line in open(os.path.join(ROOT, "tests/fixtures/eval/mc.jsonl")):
        rec = json.loads(line)
        ctx = rec["question"]
        stripped = ctx.rstrip()
        lps = []
        for c in rec["choices"]:
            a = ids(args, stripped)
            w = ids(args, ctx + " " + c)
            assert w[:len(a)] == a, (ctx, c)
            with torch.no_grad():
                logits = model(torch.tensor([w])).logits[0].double()
            lp = torch.log_softmax(logits, -1)
            lps.append(sum(lp[t - 1, w[t]].item() for t in range(len(a), len(w))))
        out.append({"question": ctx, "choice_logp": lps})
    with open(os.path.join(ROOT, "tests/fixtures/eval/mc_reference.json"), "w") as f:
        json.dump({"model": "stories260K hf f32", "items": out}, f, indent=1)
        f.write("\n")
    print("wrote tests/fixtures/eval/mc_reference.json:", len(out), "items")


if __name__ == "__main__":
    main()
