#!/usr/bin/env bash
# Self-training from questions alone (issue 8): the support desk of examples/support has customer
# questions and a fact checker, but nobody wrote the answers. `takumi train --objective self` samples
# answers to the questions with SmolLM2-135M-Instruct reading the shop's fact sheet
# (--teacher-context: the sheet is in the sampling prompt only), keeps each question's best answer
# when it states every required fact (a command grader, tools/fact_grader.py, --min-score 1), and
# trains the model on the kept answers WITHOUT the sheet, for two rounds. Shows the held-out
# fact-match (the fifth wording of every fact, never trained on, answered greedily without the sheet)
# of the base and after each round, from RUN/rounds.jsonl.
#
# Usage: scripts/demo_self_support.sh [--fresh] [--threads N] [--rounds K]
#   RUN folder: $TAKUMI_DEMO_RUN or build/demo-self-support (a finished run is reused; --fresh trains again).
# Needs: build/takumi (make), models/SmolLM2-135M-Instruct.Q4_1.gguf (scripts/fetch-model.sh), python3 (stdlib only).
set -euo pipefail
cd "$(dirname "$0")/.."
# passive OpenMP waiting: spinning threads make a machine shared with other work crawl
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
run=${TAKUMI_DEMO_RUN:-build/demo-self-support}
model=${TAKUMI_MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
fresh=0 threads=2 rounds=2
while [ $# -gt 0 ]; do
  case "$1" in
    --fresh) fresh=1; shift ;;
    --threads) threads=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "demo_self_support.sh: unknown option $1" >&2; exit 1 ;;
  esac
done
[ -x build/takumi ] || { echo "demo_self_support.sh: build/takumi is missing (run make)" >&2; exit 1; }
[ -f "$model" ] || { echo "demo_self_support.sh: $model is missing (run scripts/fetch-model.sh)" >&2; exit 1; }
[ "$fresh" = 1 ] && rm -rf "$run" "$run.data"
tools/make_support_self.py "$run.data" 2
echo "== self-training $model: $rounds rounds, 8 answers per question sampled with the fact sheet, kept when every fact is stated"
t0=$(date +%s)
if [ ! -f "$run/rounds.jsonl" ]; then
  args=(--model "$model" --data "$run.data/prompts.jsonl" --val "$run.data/heldout.jsonl" --objective self
        --grader "$run.data/grader.json" --teacher-context "$run.data/facts.md" --group-size 8 --min-score 1
        --max-new-tokens 64 --temperature 0.8 --rounds "$rounds" --epochs 3 --threads "$threads" --seed 1 --samples 0 --out "$run")
  if [ -f "$run/config.json" ]; then build/takumi train --out "$run" --resume; else build/takumi train "${args[@]}"; fi
fi
echo "   time: $(( $(date +%s) - t0 )) s (this run)"
python3 - "$run/rounds.jsonl" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("   round | sampled answers: mean fact score | best of 8 | questions kept | held-out fact score (greedy, no sheet)")
for r in rows:
    if r["round"] == 0:
        print(f"   base  |                                   |           |                | {r['valid_score']:.3f}")
    else:
        print(f"   {r['round']:5d} | {r['mean_score']:33.3f} | {r['best_score']:9.3f} | {r['kept']:5d} of {r['prompts']:<6d} | {r['valid_score']:.3f}")
EOF
