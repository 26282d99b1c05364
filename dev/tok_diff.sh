#!/usr/bin/env bash
# Differential tokenizer check: builds dev/tok_diff.c against two copies of libtakumi.a
# (e.g. one saved before a change to src/tokenizer/ and build/libtakumi.a after it), runs
# both over the shared data files plus random strings, and compares the id lists.
# Usage: dev/tok_diff.sh OLD_LIBTAKUMI_A [NEW_LIBTAKUMI_A (default build/libtakumi.a)] [MODEL]
set -euo pipefail
cd "$(dirname "$0")/.."
old=$1; new=${2:-build/libtakumi.a}; model=${3:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
shared=${TAKUMI_SHARED:-../shared}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
flags="-std=c11 -O2 -Iinclude $(pkg-config --cflags libcjson libpcre2-8)"
libs="$(pkg-config --libs openblas libpcre2-8 libcjson 2>/dev/null) -fopenmp -lm -lpthread"
cc $flags -o "$tmp/old" dev/tok_diff.c "$old" $libs
cc $flags -o "$tmp/new" dev/tok_diff.c "$new" $libs
files=$(find "$shared/data" -type f \( -name '*.json' -o -name '*.jsonl' -o -name '*.tsv' -o -name '*.txt' \) | sort)
"$tmp/old" "$model" $files >"$tmp/old.txt"
"$tmp/new" "$model" $files >"$tmp/new.txt"
if cmp -s "$tmp/old.txt" "$tmp/new.txt"; then echo "tok_diff: identical ($(wc -l <"$tmp/old.txt") texts)"; else
  echo "tok_diff: DIFFERENT"; diff "$tmp/old.txt" "$tmp/new.txt" | head -20; exit 1; fi
