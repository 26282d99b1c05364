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
. tests/lib/cli_checks.bash

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

# --- layouts of one's own: --map / --map-file, CSV, contamination (issue 15)
SGDMAP='messages=turns,role=speaker,content=utterance,user=USER,assistant=SYSTEM'
expect_rc 1 "$T" data check "$FX/sgd.jsonl" --approx-tokens
has out "records: 4, valid examples: 0, errors: 4,"
has out "unknown_format 4 (first line 1)"
lacks out "first line 0"
expect_rc 0 "$T" data check "$FX/sgd.jsonl" --approx-tokens --map "$SGDMAP"
has out "records: 4, valid examples: 4, errors: 0,"
expect_rc 0 "$T" data check "$FX/sgd.jsonl" --approx-tokens --map-file "$FX/sgd_map.json"
has out "valid examples: 4, errors: 0,"
expect_rc 1 "$T" data check "$FX/sgd_bad.jsonl" --approx-tokens --map "$SGDMAP"
has out 'line 1: unmapped_role: turn 2: role value "OPERATOR" (field "speaker") is not in the map'
has out 'line 2: map_missing_field: turn 1 has no field "utterance" (--map content=utterance); its fields: speaker, text'
expect_rc 1 "$T" data check "$FX/sgd.jsonl" --approx-tokens --map 'messages=dialog'
has err '--map messages=dialog names a field that the first record (line 1) does not have; its fields: dialogue_id, services, turns'
expect_rc 1 "$T" data check "$FX/sgd.jsonl" --approx-tokens --map 'messages=turns,colour=red'
has err "unknown key 'colour'"
expect_rc 2 "$T" data check "$FX/sgd.jsonl" --approx-tokens --map "$SGDMAP" --map-file "$FX/sgd_map.json"
expect_rc 0 "$T" data convert "$FX/sgd.jsonl" --to chat --map "$SGDMAP" --out "$work/sgd_chat.jsonl"
has out "converted 4 of 4 records"
expect_rc 0 "$T" data check "$work/sgd_chat.jsonl" --approx-tokens
has out "format: chat (detected)"
has out "errors: 0,"
expect_rc 1 "$T" data convert "$FX/sgd_bad.jsonl" --to chat --map "$SGDMAP" --out "$work/sgd_bad_chat.jsonl"
has err "line 3: map_missing_field:"
has out "3 records not converted"
expect_rc 0 "$T" data check "$FX/faq.csv" --approx-tokens
has out "(csv, 6 lines"
has out "format: prompt_completion (detected)"
expect_rc 1 "$T" data check "$FX/faq_bad.csv" --approx-tokens
has out "line 3: csv_field_count: the row has 3 fields, the header has 2 columns"
has out "line 4: csv_quote: field 1: a quote inside an unquoted field"
has out "line 6: invalid_utf8:"
has out "line 7: csv_quote: field 2: the quote opened at line 7 is never closed"
expect_rc 0 "$T" data check "$FX/reviews.tsv" --approx-tokens --map text=review,label=stars
has out "labels (3)"
expect_rc 0 "$T" data convert "$FX/faq.csv" --to chat --map prompt=question,completion=answer,system="Answer as the shop." --out "$work/faq.jsonl"
if python3 -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; assert len(r)==4 and r[2]["messages"][2]["content"]=="Send it back within 30 days.\nInclude the receipt." and r[0]["messages"][0]["content"]=="Answer as the shop."' "$work/faq.jsonl"; then ok; else bad "faq.csv -> chat content"; fi
expect_rc 1 "$T" data check "$FX/faq.csv" --approx-tokens --against "$FX/heldout.jsonl"
has out "line 2: contamination: the same text as $FX/heldout.jsonl line 1"
has out "line 4: contamination: a near-duplicate of $FX/heldout.jsonl line 5 (Jaccard 0.83 of character 5-grams)"
has out "4 training records match: 1 exact, 2 same prompt, 1 near"
has out "file: warning: against_unreadable: $FX/heldout.jsonl line 6:"
expect_rc 1 "$T" data check "$FX/faq.csv" --approx-tokens --json --against "$FX/heldout.jsonl"
if python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["report"]["contamination"]; assert d["contaminated_records"]==4 and d["matches"][2]=={"line":4,"file":sys.argv[2],"eval_line":5,"kind":"near","similarity":d["matches"][2]["similarity"]}' "$work/out" "$FX/heldout.jsonl"; then ok; else bad "--json contamination"; fi
# takumi eval's question records ({"question", "facts", "system"?}) are prompts to compare (issue 15): the same
# prompt, and near-duplicates of the training record's prompt (line 4 is 0.70 from line 2's question, far from its q+a)
expect_rc 1 "$T" data check "$FX/faq.csv" --approx-tokens --against "$FX/heldout_questions.jsonl"
has out "line 6: contamination: the same prompt as $FX/heldout_questions.jsonl line 1"
has out "1 training record match: 0 exact, 1 same prompt, 0 near"
has out "file: warning: against_unreadable: $FX/heldout_questions.jsonl line 3: missing_content: \"question\" is empty"
expect_rc 1 "$T" data check "$FX/faq.csv" --approx-tokens --against "$FX/heldout_questions.jsonl" --against-threshold 0.6
has out "line 2: contamination: a near-duplicate of $FX/heldout_questions.jsonl line 4 (Jaccard 0.70 of character 5-grams)"
has out "2 training records match: 0 exact, 1 same prompt, 1 near"
expect_rc 1 "$T" data check "$FX/heldout_questions.jsonl" --approx-tokens
has out "format: rft (detected)"
has out "line 3: missing_content: \"question\" is empty"
expect_rc 2 "$T" data check "$FX/faq.csv" --approx-tokens --against
expect_rc 2 "$T" data check "$FX/faq.csv" --approx-tokens --against "$FX/faq.csv"
S260=$SHARED/models/stories260K
if [ -f "$S260/hf/model.safetensors" ]; then
    expect_rc 0 "$T" train --model "$S260/hf" --tokenizer "$S260/llama2c/tok512.bin" --data "$FX/sgd.jsonl" --map-file "$FX/sgd_map.json" \
        --out "$work/run" --max-steps 1 --samples 0 --threads 1 --max-seq-len 128
    has err "4 records read through the map -> $work/run/mapped-train.jsonl"
    if grep -qF "\"data\":\"$work/run/mapped-train.jsonl\"" "$work/run/config.json"; then ok; else bad "config.json data is not the mapped file"; fi
    expect_rc 1 "$T" train --model "$S260/hf" --tokenizer "$S260/llama2c/tok512.bin" --data "$FX/sgd_bad.jsonl" --map "$SGDMAP" --out "$work/run2" --max-steps 1
    has err "3 of 4 records of $FX/sgd_bad.jsonl cannot be read through the map"
    [ -e "$work/run2" ] && bad "a failed mapping left $work/run2" || ok
elif [ "${CI:-}" = true ]; then bad "missing $S260 in CI"; fi

echo "data_cli: $pass checks passed, $fail failed"
[ "$fail" -eq 0 ]
