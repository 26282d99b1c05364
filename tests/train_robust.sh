#!/usr/bin/env bash
# Nothing lost, nothing silently wrong (issue 14, items 1, 3-6), on the tiny stories260K model:
# - two `takumi train` into one --out at once: the second is refused naming the first's pid,
#   and the first finishes with its own results (before: both ran and mixed their files);
# - a damaged newest checkpoint (params.safetensors truncated, trainer_state.json garbled,
#   one flipped bit in a tensor, "step" edited) is moved aside as *.damaged with a warning
#   and --resume continues from the one before, ending bit-identical to the uninterrupted
#   run (before: an error, or a silently wrong resume);
# - --resume with another base model (the bf16 folder instead of the f32 one: same shapes) is refused;
# - config.json holds absolute paths, so --resume works from another folder;
# - a killed writer's temporary (out.gguf.tmp.PID.N of a dead pid) is removed by the next export;
# - an export whose target another process is exporting to is refused.
set -u
cd "$(dirname "$0")/.."
BIN=${TAKUMI_BIN:-$PWD/build/takumi}
S=${TAKUMI_SHARED:-../shared}/models/stories260K
if [ ! -f "$S/gguf/stories260K-f32.gguf" ] || [ ! -f "$S/llama2c/tok512.bin" ]; then
    if [ "${CI:-}" = true ]; then echo "FAIL: required asset missing in CI: models/stories260K"; exit 1; fi
    echo "SKIP: models/stories260K not found (set TAKUMI_SHARED or place ../shared)"; exit 0
fi
S=$(cd "$S" && pwd)
tmp=$(mktemp -d /tmp/takumi_train_robust_XXXXXX)
checks=0 failures=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*" >&2; }

names=(Lily Tom Sue Ben Max Mia Sam Ann); things=(ball cat dog tree cake car boat kite)
for i in $(seq 0 23); do
    n=${names[$((i % 8))]}; t=${things[$(((i * 5) % 8))]}
    printf '{"prompt":"Tell me about %s and the %s.","completion":"%s had a %s. %s was happy."}\n' "$n" "$t" "$n" "$t" "$n"
done > "$tmp/d.jsonl"
common=(--model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --data "$tmp/d.jsonl" --max-seq-len 160
        --samples 0 --threads 1 --seed 5 --epochs 3 --lr 3e-3 --save-every 9 --keep-checkpoints 20)
losses() { sed -n 's/^{"step":\([0-9]*\),.*"train_loss":\([^,]*\),.*/\1 \2/p' "$1/metrics.jsonl"; }

# ---- the uninterrupted reference
if "$BIN" train "${common[@]}" --out "$tmp/ref" > /dev/null 2> "$tmp/ref.err"; then ok; else bad "reference run: $(tail -2 "$tmp/ref.err")"; fi
losses "$tmp/ref" > "$tmp/ref.loss"
n=$(wc -l < "$tmp/ref.loss")
if [ "$n" -ge 9 ]; then ok; else bad "reference run has $n steps"; fi

# ---- two runs into one folder at once
"$BIN" train "${common[@]}" --epochs 200 --save-every 1000 --out "$tmp/busy" > /dev/null 2> "$tmp/busy1.err" &
pid=$!
for _ in $(seq 1 500); do [ -s "$tmp/busy/metrics.jsonl" ] && break; sleep 0.02; done
"$BIN" train "${common[@]}" --lr 1e-3 --out "$tmp/busy" > /dev/null 2> "$tmp/busy2.err"; rc=$?
if [ $rc -ne 0 ] && grep -q "in use by another takumi process (pid $pid)" "$tmp/busy2.err"; then ok
else bad "second run into a busy folder: exit $rc, $(cat "$tmp/busy2.err")"; fi
"$BIN" train --out "$tmp/busy" --resume > /dev/null 2> "$tmp/busy3.err"; rc=$?
if [ $rc -ne 0 ] && grep -q "in use" "$tmp/busy3.err"; then ok; else bad "--resume into a busy folder: exit $rc"; fi
kill -INT $pid; wait $pid
if grep -q '"lr":0.003' "$tmp/busy/config.json"; then ok; else bad "the busy folder's config.json is not the first run's"; fi
# a failed start leaves no empty folder behind
"$BIN" train "${common[@]}" --data "$tmp/missing.jsonl" --out "$tmp/never" > /dev/null 2>&1
if [ ! -e "$tmp/never" ]; then ok; else bad "a run that failed to start left $tmp/never behind"; fi

# ---- damaged newest checkpoints: each kind set aside, the resume falls back and matches the reference
damage() { # $1 = kind, $2 = checkpoint folder
    case $1 in
    truncate) truncate -s 100 "$2/params.safetensors" ;;
    garble) printf '{"format":"takumi-trainer-st' > "$2/trainer_state.json" ;;
    empty) : > "$2/trainer_state.json" ;;
    bitflip) python3 -c "
