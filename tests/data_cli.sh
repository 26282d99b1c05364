#!/usr/bin/env bash
# Shell tests of `takumi data check|redact|convert|split`: exit codes, the
# "line N: category: reason" lines, bad input (missing file, directory, UTF-16,
# empty file, a 100 MB line), JSON output, and split determinism. Prints one line per
# failed check and a closing count; exits non-zero when any check fails.
set -u
cd "$(dirname "$0")/.."
T=${TAKUMI_BIN:-$PWD/build/takumi}
FX=tests/fixtures/data
SHARED=${TAKUMI_SHARED:-../shared}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pass=0; fail=0
ok() { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL: $*"; }
# expect_rc RC CMD...: run CMD (stdout -> $work/out, stderr -> $work/err), compare its exit status
expect_rc() {
    local want=$1; shift
    "$@" >"$work/out" 2>"$work/err"
    local rc=$?
    if [ "$rc" -eq "$want" ]; then ok; else bad "exit $rc (expected $want): $*"; sed 's/^/    /' "$work/err" | head -5; fi
}
has() { if grep -qF -- "$2" "$work/$1"; then ok; else bad "$1 lacks: $2"; fi; }
lacks() { if grep -qF -- "$2" "$work/$1"; then bad "$1 should not contain: $2"; else ok; fi; }

[ -x "$T" ] || { echo "FAIL: $T not built"; exit 1; }

# --- check: findings with line numbers, verdict and exit code
expect_rc 1 "$T" data check "$FX/chat_errors.jsonl" --approx-tokens
has out "line 2: data_type: record is a list"
has out "line 5: message_unrecognized_key: messages: message 1 has unrecognized key \"loss_weight\""
has out "line 8: example_missing_assistant_message:"
has out "line 13: tool_call_id_mismatch:"
has out "line 14: nan_or_infinity: NaN at column 100"
has out "line 16: warning: blank_line:"
has out "verdict: not ready"
expect_rc 0 "$T" data check "$FX/bom_crlf.jsonl" --approx-tokens
has out "line 1: warning: byte_order_mark:"
has out "verdict: ready with warnings"
expect_rc 1 "$T" data check "$FX/alpaca_broken.json" --approx-tokens
has out "record 2 (line 7): missing_output: no \"output\""
has out "line 20: json_syntax: trailing comma"
expect_rc 1 "$T" data check "$FX/bad_json.jsonl" --approx-tokens
has out "line 5: nesting_too_deep: JSON nested 1501 levels deep (limit 1000"
expect_rc 1 "$T" data check "$FX/invalid_utf8.jsonl" --approx-tokens
has out "line 2: invalid_utf8: invalid UTF-8 byte 0xFF at column 26"

# --- files that cannot be checked: one clear message on stderr, exit 1, nothing on stdout
expect_rc 1 "$T" data check "$FX/does-not-exist.jsonl" --approx-tokens
has err "does-not-exist.jsonl: cannot open"
expect_rc 1 "$T" data check "$FX" --approx-tokens
has err "is a directory"
expect_rc 1 "$T" data check "$FX/utf16.jsonl" --approx-tokens
has err "UTF-16"
expect_rc 1 "$T" data check "$FX/empty.jsonl" --approx-tokens
has out "file: empty_file: the file holds no records"
expect_rc 2 "$T" data check --approx-tokens
expect_rc 2 "$T" data check "$FX/pii.jsonl" --format nonsense --approx-tokens
has err "unknown format 'nonsense'"
expect_rc 2 "$T" data frobnicate x

# --- JSON output: one document with the same findings
expect_rc 1 "$T" data check "$FX/chat_errors.jsonl" --approx-tokens --json
has out '{"findings":[{"severity":"error","line":2,'
has out '"verdict":"not ready"'
if command -v python3 >/dev/null; then
    if python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d["findings"]) == 19 and d["report"]["errors"] == 16' "$work/out" 2>/dev/null; then ok
    else bad "--json is not one JSON document with 19 findings"; fi
