#!/usr/bin/env python3
"""Builds the 100k-example chat JSONL that bench/data_check.sh times `takumi data check` on.

Sources (../shared/data, never copied into git): LLaMA-Factory's alpaca_en/zh demos,
dolly15k-ja (Japanese instruction/response), gsm8k train+test (question/answer) and
glaive tool-call conversations (ShareGPT with function calls). Each record becomes an
OpenAI chat example; to reach N examples without trivial duplicates, example i >= the
number of base records gets a second user/assistant turn from another base record
(a deterministic pairing), and one of a few system prompts. Output is deterministic.

usage: bench/make_chat_100k.py OUT.jsonl [N=100000]
"""
import json
import os
import sys


def shared():
    root = os.environ.get("TAKUMI_SHARED") or os.path.join(os.path.dirname(__file__), "..", "..", "shared")
    return os.path.join(root, "data")


def base_records(d):
    recs = []
    lf = os.path.join(d, "llamafactory-demo")
    for name in ("alpaca_en_demo.json", "alpaca_zh_demo.json"):
        for r in json.load(open(os.path.join(lf, name), encoding="utf-8")):
            user = r["instruction"] + ("\n" + r["input"] if r.get("input") else "")
            recs.append([("user", user), ("assistant", r["output"])])
    with open(os.path.join(d, "dolly15k-ja", "databricks-dolly-15k-ja.jsonl"), encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            user = r["instruction"] + ("\n" + r["input"] if r.get("input") else "")
            recs.append([("user", user), ("assistant", r["output"])])
    for name in ("train.jsonl", "test.jsonl"):
        with open(os.path.join(d, "gsm8k", name), encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                recs.append([("user", r["question"]), ("assistant", r["answer"])])
    role = {"human": "user", "gpt": "assistant"}
    for r in json.load(open(os.path.join(lf, "glaive_toolcall_en_demo.json"), encoding="utf-8")):
        turns = [(role[t["from"]], t["value"]) for t in r["conversations"] if t["from"] in role]
        if turns and turns[-1][0] == "assistant":
            recs.append(turns)
    return [r for r in recs if all(t[1].strip() for t in r)]


SYSTEMS = [
    None,
    "You are a helpful assistant.",
    "You are a careful math tutor. Show your work.",
    "あなたは親切なアシスタントです。",
]


def main():
    out = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 100000
    base = base_records(shared())
    nb = len(base)
    with open(out, "w", encoding="utf-8") as f:
        for i in range(n):
            turns = list(base[i % nb])
            if i >= nb:
                turns += base[(i * 7919 + i // nb) % nb]
            sys_p = SYSTEMS[(i // 7) % len(SYSTEMS)]
            msgs = ([{"role": "system", "content": sys_p}] if sys_p else []) + [{"role": r, "content": c} for r, c in turns]
            f.write(json.dumps({"messages": msgs}, ensure_ascii=False) + "\n")
    print(f"{out}: {n} examples from {nb} base records, {os.path.getsize(out) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
