#!/usr/bin/env bash
# Decode speed in CPU time (robust on a loaded, shared machine): takumi (exact f32 and int8
# activations, build/bench/bench_infer) vs llama.cpp (bench/.peers llama-bench), 1 thread.
# tokens/s = 240 / (task-clock(256 generated) - task-clock(16 generated)): load, warm-up
# and the first tokens cancel out. Usage: dev/decode_cpu.sh [rounds=2]  (needs perf,
# make -C bench, bench/build-peers.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
M=models/SmolLM2-135M-Instruct.Q4_1.gguf
LB=bench/.peers/llama.cpp-build/bin/llama-bench
export OMP_WAIT_POLICY=passive OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
tc() { perf stat -e task-clock -x, "$@" 2>&1 >/dev/null | grep task-clock | cut -d, -f1; }
rate() { python3 -c "print('%.1f' % (240 / (($2 - $1) / 1000)))"; }
for ((r = 1; r <= ${1:-2}; r++)); do
  for d in exact int8; do
    a=$(tc build/bench/bench_infer --model $M --threads 1 --prompt 0 --gen 16 --reps 1 --decode $d)
    b=$(tc build/bench/bench_infer --model $M --threads 1 --prompt 0 --gen 256 --reps 1 --decode $d)
    echo "round $r takumi $d: $(rate "$a" "$b") tok/CPU-s"
  done
  a=$(tc $LB -m $M -t 1 -p 0 -n 16 -r 1)
  b=$(tc $LB -m $M -t 1 -p 0 -n 256 -r 1)
  echo "round $r llama.cpp: $(rate "$a" "$b") tok/CPU-s"
done
