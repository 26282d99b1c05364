#!/usr/bin/env bash
# Peak memory of a LoRA run on SmolLM2-135M from an HF f32 folder: unquantized base vs
# --quantize-base q8_0 / q4_k / nf4 (QLoRA). Peak RSS from /usr/bin/time -v, a few steps each.
#
# The HF f32 folder is made from the project's GGUF (models/SmolLM2-135M-Instruct.Q4_1.gguf) with
#   takumi export --model models/SmolLM2-135M-Instruct.Q4_1.gguf --to build/smollm2-hf-f32 --dtype f32
# (so its weights are the Q4_1 values widened to f32; the memory numbers do not depend on that).
# Usage: [BATCH=4] [SEQ=256] [TYPES="none q8_0 q4_k nf4"] [EXTRA="--recompute"] [GGUF=models/other.gguf]
#        bash bench/qlora_memory.sh [STEPS]
# (default 3 steps; prints a markdown table; EXTRA: more train options, the same for every run;
# GGUF: another source model, e.g. models/gemma-3-270m-q4_k_m.gguf, exported once to build/NAME-hf-f32)
set -eu
cd "$(dirname "$0")/.."
BIN=${TAKUMI_BIN:-$PWD/build/takumi}
G=${GGUF:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
HF=build/smollm2-hf-f32
[ -z "${GGUF:-}" ] || HF=build/$(basename "$G" .gguf)-hf-f32
read -r -a extra <<< "${EXTRA:-}"
STEPS=${1:-3} BATCH=${BATCH:-4} SEQ=${SEQ:-256} TYPES=${TYPES:-none q8_0 q4_k nf4}
[ -f "$HF/model.safetensors" ] || "$BIN" export --model "$G" --to "$HF" --dtype f32 > /dev/null
tmp=$(mktemp -d /tmp/takumi_qlora_mem_XXXXXX)
echo "| base | peak RSS (MiB) | vs f32 | s/step | loss after $STEPS steps |"
echo "|---|---|---|---|---|"
ref=
for q in $TYPES; do
    a=()
    [ "$q" = none ] || a=(--quantize-base "$q")
    t0=$(date +%s.%N)
    /usr/bin/time -v "$BIN" train --model "$HF" --tokenizer "$G" --data examples/support/train.jsonl --max-seq-len "$SEQ" \
        --batch-size "$BATCH" --max-steps "$STEPS" --samples 0 --seed 1 --out "$tmp/$q" "${a[@]}" "${extra[@]}" > /dev/null 2> "$tmp/$q.time"
    t1=$(date +%s.%N)
    kb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$tmp/$q.time")
    [ -n "$ref" ] || ref=$kb
    loss=$(sed -n 's/^{"step":[0-9]*,.*"train_loss":\([^,]*\),.*/\1/p' "$tmp/$q/metrics.jsonl" | tail -1)
    awk -v q="$q" -v kb="$kb" -v ref="$ref" -v t="$(echo "$t1 - $t0" | bc)" -v s="$STEPS" -v l="$loss" \
        'BEGIN { printf "| %s | %.0f | %.2fx lower | %.1f (whole run / steps, load included) | %.4f |\n", (q == "none" ? "f32 (unquantized)" : q), kb / 1024, ref / kb, t / s, l }'
done
rm -rf "$tmp"
