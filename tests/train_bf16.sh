#!/bin/bash
# takumi train --precision: a bf16 run (base and LM-head products with bf16 inputs, fp32 sums) follows
# the fp32 run's loss curve within a relative 2e-2 per step on stories260K (measured 2.4e-3 max over these
# 20 steps on Zen 4) and within 1e-2 on SmolLM2-135M Q4_1 LoRA (measured 1.2e-3 max over 12 steps of
# batch 4 x 256; 3.1e-3 over the 6 steps of batch 2 x 128 here), yet is not identical to it (the switch acts). --precision auto is bf16 bit for
# bit where the CPU has AVX512-BF16, and fp32 bit for bit where it lacks it (simulated with TK_NO_BF16=1,
# under which an explicit --precision bf16 is refused with the reason); config.json ("info") and the
# start event record the precision used. On a CPU without AVX512-BF16: the refusal and auto = fp32 are
# checked, the bf16 curves skip.
set -u
cd "$(dirname "$0")/.."
BIN=${TAKUMI_BIN:-$PWD/build/takumi}
S=${TAKUMI_SHARED:-../shared}/models/stories260K
SMOL=${TAKUMI_MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
if [ ! -f "$S/hf/model.safetensors" ]; then
    if [ "${CI:-}" = true ]; then echo "FAIL: required asset missing in CI: models/stories260K"; exit 1; fi
    echo "SKIP: models/stories260K not found (set TAKUMI_SHARED or place ../shared)"; exit 0
fi
tmp=$(mktemp -d /tmp/takumi_train_bf16_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
for i in $(seq 0 23); do
    printf '{"prompt":"Tell me about Tom and the ball %d.","completion":"Tom had a ball. Tom was happy %d."}\n' "$i" "$i"
done > "$tmp/d.jsonl"
run() { # name precision [extra options]
    local name=$1 prec=$2; shift 2
    OMP_WAIT_POLICY=passive "$BIN" train --model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --data "$tmp/d.jsonl" --threads 1 \
        --seed 5 --max-steps 20 --batch-size 4 --samples 0 --precision "$prec" "$@" --out "$tmp/$name" > "$tmp/$name.out" 2> "$tmp/$name.err"
}
losses() { sed -n 's/^{"step":[0-9]*,.*"train_loss":\([^,]*\),.*/\1/p' "$tmp/$1/metrics.jsonl"; }
used() { sed -n 's/.*"info":{.*"precision":"\([a-z0-9]*\)".*/\1/p' "$tmp/$1/config.json"; }
fail() { echo "FAIL: $*"; exit 1; }
within() { # a b tolerance steps label
    paste <(losses "$1") <(losses "$2") | awk -v tol="$3" -v want="$4" -v label="$5" '
        { n++; d = ($1 - $2) / $1; if (d < 0) d = -d; if (d > worst) worst = d }
        END { printf "%s: bf16 vs fp32 train loss over %d steps: max relative difference %.3g (tolerance %g)\n", label, n, worst, tol
              if (n != want || worst > tol) exit 1 }' || fail "$5: bf16 loss curve strays from fp32's"
}

run fp32 fp32 || fail "fp32 run: $(cat "$tmp/fp32.err")"
[ "$(losses fp32 | wc -l)" = 20 ] || fail "fp32 run logged $(losses fp32 | wc -l) train losses, expected 20"
[ "$(used fp32)" = fp32 ] || fail "config.json of the fp32 run records precision '$(used fp32)'"

# without AVX512-BF16 (simulated): auto is fp32 bit for bit, an explicit bf16 is refused with the reason
TK_NO_BF16=1 run nobf16 auto || fail "auto run with TK_NO_BF16=1: $(cat "$tmp/nobf16.err")"
[ "$(losses fp32)" = "$(losses nobf16)" ] || fail "--precision auto without AVX512-BF16 is not the fp32 run bit for bit"
[ "$(used nobf16)" = fp32 ] || fail "config.json of the auto run without AVX512-BF16 records '$(used nobf16)', expected fp32"
grep -q '"event":"start".*precision fp32 (auto)' "$tmp/nobf16/metrics.jsonl" || fail "the start event does not say 'precision fp32 (auto)'"
if TK_NO_BF16=1 run refused bf16; then fail "--precision bf16 ran although TK_NO_BF16=1"; fi
grep -q -- "--precision bf16.*TK_NO_BF16" "$tmp/refused.err" || fail "--precision bf16 under TK_NO_BF16=1 does not name the reason: $(cat "$tmp/refused.err")"
[ ! -e "$tmp/refused/metrics.jsonl" ] || fail "the refused bf16 run wrote metrics"

if ! grep -q -w avx512_bf16 /proc/cpuinfo; then
    run bf16 bf16 && fail "--precision bf16 ran on a CPU without avx512_bf16"
    grep -q -- "--precision bf16.*avx512bf16\|--precision bf16.*bf16 kernel" "$tmp/bf16.err" \
        || fail "--precision bf16 failed without naming the missing CPU feature: $(cat "$tmp/bf16.err")"
    run auto auto || fail "auto run: $(cat "$tmp/auto.err")"
    [ "$(losses fp32)" = "$(losses auto)" ] || fail "--precision auto on a CPU without AVX512-BF16 is not fp32 bit for bit"
    echo "SKIP: this CPU lacks AVX512-BF16 (auto = fp32 and the refusal checked; the bf16 curves need it)"; exit 0
fi
run bf16 bf16 || fail "bf16 run: $(cat "$tmp/bf16.err")"
run auto auto || fail "auto run: $(cat "$tmp/auto.err")"
[ "$(used bf16)" = bf16 ] || fail "config.json of the bf16 run records '$(used bf16)', expected bf16"
[ "$(used auto)" = bf16 ] || fail "config.json of the auto run on this AVX512-BF16 CPU records '$(used auto)', expected bf16"
grep -q '"event":"start".*precision bf16 (auto)' "$tmp/auto/metrics.jsonl" || fail "the start event does not say 'precision bf16 (auto)'"
[ "$(losses auto)" = "$(losses bf16)" ] || fail "--precision auto on this AVX512-BF16 CPU is not the bf16 run bit for bit"
[ "$(losses bf16)" != "$(losses fp32)" ] || fail "the bf16 run's losses equal the fp32 run's: bf16 products did not run"
within fp32 bf16 2e-2 20 stories260K

# SmolLM2-135M Q4_1 LoRA (the issue's model): auto (= bf16 here) against fp32
if [ ! -f "$SMOL" ]; then
    if [ "${CI:-}" = true ]; then echo "FAIL: $SMOL missing in CI"; exit 1; fi
    echo "PASS: train_bf16 (SmolLM2 part skipped: $SMOL not found)"; exit 0
fi
head -n 24 examples/support/train.jsonl > "$tmp/support.jsonl"
smol() { # name precision
    OMP_WAIT_POLICY=passive "$BIN" train --model "$SMOL" --data "$tmp/support.jsonl" --max-seq-len 128 --samples 0 --threads 2 \
        --seed 7 --max-steps 6 --batch-size 2 --save-every 1000 --precision "$2" --out "$tmp/$1" > "$tmp/$1.out" 2> "$tmp/$1.err"
}
smol smol_fp32 fp32 || fail "SmolLM2 fp32 run: $(cat "$tmp/smol_fp32.err")"
smol smol_auto auto || fail "SmolLM2 auto run: $(cat "$tmp/smol_auto.err")"
[ "$(used smol_auto)" = bf16 ] || fail "SmolLM2 auto run records '$(used smol_auto)', expected bf16"
[ "$(losses smol_auto)" != "$(losses smol_fp32)" ] || fail "SmolLM2: the auto run's losses equal fp32's: bf16 products did not run"
within smol_fp32 smol_auto 1e-2 6 SmolLM2-135M
echo "PASS: train_bf16"
