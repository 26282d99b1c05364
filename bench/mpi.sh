#!/usr/bin/env bash
# Data-parallel training speed on this machine: `takumi train` on SmolLM2-135M-Instruct (Q4_1 base) with
# examples/support, LoRA (defaults) or full fine-tuning, the same global batch (--batch-size 1
# --grad-accum 4, --max-seq-len 256, no validation) as
#   1 process x T threads   and   N ranks (mpirun -np N) x T/N threads each.
# Prints tokens/s and the step time (mean over the steps after the first), and for the ranks rank 0's
# split: waiting for the slowest rank, in transfers (gradient sums and the ZeRO-1 weight broadcasts), the
# rest (compute), and the bytes it sent per step. One machine: the ranks talk through shared memory.
# Usage: bench/mpi.sh [--steps S] [--threads T] [--ranks N] [--method lora|full]
set -euo pipefail
cd "$(dirname "$0")/.."
steps=12 threads=2 ranks=2 method=lora
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --ranks) ranks=$2; shift 2 ;;
    --method) method=$2; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "mpi.sh: unknown option $1" >&2; exit 1 ;;
  esac
done
model=models/SmolLM2-135M-Instruct.Q4_1.gguf
[ -s "$model" ] || { echo "mpi.sh: $model not found (scripts/fetch-model.sh)" >&2; exit 1; }
command -v mpirun > /dev/null || { echo "mpi.sh: mpirun not found (scripts/deps.sh installs OpenMPI)" >&2; exit 1; }
make -s -j2 >&2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OMP_WAIT_POLICY=passive
out=$(mktemp -d /tmp/takumi_bench_mpi_XXXXXX)
per=$((threads / ranks)); [ "$per" -ge 1 ] || per=1
common=(--model "$model" --data examples/support/train.jsonl --method "$method" --batch-size 1 --grad-accum 4 --max-seq-len 256
        --max-steps "$steps" --val-split 0 --samples 0 --save-every 100000 --seed 1)
echo "mpi.sh: 1 process x $threads threads ($steps steps, $method)" >&2
./build/takumi train "${common[@]}" --threads "$threads" --out "$out/one" > /dev/null 2> "$out/one.err"
echo "mpi.sh: $ranks ranks x $per thread(s)" >&2
mpirun -np "$ranks" --bind-to none ./build/takumi train "${common[@]}" --threads "$per" --out "$out/many" > /dev/null 2> "$out/many.err"
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
isa=$(grep -o 'avx512[a-z_0-9]*\|avx2' /proc/cpuinfo | sort -u | tr '\n' ' ')
python3 - "$out" "$ranks" "$threads" "$per" "$steps" "$method" "$cpu" "$isa" <<'PY'
import json, re, sys
out, ranks, threads, per, steps, method, cpu, isa = sys.argv[1:]
def stats(run):
    rows = [json.loads(l) for l in open("%s/%s/metrics.jsonl" % (out, run)) if '"train_loss"' in l]
    rows = rows[1:] if len(rows) > 1 else rows
    toks = sum(r["tokens"] for r in rows); secs = sum(r["step_s"] for r in rows)
    return toks / secs, secs / len(rows), len(rows)
one, many = stats("one"), stats("many")
err = open("%s/many.err" % out).read()
m = re.search(r"over (\d+) steps: ([0-9.]+) s waiting for the other ranks, ([0-9.]+) s in transfers, ([0-9.]+) MB sent per step", err)
z = re.search(r"at most ([0-9.]+) MB of AdamW moments per rank \(one process: ([0-9.]+) MB\)", err)
print("CPU: %s (%s), %s, %s steps" % (cpu, isa.strip(), method, steps))
print()
print("| run | tokens/s | step (s) | waiting (s/step) | transfers (s/step) | compute (s/step) | sent per step | AdamW moments per rank |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
print("| 1 process x %s threads | %.1f | %.3f | - | - | %.3f | - | %s MB |" % (threads, one[0], one[1], one[1], z.group(2) if z else "?"))
if m:
    n = int(m.group(1)); w, t = float(m.group(2)) / n, float(m.group(3)) / n
    print("| %s ranks x %s thread(s) | %.1f | %.3f | %.3f | %.3f | %.3f | %s MB | %s MB |" % (ranks, per, many[0], many[1], w, t, many[1] - w - t, m.group(4),
                                                                                     z.group(1) if z else "?"))
print()
print("ratio (ranks / one process): %.2fx tokens/s" % (many[0] / one[0]))
PY
rm -rf "$out"
