#!/usr/bin/env bash
# DPO demo on the support example (issue 8): SmolLM2-135M-Instruct + LoRA trained with
# `takumi train --objective dpo` on examples/support/prefs_train.jsonl (100 pairs written by
# tools/make_support_prefs.py: the right fact in the shop's tone preferred over a wrong value,
# a generic or a rude answer), then, on the 25 held-out pairs (prefs_heldout.jsonl: questions,
# answer wordings, wrong values and off-tone texts that no training pair has):
#   - pref_accuracy of the base and of the tuned model (log p(chosen) > log p(rejected)), and
#     reward_accuracy of the tuned model (TRL's rewards/accuracies: the implicit DPO reward
#     log pi(chosen) - log ref(chosen) above the rejected one's, ref = the base), per kind of pair;
#   - greedy answers of the base and of the tuned model to the 24 English held-out questions of
#     examples/support/heldout.jsonl (the same questions), with their fact-match score, and four
#     of them printed side by side.
# Usage: scripts/demo_dpo_support.sh [--fresh] [--threads N]
#   RUN folder: $TAKUMI_DEMO_RUN or build/demo-dpo-support; a finished run is reused (--fresh
#   trains again), an interrupted one is continued with --resume.
# Needs: build/takumi (make), models/SmolLM2-135M-Instruct.Q4_1.gguf, python3 (stdlib only).
set -euo pipefail
cd "$(dirname "$0")/.."

run=${TAKUMI_DEMO_RUN:-build/demo-dpo-support}
model=${TAKUMI_MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
fresh=0 threads=2
while [ $# -gt 0 ]; do
  case "$1" in
    --fresh) fresh=1; shift ;;
    --threads) threads=$2; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "demo_dpo_support.sh: unknown option $1" >&2; exit 1 ;;
  esac
done
[ -x build/takumi ] || { echo "demo_dpo_support.sh: build/takumi is missing (run make)" >&2; exit 1; }
[ -f "$model" ] || { echo "demo_dpo_support.sh: $model is missing (run scripts/fetch-model.sh)" >&2; exit 1; }

train=examples/support/prefs_train.jsonl held=examples/support/prefs_heldout.jsonl
echo "== preference pairs (tools/make_support_prefs.py; deterministic)"
python3 tools/make_support_prefs.py --out "$(mktemp -d)" > /dev/null   # still generates without error
for f in "$train" "$held"; do
  ./build/takumi data check "$f" | grep -E '^(format|records|verdict)' | sed "s|^|   $f: |"
done

# 100 pairs of ~130 tokens (both sides), packed 512 tokens a row, 2 rows a step: ~7 pairs a step,
# one epoch (a short run on 2 shared cores); validation (the held-out pairs: TRL's metrics as valid_*) before and after.
echo
echo "== DPO (sigmoid, beta 0.1), LoRA r 8 on all linears, on $train; validation: $held"
[ "$fresh" = 1 ] && rm -rf "$run"
t0=$(date +%s)
if [ -f "$run/adapter/adapter_config.json" ]; then
  echo "   (a finished run is there: reusing it; --fresh trains again)"
elif [ -d "$run/checkpoints" ]; then
  ./build/takumi train --out "$run" --resume --threads "$threads"
else
  ./build/takumi train --objective dpo --beta 0.1 --model "$model" --data "$train" --val "$held" --out "$run" \
    --epochs 1 --pack-len 512 --batch-size 2 --grad-accum 1 --lr 1e-3 --eval-every 15 --samples 0 --threads "$threads"
fi
t1=$(date +%s)

