#!/usr/bin/env bash
# `mpirun -np 2 takumi train` (data parallelism over MPI, src/dist/) on stories260K, against one process
# with the same options (the same global batch: --batch-size 1 --grad-accum 4, so each rank runs two of a
# step's four micro-batches; LoRA dropout on, its masks the one-process run's):
# - every train and validation loss equals the one-process run's within 1e-5 relative (the order of
#   floating-point sums is all that differs); rank 0 alone writes the run folder and prints its paths;
# - a rank killed with SIGKILL mid-run ends the whole job with an error within 60 s (no hang); resumed by
#   one process, the run ends at the uninterrupted run's losses; a one-process run killed mid-run and
#   resumed by 2 ranks, the same;
# - full fine-tuning: the same (the AdamW state sharded over the ranks, ZeRO-1, as for LoRA);
# - DPO (with the reference from the base, and with --precompute-ref): the same losses and TRL metrics;
# - distillation (--objective distill --teacher hf-bf16: each rank runs the teacher on its own micro-batches):
#   the same losses, and the same adapter (every tensor's difference within 1e-4 of its norm: AdamW's
#   normalised updates enlarge the order-of-sums differences; measured 2.5e-5 here, SFT's adapters 7.7e-6);
# grpo, self-training, classification and distillation on the teacher's answers: tests/train_mpi_more_cli.sh.
set -u
cd "$(dirname "$0")/.."
NAME=train_mpi_cli
# shellcheck source=tests/lib/mpi.bash
. tests/lib/mpi.bash

names=(Lily Tom Sue Ben Max Mia Sam Ann); things=(ball cat dog tree cake car boat kite)
for i in $(seq 0 31); do
    n=${names[$((i % 8))]}; t=${things[$(((i * 5) % 8))]}
    printf '{"prompt":"Tell me about %s and the %s.","completion":"%s had a %s. %s was happy."}\n' "$n" "$t" "$n" "$t" "$n"
done > "$tmp/d.jsonl"
common=(--model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --data "$tmp/d.jsonl" --max-seq-len 160 --val-split 0.25 --samples 1
        --sample-tokens 8 --threads 1 --seed 3 --epochs 4 --lr 3e-3 --eval-every 4 --batch-size 1 --grad-accum 4 --save-every 2
        --precision fp32)   # fp32: the 1e-5 comparisons below are of summation orders, which bf16 rounding (auto) swamps
losses() { grep -o '"train_loss":[^,}]*\|"valid_loss":[^,}]*' "$1/metrics.jsonl"; }
# same(A B what): the two runs' loss lists agree within 1e-5 relative, entry by entry
same() {
    if python3 - "$1" "$2" "$3" <<'PY'
import sys, re
a, b, what = [re.findall(r'"(\w+)":([-0-9.eE+]+)', open(p + "/metrics.jsonl").read()) for p in sys.argv[1:3]] + [sys.argv[3]]
a = [(k, float(v)) for k, v in a if k in ("train_loss", "valid_loss")]
b = [(k, float(v)) for k, v in b if k in ("train_loss", "valid_loss")]
if len(a) != len(b) or len(a) < 10 or [k for k, _ in a] != [k for k, _ in b]:
    sys.exit("%s: %d vs %d losses" % (what, len(a), len(b)))
worst = max(abs(x - y) / max(abs(y), 1e-9) for (_, x), (_, y) in zip(a, b))
print("%s: %d losses, max rel diff %.2e" % (what, len(a), worst))
sys.exit(0 if worst <= 1e-5 else "%s: max rel diff %.3e > 1e-5" % (what, worst))
PY
    then ok; else bad "$3"; fi
}

# ---- one process, then two ranks with the same options
"$BIN" train "${common[@]}" --out "$tmp/one" > "$tmp/one.out" 2> "$tmp/one.err" || bad "one-process run failed: $(tail -3 "$tmp/one.err")"
if timeout 300 "${MPIRUN[@]}" "$BIN" train "${common[@]}" --out "$tmp/two" > "$tmp/two.out" 2> "$tmp/two.err"; then ok
else bad "2-rank run failed: $(tail -5 "$tmp/two.err")"; fi
same "$tmp/two" "$tmp/one" "2 ranks vs 1 process"
if [ "$(grep -c report.html "$tmp/two.out")" = 1 ] && [ "$(grep -c "finished after" "$tmp/two.err")" = 1 ]; then ok
else bad "rank 0 alone should print the result paths and the progress"; fi
for f in config.json metrics.jsonl report.html adapter/adapter_model.safetensors adapter.gguf; do
    if [ -s "$tmp/two/$f" ]; then ok; else bad "2-rank run folder lacks $f"; fi
