#!/usr/bin/env python3
"""The table of bench/methods.sh: reads its raw output folder (METHOD/metrics.jsonl, METHOD.time,
METHOD.rc, the export logs), scores held-out fact-match per method with tools/fact_match.py's own
answer() and passes() (greedy `takumi generate --chat`, max 64 tokens; the base model once), and
prints a markdown table (also written to OUT/table.md; answers to OUT/fact_match.NAME.json).
--score-only scores the methods' fact-match and prints no table (to score while others train).
Stdlib only."""
import argparse
import json
import os
import re
import sys
import time
import types

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import fact_match  # noqa: E402

G = os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")


def metrics(run):
    rows = []
    path = os.path.join(run, "metrics.jsonl")
    if os.path.exists(path):
        rows = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    start = next((r["message"] for r in rows if r.get("event") == "start"), "")
    m = re.search(r"(\d+) trainable parameters", start)
    train = [r for r in rows if "train_loss" in r]
    val = [r for r in rows if "valid_loss" in r]
    return {
        "params": int(m.group(1)) if m else None,
        "peak_rss_mb": max((r.get("peak_rss_mb", 0) for r in train), default=None),
        "tok_s": sum(r["tokens_per_s"] for r in train) / len(train) if train else None,
        "steps": train[-1]["step"] if train else 0,
        "val0": val[0]["valid_loss"] if val else None,
        "val": val[-1]["valid_loss"] if val else None,
    }


def kv(path):
    out = {}
    if os.path.exists(path):
        for line in open(path):
            if "=" in line:
                k, v = line.strip().split("=", 1)
                out[k] = int(v)
    return out


def time_rss(path):
    if not os.path.exists(path):
        return None
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(path, errors="replace").read())
    return int(m.group(1)) / 1024 if m else None


def last_err(path):
    if not os.path.exists(path):
        return ""
    lines = [x.strip() for x in open(path, errors="replace") if x.strip()]
    return lines[-1] if lines else ""


def full_model(run):
    """The model a --method full run writes (a GGUF file or an HF folder in RUN), or None."""
    for name in sorted(os.listdir(run)) if os.path.isdir(run) else []:
        p = os.path.join(run, name)
        if name.endswith(".gguf") or (os.path.isdir(p) and os.path.exists(os.path.join(p, "config.json"))):
            return p
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--methods", required=True)
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--fact", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--score-only", dest="table", action="store_false")
    a = ap.parse_args()
    methods = a.methods.split(",")
    items = fact_match.load(os.path.join(ROOT, "examples", "support", "heldout.jsonl"))
    fm = {}

    def score(name, model, adapter):
        """Answers of NAME in OUT/fact_match.NAME.json (reused when complete; another process scoring
        the same name, marked by its .part file, is waited for)."""
        path = os.path.join(a.out, f"fact_match.{name}.json")
        while os.path.exists(path + ".part"):
            time.sleep(2)
        if os.path.exists(path):
            fm[name] = json.load(open(path, encoding="utf-8"))
            if len(fm[name]) == len(items):
                return
        open(path + ".part", "w").close()
        try:
            ns = types.SimpleNamespace(takumi=os.path.join(ROOT, "build", "takumi"), model=model, max_tokens=64,
                                       threads=a.threads)
            res = []
            for it in items:
                ans = fact_match.answer(ns, it, adapter)
                res.append({"id": it["id"], "lang": it["lang"], "answer": ans,
                            "pass": fact_match.passes(ans, it["facts"])})
            with open(path, "w", encoding="utf-8") as f:
                json.dump(res, f, ensure_ascii=False, indent=1)
            fm[name] = res
        finally:
            os.remove(path + ".part")
        print(f"fact-match {name}: {sum(r['pass'] for r in res)}/{len(res)}", file=sys.stderr)

    rows = []
    for m in methods:
        if m == "base":  # --score-only --methods base: the base model's answers
            if a.fact:
                score("base", G, None)
            continue
        run = os.path.join(a.out, m)
        mt = metrics(run)
        rc = kv(os.path.join(a.out, m + ".rc"))
        adapter = os.path.join(run, "adapter")
        model, ad = (G, adapter) if os.path.isdir(adapter) else (full_model(run), None)
        if a.fact and rc.get("train_rc") == 0 and model:
            score(m, model, ad)
        rows.append((m, mt, rc, time_rss(os.path.join(a.out, m + ".time"))))
    if a.fact and a.table:
        score("base", G, None)
    if not a.table:
        return

    def fmt_fm(name):
        r = fm.get(name)
        if not r:
            return "—"
        return f"{sum(x['pass'] for x in r)}/{len(r)}"

    def yesno(rc, key, errfile):
        if key not in rc:
            return "—"
        if rc[key] == 0:
            return "yes"
        e = last_err(errfile)
        return "no" + (f" ({e[:100]})" if e else "")

    lines = [f"| method (defaults) | trainable params | peak RSS (MiB) | tokens/s (mean) | valid loss (step 0 → {a.steps or 'end'}) "
             f"| fact-match (held-out; base {fmt_fm('base')}) | merge (`export --merge`) | GGUF adapter |",
             "|---|---|---|---|---|---|---|---|"]
    for m, mt, rc, rss in rows:
        if rc.get("train_rc") != 0:
            lines.append(f"| {m} | training failed (rc {rc.get('train_rc')}; {a.out}/{m}.time) | | | | | | |")
            continue
        full = m == "full"
        lines.append("| {} | {:,} | {:.0f} | {:.1f} | {:.4f} → {:.4f} | {} | {} | {} |".format(
            m, mt["params"] or 0, rss if rss else (mt["peak_rss_mb"] or 0), mt["tok_s"] or 0,
            mt["val0"] or 0, mt["val"] or 0, fmt_fm(m),
            ("n/a (the run is the model)" if full_model(os.path.join(a.out, m)) else
             "no (the run writes no model: its weights are only in checkpoints/*/params.safetensors)")
            if full else yesno(rc, "merge_rc", os.path.join(a.out, m + ".merge.err")),
            "n/a" if full else yesno(rc, "gguf_rc", os.path.join(a.out, m + ".gguf.err"))))
    table = "\n".join(lines)
    print(table)
    with open(os.path.join(a.out, "table.md"), "w", encoding="utf-8") as f:
        f.write(table + "\n")


if __name__ == "__main__":
    main()
