#!/usr/bin/env bash
# Builds each libFuzzer target (tests/fuzz/fuzz_*.c) and runs it over its corpus
# (tests/fuzz/corpus/<name>/: the seeds, the inputs earlier runs kept and every past crash).
#
# Default (the test suite, CI): deterministic. Each target first replays its whole corpus once,
# then fuzzes for a fixed number of executions from a fixed seed (-seed=1 -runs=$FUZZ_RUNS,
# default 20000): the same inputs on every run, so a run can only fail because of the code,
# never by chance. Nothing is written to the corpus.
#
# --long [SECONDS]: random exploration for SECONDS per target (default 300), new coverage kept
# in the corpus folders (commit what it adds; a crash input goes there too once fixed).
set -euo pipefail
cd "$(dirname "$0")/../.."
long=0 secs=300
if [ "${1:-}" = --long ]; then long=1; [ -n "${2:-}" ] && secs=$2; fi
RUNS=${FUZZ_RUNS:-20000}
shopt -s nullglob
targets=(tests/fuzz/fuzz_*.c)
[ ${#targets[@]} -eq 0 ] && { echo "no fuzz targets"; exit 0; }
make -j2 fuzz >/dev/null
pass=0; fail=0
for src in "${targets[@]}"; do
    name=$(basename "$src" .c)
    corpus=tests/fuzz/corpus/${name#fuzz_}
    mkdir -p "$corpus"
    log=$(mktemp)
    if [ "$long" = 1 ]; then
        cmd=(./build-fuzz/"$name" -max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536 "$corpus")
    else
        work=$(mktemp -d) # fuzzing writes new inputs into its first folder: not into the committed corpus
        cmd=(./build-fuzz/"$name" -seed=1 -runs="$RUNS" -rss_limit_mb=2048 -max_len=65536 "$work" "$corpus")
    fi
    if { [ "$long" = 1 ] || ./build-fuzz/"$name" -runs=0 -rss_limit_mb=2048 "$corpus" >"$log" 2>&1; } && "${cmd[@]}" >>"$log" 2>&1; then
        pass=$((pass+1)); echo "ok    $name ($(ls "$corpus" | wc -l) corpus inputs replayed, $(grep -Eo '#[0-9]+' "$log" | tail -1 | tr -d '#') executions)"
    else
        fail=$((fail+1)); echo "FAIL  $name"; tail -n 40 "$log"
    fi
    rm -f "$log"
    [ "$long" = 1 ] || rm -rf "$work"
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
