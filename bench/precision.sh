#!/usr/bin/env bash
# takumi train --precision fp32 vs bf16: tokens/s of a SmolLM2-135M LoRA run from the Q4_1 GGUF
# (the default model: its many-row products dequantize panels of W, then sgemm) and from an HF f32
# copy (takumi export --dtype f32, as bench/qlora_memory.sh), fp32 and bf16 interleaved in one run.
# tokens/s: total tokens / total step time over steps 2..STEPS (step 1 warms up).
# Usage: [BATCH=4] [SEQ=256] [THREADS=2] bash bench/precision.sh [STEPS]   (default 6; prints a markdown table)
set -eu
cd "$(dirname "$0")/.."
BIN=${TAKUMI_BIN:-$PWD/build/takumi}
G=models/SmolLM2-135M-Instruct.Q4_1.gguf
HF=build/smollm2-hf-f32
STEPS=${1:-6} BATCH=${BATCH:-4} SEQ=${SEQ:-256} THREADS=${THREADS:-2}
[ -f "$HF/model.safetensors" ] || "$BIN" export --model "$G" --to "$HF" --dtype f32 > /dev/null
tmp=$(mktemp -d /tmp/takumi_precision_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
tps() { # metrics.jsonl -> tokens/s over steps 2..
    sed -n 's/^{"step":\([0-9]*\),.*"tokens":\([0-9]*\),"tokens_per_s":[^,]*,"step_s":\([^,]*\),.*/\1 \2 \3/p' "$1" |
        awk '$1 > 1 { t += $2; s += $3 } END { printf "%.0f", (s > 0 ? t / s : 0) }'
}
echo "| base | fp32 tokens/s | bf16 tokens/s | bf16 / fp32 | last loss fp32 / bf16 |"
echo "|---|---|---|---|---|"
for m in "$G" "$HF"; do
    declare -A r=() l=()
    for p in fp32 bf16; do
        OMP_WAIT_POLICY=passive "$BIN" train --model "$m" --tokenizer "$G" --data examples/support/train.jsonl --max-seq-len "$SEQ" \
            --batch-size "$BATCH" --max-steps "$STEPS" --samples 0 --seed 1 --threads "$THREADS" --save-every 1000 --eval-every 1000 --precision "$p" \
            --out "$tmp/$p" > /dev/null 2> "$tmp/$p.err" || { cat "$tmp/$p.err"; exit 1; }
        r[$p]=$(tps "$tmp/$p/metrics.jsonl")
        l[$p]=$(sed -n 's/^{"step":[0-9]*,.*"train_loss":\([^,]*\),.*/\1/p' "$tmp/$p/metrics.jsonl" | tail -1 | cut -c1-6)
        rm -rf "${tmp:?}/$p"
    done
    echo "| $([ "$m" = "$G" ] && echo "Q4_1 GGUF" || echo "HF f32") | ${r[fp32]} | ${r[bf16]} | $(awk -v a="${r[fp32]}" -v b="${r[bf16]}" 'BEGIN { printf "%.2f", b / a }') | ${l[fp32]} / ${l[bf16]} |"
done
