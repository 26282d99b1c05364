#!/usr/bin/env bash
# Builds bench/peak.c without -march=native (per-function target attributes and run-time CPUID
# checks: one binary for every x86-64 CPU) into $BUILD/bench/peak and runs it.
# Usage: bench/peak.sh [--json] [--seconds S] [--mb MB]   (threads: OMP_NUM_THREADS, default all)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
mkdir -p "$build/bench"
if [ ! -x "$build/bench/peak" ] || [ bench/peak.c -nt "$build/bench/peak" ]; then
  ${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -fopenmp -Wall -Wextra -o "$build/bench/peak" bench/peak.c
fi
exec "$build/bench/peak" "$@"
