# Checks of a CLI test (sourced): a scratch folder $work (removed at exit), counters, and
#   ok / bad MSG            count a passed / failed check (bad prints FAIL: MSG)
#   expect_rc RC CMD...     run CMD (stdout -> $work/out, stderr -> $work/err) and compare its exit status
#   has out|err TEXT        the last command's stdout / stderr contains TEXT
#   lacks out|err TEXT      ... does not contain TEXT
#   checks_done NAME        print "NAME: N checks passed, M failed" and exit 1 on any failure
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pass=0; fail=0
ok() { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL: $*"; }
expect_rc() {
    local want=$1; shift
    "$@" >"$work/out" 2>"$work/err"
    local rc=$?
    if [ "$rc" -eq "$want" ]; then ok; else bad "exit $rc (expected $want): $*"; sed 's/^/    /' "$work/err" | head -5; fi
}
has() { if grep -qF -- "$2" "$work/$1"; then ok; else bad "$1 lacks: $2"; fi; }
lacks() { if grep -qF -- "$2" "$work/$1"; then bad "$1 should not contain: $2"; else ok; fi; }
checks_done() { echo "$1: $pass checks passed, $fail failed"; [ "$fail" -eq 0 ]; exit $?; }
