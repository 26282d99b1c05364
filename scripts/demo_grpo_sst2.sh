#!/usr/bin/env bash
# Reinforcement fine-tuning with a program as the judge (issue 8): GRPO on SmolLM2-135M-Instruct
# teaches it to answer a sentiment question about an SST-2 sentence with exactly one word,
# `positive` or `negative`, rewarded by a string_check grader (OpenAI's JSON form: the answer must
# equal the label). No answer is ever shown to the model: it learns from the grader's scores of its
# own sampled answers. Shows the held-out grader score (greedy answers to 100 sentences of the GLUE
# SST-2 dev set, ../shared/data/sst2/test.tsv) before and after, and a few answers.
#
# Usage: scripts/demo_grpo_sst2.sh [--fresh] [--threads N] [--steps N]
#   RUN folder: $TAKUMI_DEMO_RUN or build/demo-grpo-sst2 (a finished run is reused; --fresh trains again).
# Needs: build/takumi (make), models/SmolLM2-135M-Instruct.Q4_1.gguf (scripts/fetch-model.sh), ../shared/data/sst2,
# python3 (stdlib only).
set -euo pipefail
cd "$(dirname "$0")/.."
# passive OpenMP waiting: spinning threads make a machine shared with other work crawl
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
run=${TAKUMI_DEMO_RUN:-build/demo-grpo-sst2}
model=${TAKUMI_MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
sst=${TAKUMI_SHARED:-../shared}/data/sst2
fresh=0 threads=2 steps=40
while [ $# -gt 0 ]; do
  case "$1" in
    --fresh) fresh=1; shift ;;
    --threads) threads=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "demo_grpo_sst2.sh: unknown option $1" >&2; exit 1 ;;
  esac
done
[ -x build/takumi ] || { echo "demo_grpo_sst2.sh: build/takumi is missing (run make)" >&2; exit 1; }
[ -f "$model" ] || { echo "demo_grpo_sst2.sh: $model is missing (run scripts/fetch-model.sh)" >&2; exit 1; }
[ -f "$sst/train.tsv" ] || { echo "demo_grpo_sst2.sh: $sst/train.tsv is missing (../shared)" >&2; exit 1; }
[ "$fresh" = 1 ] && rm -rf "$run"
mkdir -p "$run.data"
tools/make_sst2_rft.py "$sst" "$run.data" 400 100
echo "== GRPO on $model: $steps steps of 4 prompts x 8 sampled answers (string_check: the answer equals the label)"
t0=$(date +%s)
if [ ! -f "$run/adapter/adapter_config.json" ]; then
  args=(--model "$model" --data "$run.data/train.jsonl" --val "$run.data/heldout.jsonl" --objective grpo
        --grader "$run.data/grader.json" --group-size 8 --max-new-tokens 8 --batch-size 1 --grad-accum 4
        --max-steps "$steps" --eval-every $((steps / 4)) --threads "$threads" --seed 1 --samples 0 --out "$run")
  if [ -f "$run/config.json" ]; then build/takumi train --out "$run" --resume; else build/takumi train "${args[@]}"; fi
fi
echo "   training time: $(( $(date +%s) - t0 )) s (this run)"
python3 - "$run/metrics.jsonl" <<'EOF'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if "valid_reward" in l]
st = [json.loads(l) for l in open(sys.argv[1]) if '"train_loss"' in l]
print("   held-out grader score (greedy, 100 SST-2 dev sentences), by step:")
for e in ev:
    print(f"     step {e['step']:3d}: {e['valid_reward']:.2f}   mean answer length {e['valid_completions/mean_length']:.1f} tokens")
if st:
    k = max(1, len(st) // 4)
    print("   training reward (mean of the sampled answers), by quarter:",
          " ".join(f"{sum(s['reward'] for s in st[i:i + k]) / len(st[i:i + k]):.2f}" for i in range(0, len(st), k)))
    g = sum(s["time/generation_s"] for s in st); r = sum(s["time/grading_s"] for s in st); t = sum(s["time/training_s"] for s in st)
    print(f"   step time split: generation {g:.0f} s, grading {r:.2f} s, training {t:.0f} s "
          f"(generation {sum(s['generation/tokens_per_s'] for s in st) / len(st):.0f} tok/s mean)")
EOF
echo "== a few held-out answers, base vs tuned (takumi eval --grader, greedy)"
build/takumi eval --model "$model" --adapter "$run/adapter" --baseline-base --data "$run.data/heldout.jsonl" \
  --grader "$run.data/grader.json" --max-tokens 8 --threads "$threads" --out "$run/eval" 2>/dev/null || true
python3 - "$run/eval/examples.jsonl" <<'EOF'
import json, sys
try:
    ex = [json.loads(l) for l in open(sys.argv[1])]
except OSError:
    sys.exit(0)
for e in ex[:5]:
    print(json.dumps({k: e[k] for k in e if k in ("prediction", "baseline_prediction", "reference", "label")}, ensure_ascii=False)[:300])
EOF
