#!/usr/bin/env bash
# Refactoring guard: `takumi train` must give bit-identical losses, learning rates,
# gradient norms and validation results to those recorded in
# tests/fixtures/train/baseline/*.curve (recorded with the code before the core was
# opened into seams, 1 thread, on the CPU vendor named in cpu.txt; on another CPU kind,
# whose OpenBLAS kernels sum in another order, within 3e-4 relative). Cases: stories260K LoRA (dropout, rsLoRA, q,v,down
# targets), stories260K full fine-tuning with frozen layers, SmolLM2-135M Q4_1 LoRA on
# the support examples. `--record` rewrites the fixtures (only when a change of results is
# intended and explained in the commit).
set -u
cd "$(dirname "$0")/.."
BIN=${TAKUMI_BIN:-$PWD/build/takumi}
S=${TAKUMI_SHARED:-../shared}/models/stories260K
SMOL=${TAKUMI_MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
FIX=tests/fixtures/train/baseline
record=0; [ "${1:-}" = --record ] && record=1
if [ ! -f "$S/hf/model.safetensors" ]; then
    if [ "${CI:-}" = true ]; then echo "FAIL: required asset missing in CI: models/stories260K"; exit 1; fi
    echo "SKIP: models/stories260K not found (set TAKUMI_SHARED or place ../shared)"; exit 0
fi
tmp=$(mktemp -d /tmp/takumi_train_baseline_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
checks=0 failures=0
names=(Lily Tom Sue Ben Max Mia Sam Ann); things=(ball cat dog tree cake car boat kite)
for i in $(seq 0 23); do
    n=${names[$((i % 8))]}; t=${things[$(((i * 5) % 8))]}
    printf '{"prompt":"Tell me about %s and the %s.","completion":"%s had a %s. %s was happy."}\n' "$n" "$t" "$n" "$t" "$n"
done > "$tmp/d.jsonl"
head -n 24 examples/support/train.jsonl > "$tmp/support.jsonl"
head -n 6 examples/support/valid.jsonl > "$tmp/support_val.jsonl"
curve() {
    sed -n -e 's/^{"step":\([0-9]*\),.*"train_loss":\([^,]*\),"lr":\([^,]*\),"grad_norm":\([^,]*\),.*/t \1 \2 \3 \4/p' \
           -e 's/^{"step":\([0-9]*\),.*"valid_loss":\([^,]*\),"valid_ppl":\([^,]*\),"valid_token_acc":\([^,]*\),.*/v \1 \2 \3 \4/p' "$1"
}
stories=(--model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --data "$tmp/d.jsonl" --max-seq-len 160 --val-split 0.2 --precision fp32
         --threads 1 --seed 5 --epochs 3 --eval-every 4 --save-every 1000)
run_case() {
    local name=$1; shift
    if ! "$BIN" train "$@" --out "$tmp/$name" > "$tmp/$name.out" 2> "$tmp/$name.err"; then
        checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $name: run failed: $(tail -3 "$tmp/$name.err")" >&2; return
    fi
    curve "$tmp/$name/metrics.jsonl" > "$tmp/$name.curve"
    if [ "$record" = 1 ]; then cp "$tmp/$name.curve" "$FIX/$name.curve"; echo "recorded $FIX/$name.curve ($(wc -l < "$FIX/$name.curve") lines)"; return; fi
    checks=$((checks + 1))
    if [ "$exact" = 1 ]; then
        if [ -s "$tmp/$name.curve" ] && cmp -s "$tmp/$name.curve" "$FIX/$name.curve"; then :; else
            failures=$((failures + 1)); echo "FAIL: $name: curve differs from $FIX/$name.curve:" >&2
            diff "$FIX/$name.curve" "$tmp/$name.curve" | head -10 >&2
        fi
    elif ! python3 - "$tmp/$name.curve" "$FIX/$name.curve" "$name" <<'PY'
import sys
got, want = [[l.split() for l in open(p)] for p in sys.argv[1:3]]
ok = len(got) == len(want) > 0 and all(g[:2] == w[:2] for g, w in zip(got, want))
worst = max((abs(float(a) - float(b)) / max(abs(float(b)), 1e-12) for g, w in zip(got, want) for a, b in zip(g[2:], w[2:])), default=1)
print("  %s: %d lines, max rel diff %.2e from the recording (another CPU kind: within 3e-4)" % (sys.argv[3], len(got), worst))
sys.exit(0 if ok and worst <= 3e-4 else "%s: %s" % (sys.argv[3], "lines differ" if not ok else "max rel diff %.3e" % worst))
PY
    then failures=$((failures + 1)); echo "FAIL: $name: curve differs from $FIX/$name.curve beyond 3e-4" >&2; diff "$FIX/$name.curve" "$tmp/$name.curve" | head -6 >&2
    fi
}
# Bit for bit on the CPU kind the fixtures were recorded on ($FIX/cpu.txt: its vendor; OpenBLAS picks its
# kernels, and so its summation order, by CPU); on another kind every number within 3e-4 relative (measured
# on an Intel Xeon against the AMD recording: up to 8.7e-5 after 73 steps of drift, 1.3e-6 on SmolLM2).
cpu_kind=$(grep -m1 '^vendor_id' /proc/cpuinfo | awk '{print $3}')
exact=0; [ "$cpu_kind" = "$(cat "$FIX/cpu.txt" 2>/dev/null)" ] && exact=1
[ "$record" = 1 ] && echo "$cpu_kind" > "$FIX/cpu.txt"
[ "$exact" = 1 ] || echo "train_baseline: this CPU ($cpu_kind) is not the recording's ($(cat "$FIX/cpu.txt" 2>/dev/null)): comparing within 3e-4"
run_case stories_lora "${stories[@]}" --lora-r 4 --lora-alpha 8 --lora-dropout 0.1 --rslora --lora-targets q,v,down --lr 3e-3 \
    --samples 1 --sample-tokens 8
# the "after" sample is generated with the trained adapter (the adapter lives in the training
# context, not in the model, so the sampler must be handed it): it must differ from "before"
if [ "$record" = 0 ]; then
    checks=$((checks + 1))
    before=$(sed -n 's/.*"before":[[:space:]]*"\(.*\)",*$/\1/p' "$tmp/stories_lora/samples.json")
    after=$(sed -n 's/.*"after":[[:space:]]*"\(.*\)",*$/\1/p' "$tmp/stories_lora/samples.json")
    if [ -n "$after" ] && [ "$before" != "$after" ]; then :; else
        failures=$((failures + 1)); echo "FAIL: stories_lora: the after-training sample equals the base's ('$after')" >&2
    fi
fi
run_case stories_full "${stories[@]}" --samples 0 --method full --freeze-layers 2 --lr 1e-3 --weight-decay 0.01 --schedule linear
if [ -f "$SMOL" ]; then
    run_case smollm2_lora --model "$SMOL" --data "$tmp/support.jsonl" --val "$tmp/support_val.jsonl" --max-seq-len 256 \
        --samples 0 --threads 1 --seed 7 --max-steps 4 --eval-every 2 --save-every 1000 --precision fp32
elif [ "${CI:-}" = true ]; then
    echo "FAIL: $SMOL missing in CI"; exit 1
fi
[ "$record" = 1 ] && exit 0
echo "train_baseline: $((checks - failures)) checks passed, $failures failed"
[ "$failures" -eq 0 ]
