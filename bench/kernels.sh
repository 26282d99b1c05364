#!/usr/bin/env bash
# GEMM kernels vs OpenBLAS (and oneDNN when libdnnl-dev is installed) on the products of a SmolLM2
# training step, GFLOP/s and the fraction of the peak measured by bench/peak.c on this machine
# (fp32 variants against the best fp32 FMA rate, the bf16 variant against the vdpbf16ps rate,
# both at the same thread count). Prints a markdown table (bench/kernels.c explains the shapes).
# With 1 thread (the default) everything is timed by CPU time (peak and products alike), which a
# shared machine does not distort; with N > 1 the products by the wall clock (a loaded machine
# lowers them).
# Usage: bench/kernels.sh [--threads N] [--tokens T] [--reps R] [--variants a,b,...]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
threads=1 args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=$2; shift 2 ;;
    --tokens|--reps|--variants) args+=("$1" "$2"); shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "kernels.sh: unknown option $1" >&2; exit 1 ;;
  esac
done
export OMP_NUM_THREADS=$threads OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
extra_c="" extra_l=""
if [ -f /usr/include/oneapi/dnnl/dnnl.h ]; then extra_c="-DTK_BENCH_DNNL" extra_l="-ldnnl"; fi
make -s -C . -j2 BUILD="$build" all >/dev/null
rm -f "$build/bench/kernels"
make -s -C bench BUILD="$(pwd)/$build" BENCH_CFLAGS="$extra_c" BENCH_LIBS="$extra_l" "$(pwd)/$build/bench/kernels"
json=$(bash bench/peak.sh --json --seconds 0.2)
cpu=$(jq -r .cpu <<<"$json")
p32=$(jq --argjson t "$threads" '[.figures[] | select((.name == "fp32_fma256" or .name == "fp32_fma512") and .threads == $t and .value != null) | .value] | max // 0' <<<"$json")
p16=$(jq --argjson t "$threads" '[.figures[] | select(.name == "bf16_dp512" and .threads == $t and .value != null) | .value] | max // 0' <<<"$json")
clock=wall
if [ "$threads" = 1 ]; then args+=(--cpu-time); clock="CPU time"; fi
echo "CPU: $cpu; $threads thread(s), timed by $clock; peak fp32 $p32 GFLOP/s, bf16 $p16 GFLOP/s (bench/peak.c); load $(cut -d' ' -f1-3 /proc/loadavg)"
"$build/bench/kernels" --threads "$threads" --peak-fp32 "$p32" --peak-bf16 "$p16" "${args[@]}"
