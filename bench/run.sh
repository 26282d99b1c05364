#!/usr/bin/env bash
# Runs every benchmark that is available and writes the README-ready tables to
# bench/out/latest.md (git-ignored), also printing them:
#   - inference: takumi vs llama.cpp, prefill and decode tokens/s (bench/infer.sh);
#   - batched generation: tk_generate_batch at batch 1, 8, 32 vs sequential tk_generate
#     (build/bench/gen_batch, bench/gen_batch.c);
#   - tokenizer encode MB/s (bench/tokenizer_speed.sh or the bench/tokenizer_speed.c
#     program, when present);
#   - the machine's peak (bench/peak.sh) and the GEMM kernels vs OpenBLAS (bench/kernels.sh);
#   - training vs PyTorch + PEFT (bench/train.sh, when present; only with --train,
#     since it takes long).
# Usage: bench/run.sh [--threads N] [--train] [--quick]
#   --quick: fewer repetitions (a smoke run, not numbers to publish).
set -euo pipefail
cd "$(dirname "$0")/.."

threads=2 train=0 quick=0
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=$2; shift 2 ;;
    --train) train=1; shift ;;
    --quick) quick=1; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 1 ;;
  esac
done

mkdir -p bench/out
out=bench/out/latest.md
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
make -s -C bench >&2

{
  echo "# takumi benchmarks"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), takumi $(git rev-parse --short HEAD 2>/dev/null || echo unknown)," \
       "$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) logical CPUs, $threads threads."
  echo
  echo "## Inference (SmolLM2-135M-Instruct Q4_1) vs llama.cpp"
  echo
  if [ "$quick" = 1 ]; then
    bench/infer.sh --threads "$threads" --reps 2 --rounds 1
  else
    bench/infer.sh --threads "$threads"
  fi
  echo
  if [ -x bench/tokenizer_speed.sh ] || [ -x build/bench/tokenizer_speed ]; then
    echo "## Tokenizer encode speed"
    echo
    if [ -x bench/tokenizer_speed.sh ]; then
      bench/tokenizer_speed.sh
    else
      build/bench/tokenizer_speed
    fi
    echo
  fi
  if [ -x build/bench/gen_batch ] && [ -f models/SmolLM2-135M-Instruct.Q4_1.gguf ]; then
    echo "## Batched generation (tk_generate_batch vs sequential tk_generate)"
    echo
    if [ "$quick" = 1 ]; then
      build/bench/gen_batch --threads "$threads" --n 8 --gen 8 --batches 1,8
    else
      build/bench/gen_batch --threads "$threads"
    fi
    echo
  fi
  echo "## The machine's peak and the GEMM kernels (1 thread, CPU time)"
  echo
  OMP_NUM_THREADS=$threads bench/peak.sh | sed 's/^/    /'
  echo
  bench/kernels.sh --threads 1 --reps $([ "$quick" = 1 ] && echo 1 || echo 3)
  echo
  if [ "$train" = 1 ] && [ -x bench/train.sh ]; then
    echo "## Training vs PyTorch + PEFT"
    echo
    bench/train.sh --threads "$threads" $([ "$quick" = 1 ] && echo --quick)
    echo
  fi
} > "$tmp"
mv "$tmp" "$out"
trap - EXIT
cat "$out"
echo "run.sh: wrote $out" >&2
