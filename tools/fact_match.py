#!/usr/bin/env python3
"""Fact-match score of a model (and optionally the same model with a LoRA adapter) on
held-out questions: each question of a held-out JSONL file ({"id", "lang", "system",
"question", "facts": [[alternatives], ...]}, e.g. examples/support/heldout.jsonl) is answered
greedily by `takumi generate --chat`; an answer passes when it contains, for every entry of
"facts", at least one of its alternatives after normalisation (NFKC, lower case, commas and
spaces removed, dashes / wave dashes unified: "¥4,980" matches "4980", "2〜4" matches "2-4"),
a number never matching inside a longer number ("330" does not match "3,300").

Stdlib only (a fresh machine has python3 but no torch): the answers come from the takumi
binary. With --adapter, every question is answered by the base model and by base + adapter,
side by side, and both scores are printed; --json writes every answer and verdict.

Usage:
  python3 tools/fact_match.py --heldout examples/support/heldout.jsonl [--model M] [--adapter RUN/adapter]
         [--takumi build/takumi] [--max-tokens 64] [--threads N] [--json out.json] [--quiet]
"""
import argparse
import json
import os
import subprocess
import sys
import time
import unicodedata

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def norm(s):
    s = unicodedata.normalize("NFKC", s).lower()
    for d in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u301c\uff5e~":
        s = s.replace(d, "-")
    return s.replace(",", "").replace(" ", "")


def contains(a, k):
    """k occurs in a, and a number is not part of a longer one ("330" is not in "3300")."""
    start = 0
    while True:
        i = a.find(k, start)
        if i < 0:
            return False
        before = a[i - 1] if i > 0 else ""
        after = a[i + len(k)] if i + len(k) < len(a) else ""
        if not (k[0].isdigit() and before.isdigit()) and not (k[-1].isdigit() and after.isdigit()):
            return True
        start = i + 1


def passes(answer, facts):
    a = norm(answer)
    return all(any(contains(a, norm(x)) for x in alts) for alts in facts)


def answer(args, item, adapter):
    cmd = [args.takumi, "generate", "--chat", "--temperature", "0", "--max-tokens", str(args.max_tokens),
           "--system", item["system"], "--prompt", item["question"]]
    if args.model:
        cmd += ["--model", args.model]
    if adapter:
        cmd += ["--adapter", adapter]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        sys.exit(f"fact_match: takumi failed on {item['id']}: {r.stderr.decode('utf-8', 'replace').strip()}")
    return r.stdout.decode("utf-8", "replace").strip()


def load(path):
    items = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            it = json.loads(line)
            for k in ("id", "lang", "system", "question", "facts"):
                if k not in it:
                    sys.exit(f"fact_match: {path}:{n}: missing \"{k}\"")
            items.append(it)
    return items


def short(s, n=70):
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 1] + "…"


def summary(results, names):
    print()
    for name in names:
        for lang in ("en", "ja", None):
            sel = [r for r in results if lang is None or r["lang"] == lang]
            if not sel:
                continue
            k = sum(r[name]["pass"] for r in sel)
            label = {"en": "English", "ja": "Japanese", None: "all"}[lang]
            print(f"fact-match {name:5s} {label:8s}: {k:3d} / {len(sel):3d} = {k / len(sel):.3f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--heldout", default=os.path.join(ROOT, "examples", "support", "heldout.jsonl"))
    ap.add_argument("--model", default=None, help="base model (default: takumi's default model)")
    ap.add_argument("--adapter", default=None, help="LoRA adapter: compare base and base + adapter")
    ap.add_argument("--takumi", default=os.path.join(ROOT, "build", "takumi"))
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--json", default=None, help="write every answer and verdict here")
    ap.add_argument("--quiet", action="store_true", help="only the scores")
    ap.add_argument("--rescore", default=None, help="score the answers of an earlier --json file again (no generation)")
    args = ap.parse_args()
    if args.rescore:
        old = json.load(open(args.rescore, encoding="utf-8"))
        for r in old["results"]:
            for name in ("base", "tuned"):
                if name in r:
                    r[name]["pass"] = passes(r[name]["answer"], r["facts"])
        summary(old["results"], [n for n in ("base", "tuned") if n in old["results"][0]])
        return
    items = load(args.heldout)
    runs = [("base", None)] + ([("tuned", args.adapter)] if args.adapter else [])
    results = []
    t0 = time.time()
    for it in items:
        row = {"id": it["id"], "lang": it["lang"], "question": it["question"], "facts": it["facts"]}
        for name, ad in runs:
            a = answer(args, it, ad)
            row[name] = {"answer": a, "pass": passes(a, it["facts"])}
        results.append(row)
        if not args.quiet:
            need = " + ".join("/".join(alts) for alts in it["facts"])
            print(f"[{it['id']}] {it['question']}   (needs: {need})")
            for name, _ in runs:
                r = row[name]
                print(f"   {name:5s} {'PASS' if r['pass'] else 'fail'}  {short(r['answer'])}")
            sys.stdout.flush()
    dt = time.time() - t0
    summary(results, [name for name, _ in runs])
    print(f"({len(items)} questions x {len(runs)} model{'s' if len(runs) > 1 else ''}, greedy, "
          f"max {args.max_tokens} tokens, {dt:.0f} s)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"heldout": args.heldout, "model": args.model, "adapter": args.adapter, "results": results}, f,
                      ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
