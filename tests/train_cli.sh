#!/usr/bin/env bash
# `takumi train` from the command line, on the tiny stories260K model:
# - --help lists every option with its default;
# - a run writes its folder (config.json, metrics.jsonl, checkpoints/, samples.json,
#   report.html, adapter/ and adapter.gguf) and prints the result paths on stdout;
# - a run killed with SIGKILL (twice: mid-run, then again after resuming) and one killed
#   while it checkpoints every step, each continued with `--out RUN --resume` alone,
#   reproduce the uninterrupted run's train losses, learning rates, gradient norms and
#   validation results bit for bit;
# - --max-steps 3 then --resume --max-steps 5 runs steps 1..5; --recompute changes no loss;
# - bad input fails with exit 1 and a message naming the problem.
set -u
cd "$(dirname "$0")/.."
BIN=${TAKUMI_BIN:-$PWD/build/takumi}
S=${TAKUMI_SHARED:-../shared}/models/stories260K
if [ ! -f "$S/hf/model.safetensors" ] || [ ! -f "$S/llama2c/tok512.bin" ]; then
    if [ "${CI:-}" = true ]; then echo "FAIL: required asset missing in CI: models/stories260K"; exit 1; fi
    echo "SKIP: models/stories260K not found (set TAKUMI_SHARED or place ../shared)"; exit 0
fi
tmp=$(mktemp -d /tmp/takumi_train_cli_XXXXXX)
checks=0 failures=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*" >&2; }

# ---- --help: every option with its default in brackets
"$BIN" train --help > "$tmp/help" || bad "--help exit status"
for o in model tokenizer data format template out method lora-r lora-alpha lora-dropout lora-targets rslora freeze-layers \
         epochs batch-size grad-accum lr lr-multiplier augment augment-model schedule warmup weight-decay clip max-seq-len no-packing train-on-prompt val \
         val-split eval-every patience save-every keep-checkpoints resume max-steps seed threads recompute samples sample-tokens; do
    if grep -Eq -- "^  --$o( |$).*\[[^]]+\]$" "$tmp/help"; then ok; else bad "--help lacks --$o with a [default]"; fi
done

# ---- data: 24 short prompt/completion records
names=(Lily Tom Sue Ben Max Mia Sam Ann); things=(ball cat dog tree cake car boat kite)
for i in $(seq 0 23); do
    n=${names[$((i % 8))]}; t=${things[$(((i * 5) % 8))]}
    printf '{"prompt":"Tell me about %s and the %s.","completion":"%s had a %s. %s was happy."}\n' "$n" "$t" "$n" "$t" "$n"
done > "$tmp/d.jsonl"

common=(--model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --data "$tmp/d.jsonl" --max-seq-len 160 --val-split 0.2
        --samples 1 --sample-tokens 8 --threads 1 --seed 3 --epochs 5 --lr 3e-3 --eval-every 5)

# ---- the uninterrupted reference run
if "$BIN" train "${common[@]}" --save-every 4 --out "$tmp/ref" > "$tmp/ref.out" 2> "$tmp/ref.err"; then ok; else bad "reference run failed: $(tail -3 "$tmp/ref.err")"; fi
for f in config.json metrics.jsonl report.html samples.json adapter/adapter_config.json adapter/adapter_model.safetensors adapter.gguf; do
    if [ -s "$tmp/ref/$f" ]; then ok; else bad "run folder lacks $f"; fi
done
if ls -d "$tmp"/ref/checkpoints/step-* > /dev/null 2>&1; then ok; else bad "no checkpoint written"; fi
if grep -q "report.html" "$tmp/ref.out" && ! grep -q "step " "$tmp/ref.out"; then ok; else bad "stdout should hold only the result paths"; fi
if grep -q "<svg" "$tmp/ref/report.html" && grep -q "polyline" "$tmp/ref/report.html"; then ok; else bad "report.html has no SVG curves"; fi

