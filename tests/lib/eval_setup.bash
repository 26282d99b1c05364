# Shared set-up of the `takumi eval` CLI tests (eval_cli.sh, eval_map_cli.sh), sourced from the repository root with
# NAME set to the test's name: BIN, FX (tests/fixtures/eval), a temporary folder $tmp removed at exit, the ok/bad
# counters, and have_stories260k, which sets S and M to ../shared's stories260K (true), or says SKIP (false; a
# failure in CI, where the model is required).
set -u
BIN=${TAKUMI_BIN:-$PWD/build/takumi}
FX=tests/fixtures/eval
tmp=$(mktemp -d "/tmp/takumi_${NAME}_XXXXXX")
trap 'rm -rf "$tmp"' EXIT
checks=0 failures=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*" >&2; }
have_stories260k() {
    S=${TAKUMI_SHARED:-../shared}/models/stories260K
    M=$S/gguf/stories260K-f32.gguf
    [ -f "$M" ] && return 0
    if [ "${CI:-}" = true ]; then echo "FAIL: required asset missing in CI: models/stories260K"; exit 1; fi
    echo "SKIP: models/stories260K not found (set TAKUMI_SHARED or place ../shared)"
    return 1
}
