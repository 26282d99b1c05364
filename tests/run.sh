#!/usr/bin/env bash
# Runs every test binary in $BUILD/tests (built by `make tests`), then the shell
# tests in tests/*.sh. Prints one line per test and a closing 'N passed, N failed'.
set -u
cd "$(dirname "$0")/.."
# Passive OpenMP waiting: spinning threads make a loaded machine crawl (tests are not timed).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
BUILD=${BUILD:-build}
export TAKUMI_BIN="$PWD/$BUILD/takumi"
pass=0; fail=0; skip=0; failed=()
run_one() {
    local name=$1; shift
    local log; log=$(mktemp)
    local t0=$SECONDS
    if "$@" >"$log" 2>&1; then
        if grep -q '^SKIP' "$log" && ! grep -q 'checks passed' "$log"; then
            skip=$((skip+1)); echo "skip  $name ($(grep -m1 '^SKIP' "$log"))"
        else
            pass=$((pass+1)); echo "ok    $name ($((SECONDS-t0))s) $(tail -n1 "$log")"
        fi
    else
        fail=$((fail+1)); failed+=("$name"); echo "FAIL  $name ($((SECONDS-t0))s)"; sed 's/^/      /' "$log" | tail -n 40
    fi
    rm -f "$log"
}
for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    run_one "$(basename "$t")" "$t"
done
for t in tests/*.sh; do
    case "$(basename "$t")" in run.sh|run-all.sh) continue ;; esac
    [ -f "$t" ] || continue
    run_one "$(basename "$t")" bash "$t"
done
echo
[ ${#failed[@]} -gt 0 ] && echo "failed: ${failed[*]}"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