import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[-9] ^= 0x10; open(p,'wb').write(b)" "$2/params.safetensors" ;;
    step) sed -i 's/"step":[0-9]*/"step":99999/' "$2/trainer_state.json" ;;
    esac
}
# from a copy of the reference run cut back to step 18: its newest checkpoint damaged, the resume
# falls back to step 9 and must end exactly as the reference did
for kind in truncate garble empty bitflip step; do
    out="$tmp/dmg_$kind"
    cp -r "$tmp/ref" "$out"
    for c in "$out"/checkpoints/step-*; do [ "${c##*step-}" -gt 18 ] && rm -rf "$c"; done
    newest="$out/checkpoints/step-00000018"
    [ -d "$newest" ] || bad "$kind: no checkpoint at step 18"
    damage "$kind" "$newest"
    if "$BIN" train --out "$out" --resume > /dev/null 2> "$out.err2"; then ok
    else bad "$kind: resume failed: $(tail -2 "$out.err2")"; fi
    if grep -q "is damaged" "$out.err2" && [ -d "$newest.damaged" ]; then ok; else bad "$kind: no warning / not moved aside"; fi
    if grep -q "resumed from .*step-00000009" "$out/metrics.jsonl"; then ok; else bad "$kind: did not resume from step 9"; fi
    losses "$out" > "$out.loss"
    if cmp -s "$tmp/ref.loss" "$out.loss"; then ok; else bad "$kind: resumed run differs from the reference"; diff "$tmp/ref.loss" "$out.loss" | head -3 >&2; fi
done
# every checkpoint damaged: a clear error, nothing trained
out="$tmp/dmg_all"
cp -r "$tmp/ref" "$out"
for c in "$out"/checkpoints/step-*; do damage garble "$c"; done
"$BIN" train --out "$out" --resume > /dev/null 2> "$out.err"; rc=$?
if [ $rc -ne 0 ] && grep -q "no intact checkpoint" "$out.err"; then ok; else bad "all damaged: exit $rc, $(tail -2 "$out.err")"; fi

# ---- another base model: same shapes, other dtype
out="$tmp/other"
"$BIN" train "${common[@]}" --max-steps 4 --out "$out" > /dev/null 2>&1 || bad "other: first part failed"
"$BIN" train --out "$out" --resume --model "$S/hf-bf16" > /dev/null 2> "$out.err"; rc=$?
if [ $rc -ne 0 ] && grep -q "another model" "$out.err"; then ok; else bad "resume on another base: exit $rc, $(tail -2 "$out.err")"; fi

# ---- absolute paths: a run started with relative paths resumes from another folder
mkdir -p "$tmp/work" && cp "$tmp/d.jsonl" "$tmp/work/rel.jsonl"
( cd "$tmp/work" && "$BIN" train "${common[@]}" --data rel.jsonl --max-steps 4 --out run > /dev/null 2>&1 ) || bad "relative run failed"
if grep -q "\"data\":\"$tmp/work/rel.jsonl\"" "$tmp/work/run/config.json"; then ok; else bad "config.json does not hold the data file's absolute path"; fi
( cd / && "$BIN" train --out "$tmp/work/run" --resume --max-steps 6 > /dev/null 2> "$tmp/rel.err" ); rc=$?
if [ $rc -eq 0 ]; then ok; else bad "resume from another folder: $(tail -2 "$tmp/rel.err")"; fi

# ---- a killed writer's temporary is removed by the next write to the same name
dead=4194303; while kill -0 $dead 2> /dev/null; do dead=$((dead - 1)); done
head -c 1000 /dev/zero > "$tmp/m.gguf.tmp.$dead.0"
if "$BIN" export --model "$S/gguf/stories260K-f32.gguf" --to "$tmp/m.gguf" > /dev/null 2> "$tmp/exp.err"; then ok; else bad "export: $(tail -2 "$tmp/exp.err")"; fi
if [ ! -e "$tmp/m.gguf.tmp.$dead.0" ] && [ -s "$tmp/m.gguf" ]; then ok; else bad "stale temporary of pid $dead not removed"; fi

# ---- one export to a target at a time (another process holds .m2.gguf.lock meanwhile)
if command -v flock > /dev/null; then
    flock "$tmp/.m2.gguf.lock" sleep 3 &
    fpid=$!
    sleep 0.3
    "$BIN" export --model "$S/gguf/stories260K-f32.gguf" --to "$tmp/m2.gguf" > /dev/null 2> "$tmp/exp2.err"; rc=$?
    if [ $rc -ne 0 ] && grep -q "export target .* is in use" "$tmp/exp2.err" && [ ! -e "$tmp/m2.gguf" ]; then ok
    else bad "export into a locked target: exit $rc, $(tail -1 "$tmp/exp2.err")"; fi
    wait $fpid
    if "$BIN" export --model "$S/gguf/stories260K-f32.gguf" --to "$tmp/m2.gguf" > /dev/null 2>&1 && [ ! -e "$tmp/.m2.gguf.lock" ]; then ok
    else bad "export after the lock was released (or its lock file left behind)"; fi
fi

rm -rf "$tmp"
echo "train_robust: $checks checks, $failures failed"
[ $failures -eq 0 ]
