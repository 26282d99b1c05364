#!/usr/bin/env python3
"""Checks what `takumi review --collect` wrote, computed here independently (tests/review_cli.sh,
tests/review_chromium.sh).

usage: review_expect.py DIR PAIRS JUDGEMENTS [FIELD=VALUE ...]

From PAIRS (the --page-from file: id, prompt or messages, a, b), DIR/key.json (the side system A
was shown on) and JUDGEMENTS (left/right/tie per id; a later line for an id replaces an earlier
one), works out which system won each item and compares, exactly: DIR/results.json (counts, win
rate of A with ties as half, 95% Wilson interval, to 6 decimals), DIR/preferences.jsonl (TRL
prompt/chosen/rejected, item order) and DIR/sft.jsonl (messages ending with each non-blank
correction). FIELD=VALUE pairs are further expectations on results.json (numbers or text)."""
import json
import math
import sys


def main():
    d, pairs, judgements = sys.argv[1:4]
    key = json.load(open(d + "/key.json"))
    a_side = {e["id"]: e["a"] for e in key["items"]}
    src = {r["id"]: r for r in (json.loads(l) for l in open(pairs, encoding="utf-8") if l.strip())}
    last = {}
    for l in open(judgements, encoding="utf-8"):
        if l.strip():
            j = json.loads(l)
            last[j["id"]] = j
    wins = {"a": 0, "b": 0}
    ties = 0
    pref, sft = [], []
    for e in key["items"]:
        j = last.get(e["id"])
        if not j:
            continue
        r = src[e["id"]]
        if j["choice"] == "tie":
            ties += 1
        else:
            w = "a" if j["choice"] == a_side[e["id"]] else "b"
            lose = "b" if w == "a" else "a"
            wins[w] += 1
            if "messages" in r:
                pref.append({"prompt": r["messages"], "chosen": [{"role": "assistant", "content": r[w]}],
                             "rejected": [{"role": "assistant", "content": r[lose]}]})
            else:
                pref.append({"prompt": r["prompt"], "chosen": r[w], "rejected": r[lose]})
        corr = j.get("correction") or ""
        if corr.strip():
            prompt = r["messages"] if "messages" in r else [{"role": "user", "content": r["prompt"]}]
            sft.append({"messages": prompt + [{"role": "assistant", "content": corr}]})
    n = wins["a"] + wins["b"] + ties
    p = (wins["a"] + ties / 2) / n
    z = 1.959963984540054
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    want = {"review": key["review"], "n_items": len(key["items"]), "n_judged": n, "wins_a": wins["a"],
            "wins_b": wins["b"], "ties": ties, "win_rate_a": round(p, 6),
            "ci95": [round(max(0, c - h), 6), round(min(1, c + h), 6)], "interval": "wilson", "ties_count": 0.5,
            "n_preferences": len(pref), "n_corrections": len(sft)}
    for kv in sys.argv[4:]:
        k, v = kv.split("=", 1)
        try:
            want[k] = json.loads(v)
        except ValueError:
            want[k] = v
    res = json.load(open(d + "/results.json"))
    bad = ["results.json %s: %r, want %r" % (k, res.get(k), v) for k, v in want.items() if res.get(k) != v]
    dump = lambda x: json.dumps(x, ensure_ascii=False, separators=(",", ":")) + "\n"
    for name, rows in (("preferences.jsonl", pref), ("sft.jsonl", sft)):
        got = open(d + "/" + name, encoding="utf-8").read()
        if got != "".join(map(dump, rows)):
            bad.append("%s:\n%s\nwant:\n%s" % (name, got, "".join(map(dump, rows))))
    for b in bad:
        print("FAIL", b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
