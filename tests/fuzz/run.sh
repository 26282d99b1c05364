#!/usr/bin/env bash
# Builds each libFuzzer target (tests/fuzz/fuzz_*.c) and runs it for a bounded time
# over its seed corpus (tests/fuzz/corpus/<name>/). Any crash fails the run.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${FUZZ_SECONDS:-20}
shopt -s nullglob
targets=(tests/fuzz/fuzz_*.c)
[ ${#targets[@]} -eq 0 ] && { echo "no fuzz targets"; exit 0; }
make -j2 fuzz >/dev/null
pass=0; fail=0
for src in "${targets[@]}"; do
    name=$(basename "$src" .c)
    corpus=tests/fuzz/corpus/${name#fuzz_}
    work=$(mktemp -d)
    [ -d "$corpus" ] && cp -r "$corpus"/. "$work"/ 2>/dev/null || true
    if ./build-fuzz/"$name" -max_total_time="$SECS" -rss_limit_mb=2048 -max_len=65536 "$work" >"$work.log" 2>&1; then
        pass=$((pass+1)); echo "ok    $name ($(grep -o 'stat::number_of_executed_units: [0-9]*' "$work.log" | tail -1 || grep -Eo '#[0-9]+' "$work.log" | tail -1) runs)"
    else
        fail=$((fail+1)); echo "FAIL  $name"; tail -n 40 "$work.log"
    fi
    rm -rf "$work" "$work.log"
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