# step, train_loss, lr, grad_norm of every step; step, valid_loss, valid_ppl, valid_token_acc of every evaluation
curve() {
    sed -n -e 's/^{"step":\([0-9]*\),.*"train_loss":\([^,]*\),"lr":\([^,]*\),"grad_norm":\([^,]*\),.*/t \1 \2 \3 \4/p' \
           -e 's/^{"step":\([0-9]*\),.*"valid_loss":\([^,]*\),"valid_ppl":\([^,]*\),"valid_token_acc":\([^,]*\),.*/v \1 \2 \3 \4/p' "$1"
}
curve "$tmp/ref/metrics.jsonl" > "$tmp/ref.curve"
n_ref=$(grep -c '^t ' "$tmp/ref.curve")
if [ "$n_ref" -ge 40 ] && grep -q '^v ' "$tmp/ref.curve"; then ok; else bad "reference run: $n_ref steps"; fi

# Starts a run in the background and SIGKILLs it once metrics.jsonl shows step $2 (or later).
kill_at() {
    local out=$1 at=$2; shift 2
    "$BIN" train "$@" > /dev/null 2>> "$out.err" &
    local pid=$! waited=0
    while kill -0 "$pid" 2> /dev/null; do
        local n
        n=$(grep -c '"train_loss"' "$out/metrics.jsonl" 2> /dev/null) || n=0
        [ "$n" -ge "$at" ] && break
        sleep 0.02
        waited=$((waited + 1))
        [ $waited -gt 15000 ] && break
    done
    kill -KILL "$pid" 2> /dev/null
    wait "$pid" 2> /dev/null
    local rc=$?
    if [ $rc -eq 137 ]; then ok; else bad "run in $out was not killed (exit $rc): it finished before step $at"; fi
}

# ---- killed twice (mid-run, then mid-resume), continued with --out RUN --resume only
kill_at "$tmp/k1" 7 "${common[@]}" --save-every 4 --out "$tmp/k1"
kill_at "$tmp/k1" 19 --out "$tmp/k1" --resume
if "$BIN" train --out "$tmp/k1" --resume > /dev/null 2>> "$tmp/k1.err"; then ok; else bad "resume of k1 failed: $(tail -3 "$tmp/k1.err")"; fi
curve "$tmp/k1/metrics.jsonl" > "$tmp/k1.curve"
if cmp -s "$tmp/ref.curve" "$tmp/k1.curve"; then ok; else bad "killed+resumed run differs from the uninterrupted one:"; diff "$tmp/ref.curve" "$tmp/k1.curve" | head -5 >&2; fi

# ---- SIGHUP (a closed terminal) pauses like Ctrl-C: a checkpoint, exit 130, an exact resume
"$BIN" train "${common[@]}" --save-every 4 --out "$tmp/h1" > /dev/null 2>> "$tmp/h1.err" &
hpid=$! waited=0
while kill -0 "$hpid" 2> /dev/null; do
    n=$(grep -c '"train_loss"' "$tmp/h1/metrics.jsonl" 2> /dev/null) || n=0
    [ "$n" -ge 5 ] && break
    sleep 0.02; waited=$((waited + 1)); [ $waited -gt 15000 ] && break
done
kill -HUP "$hpid" 2> /dev/null
wait "$hpid"; hrc=$?
if [ $hrc -eq 130 ]; then ok; else bad "SIGHUP: exit $hrc (expected 130: checkpoint and stop)"; fi
if "$BIN" train --out "$tmp/h1" --resume > /dev/null 2>> "$tmp/h1.err"; then ok; else bad "resume after SIGHUP failed: $(tail -3 "$tmp/h1.err")"; fi
curve "$tmp/h1/metrics.jsonl" > "$tmp/h1.curve"
if cmp -s "$tmp/ref.curve" "$tmp/h1.curve"; then ok; else bad "run paused by SIGHUP and resumed differs:"; diff "$tmp/ref.curve" "$tmp/h1.curve" | head -5 >&2; fi

# ---- checkpoint every step: the kill likely lands inside a checkpoint write
kill_at "$tmp/k2" 11 "${common[@]}" --save-every 1 --keep-checkpoints 3 --out "$tmp/k2"
if "$BIN" train --out "$tmp/k2" --resume > /dev/null 2>> "$tmp/k2.err"; then ok; else bad "resume of k2 failed: $(tail -3 "$tmp/k2.err")"; fi
curve "$tmp/k2/metrics.jsonl" > "$tmp/k2.curve"
if cmp -s "$tmp/ref.curve" "$tmp/k2.curve"; then ok; else bad "run killed while checkpointing differs:"; diff "$tmp/ref.curve" "$tmp/k2.curve" | head -5 >&2; fi
n_ck=$(ls -d "$tmp"/k2/checkpoints/step-* 2> /dev/null | grep -vc '\.tmp$')
if [ "$n_ck" -eq 3 ]; then ok; else bad "--keep-checkpoints 3 left $n_ck checkpoints"; fi

