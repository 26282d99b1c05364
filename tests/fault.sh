#!/usr/bin/env bash
# Fault injection (issue 14, item 14), on the FAULT=1 build (build-fault/): the Nth write,
# fsync or rename (TAKUMI_FAULT=io:N) or the Nth allocation (alloc:N) fails, for N walked over a
# whole short training run (checkpoints, metrics, adapter and report writing) and over
# `data split` / `convert` / `redact`. Every failure must end in exit status 1 with a message
# (never a crash), leave no temporary or half-written file under a final name and the input
# untouched; afterwards `--resume` (or a rerun) must complete with the uninterrupted run's
# losses, bit for bit. N is walked with a fixed stride (deterministic) so the test stays short:
# FAULT_STRIDE_IO / FAULT_STRIDE_ALLOC (default: about 40 points of each kind) — set 1 to walk all.
set -u
cd "$(dirname "$0")/.."
FB=${TAKUMI_FAULT_BIN:-$PWD/build-fault/takumi}
[ "${BUILD:-build}" = build-asan ] && { echo "SKIP: runs once, in the normal pass (its binary is build-fault/)"; exit 0; }
if [ ! -x "$FB" ]; then
    if [ "${CI:-}" = true ]; then echo "FAIL: $FB not built (make FAULT=1)"; exit 1; fi
    echo "SKIP: no fault-injection build (make -j2 FAULT=1)"; exit 0
fi
S=${TAKUMI_SHARED:-../shared}/models/stories260K
if [ ! -f "$S/hf/model.safetensors" ]; then
    if [ "${CI:-}" = true ]; then echo "FAIL: required asset missing in CI: models/stories260K"; exit 1; fi
    echo "SKIP: models/stories260K not found"; exit 0
fi
S=$(cd "$S" && pwd)
tmp=$(mktemp -d /tmp/takumi_fault_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
checks=0 failures=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*" >&2; }

for i in $(seq 0 15); do
    printf '{"messages":[{"role":"user","content":"Tell me about item %d, email a%d@example.com."},{"role":"assistant","content":"Item %d is a red ball."}]}\n' $i $i $i
done > "$tmp/d.jsonl"
sum_in=$(cksum < "$tmp/d.jsonl")
common=(--model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --data "$tmp/d.jsonl" --max-seq-len 160 --samples 0 --threads 1
        --seed 5 --max-steps 4 --save-every 2 --lr 3e-3)
losses() { sed -n 's/^{"step":\([0-9]*\),.*"train_loss":\([^,]*\),.*/\1 \2/p' "$1/metrics.jsonl" 2> /dev/null; }

TAKUMI_FAULT_COUNT=1 "$FB" train "${common[@]}" --out "$tmp/ref" > /dev/null 2> "$tmp/ref.err" || bad "reference run failed"
losses "$tmp/ref" > "$tmp/ref.loss"
read -r n_io n_alloc < <(sed -n 's/^fault points: io \([0-9]*\) alloc \([0-9]*\)/\1 \2/p' "$tmp/ref.err")
if [ -n "${n_io:-}" ] && [ "$n_io" -gt 10 ] && [ "$n_alloc" -gt 10 ]; then ok; else bad "fault point count: '${n_io:-}' '${n_alloc:-}'"; exit 1; fi
stride_io=${FAULT_STRIDE_IO:-$(( (n_io + 39) / 40 ))}
stride_alloc=${FAULT_STRIDE_ALLOC:-$(( (n_alloc + 39) / 40 ))}

# one failed run at fault point $1:$2, then the recovery
walked=0 injected=0
train_at() {
    local kind=$1 n=$2 out="$tmp/run"
    rm -rf "$out"
    walked=$((walked + 1))
    TAKUMI_FAULT="$kind:$n" "$FB" train "${common[@]}" --out "$out" > /dev/null 2> "$tmp/f.err"; local rc=$?
    [ $rc -ne 0 ] && injected=$((injected + 1))
    if [ $rc -eq 0 ]; then
        losses "$out" > "$tmp/f.loss"
        cmp -s "$tmp/ref.loss" "$tmp/f.loss" && ok || bad "train $kind:$n: exit 0 with other results"
        return
    fi
    if [ $rc -ne 1 ] || ! grep -q "takumi" "$tmp/f.err"; then bad "train $kind:$n: exit $rc: $(tail -c 300 "$tmp/f.err")"; return; fi
    if [ -n "$(find "$tmp" -name '*.tmp*' 2> /dev/null)" ]; then bad "train $kind:$n: temporaries left: $(find "$tmp" -name '*.tmp*' | head -3)"; return; fi
    [ "$(cksum < "$tmp/d.jsonl")" = "$sum_in" ] || { bad "train $kind:$n: the input changed"; return; }
    if [ -f "$out/config.json" ]; then "$FB" train --out "$out" --resume > /dev/null 2> "$tmp/r.err"
    else rm -rf "$out"; "$FB" train "${common[@]}" --out "$out" > /dev/null 2> "$tmp/r.err"; fi
    rc=$?
    losses "$out" > "$tmp/f.loss"
    if [ $rc -eq 0 ] && cmp -s "$tmp/ref.loss" "$tmp/f.loss"; then ok
    else bad "train $kind:$n: recovery exit $rc, $(tail -c 300 "$tmp/r.err")"; diff "$tmp/ref.loss" "$tmp/f.loss" | head -3 >&2; fi
}
for n in $(seq 1 "$stride_io" "$n_io"); do train_at io "$n"; done
for n in $(seq 1 "$stride_alloc" "$n_alloc"); do train_at alloc "$n"; done
# every walked point lies on the run's path, so (nearly) every one must have failed the run
if [ $((injected * 10)) -ge $((walked * 9)) ]; then ok; else bad "only $injected of $walked injected faults stopped the run"; fi

# data split / convert / redact: a failure leaves no output under its final name and the input intact
data_at() {
    local kind=$1 n=$2; shift 2
    rm -rf "$tmp/dout"; mkdir -p "$tmp/dout"
    TAKUMI_FAULT="$kind:$n" "$FB" data "$@" > /dev/null 2> "$tmp/d.err"; local rc=$?
    [ "$(cksum < "$tmp/d.jsonl")" = "$sum_in" ] || { bad "data $1 $kind:$n: the input changed"; return; }
    if [ $rc -eq 0 ]; then ok; return; fi
    if [ $rc -ne 1 ] || ! grep -q "takumi" "$tmp/d.err"; then bad "data $1 $kind:$n: exit $rc: $(tail -c 200 "$tmp/d.err")"; return; fi
    if [ -n "$(find "$tmp/dout" -type f 2> /dev/null)" ]; then bad "data $1 $kind:$n: left $(find "$tmp/dout" -type f | head -2)"; return; fi
    ok
}
for kind in io alloc; do
    for n in 1 2 3 5 8 13 21 34 55 89; do
        data_at $kind $n split "$tmp/d.jsonl" --ratios 80,20 --seed 1 --out "$tmp/dout"
        data_at $kind $n convert "$tmp/d.jsonl" --to chat --out "$tmp/dout/c.jsonl"
        data_at $kind $n redact "$tmp/d.jsonl" --out "$tmp/dout/r.jsonl"
    done
done

echo "fault: $checks checks, $failures failed (train: io points $n_io every $stride_io, alloc points $n_alloc every $stride_alloc; $injected of $walked runs failed and recovered)"
[ $failures -eq 0 ]
