#!/usr/bin/env bash
# Results are never lost silently (issue 14, items 2 and 6):
# - a command whose standard output cannot be written (a full disk: /dev/full) exits 1 with a
#   message, for a command that prints little (version, tokenize, inspect) and for one whose
#   output is larger than the stdio buffer (tokenize of a long text);
# - `takumi export` refuses to write over its own --model or --adapter (also through another
#   spelling of the same path), leaving the input byte for byte as it was.
set -u
cd "$(dirname "$0")/.."
BIN=${TAKUMI_BIN:-$PWD/build/takumi}
S=${TAKUMI_SHARED:-../shared}/models/stories260K
if [ ! -f "$S/gguf/stories260K-f32.gguf" ]; then
    if [ "${CI:-}" = true ]; then echo "FAIL: required asset missing in CI: models/stories260K"; exit 1; fi
    echo "SKIP: models/stories260K not found (set TAKUMI_SHARED or place ../shared)"; exit 0
fi
[ -w /dev/full ] || { echo "SKIP: no /dev/full on this system"; exit 0; }
tmp=$(mktemp -d /tmp/takumi_cli_output_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
checks=0 failures=0
expect_fail() { # name, then the command; its stdout goes to /dev/full
    local name=$1; shift
    checks=$((checks + 1))
    if "$@" > /dev/full 2> "$tmp/err"; then
        failures=$((failures + 1)); echo "FAIL: $name: exit 0 although stdout could not be written" >&2
    elif ! grep -q "standard output" "$tmp/err"; then
        failures=$((failures + 1)); echo "FAIL: $name: no message about stdout: $(cat "$tmp/err")" >&2
    fi
}
M=$S/gguf/stories260K-f32.gguf
expect_fail version "$BIN" version
expect_fail tokenize "$BIN" tokenize --model "$M" "Once upon a time"
expect_fail inspect "$BIN" inspect "$M"
for i in $(seq 1 1500); do printf 'Once upon a time there was a little girl named Lily. '; done > "$tmp/long.txt"
expect_fail "tokenize (long)" "$BIN" tokenize --model "$M" "$(cat "$tmp/long.txt")"
# the same commands succeed when stdout can be written
checks=$((checks + 1))
if ! "$BIN" tokenize --model "$M" "Once upon a time" > "$tmp/ok" 2> "$tmp/err" || [ ! -s "$tmp/ok" ]; then
    failures=$((failures + 1)); echo "FAIL: tokenize to a file failed: $(cat "$tmp/err")" >&2
fi

# export never writes over its input
cp "$M" "$tmp/m.gguf"
sum=$(cksum < "$tmp/m.gguf")
for to in "$tmp/m.gguf" "$tmp/../$(basename "$tmp")/m.gguf"; do
    checks=$((checks + 1))
    if "$BIN" export --model "$tmp/m.gguf" --to "$to" --dtype f16 > /dev/null 2> "$tmp/err"; then
        failures=$((failures + 1)); echo "FAIL: export over its own --model ($to) was accepted" >&2
    elif ! grep -q -- "--model itself" "$tmp/err"; then
        failures=$((failures + 1)); echo "FAIL: export over --model: unexpected message: $(cat "$tmp/err")" >&2
    fi
done
checks=$((checks + 1))
[ "$(cksum < "$tmp/m.gguf")" = "$sum" ] || { failures=$((failures + 1)); echo "FAIL: the model file changed" >&2; }
mkdir -p "$tmp/hf" && cp "$S"/hf/* "$tmp/hf/"
checks=$((checks + 1))
if "$BIN" export --model "$tmp/hf" --to "$tmp/hf" > /dev/null 2> "$tmp/err" ||
   ! grep -q -- "--model itself" "$tmp/err"; then
    failures=$((failures + 1)); echo "FAIL: export over its own HF folder not refused: $(cat "$tmp/err")" >&2
fi
echo "cli_output: $((checks - failures)) checks passed, $failures failed"
[ "$failures" -eq 0 ]
