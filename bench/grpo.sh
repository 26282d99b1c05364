#!/usr/bin/env bash
# A GRPO step's time split and its generation speed (issue 8, "Speed"): runs `takumi train
# --objective grpo` on SmolLM2-135M-Instruct for a few steps of the SST-2 demo's prompts (4 prompts
# x --group answers, --gen new tokens at most, string_check grader) and prints, from the run's
# metrics.jsonl, the mean time per step in generation, grading and training with the generated
# tokens/s; then bench/gen_batch measures sequential generation (one answer at a time, tk_generate)
# against the batch GRPO uses (all the step's answers together) on the same machine, same prompts
# shape. Prints markdown tables headed by the CPU.
# Usage: bench/grpo.sh [--threads N] [--steps S] [--group G] [--gen T]
set -euo pipefail
cd "$(dirname "$0")/.."
threads=2 steps=3 group=8 gen=16
model=models/SmolLM2-135M-Instruct.Q4_1.gguf
sst=${TAKUMI_SHARED:-../shared}/data/sst2
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --group) group=$2; shift 2 ;;
    --gen) gen=$2; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "grpo.sh: unknown option $1" >&2; exit 1 ;;
  esac
done
[ -s "$model" ] || { echo "grpo.sh: $model not found (scripts/fetch-model.sh)" >&2; exit 1; }
[ -x build/takumi ] || { echo "grpo.sh: build/takumi is missing (run make)" >&2; exit 1; }
make -s -C bench >&2
out=bench/out/grpo
rm -rf "$out"
mkdir -p "$out"
tools/make_sst2_rft.py "$sst" "$out/data" 64 8
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo "CPU: $cpu; $threads threads; SmolLM2-135M-Instruct Q4_1, LoRA r 8; $steps steps of 4 prompts x $group answers, <= $gen new tokens"
build/takumi train --model "$model" --data "$out/data/train.jsonl" --objective grpo --grader "$out/data/grader.json" \
  --group-size "$group" --max-new-tokens "$gen" --batch-size 1 --grad-accum 4 --max-steps "$steps" --threads "$threads" \
  --samples 0 --seed 1 --out "$out/run" > /dev/null 2> "$out/train.err" || { tail -3 "$out/train.err" >&2; exit 1; }
python3 - "$out/run/metrics.jsonl" <<'EOF'
import json, sys
st = [json.loads(l) for l in open(sys.argv[1]) if '"train_loss"' in l]
n = len(st)
def mean(k): return sum(s[k] for s in st) / n
g, r, t = mean("time/generation_s"), mean("time/grading_s"), mean("time/training_s")
tot = g + r + t
print("\n| per step (mean of %d) | seconds | share |" % n)
print("|---|---:|---:|")
for name, v in (("generation (all answers as one batch)", g), ("grading", r), ("training (forward + backward + AdamW)", t)):
    print(f"| {name} | {v:.2f} | {100 * v / tot:.0f}% |")
print(f"| total | {tot:.2f} | |")
print(f"\ngenerated tokens/s inside the step: {mean('generation/tokens_per_s'):.1f} (answers of {mean('completions/mean_length'):.1f} tokens on average)")
EOF
echo
echo "Sequential (batch 1) vs batched generation on 32 chat prompts, $gen tokens each (bench/gen_batch):"
build/bench/gen_batch --model "$model" --threads "$threads" --n $((4 * group)) --gen "$gen" --batches "1,$((4 * group))"
