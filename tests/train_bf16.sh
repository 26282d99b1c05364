#!/bin/bash
# takumi train --precision: a bf16 run (base and LM-head products with bf16 inputs, fp32 sums) follows
# the fp32 run's loss curve within a relative 2e-2 per step (measured 2.4e-3 max over these 20 steps
# on Zen 4), yet is not identical to it (the switch acts); auto is fp32 bit for bit; config.json
# records the precision. Without AVX512-BF16: --precision bf16 is refused with the reason, the rest skips.
set -u
cd "$(dirname "$0")/.."
BIN=${TAKUMI_BIN:-$PWD/build/takumi}
S=${TAKUMI_SHARED:-../shared}/models/stories260K
if [ ! -f "$S/hf/model.safetensors" ]; then
    if [ "${CI:-}" = true ]; then echo "FAIL: required asset missing in CI: models/stories260K"; exit 1; fi
    echo "SKIP: models/stories260K not found (set TAKUMI_SHARED or place ../shared)"; exit 0
fi
tmp=$(mktemp -d /tmp/takumi_train_bf16_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
for i in $(seq 0 23); do
    printf '{"prompt":"Tell me about Tom and the ball %d.","completion":"Tom had a ball. Tom was happy %d."}\n' "$i" "$i"
done > "$tmp/d.jsonl"
run() { # name precision
    OMP_WAIT_POLICY=passive "$BIN" train --model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --data "$tmp/d.jsonl" --threads 1 \
        --seed 5 --max-steps 20 --batch-size 4 --samples 0 --precision "$2" --out "$tmp/$1" > "$tmp/$1.out" 2> "$tmp/$1.err"
}
losses() { sed -n 's/^{"step":[0-9]*,.*"train_loss":\([^,]*\),.*/\1/p' "$tmp/$1/metrics.jsonl"; }
fail() { echo "FAIL: $*"; exit 1; }

run fp32 fp32 || fail "fp32 run: $(cat "$tmp/fp32.err")"
run auto auto || fail "auto run: $(cat "$tmp/auto.err")"
[ "$(losses fp32 | wc -l)" = 20 ] || fail "fp32 run logged $(losses fp32 | wc -l) train losses, expected 20"
[ "$(losses fp32)" = "$(losses auto)" ] || fail "--precision auto is not the fp32 run bit for bit"
grep -q '"precision":"fp32"' "$tmp/auto/config.json" || fail "config.json of the auto run does not record precision fp32"
if ! run bf16 bf16; then
    grep -q -- "--precision bf16.*AVX512-BF16\|--precision bf16.*avx512bf16\|--precision bf16.*bf16 kernel" "$tmp/bf16.err" \
        || fail "--precision bf16 failed without naming the missing CPU feature: $(cat "$tmp/bf16.err")"
    echo "SKIP: this CPU lacks AVX512-BF16 (--precision bf16 refused: $(head -n 1 "$tmp/bf16.err"))"; exit 0
fi
grep -q '"precision":"bf16"' "$tmp/bf16/config.json" || fail "config.json of the bf16 run does not record precision bf16"
[ "$(losses bf16)" != "$(losses fp32)" ] || fail "the bf16 run's losses equal the fp32 run's: bf16 products did not run"
paste <(losses fp32) <(losses bf16) | awk -v tol=2e-2 '
    { n++; d = ($1 - $2) / $1; if (d < 0) d = -d; if (d > worst) worst = d }
    END { printf "bf16 vs fp32 train loss over %d steps: max relative difference %.3g (tolerance %g)\n", n, worst, tol
          if (n != 20 || worst > tol) exit 1 }' || fail "bf16 loss curve strays from fp32's"
echo "PASS: train_bf16"
