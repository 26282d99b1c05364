#!/usr/bin/env bash
# `takumi train --objective self` end to end on stories260K: prompts without answers (OpenAI's RFT
# format, a "name" field for the grader) and a string_check grader (does the answer name the
# character?):
# - two rounds: RUN/rounds.jsonl holds the base's held-out greedy score (0) and each round's (the
#   last one higher); every round folder holds samples.jsonl (every answer with its score and
#   whether it was kept), train.jsonl (chat data ready for training), run/ and summary.json; the
#   last round's adapter is RUN/adapter;
# - a round lost to a crash (its folder removed) is done again by `--out RUN --resume` with the same
#   result (sampling is seeded);
# - --self-train dpo writes preference pairs (best vs worst) and trains them with DPO;
# - --teacher-context: answers sampled with the file in the system prompt, trained and validated without it;
# - bad input: no --grader, --rounds for grpo, a --min-score nothing reaches: exit 1 with a message.
set -u
cd "$(dirname "$0")/.."
NAME=train_self_cli
# shellcheck source=tests/lib/sampled.bash
. tests/lib/sampled.bash
common=(--model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --data "$tmp/p.jsonl" --val "$tmp/v.jsonl" --objective self
        --grader "$tmp/g.json" --max-new-tokens 16 --group-size 4 --max-seq-len 256 --threads 1 --seed 5 --lora-r 4 --lr 5e-3
        --epochs 4 --samples 0)

# ---- two rounds
if "$BIN" train "${common[@]}" --rounds 2 --out "$tmp/ref" > "$tmp/ref.out" 2> "$tmp/ref.err"; then ok; else bad "self run failed: $(tail -3 "$tmp/ref.err")"; fi
r=$tmp/ref/rounds.jsonl
if [ "$(wc -l < "$r")" -eq 3 ]; then ok; else bad "rounds.jsonl: $(cat "$r")"; fi
v=$(num "$r" valid_score | tr '\n' ' ')
if echo "$v" | awk '{ exit !($1 == 0 && $3 > $1) }'; then ok; else bad "held-out scores by round: $v (want 0 for the base, higher after round 2)"; fi
for f in rounds/round-1/samples.jsonl rounds/round-1/train.jsonl rounds/round-1/summary.json rounds/round-2/run/metrics.jsonl \
         adapter/adapter_model.safetensors adapter/adapter_config.json adapter.gguf config.json; do
    if [ -s "$tmp/ref/$f" ]; then ok; else bad "run folder lacks $f"; fi
done
if [ "$(wc -l < "$tmp/ref/rounds/round-1/samples.jsonl")" -eq 64 ] && grep -q '"kept":true' "$tmp/ref/rounds/round-1/samples.jsonl"; then ok
else bad "round 1 samples.jsonl: $(head -c 300 "$tmp/ref/rounds/round-1/samples.jsonl")"; fi
kept=$(num "$tmp/ref/rounds/round-1/summary.json" kept)
if [ "$(wc -l < "$tmp/ref/rounds/round-1/train.jsonl")" -eq "$kept" ] && "$BIN" data check "$tmp/ref/rounds/round-1/train.jsonl" > /dev/null 2>&1; then ok
else bad "round 1 train.jsonl: $kept kept, $(wc -l < "$tmp/ref/rounds/round-1/train.jsonl") lines"; fi
if cmp -s "$tmp/ref/adapter/adapter_model.safetensors" "$tmp/ref/rounds/round-2/run/adapter/adapter_model.safetensors"; then ok; else bad "RUN/adapter is not round 2's"; fi
if grep -q "rounds.jsonl" "$tmp/ref.out"; then ok; else bad "the command does not name rounds.jsonl: $(cat "$tmp/ref.out")"; fi

# ---- a lost round is done again on --resume
cp -r "$tmp/ref" "$tmp/k"
rm -rf "$tmp/k/rounds/round-2" "$tmp/k/adapter" "$tmp/k/rounds.jsonl"
if "$BIN" train --out "$tmp/k" --resume > /dev/null 2> "$tmp/k.err"; then ok; else bad "resume failed: $(tail -3 "$tmp/k.err")"; fi
if cmp -s "$r" "$tmp/k/rounds.jsonl" && cmp -s "$tmp/ref/adapter/adapter_model.safetensors" "$tmp/k/adapter/adapter_model.safetensors"; then ok
else bad "resumed run differs: $(cat "$tmp/k/rounds.jsonl")"; fi
if grep -q "round 1/2: done before" "$tmp/k.err"; then ok; else bad "resume redid round 1"; fi

# ---- best-versus-worst pairs with DPO
if "$BIN" train "${common[@]}" --rounds 1 --self-train dpo --out "$tmp/dpo" > /dev/null 2> "$tmp/dpo.err" &&
   grep -q '"chosen"' "$tmp/dpo/rounds/round-1/train.jsonl" && grep -q '"rewards/accuracies"' "$tmp/dpo/rounds/round-1/run/metrics.jsonl"; then ok
else bad "--self-train dpo: $(tail -3 "$tmp/dpo.err")"; fi

# ---- --teacher-context: sampled with the file in the system prompt, trained and validated without it
printf 'Story rules: every answer names the child the question asks about.\n' > "$tmp/ctx.md"
if "$BIN" train "${common[@]}" --rounds 1 --teacher-context "$tmp/ctx.md" --out "$tmp/ctx" > /dev/null 2> "$tmp/ctx.err" &&
   [ -s "$tmp/ctx/rounds/round-1/train.jsonl" ] && ! grep -q "Story rules" "$tmp/ctx/rounds/round-1/train.jsonl"; then ok
else bad "--teacher-context: $(tail -3 "$tmp/ctx.err")"; fi
if cmp -s <(num "$tmp/ctx/rounds.jsonl" valid_score | head -1) <(num "$r" valid_score | head -1); then ok; else bad "--teacher-context changed the base's held-out score (validation must not see the context)"; fi

# ---- bad input
base=(--model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --data "$tmp/p.jsonl" --max-seq-len 256 --max-new-tokens 8 --threads 1 --samples 0)
fails "needs --grader" "$BIN" train "${base[@]}" --objective self --out "$tmp/e1"
fails "rounds does not apply" "$BIN" train "${base[@]}" --objective grpo --grader "$tmp/g.json" --rounds 3 --out "$tmp/e2"
fails "nothing to train on" "$BIN" train "${base[@]}" --objective self --grader "$tmp/g.json" --min-score 2 --out "$tmp/e3"
: > "$tmp/empty.md"
fails "empty or not text" "$BIN" train "${base[@]}" --objective self --grader "$tmp/g.json" --teacher-context "$tmp/empty.md" --out "$tmp/e4"
fails "give the held-out prompts as --val" "$BIN" train "${base[@]}" --objective self --grader "$tmp/g.json" --teacher-context "$tmp/ctx.md" \
    --val-split 0.2 --out "$tmp/e5"

rm -rf "$tmp"
if [ $failures -gt 0 ]; then echo "train_self_cli: $failures of $checks checks FAILED"; exit 1; fi
echo "train_self_cli: $checks checks passed"
