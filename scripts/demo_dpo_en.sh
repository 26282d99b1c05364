#!/usr/bin/env bash
# DPO on LLaMA-Factory's dpo_en_demo.json (issue 8): 300 English preference pairs in the
# conversations/chosen/rejected layout (../shared/data/llamafactory-demo), read as they are.
# SmolLM2-135M-Instruct + LoRA r 8 (all linears), sigmoid DPO, beta 0.1; 5% of the pairs held out
# for validation (--val-split, deterministic from the seed); sequences cut at --max-seq-len tokens
# (the pairs' median is ~1100 tokens, too long for a short CPU run), a few optimizer steps.
# Prints the training and validation curves: DPO loss and TRL's rewards/accuracies and margins.
# Usage: scripts/demo_dpo_en.sh [--fresh] [--threads N] [--steps N] [--max-seq-len N]
#   RUN folder: $TAKUMI_DEMO_RUN or build/demo-dpo-en; a finished run is reused (--fresh trains again),
#   anything else there is replaced.
# Needs: build/takumi (make), models/SmolLM2-135M-Instruct.Q4_1.gguf, ../shared/data/llamafactory-demo.
set -euo pipefail
cd "$(dirname "$0")/.."

run=${TAKUMI_DEMO_RUN:-build/demo-dpo-en}
model=${TAKUMI_MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
data=${TAKUMI_SHARED:-../shared}/data/llamafactory-demo/dpo_en_demo.json
fresh=0 threads=2 steps=30 seq=256
while [ $# -gt 0 ]; do
  case "$1" in
    --fresh) fresh=1; shift ;;
    --threads) threads=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --max-seq-len) seq=$2; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "demo_dpo_en.sh: unknown option $1" >&2; exit 1 ;;
  esac
done
[ -x build/takumi ] || { echo "demo_dpo_en.sh: build/takumi is missing (run make)" >&2; exit 1; }
[ -f "$model" ] || { echo "demo_dpo_en.sh: $model is missing (run scripts/fetch-model.sh)" >&2; exit 1; }
[ -f "$data" ] || { echo "demo_dpo_en.sh: $data is missing (../shared)" >&2; exit 1; }

echo "== $data"
./build/takumi data check "$data" | grep -E '^(format|records|verdict)' | sed 's/^/   /'
echo
echo "== DPO (sigmoid, beta 0.1), LoRA r 8, $steps steps, sequences cut at $seq tokens, 5% held out"
t0=$(date +%s)
if [ "$fresh" = 0 ] && [ -f "$run/adapter/adapter_config.json" ]; then
  echo "   (a finished run is there: reusing it; --fresh trains again)"
else
  rm -rf "$run"
  ./build/takumi train --objective dpo --beta 0.1 --model "$model" --data "$data" --val-split 0.05 --out "$run" \
    --max-seq-len "$seq" --pack-len $((2 * seq)) --batch-size 2 --grad-accum 1 --lr 5e-4 --max-steps "$steps" \
    --eval-every $(((steps + 2) / 3)) --samples 0 --threads "$threads"
fi
echo
echo "== curves (RUN/metrics.jsonl)"
python3 - "$run/metrics.jsonl" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
for r in rows:
    if r.get("event") == "start" or "truncat" in str(r.get("message", "")):
        print("   " + r["message"])
tr = [r for r in rows if "train_loss" in r]
print("   %5s %8s %9s %9s" % ("step", "loss", "rew.acc", "margin"))
for r in tr:
    print("   %5d %8.4f %9.3f %9.3f" % (r["step"], r["train_loss"], r["rewards/accuracies"], r["rewards/margins"]))
print("   validation:")
print("   %5s %10s %9s %9s %9s %9s" % ("step", "valid loss", "rew.acc", "margin", "r.chosen", "r.reject"))
for r in (r for r in rows if "valid_loss" in r):
    print("   %5d %10.4f %9.3f %9.3f %9.3f %9.3f" % (r["step"], r["valid_loss"], r["valid_rewards/accuracies"], r["valid_rewards/margins"],
          r["valid_rewards/chosen"], r["valid_rewards/rejected"]))
if tr:
    n = len(tr) // 2
    mean = lambda k, xs: sum(x[k] for x in xs) / len(xs)
    if n:
        print("   training, first %d vs last %d steps: loss %.4f -> %.4f, rewards/accuracies %.3f -> %.3f" % (
              n, len(tr) - n, mean("train_loss", tr[:n]), mean("train_loss", tr[n:]),
              mean("rewards/accuracies", tr[:n]), mean("rewards/accuracies", tr[n:])))
    print("   %d steps, %d tokens, %.1f min" % (tr[-1]["step"], sum(r["tokens"] for r in tr), tr[-1]["elapsed_s"] / 60))
EOF
echo "demo time: $(( $(date +%s) - t0 )) s"
