#!/usr/bin/env bash
# Context distillation demo (README "Distillation"): SmolLM2-135M-Instruct learns Larkspur Home Goods'
# policy (examples/policy/policy.md) so that it answers questions about it WITHOUT the document.
#  1. the teacher is the same base model with the policy in its system prompt: it answers the 30 training
#     questions (examples/policy/train_questions.jsonl) -> RUN/teacher_answers.jsonl;
#  2. the student (LoRA on the same base, no policy in its prompt) learns the teacher's token distributions
#     at those answers (forward KL);
#  3. the 12 held-out questions (examples/policy/heldout.jsonl, facts each answer must contain) are answered
#     without the document: fact_match of the base (before) and of the adapter (after), and of the base
#     reading the policy (the teacher: the ceiling).
# Usage: scripts/demo_context_distill.sh [OUT]   (default build/demo-context-distill; THREADS=2)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-build/demo-context-distill}
M=${MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
T=${THREADS:-2}
STEPS=${STEPS:-120}
P=examples/policy
BIN=${TAKUMI_BIN:-build/takumi}
export OMP_WAIT_POLICY=passive
mkdir -p "$OUT"
# a fresh run, but the teacher's answers of an earlier one are kept: the run reuses them when its key matches
if [ -f "$OUT/run/teacher_answers.key" ]; then mv "$OUT/run/teacher_answers.jsonl" "$OUT/run/teacher_answers.key" "$OUT/"; fi
rm -rf "$OUT/run"
mkdir -p "$OUT/run"
if [ -f "$OUT/teacher_answers.key" ]; then mv "$OUT/teacher_answers.jsonl" "$OUT/teacher_answers.key" "$OUT/run/"; fi
start=$(date +%s)

"$BIN" train --model "$M" --data $P/train_questions.jsonl --objective distill --teacher-context $P/policy.md \
    --max-new-tokens 64 --max-steps "$STEPS" --batch-size 1 --grad-accum 1 --no-packing --lr 1e-3 --lora-r 16 --lora-alpha 32 \
    --samples 0 --seed 1 --threads "$T" --out "$OUT/run"

# after (the adapter) against before (the base), both without the policy
"$BIN" eval --model "$M" --adapter "$OUT/run/adapter" --baseline-base --data $P/heldout.jsonl --metrics fact_match \
    --max-tokens 64 --threads "$T" --quiet --out "$OUT/eval" | tee "$OUT/eval.txt"
# the ceiling: the base reading the policy (the teacher)
"$BIN" eval --model "$M" --system "$(cat $P/policy.md)" --data $P/heldout.jsonl --metrics fact_match \
    --max-tokens 64 --threads "$T" --quiet --out "$OUT/eval-teacher" | tee "$OUT/eval-teacher.txt"
echo "demo took $(( $(date +%s) - start )) s"
