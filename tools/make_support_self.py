#!/usr/bin/env python3
"""Self-training data from examples/support (the invented bicycle shop): questions without answers.

Usage: make_support_self.py OUT_DIR [QUESTIONS_PER_FACT]
Writes, for the English questions of every fact that has checkable keywords:
  OUT_DIR/prompts.jsonl   the first QUESTIONS_PER_FACT (default 2) training wordings, OpenAI RFT format
                          ({"messages": [system, user], "facts": [[alternatives], ...]}): no answer anywhere
  OUT_DIR/heldout.jsonl   the held-out wording of each fact (examples/support/heldout.jsonl), same format
  OUT_DIR/facts.md        the shop's facts as a short sheet (a context document: what the company has)
  OUT_DIR/grader.json     the command grader tools/fact_grader.py (fraction of the required facts stated)
Stdlib only; deterministic.
"""
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "examples", "support"))
import make_support_data as sd  # noqa: E402


def rec(q, facts):
    return {"messages": [{"role": "system", "content": sd.SYSTEM["en"]}, {"role": "user", "content": q}], "facts": facts}


def main():
    out = sys.argv[1]
    k = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    os.makedirs(out, exist_ok=True)
    facts = [f for f in sd.FACTS if f.get("en_k")]
    with open(os.path.join(out, "prompts.jsonl"), "w", encoding="utf-8") as fp:
        for f in facts:
            for q in f["en_q"][:k]:
                fp.write(json.dumps(rec(q, f["en_k"]), ensure_ascii=False) + "\n")
    with open(os.path.join(out, "heldout.jsonl"), "w", encoding="utf-8") as fp:
        for f in facts:
            fp.write(json.dumps(rec(f["en_q"][5], f["en_k"]), ensure_ascii=False) + "\n")
    with open(os.path.join(out, "facts.md"), "w", encoding="utf-8") as fp:
        fp.write("Hanamori Cycle facts:\n")
        for f in sd.FACTS:
            fp.write(f"- {f['table'][0]}: {f['table'][1]}\n")
    with open(os.path.join(out, "grader.json"), "w") as fp:
        json.dump({"type": "command", "name": "facts", "command": ["python3", os.path.join(ROOT, "tools", "fact_grader.py")],
                   "timeout_s": 20}, fp)
    print(f"{len(facts) * k} prompts, {len(facts)} held-out questions")


if __name__ == "__main__":
    main()