# ---- --max-steps with --resume counts the total; --recompute gives the same losses
if "$BIN" train "${common[@]}" --max-steps 3 --out "$tmp/ms" > /dev/null 2> "$tmp/ms.err" &&
   "$BIN" train --out "$tmp/ms" --resume --max-steps 5 > /dev/null 2>> "$tmp/ms.err"; then ok; else bad "max-steps runs failed: $(tail -3 "$tmp/ms.err")"; fi
steps=$(curve "$tmp/ms/metrics.jsonl" | sed -n 's/^t \([0-9]*\) .*/\1/p' | tr '\n' ' ')
if [ "$steps" = "1 2 3 4 5 " ]; then ok; else bad "--max-steps 3 then --resume --max-steps 5 ran steps '$steps'"; fi
if "$BIN" train "${common[@]}" --max-steps 5 --recompute --out "$tmp/rc" > /dev/null 2> "$tmp/rc.err" &&
   "$BIN" train "${common[@]}" --max-steps 5 --out "$tmp/nrc" > /dev/null 2>> "$tmp/rc.err"; then ok; else bad "recompute runs failed: $(tail -3 "$tmp/rc.err")"; fi
if cmp -s <(curve "$tmp/rc/metrics.jsonl") <(curve "$tmp/nrc/metrics.jsonl"); then ok; else bad "--recompute changes the losses"; fi

# ---- bad input
expect_fail() {   # message-regex, args...
    local re=$1; shift
    "$BIN" train "$@" > "$tmp/bad.out" 2> "$tmp/bad.err"
    local rc=$?
    if [ $rc -eq 1 ] && grep -Eq -- "$re" "$tmp/bad.err"; then ok; else bad "train $* -> exit $rc, stderr: $(head -c 300 "$tmp/bad.err")"; fi
}
printf '{"prompt":"a","completion":"b"}\n{"prompt":"a"}\n' > "$tmp/broken.jsonl"
expect_fail "line 2" "${common[@]}" --data "$tmp/broken.jsonl" --out "$tmp/bad1"
expect_fail "unknown option" --model x --data y --out z --lora-rank 4
expect_fail "lora-dropout" "${common[@]}" --lora-dropout 1.5 --out "$tmp/bad2"
expect_fail "--resume" "${common[@]}" --out "$tmp/ref"
expect_fail "max-seq-len" "${common[@]}" --max-seq-len 100000 --out "$tmp/bad3"
expect_fail "--lr-multiplier 2 scales the auto learning rate" "${common[@]}" --lr 1e-3 --lr-multiplier 2 --out "$tmp/bad4"
expect_fail "lr-multiplier" "${common[@]}" --lr-multiplier 0 --out "$tmp/bad5"
# --lr-multiplier scales the auto rate (LoRA 1e-3): config.json records the resolved rate
"$BIN" train --model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --data "$tmp/d.jsonl" --max-seq-len 160 --threads 1 --lr-multiplier 2.5 --max-steps 1 --samples 0 --out "$tmp/lrm" > /dev/null 2> "$tmp/lrm.err" || bad "--lr-multiplier run: $(tail -2 "$tmp/lrm.err")"
if python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); assert abs(c["lr"] - 2.5e-3) < 1e-12 and c["lr-multiplier"] == 2.5' "$tmp/lrm/config.json"; then ok; else bad "--lr-multiplier 2.5: $(grep -o '"lr":[^,]*' "$tmp/lrm/config.json")"; fi

if [ $failures -eq 0 ]; then
    rm -rf "$tmp"
    echo "train_cli: $checks checks passed"
    exit 0
fi
echo "train_cli: $failures of $checks checks FAILED (files kept in $tmp)"
exit 1
