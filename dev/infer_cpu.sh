#!/usr/bin/env bash
# Inference speed in CPU time (robust on a loaded, shared machine): takumi (--exact: f32, and the
# default fast precision: int8 decode activations, bf16 prefill GEMMs; build/bench/bench_infer) vs
# llama.cpp (bench/.peers llama-bench), 1 thread, alternating within each round.
#   decode:  tokens/s = 240 / (task-clock(256 generated) - task-clock(16 generated))
#   prefill: tokens/s = 2*P / (task-clock(3 prompts of P) - task-clock(1 prompt of P))
# (load, start-up, warm-up and the first tokens cancel out). Usage: dev/infer_cpu.sh [rounds=2] [P=512]
# MODEL overrides the model, BENCH_INFER the takumi binary, PEERS_DIR the llama.cpp build. Needs perf, make -C bench, bench/build-peers.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
M=${MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
B=${BENCH_INFER:-build/bench/bench_infer}
P=${2:-512}
LB=${PEERS_DIR:-bench/.peers}/llama.cpp-build/bin/llama-bench
export OMP_WAIT_POLICY=passive OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
tc() { perf stat -e task-clock -x, "$@" 2>&1 >/dev/null | grep task-clock | cut -d, -f1; }
rate() { python3 -c "print('%.1f' % ($3 / (($2 - $1) / 1000)))"; }
for ((r = 1; r <= ${1:-2}; r++)); do
  for d in exact fast; do
    a=$(tc "$B" --model "$M" --threads 1 --prompt 0 --gen 16 --reps 1 --precision $d)
    b=$(tc "$B" --model "$M" --threads 1 --prompt 0 --gen 256 --reps 1 --precision $d)
    echo "round $r takumi $d decode: $(rate "$a" "$b" 240) tok/CPU-s"
    a=$(tc "$B" --model "$M" --threads 1 --prompt "$P" --gen 0 --reps 1 --precision $d)
    b=$(tc "$B" --model "$M" --threads 1 --prompt "$P" --gen 0 --reps 3 --precision $d)
    echo "round $r takumi $d prefill: $(rate "$a" "$b" $((2 * P))) tok/CPU-s"
  done
  a=$(tc "$LB" -m "$M" -t 1 -p 0 -n 16 -r 1)
  b=$(tc "$LB" -m "$M" -t 1 -p 0 -n 256 -r 1)
  echo "round $r llama.cpp decode: $(rate "$a" "$b" 240) tok/CPU-s"
  a=$(tc "$LB" -m "$M" -t 1 -p "$P" -n 0 -r 1)
  b=$(tc "$LB" -m "$M" -t 1 -p "$P" -n 0 -r 3)
  echo "round $r llama.cpp prefill: $(rate "$a" "$b" $((2 * P))) tok/CPU-s"
done
