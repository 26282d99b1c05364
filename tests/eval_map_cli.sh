#!/usr/bin/env bash
# `takumi eval --map/--map-file` and CSV/TSV evaluation data, read through the data toolkit's layout (the same
# reading as `takumi data check`):
# - with stories260K: a CSV FAQ (a quoted comma, a quoted "", a question spanning two lines) read through
#   --map 'prompt=question,reference=answer' gives exactly the metrics of the equivalent JSONL (prompt/reference
#   records); so do the CSV without a map (its header names the fields: question/answer), the same rows as TSV
#   with the map, and a JSONL file in its own nested layout with --map-file; the map's unused columns stay in the
#   record (id, topic in examples.jsonl);
# - bad input: a map naming a column the header lacks (says which, and the header's columns), a field missing
#   from a later record (file, line and field), a ragged CSV row (file and line), broken quoting, --map with
#   --predictions, --map on a text file, --map and --map-file together, an unknown map key: exit status 1 (2 for
#   both map options) and a clear message.
cd "$(dirname "$0")/.."
NAME=evalmap
. tests/lib/eval_setup.bash
# the metrics of a --json document (values, n, intervals), without the run's description
metrics() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(json.dumps(d['metrics'], sort_keys=True))" "$1"; }
refuse() {   # refuse WHAT EXPECTED_RC PATTERN -- command...
    local what=$1 want=$2 pat=$3; shift 4
    "$@" > /dev/null 2> "$tmp/err"; local rc=$?
    [ $rc = "$want" ] && grep -q -- "$pat" "$tmp/err" && ok || bad "$what: exit $rc, want $want and /$pat/: $(cat "$tmp/err")"
}

# ---- bad input (no model needed: the records are read before any model is opened) ----
M0=$tmp/none.gguf
refuse "missing column" 1 'names a column that the header (line 1) does not have; its columns: id, question, answer, topic' -- \
    "$BIN" eval --model "$M0" --data $FX/faq.csv --map 'prompt=question,reference=reply'
grep -q 'reference=reply' "$tmp/err" && ok || bad "the missing column's key must be named: $(cat "$tmp/err")"
printf '{"q":"Tell me a story.","a":"Once upon a time."}\n{"q":"What did Lily see?","answer":"A ball."}\n' > "$tmp/later.jsonl"
refuse "field missing from a later record" 1 'later.jsonl: line 2: map_missing_field: .*no field "a" (--map response=a)' -- \
    "$BIN" eval --model "$M0" --data "$tmp/later.jsonl" --map 'prompt=q,response=a'
printf 'question,answer\nWhat did Lily see?,A ball.\nWhere?,In the park.,extra\n' > "$tmp/ragged.csv"
refuse "ragged CSV row" 1 'ragged.csv: line 3: csv_field_count: the row has 3 fields, the header has 2' -- \
    "$BIN" eval --model "$M0" --data "$tmp/ragged.csv"
printf 'question,answer\nWhat did "Lily" see?,A ball.\n' > "$tmp/quote.csv"
refuse "broken quoting" 1 'quote.csv: line 2: csv_quote' -- "$BIN" eval --model "$M0" --data "$tmp/quote.csv" --map 'prompt=question,completion=answer'
refuse "--map with --predictions" 1 'map reads --data records' -- "$BIN" eval --predictions $FX/predictions.jsonl --map 'prompt=question,completion=answer'
printf 'one story\nanother story\n' > "$tmp/plain.txt"
refuse "--map on a text file" 1 'does not apply to a text file' -- "$BIN" eval --model "$M0" --data "$tmp/plain.txt" --map 'text=body'
refuse "--map and --map-file" 2 'not both' -- "$BIN" eval --model "$M0" --data $FX/faq.csv --map 'prompt=question,completion=answer' --map-file "$tmp/x.json"
refuse "unknown map key" 1 "unknown key 'answer'" -- "$BIN" eval --model "$M0" --data $FX/faq.csv --map 'prompt=question,answer=answer'

# ---- a real model ----
if have_stories260k; then
    run() { local out=$1; shift; "$BIN" eval --model "$M" --max-tokens 12 --threads 1 --json "$@" > "$out" 2> "$tmp/err" || bad "eval $*: $(cat "$tmp/err")"; }
    run "$tmp/jsonl.json" --data $FX/faq.jsonl --out "$tmp/o_jsonl"
    run "$tmp/csv_map.json" --data $FX/faq.csv --map 'prompt=question,reference=answer' --out "$tmp/o_csv"
    run "$tmp/csv.json" --data $FX/faq.csv
    python3 -c "
import csv, sys
rows = list(csv.reader(open('$FX/faq.csv', newline='')))
csv.writer(open('$tmp/faq.tsv', 'w', newline=''), delimiter='\t').writerows(rows)"
    run "$tmp/tsv.json" --data "$tmp/faq.tsv" --map 'prompt=question,completion=answer'
    python3 -c "
import json
with open('$FX/faq.jsonl') as f, open('$tmp/nested.jsonl', 'w') as o:
    for l in f:
        r = json.loads(l)
        o.write(json.dumps({'faq': {'q': r['prompt'], 'a': r['reference']}, 'id': r['id']}) + '\n')"
    printf '{"prompt": "faq.q", "response": "faq.a"}\n' > "$tmp/map.json"
    run "$tmp/nested.json" --data "$tmp/nested.jsonl" --map-file "$tmp/map.json"
    ref=$(metrics "$tmp/jsonl.json")
    python3 -c "import json,sys; m=json.loads(sys.argv[1]); sys.exit(0 if {'loss','ppl','exact_match','f1','rougeL'} <= set(m) and m['exact_match']['n'] == 4 and m['loss']['n'] >= 3 else 1)" "$ref" \
        && ok || bad "the JSONL FAQ must give loss and generation metrics (4 answers): $ref"
    for f in csv_map csv tsv nested; do
        [ "$(metrics "$tmp/$f.json")" = "$ref" ] && ok || bad "$f: metrics differ from the JSONL's: $(metrics "$tmp/$f.json") vs $ref"
    done
    # the same prompts and references reached the model (the multi-line quoted question included), extra columns kept
    python3 - "$tmp/o_jsonl/examples.jsonl" "$tmp/o_csv/examples.jsonl" <<'PY' && ok || bad "examples.jsonl of the CSV read differs"
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
assert len(a) == len(b) == 4, (len(a), len(b))
for x, y in zip(a, b):
    for k in ("prompt", "reference", "answer"):
        if k in x: assert x[k] == y[k], (k, x[k], y[k])
    assert x["id"] == y["id"], (x.get("id"), y.get("id"))   # the CSV's id column, which the map does not name
assert "Say it in one line." in json.dumps(b[2]) and '\\"park\\"' in json.dumps(b[2]), b[2]
PY
fi
echo "eval_map_cli: $checks checks, $failures failures"
[ "$failures" = 0 ]