done
if [ "$(grep -c '"train_loss"' "$tmp/two/metrics.jsonl")" = "$(grep -c '"train_loss"' "$tmp/one/metrics.jsonl")" ]; then ok
else bad "metrics.jsonl: one line per step from rank 0 only"; fi
if grep -q "optimizer state sharded (ZeRO-1)" "$tmp/two.err" && grep -q "MB sent per step" "$tmp/two.err"; then ok
else bad "the 2-rank run should report its sharded optimizer state and its traffic"; fi
grep "data parallel\|MB sent per step" "$tmp/two.err" | sed 's/^/  /'

# The ASan+UBSan pass (a build-asan binary, ~10x slower) runs the 2-rank, DPO and refusal checks, not
# the long full / kill / resume runs: they exercise the same code, whose numerics the normal pass checks.
asan=0; case "$BIN" in *build-asan*) asan=1 ;; esac
if [ "$asan" = 0 ]; then
# ---- full fine-tuning (every weight trained; each rank steps and sends its half)
full=("${common[@]}" --method full --epochs 2 --lr 1e-3)
"$BIN" train "${full[@]}" --out "$tmp/full1" > /dev/null 2> "$tmp/full1.err" || bad "full, one process: $(tail -3 "$tmp/full1.err")"
timeout 300 "${MPIRUN[@]}" "$BIN" train "${full[@]}" --out "$tmp/full2" > /dev/null 2> "$tmp/full2.err" || bad "full, 2 ranks: $(tail -3 "$tmp/full2.err")"
same "$tmp/full2" "$tmp/full1" "full fine-tuning: 2 ranks vs 1 process"

# ---- a rank killed mid-run: the job ends with an error (no hang); resumed by 1 process it ends at the
# uninterrupted run's losses. Then a 1-process run killed mid-run, resumed by 2 ranks: the same.
slow=("${common[@]}" --epochs 20 --save-every 6)
"$BIN" train "${slow[@]}" --out "$tmp/slow1" > /dev/null 2> "$tmp/slow1.err" || bad "one-process long run failed"
first_checkpoint() {   # waits (up to 60 s) for RUN's first checkpoint
    for _ in $(seq 1 300); do ls -d "$1"/checkpoints/step-* > /dev/null 2>&1 && return 0; sleep 0.2; done
    return 1
}
"${MPIRUN[@]}" "$BIN" train "${slow[@]}" --out "$tmp/kill" > /dev/null 2> "$tmp/kill.err" &
mp=$!
first_checkpoint "$tmp/kill" || bad "2 ranks: no checkpoint within 60 s"
victim=$(pgrep -f "takumi train .*--out $tmp/kill" | tail -n 1)
if [ -n "$victim" ]; then kill -9 "$victim"; ok; else bad "no rank process to kill"; fi
t0=$SECONDS
ended=0
for _ in $(seq 1 600); do kill -0 "$mp" 2> /dev/null || { ended=1; break; }; sleep 0.1; done
if [ "$ended" = 1 ]; then ok; else bad "the job did not end within 60 s of a rank's death"; kill -9 "$mp" 2> /dev/null; pkill -9 -f -- "--out $tmp/kill"; fi
wait "$mp"; rc=$?
if [ "$rc" != 0 ]; then ok; else bad "a job that lost a rank exited 0"; fi
echo "a killed rank: the job ended after $((SECONDS - t0)) s with status $rc"
if [ "$(grep -c '"train_loss"' "$tmp/kill/metrics.jsonl")" -lt 120 ]; then ok
else bad "the killed job should have stopped mid-run"; fi
"$BIN" train "${slow[@]}" --resume --out "$tmp/kill" > /dev/null 2>> "$tmp/kill.err" || bad "resumed by 1 process: $(tail -3 "$tmp/kill.err")"
same "$tmp/kill" "$tmp/slow1" "2 ranks (one killed), resumed by 1 process"

"$BIN" train "${slow[@]}" --out "$tmp/kill1" > /dev/null 2> "$tmp/kill1.err" &
p1=$!
first_checkpoint "$tmp/kill1" || bad "1 process: no checkpoint within 60 s"
kill -9 "$p1"; wait "$p1" 2> /dev/null
timeout 600 "${MPIRUN[@]}" "$BIN" train "${slow[@]}" --resume --out "$tmp/kill1" > /dev/null 2>> "$tmp/kill1.err" || bad "resumed by 2 ranks: $(tail -3 "$tmp/kill1.err")"
same "$tmp/kill1" "$tmp/slow1" "1 process (killed), resumed by 2 ranks"

