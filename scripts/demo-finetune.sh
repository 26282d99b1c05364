#!/usr/bin/env bash
# Proof that takumi learns (issue 3): fine-tunes SmolLM2-135M-Instruct with `takumi train`'s
# default settings on examples/support (support conversations of a fictional bicycle shop,
# English and Japanese, written by the project), then shows
#   - the validation loss before and after training (from RUN/metrics.jsonl), and
#   - the base model's and the fine-tuned model's answers to held-out paraphrased questions
#     (examples/support/heldout.jsonl, never trained on), with the fact-match score of both:
#     the fraction of answers that state the required fact (tools/fact_match.py).
#
# Usage: scripts/demo-finetune.sh [--fresh] [--threads N]
#   RUN folder: $TAKUMI_DEMO_RUN or build/demo-support. A finished run is reused (--fresh trains
#   again); an interrupted one is continued with --resume.
# Needs: build/takumi (make), models/SmolLM2-135M-Instruct.Q4_1.gguf (scripts/fetch-model.sh),
# python3 (stdlib only).
set -euo pipefail
cd "$(dirname "$0")/.."

run=${TAKUMI_DEMO_RUN:-build/demo-support}
model=${TAKUMI_MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
fresh=0
threads=()
while [ $# -gt 0 ]; do
  case "$1" in
    --fresh) fresh=1; shift ;;
    --threads) threads=(--threads "$2"); shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "demo-finetune.sh: unknown option $1" >&2; exit 1 ;;
  esac
done
[ -x build/takumi ] || { echo "demo-finetune.sh: build/takumi is missing (run make)" >&2; exit 1; }
[ -f "$model" ] || { echo "demo-finetune.sh: $model is missing (run scripts/fetch-model.sh)" >&2; exit 1; }

data=examples/support/train.jsonl
val=examples/support/valid.jsonl
echo "== fine-tuning $model on $data (takumi train defaults; validation: $val)"
echo "   run folder: $run"
[ "$fresh" = 1 ] && rm -rf "$run"
t0=$(date +%s)
if [ -f "$run/adapter/adapter_config.json" ]; then
  echo "   (a finished run is there: reusing it; --fresh trains again)"
elif [ -d "$run/checkpoints" ]; then
  echo "   (continuing the interrupted run)"
  ./build/takumi train --out "$run" --resume "${threads[@]}"
else
  ./build/takumi train --model "$model" --data "$data" --val "$val" --out "$run" "${threads[@]}"
fi
t1=$(date +%s)

echo
echo "== validation loss (assistant tokens of $val)"
python3 - "$run/metrics.jsonl" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
val = [r for r in rows if "valid_loss" in r]
steps = [r for r in rows if "train_loss" in r]
if not val:
    sys.exit("no validation entries in " + sys.argv[1])
a, b = val[0], val[-1]
print(f"   before training (step {a['step']}): loss {a['valid_loss']:.4f}  ppl {a['valid_ppl']:.2f}  token accuracy {100 * a['valid_token_acc']:.1f}%")
print(f"   after training  (step {b['step']}): loss {b['valid_loss']:.4f}  ppl {b['valid_ppl']:.2f}  token accuracy {100 * b['valid_token_acc']:.1f}%")
if steps:
    t = steps[-1].get("elapsed_s")
    print(f"   {steps[-1]['step']} optimizer steps" + (f", training time {t / 60:.1f} min" if t else ""))
EOF

echo
echo "== held-out paraphrases: base model vs fine-tuned (greedy answers; PASS = states the fact)"
python3 tools/fact_match.py --model "$model" --adapter "$run/adapter" --heldout examples/support/heldout.jsonl \
  --json "$run/fact_match.json" "${threads[@]}"
t2=$(date +%s)
echo
echo "demo time: training $((t1 - t0)) s, evaluation $((t2 - t1)) s; report: $run/report.html"
