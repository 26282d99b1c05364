#!/usr/bin/env python3
"""Interop check of takumi's reward models (`takumi train --objective reward`): HF PEFT loads the
run's adapter folder (task_type SEQ_CLS, the score head as modules_to_save) onto
AutoModelForSequenceClassification (num_labels 1) of ../shared/models/stories260K/hf, and its
reward for every scored sequence equals `takumi reward`'s. Writes the result to
tests/fixtures/interop/reward_result.txt (and exits 1 on a failure).

What runs:
  takumi   a short LoRA reward-model run on a preference file made here (build/takumi), then
           `takumi reward --ids` on the same file: per pair the two rewards and token ids.
  HF PEFT  transformers (float32, eager attention) + peft from PyPI, HF_HUB_OFFLINE=1:
           PeftModel.from_pretrained(AutoModelForSequenceClassification(folder, num_labels=1),
           RUN/adapter); each sequence alone (batch 1, no pad token: the pooled token is the
           last one, as takumi's).
Usage: python3 tools/reward_interop_check.py [--keep DIR]
"""
import json
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("TAKUMI_SHARED", os.path.join(ROOT, "..", "shared"))
S = os.path.join(SHARED, "models", "stories260K")
BIN = os.environ.get("TAKUMI_BIN", os.path.join(ROOT, "build", "takumi"))
TOL = 1e-4


def pairs(path, n):
    names, things = "Lily Tom Sue Ben Max Mia Sam Ann".split(), "ball cat dog tree cake car boat kite".split()
    with open(path, "w") as f:
        for i in range(n):
            a, t, u = names[i % 8], things[(i * 5) % 8], things[(i * 3 + 1) % 8]
            f.write(json.dumps({"prompt": "Tell me about %s and the %s." % (a, t), "chosen": "%s had a %s. %s was happy." % (a, t, a),
                                "rejected": "%s saw a big %s. It was sad." % (a, u)}) + "\n")


def main():
    from transformers import AutoModelForSequenceClassification
    from peft import PeftModel
    import peft
    import transformers
    keep = sys.argv[sys.argv.index("--keep") + 1] if "--keep" in sys.argv else None
    tmp = keep or tempfile.mkdtemp(prefix="takumi_rm_interop_")
    data, run = os.path.join(tmp, "pairs.jsonl"), os.path.join(tmp, "run")
    pairs(data, 12)
    common = ["--model", os.path.join(S, "hf"), "--tokenizer", os.path.join(S, "llama2c", "tok512.bin"), "--max-seq-len", "160", "--threads", "1"]
    subprocess.run([BIN, "train", *common, "--data", data, "--objective", "reward", "--seed", "3", "--epochs", "2", "--lora-r", "4",
                    "--lr", "3e-3", "--samples", "0", "--out", run], check=True, stdout=subprocess.DEVNULL)
    out = subprocess.run([BIN, "reward", *common, "--adapter", os.path.join(run, "adapter"), "--data", data, "--ids"], check=True,
                         capture_output=True, text=True).stdout.splitlines()
    scored = []   # (takumi reward, ids)
    for i, line in enumerate(out):
        if line.startswith("line "):
            w = line.split()
            scored.append((float(w[3]), json.loads(out[i + 1].split(":", 1)[1])))
            scored.append((float(w[5]), json.loads(out[i + 2].split(":", 1)[1])))
    acc = [l for l in out if l.startswith("pairwise accuracy")][0]
    base = AutoModelForSequenceClassification.from_pretrained(os.path.join(S, "hf"), num_labels=1, dtype=torch.float32, attn_implementation="eager")
    model = PeftModel.from_pretrained(base, os.path.join(run, "adapter")).eval()
    cfg = json.load(open(os.path.join(run, "adapter", "adapter_config.json")))
    worst, lines = 0.0, []
    with torch.no_grad():
        for r, ids in scored:
            hf = model(input_ids=torch.tensor([ids])).logits[0, 0].item()
            err = abs(hf - r) / max(abs(hf), 1.0)
            worst = max(worst, err)
    ok = worst <= TOL and cfg["task_type"] == "SEQ_CLS" and "score" in cfg["modules_to_save"]
    lines.append("reward model interop (stories260K HF + takumi LoRA reward model, %d sequences of %d pairs)" % (len(scored), len(scored) // 2))
    lines.append("  adapter_config.json: task_type %s, modules_to_save %s" % (cfg["task_type"], cfg["modules_to_save"]))
    lines.append("  PeftModel.from_pretrained(AutoModelForSequenceClassification) rewards vs takumi reward: max rel err %.2e (tol %.0e)" % (worst, TOL))
    lines.append("  takumi reward: " + acc)
    lines.append("  %s; transformers %s, peft %s, torch %s" % ("PASS" if ok else "FAIL", transformers.__version__, peft.__version__, torch.__version__))
    text = "\n".join(lines) + "\n"
    print(text, end="")
    with open(os.path.join(ROOT, "tests", "fixtures", "interop", "reward_result.txt"), "w") as f:
        f.write(text)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