echo
echo "== training curve (RUN/metrics.jsonl; valid_* = the 25 held-out pairs)"
python3 - "$run/metrics.jsonl" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
print("   %5s %8s %8s %8s   %10s %9s %9s" % ("step", "loss", "acc", "margin", "valid loss", "valid acc", "v.margin"))
tr = {r["step"]: r for r in rows if "train_loss" in r}
va = {r["step"]: r for r in rows if "valid_loss" in r}
for step in sorted(set(tr) | set(va)):
    t, v = tr.get(step, {}), va.get(step, {})
    f = lambda d, k, w, p: ("%*.*f" % (w, p, d[k])) if k in d else "%*s" % (w, "")
    print("   %5d %s %s %s   %s %s %s" % (step, f(t, "train_loss", 8, 3), f(t, "rewards/accuracies", 8, 3), f(t, "rewards/margins", 8, 3),
          f(v, "valid_loss", 10, 4), f(v, "valid_rewards/accuracies", 9, 2), f(v, "valid_rewards/margins", 9, 3)))
last = max(tr.values(), key=lambda r: r["step"]) if tr else None
if last:
    print("   %d optimizer steps, %.1f min" % (last["step"], last["elapsed_s"] / 60))
EOF

echo
echo "== held-out preference pairs: base vs DPO-tuned (takumi eval)"
./build/takumi eval --model "$model" --adapter "$run/adapter" --baseline-base --data "$held" \
  --metrics pref_accuracy,reward_accuracy --threads "$threads" --quiet --out "$run/eval-prefs" | sed 's/^/   /'
python3 - "$held" "$run/eval-prefs/examples.jsonl" <<'EOF'
import json, sys
held = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
ex = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8") if l.strip()]
assert len(held) == len(ex), "examples.jsonl does not match the held-out file"
print("   by kind of rejected answer       pairs   base pref_acc   tuned pref_acc   tuned reward_acc")
for kind in ("wrong", "generic", "rude", None):
    sel = [e for h, e in zip(held, ex) if kind is None or h["kind"] == kind]
    n = len(sel)
    pa = sum(e["baseline_chosen_rejected"][0] > e["baseline_chosen_rejected"][1] for e in sel)
    pt = sum(e["chosen_rejected"][0] > e["chosen_rejected"][1] for e in sel)
    ra = sum(e["scores"]["reward_accuracy"] for e in sel)
    print("   %-32s %5d %9d/%-5d %10d/%-5d %12d/%-5d" % (kind or "all", n, pa, n, pt, n, int(ra), n))
EOF

echo
echo "== greedy answers to the 24 English held-out questions (examples/support/heldout.jsonl), base vs tuned"
python3 -c '
import json, sys
for l in open("examples/support/heldout.jsonl", encoding="utf-8"):
    r = json.loads(l)
    if r["lang"] == "en": print(json.dumps(r, ensure_ascii=False))' > "$run/heldout_en.jsonl"
./build/takumi eval --model "$model" --adapter "$run/adapter" --baseline-base --data "$run/heldout_en.jsonl" \
  --metrics fact_match --max-tokens 64 --threads "$threads" --quiet --out "$run/eval-answers" | sed 's/^/   /'
python3 - "$run/eval-answers/examples.jsonl" "$run/heldout_en.jsonl" <<'EOF'
import json, sys
ex = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
facts = {r["id"]: r["facts"] for r in map(json.loads, open(sys.argv[2], encoding="utf-8"))}
show = ["kazeyomi-en", "returns-en", "shipping_fee-en", "location-en"]
for e in ex:
    if e.get("id") not in show:
        continue
    print("\n   Q: %s   (required: %s)" % (e["prompt"], " and ".join("/".join(a) for a in facts[e["id"]])))
    print("   base  [%s]: %s" % ("PASS" if e["baseline_scores"]["fact_match"] else "fail", e["baseline_answer"].strip().replace("\n", " ")))
    print("   tuned [%s]: %s" % ("PASS" if e["scores"]["fact_match"] else "fail", e["answer"].strip().replace("\n", " ")))
EOF
t2=$(date +%s)
echo
echo "demo time: training $((t1 - t0)) s, evaluation $((t2 - t1)) s"
