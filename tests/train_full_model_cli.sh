#!/usr/bin/env bash
# `takumi train --method full` writes the fine-tuned model, ready for generate/eval/serve: the HF folder
# RUN/model/ (config.json + model.safetensors, f16), from an HF base and from a GGUF base alike, and from a GGUF
# base RUN/model.gguf (f16, the base's metadata and tokenizer); their paths are printed on stdout; the written model's validation loss, computed by a run on it (its step-0
# validation), equals the fine-tuning run's last one within f16 rounding of the weights (2e-3 relative)
# and is far below the base's.
set -u
cd "$(dirname "$0")/.."
BIN=${TAKUMI_BIN:-$PWD/build/takumi}
S=${TAKUMI_SHARED:-../shared}/models/stories260K
if [ ! -f "$S/hf/model.safetensors" ] || [ ! -f "$S/llama2c/tok512.bin" ] || [ ! -f "$S/gguf/stories260K-f32.gguf" ]; then
    if [ "${CI:-}" = true ]; then echo "FAIL: required asset missing in CI: models/stories260K"; exit 1; fi
    echo "SKIP: models/stories260K not found (set TAKUMI_SHARED or place ../shared)"; exit 0
fi
tmp=$(mktemp -d /tmp/takumi_full_model_XXXXXX)
checks=0 failures=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*" >&2; }
TOK=$S/llama2c/tok512.bin
names=(Lily Tom Sue Ben Max Mia Sam Ann); things=(ball cat dog tree cake car boat kite)
for i in $(seq 0 23); do
    n=${names[$((i % 8))]}; t=${things[$(((i * 5) % 8))]}
    printf '{"text":"%s had a %s. %s was happy with the %s."}\n' "$n" "$t" "$n" "$t"
done > "$tmp/d.jsonl"
head -n 6 "$tmp/d.jsonl" > "$tmp/v.jsonl"
# same_loss WHAT MODEL TOL: a run on MODEL (its step-0 validation) gives RUN/model/'s loss ($got) within TOL
# relative, far below the base's ($base)
same_loss() {
    local out=$tmp/check-$RANDOM v
    "$BIN" train --model "$2" --tokenizer "$TOK" --data "$tmp/d.jsonl" --val "$tmp/v.jsonl" --max-steps 1 --samples 0 --threads 1 \
        --seed 2 --out "$out" > /dev/null 2> "$out.err" || bad "a run on $1 failed: $(tail -2 "$out.err")"
    v=$(vloss "$out" '1p')
    echo "gguf: $1's validation loss $v (RUN/model/: $got)"
    if python3 -c 'import sys; a, b, c, t = map(float, sys.argv[1:]); sys.exit(0 if abs(a - b) <= t * abs(b) and a < c - 0.05 else 1)' \
           "$v" "$got" "$base" "$3" 2> /dev/null; then ok
    else bad "$1's loss $v vs RUN/model/'s $got (base $base)"; fi
}
for src in hf gguf; do
    model=$S/hf; want=$tmp/$src/model
    [ $src = gguf ] && model=$S/gguf/stories260K-f32.gguf
    if "$BIN" train --model "$model" --tokenizer "$TOK" --data "$tmp/d.jsonl" --val "$tmp/v.jsonl" --method full --lr 1e-3 --epochs 3 \
           --samples 0 --threads 1 --seed 2 --out "$tmp/$src" > "$tmp/$src.out" 2> "$tmp/$src.err"; then ok
    else bad "$src: full fine-tuning failed: $(tail -3 "$tmp/$src.err")"; continue; fi
    if [ -e "$want" ] && grep -qx "$want" "$tmp/$src.out"; then ok; else bad "$src: $want not written or not printed"; fi
    if [ -s "$want/config.json" ] && [ -s "$want/model.safetensors" ]; then ok; else bad "$src: RUN/model/ lacks its files"; fi
    vloss() { grep -o '"valid_loss":[^,}]*' "$1/metrics.jsonl" | sed -n "$2" | cut -d: -f2; }
    last=$(vloss "$tmp/$src" '$p')
    base=$(vloss "$tmp/$src" '1p')
    "$BIN" train --model "$want" --tokenizer "$TOK" --data "$tmp/d.jsonl" --val "$tmp/v.jsonl" --max-steps 1 --samples 0 --threads 1 \
        --seed 2 --out "$tmp/$src-check" > /dev/null 2> "$tmp/$src-check.err" || bad "$src: a run on the written model failed: $(tail -2 "$tmp/$src-check.err")"
    got=$(vloss "$tmp/$src-check" '1p')
    echo "$src: run's last validation loss $last, the written model's $got (base $base)"
    if python3 -c 'import sys; a, b, c = map(float, sys.argv[1:]); sys.exit(0 if abs(a - b) <= 2e-3 * abs(b) and b < c - 0.05 else 1)' \
           "$got" "$last" "$base" 2> /dev/null; then ok
    else bad "$src: the written model's loss $got vs the run's $last (base $base)"; fi
    # from a GGUF base also RUN/model.gguf (the fine-tuned weights, not the base's: same loss as RUN/model/
    # within f16 rounding, far below the base's); from an HF base none
    g=$tmp/$src/model.gguf
    if [ $src = hf ]; then
        if [ -e "$g" ]; then bad "hf: a model.gguf written from an HF base"; else ok; fi
        continue
    fi
    if [ -s "$g" ] && grep -qx "$g" "$tmp/$src.out"; then ok; else bad "gguf: $g not written or not printed"; continue; fi
    same_loss "model.gguf" "$g" 2e-3
    # takumi export of the run's GGUF model (q8_0) keeps the fine-tuned weights too
    "$BIN" export --model "$g" --to "$tmp/q8.gguf" --dtype q8_0 > /dev/null 2> "$tmp/q8.err" || bad "export q8_0: $(tail -2 "$tmp/q8.err")"
    same_loss "the q8_0 export" "$tmp/q8.gguf" 2e-2
done
rm -rf "$tmp"
if [ "$failures" -gt 0 ]; then echo "train_full_model_cli: $failures of $checks checks FAILED"; exit 1; fi
echo "train_full_model_cli: $checks checks passed"