else echo "ASan build: the full fine-tuning and kill/resume runs are left to the normal pass"; fi

# ---- preference learning (DPO, reference = the base with the adapter off, and with --precompute-ref): the same
for i in $(seq 0 23); do
    n=${names[$((i % 8))]}; t=${things[$(((i * 3) % 8))]}
    printf '{"prompt":"Tell me about %s.","chosen":"%s had a %s. %s was happy.","rejected":"The %s was sad."}\n' "$n" "$n" "$t" "$n" "$t"
done > "$tmp/p.jsonl"
dpo=(--model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --data "$tmp/p.jsonl" --objective dpo --max-seq-len 160 --val-split 0.25
     --samples 0 --threads 1 --seed 3 --epochs 2 --lr 3e-3 --eval-every 2 --batch-size 1 --grad-accum 4 --precision fp32)
for variant in dpo dpo_pre; do
    extra=(); [ $variant = dpo_pre ] && extra=(--precompute-ref)
    "$BIN" train "${dpo[@]}" "${extra[@]}" --out "$tmp/${variant}1" > /dev/null 2> "$tmp/${variant}1.err" || bad "$variant, one process: $(tail -3 "$tmp/${variant}1.err")"
    timeout 300 "${MPIRUN[@]}" "$BIN" train "${dpo[@]}" "${extra[@]}" --out "$tmp/${variant}2" > /dev/null 2> "$tmp/${variant}2.err" ||
        bad "$variant, 2 ranks: $(tail -3 "$tmp/${variant}2.err")"
    same "$tmp/${variant}2" "$tmp/${variant}1" "$variant: 2 ranks vs 1 process"
done
acc() { grep -o '"rewards/accuracies":[^,}]*' "$1/metrics.jsonl" | tail -n 1 | cut -d: -f2; }
if [ -n "$(acc "$tmp/dpo2")" ] && [ "$(acc "$tmp/dpo2")" = "$(acc "$tmp/dpo1")" ]; then ok
else bad "dpo: TRL's metrics (rewards/accuracies $(acc "$tmp/dpo2") vs $(acc "$tmp/dpo1")) should be summed over the ranks"; fi

# ---- distillation from another teacher (the bf16 weights): the same losses and the same adapter
dist=(--model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --data "$tmp/d.jsonl" --objective distill --teacher "$S/hf-bf16" --temperature 2
      --max-seq-len 160 --val-split 0.25 --samples 0 --threads 1 --seed 3 --epochs 2 --lr 3e-3 --eval-every 4 --batch-size 1 --grad-accum 4
      --precision fp32)
"$BIN" train "${dist[@]}" --out "$tmp/kd1" > /dev/null 2> "$tmp/kd1.err" || bad "distill, one process: $(tail -3 "$tmp/kd1.err")"
timeout 300 "${MPIRUN[@]}" "$BIN" train "${dist[@]}" --out "$tmp/kd2" > /dev/null 2> "$tmp/kd2.err" || bad "distill, 2 ranks: $(tail -3 "$tmp/kd2.err")"
same "$tmp/kd2" "$tmp/kd1" "distill: 2 ranks vs 1 process"
if python3 - "$tmp/kd2/adapter/adapter_model.safetensors" "$tmp/kd1/adapter/adapter_model.safetensors" <<'PY'
import sys, json, struct
import numpy as np
def load(p):
    b = open(p, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    h.pop("__metadata__", None)
    dt = {"F32": np.float32, "F16": np.float16, "BF16": None}
    out = {}
    for k, v in h.items():
        raw = b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]
        out[k] = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32) if v["dtype"] == "BF16" else np.frombuffer(raw, dt[v["dtype"]]).astype(np.float32)
    return out
a, b = load(sys.argv[1]), load(sys.argv[2])
if sorted(a) != sorted(b) or not a: sys.exit("distill adapters: different tensors")
worst = max(float(np.linalg.norm(a[k] - b[k]) / max(np.linalg.norm(b[k]), 1e-30)) for k in a)
print("distill: %d adapter tensors, max ||2 ranks - 1 process|| / ||1 process|| %.2e" % (len(a), worst))
sys.exit(0 if worst <= 1e-4 else "distill adapters differ by %.3e" % worst)
PY
then ok; else bad "distill: the 2-rank adapter differs from the one-process adapter"; fi

rm -rf "$tmp"
if [ "$failures" -gt 0 ]; then echo "train_mpi_cli: $failures of $checks checks FAILED"; exit 1; fi
echo "train_mpi_cli: $checks checks passed"
