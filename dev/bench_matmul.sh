#!/usr/bin/env bash
# Builds and runs dev/bench_matmul.c against build/libtakumi.a (run `make` first).
# Usage: dev/bench_matmul.sh [threads]   (OMP_WAIT_POLICY=passive helps on a loaded machine)
set -euo pipefail
cd "$(dirname "$0")/.."
make -s build/libtakumi.a >/dev/null
cc -std=c11 -D_GNU_SOURCE -O2 -march=native -fopenmp -Iinclude -Isrc -o build/bench_matmul dev/bench_matmul.c build/libtakumi.a \
   $(pkg-config --libs openblas 2>/dev/null) $(pkg-config --libs libpcre2-8 libcjson) -lm -lpthread
exec build/bench_matmul "${1:-0}"
