#!/usr/bin/env bash
# Builds and runs dev/ppl_decode.c (decode-path perplexity, exact vs int8 activations)
# against build/libtakumi.a. Usage: dev/ppl_decode.sh MODEL TEXT [n_ctx] [chunks]
# Compare with: bench/.peers/llama.cpp-build/bin/llama-perplexity -m MODEL -f TEXT -c n_ctx --chunks chunks -t 1
set -euo pipefail
cd "$(dirname "$0")/.."
make -s build/libtakumi.a >/dev/null
cc -std=c11 -D_GNU_SOURCE -O2 -march=native -fopenmp -Iinclude -Isrc -o build/ppl_decode dev/ppl_decode.c build/libtakumi.a \
   $(pkg-config --libs openblas 2>/dev/null) $(pkg-config --libs libpcre2-8 libcjson) -lm -lpthread
exec build/ppl_decode "$@"