fi

# --- a 100 MB single line: checked (approximate tokens past 8 MiB), or refused over --max-line-mb
{ printf '{"text": "first"}\n{"text": "'; head -c 100000000 /dev/zero | tr '\0' 'a'; printf '"}\n{"text": "last"}\n'; } >"$work/big.jsonl"
expect_rc 0 timeout 300 "$T" data check "$work/big.jsonl" --approx-tokens --threads 2
has out "records: 3, valid examples: 3"
expect_rc 1 timeout 60 "$T" data check "$work/big.jsonl" --approx-tokens --max-line-mb 10
has out "line 2: line_too_long: line of 100.0 MB is longer than the 10 MiB limit; skipped"
has out "records: 3, valid examples: 2"
rm -f "$work/big.jsonl"

# --- redact: placeholders, valid JSON, other bytes unchanged, nothing left to find
expect_rc 0 "$T" data redact "$FX/pii.jsonl" --out "$work/pii.jsonl"
has out "redacted 13 items in 6 records"
if sed -n 1p "$work/pii.jsonl" | grep -qxF '{"text": "Write to [EMAIL] or call [PHONE]."}'; then ok; else bad "redacted line 1"; fi
if diff <(sed -n 6p "$FX/pii.jsonl") <(sed -n 6p "$work/pii.jsonl") >/dev/null; then ok; else bad "line 6 changed"; fi
expect_rc 0 "$T" data check "$work/pii.jsonl" --approx-tokens
has out "none found (e-mail, phone, credit card, IP)"
expect_rc 2 "$T" data redact "$FX/pii.jsonl"

# --- convert: records that cannot be converted are reported with their line
expect_rc 1 "$T" data convert "$FX/chat_errors.jsonl" --to chat --out "$work/c.jsonl"
has err "line 2: data_type:"
has out "converted 4 of 19 records"
expect_rc 0 "$T" data check "$work/c.jsonl" --approx-tokens
expect_rc 1 "$T" data convert "$FX/pii.jsonl" --to chat --out "$work/c.jsonl"
has err "raw text has no replies"
expect_rc 1 "$T" data convert "$FX/labels.tsv" --to chat --out "$work/l.jsonl"
has err "line 3: missing_label"

# --- split: deterministic per seed, names contain train/valid/test, every record once
ALP="$SHARED/data/llamafactory-demo/alpaca_en_demo.json"
if [ -f "$ALP" ]; then
    expect_rc 0 "$T" data split "$ALP" --ratios 80,10,10 --seed 3 --out "$work/s1"
    has out "train"
    expect_rc 0 "$T" data split "$ALP" --ratios 80,10,10 --seed 3 --out "$work/s2"
    for k in train valid test; do
        if cmp -s "$work/s1/$k.json" "$work/s2/$k.json"; then ok; else bad "split $k differs for the same seed"; fi
    done
    expect_rc 0 "$T" data check "$work/s1/train.json" --approx-tokens
    n=$(cat "$work"/s1/*.json | grep -c '^  {')
    if [ "$n" = 999 ]; then ok; else bad "split holds $n records, expected 999"; fi
    if [ -f models/SmolLM2-135M-Instruct.Q4_1.gguf ]; then
        expect_rc 0 "$T" data check "$ALP"
        has out "chat template: smollm2"
        has out "estimated training time"
    elif [ "${CI:-}" = true ]; then bad "missing models/SmolLM2-135M-Instruct.Q4_1.gguf in CI"; fi
elif [ "${CI:-}" = true ]; then bad "missing $ALP in CI"; fi
expect_rc 2 "$T" data split "$FX/pii.jsonl" --ratios 80,x --out "$work/s3"
expect_rc 1 "$T" data split "$FX/chat_errors.jsonl" --ratios 80,20 --out "$work/s3"
has err "fix them first"

echo "data_cli: $pass checks passed, $fail failed"
[ "$fail" -eq 0 ]
