#!/usr/bin/env bash
# LoRA SFT step (SmolLM2 Q4_1, seq 512, batch 1, r 8, all linears) in CPU seconds:
# (task-clock(3 steps) - task-clock(1 step)) / 2, so load and setup cancel out.
# Usage: dev/lora_step_cpu.sh [bench_train binaries...]  (default build/bench/bench_train;
# TH=2 for two threads). Needs perf and make -C bench.
set -euo pipefail
cd "$(dirname "$0")/.."
TH=${TH:-1}
export OMP_WAIT_POLICY=passive OMP_NUM_THREADS=$TH OPENBLAS_NUM_THREADS=$TH
tc() { perf stat -e task-clock -x, "$@" 2>&1 >/dev/null | grep task-clock | cut -d, -f1; }
for b in "${@:-build/bench/bench_train}"; do
  a=$(tc "$b" --method lora --batch 1 --seq 512 --threads "$TH" --steps 1 --warmup 0)
  c=$(tc "$b" --method lora --batch 1 --seq 512 --threads "$TH" --steps 3 --warmup 0)
  python3 -c "s = ($c - $a) / 2000; print('$b: %.2f CPU s/step = %.1f tokens per CPU second' % (s, 512 / s))"
done
