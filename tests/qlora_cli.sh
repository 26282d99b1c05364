#!/usr/bin/env bash
# takumi train --quantize-base (QLoRA) on stories260K's HF folder (f32): 10 LoRA steps with each of
# q8_0, q4_k and nf4 against the unquantized run (same seed, data and order). Stated tolerances on
# every step's train loss, |quantized - unquantized|: q8_0 0.05, q4_k 0.15, nf4 0.60 nats (nf4 is
# the coarsest here: every 64-wide row is one block, and the tied embedding/head is quantized too;
# measured on this machine: max 0.03 / 0.07 / 0.47); each quantized run must also learn (last loss
# below 35% of the first). takumi generate takes the option too. Bad input: an unknown type, a
# quantized GGUF base, --method full.
set -u
cd "$(dirname "$0")/.."
BIN=${TAKUMI_BIN:-$PWD/${BUILD:-build}/takumi}
S=${TAKUMI_SHARED:-../shared}/models/stories260K
if [ ! -f "$S/hf/model.safetensors" ] || [ ! -f "$S/llama2c/tok512.bin" ]; then
    if [ "${CI:-}" = true ]; then echo "FAIL: required asset missing in CI: models/stories260K"; exit 1; fi
    echo "SKIP: models/stories260K not found (set TAKUMI_SHARED or place ../shared)"; exit 0
fi
tmp=$(mktemp -d /tmp/takumi_qlora_cli_XXXXXX)
checks=0 failures=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*" >&2; }

names=(Lily Tom Sue Ben Max Mia Sam Ann); things=(ball cat dog tree cake car boat kite)
for i in $(seq 0 23); do
    n=${names[$((i % 8))]}; t=${things[$(((i * 5) % 8))]}
    printf '{"prompt":"Tell me about %s and the %s.","completion":"%s had a %s. %s was happy."}\n' "$n" "$t" "$n" "$t" "$n"
done > "$tmp/d.jsonl"
common=(--model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --data "$tmp/d.jsonl" --max-seq-len 160 --samples 0
        --threads 1 --seed 3 --max-steps 10 --lr 3e-3 --batch-size 4)
losses() { sed -n 's/^{"step":[0-9]*,.*"train_loss":\([^,]*\),.*/\1/p' "$1"; }

if "$BIN" train "${common[@]}" --out "$tmp/none" > /dev/null 2> "$tmp/none.err"; then ok; else bad "unquantized run failed: $(tail -3 "$tmp/none.err")"; fi
for q in q8_0:0.05 q4_k:0.15 nf4:0.60; do
    t=${q%%:*} tol=${q##*:}
    if "$BIN" train "${common[@]}" --quantize-base "$t" --out "$tmp/$t" > /dev/null 2> "$tmp/$t.err"; then ok; else bad "--quantize-base $t run failed: $(tail -3 "$tmp/$t.err")"; continue; fi
    if grep -q '"quantize-base": *"'"$t"'"' "$tmp/$t/config.json"; then ok; else bad "$t: config.json does not record quantize-base"; fi
    res=$(paste <(losses "$tmp/none/metrics.jsonl") <(losses "$tmp/$t/metrics.jsonl") |
          awk -v tol="$tol" '{ n++; d = $1 - $2; if (d < 0) d = -d; if (d > m) m = d; if (n == 1) f = $2; l = $2 }
                             END { printf "%d %.4f %s %s\n", n, m, (m <= tol ? "ok" : "over"), (l < 0.35 * f ? "learns" : "stuck") }')
    set -- $res
    if [ "$1" = 10 ]; then ok; else bad "$t: $1 steps logged (expected 10)"; fi
    if [ "$3" = ok ]; then ok; else bad "$t: max |loss - unquantized loss| = $2 over the tolerance $tol"; fi
    if [ "$4" = learns ]; then ok; else bad "$t: the loss did not fall below 35% of its first value"; fi
    echo "qlora_cli: $t max |loss - unquantized| over 10 steps = $2 (tolerance $tol)"
done

# takumi generate --quantize-base: greedy text from the nf4 base starts as the f32 base's does
g=$("$BIN" generate --model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --quantize-base nf4 --temperature 0 --max-tokens 16 \
     --prompt "Once upon a time" 2> "$tmp/g.err")
case "$g" in ", there was a little girl named Lily"*) ok ;; *) bad "generate --quantize-base nf4 gave '$g' $(cat "$tmp/g.err")" ;; esac
if "$BIN" generate --model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --quantize-base q4_0 --prompt x > /dev/null 2> "$tmp/g2.err"; then bad "generate --quantize-base q4_0 accepted"
elif grep -q "quantize-base" "$tmp/g2.err"; then ok; else bad "generate --quantize-base q4_0: $(cat "$tmp/g2.err")"; fi

# bad input
if "$BIN" train "${common[@]}" --quantize-base q5_0 --out "$tmp/b1" > /dev/null 2> "$tmp/b1.err"; then bad "--quantize-base q5_0 accepted"
elif grep -q "quantize-base" "$tmp/b1.err"; then ok; else bad "--quantize-base q5_0: message lacks the option: $(cat "$tmp/b1.err")"; fi
if "$BIN" train "${common[@]}" --method full --quantize-base nf4 --out "$tmp/b2" > /dev/null 2> "$tmp/b2.err"; then bad "--method full with --quantize-base accepted"
elif grep -q "quantize-base" "$tmp/b2.err"; then ok; else bad "--method full: message lacks the option: $(cat "$tmp/b2.err")"; fi
G=models/SmolLM2-135M-Instruct.Q4_1.gguf
if [ -f "$G" ]; then
    if "$BIN" train --model "$G" --data "$tmp/d.jsonl" --quantize-base nf4 --max-steps 1 --out "$tmp/b3" > /dev/null 2> "$tmp/b3.err"; then bad "a quantized GGUF base accepted"
    elif grep -q "already stored as" "$tmp/b3.err"; then ok; else bad "quantized GGUF: unclear message: $(cat "$tmp/b3.err")"; fi
fi

if [ $failures -eq 0 ]; then
    rm -rf "$tmp"
    echo "qlora_cli: $checks checks passed"
    exit 0
fi
echo "qlora_cli: $failures of $checks checks FAILED (files kept in $tmp)"
exit 1
