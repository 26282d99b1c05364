#!/usr/bin/env bash
# `takumi review` without a browser (tests/review_chromium.sh clicks through the page itself):
# - --page-from: items.jsonl / key.json / review.html; the same seed gives the same files, another
#   seed another key; answers reach the page only as escaped JSON (no "<" inside its data block);
# - --collect: win rate of A (ties half), 95% Wilson interval, counts, preferences.jsonl and
#   sft.jsonl checked exactly against what the key says (a later judgement of an item replaces an
#   earlier one; blank corrections are none);
# - bad input: malformed lines, unknown ids, judgements of another page, a bad choice, no
#   judgements, a folder without a key, bad prompt files, conflicting modes: exit 1, a message
#   naming the line, nothing written;
# - generation (stories260K, a LoRA trained here): the answers of `--a base --b RUN/adapter` are
#   exactly what `takumi generate --chat --temperature 0` gives without and with the adapter.
set -u
cd "$(dirname "$0")/.."
BIN=${TAKUMI_BIN:-$PWD/build/takumi}
tmp=$(mktemp -d /tmp/takumi_review_cli_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
checks=0 failures=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*" >&2; }
# refused NAME EXPECTED-MESSAGE-PART cmd...: exit status 1 and the message on stderr
refused() {
    local name=$1 want=$2; shift 2
    "$@" > "$tmp/r.out" 2> "$tmp/r.err"; local rc=$?
    if [ $rc -eq 1 ] && grep -qF -- "$want" "$tmp/r.err"; then ok
    else bad "$name: exit $rc, stderr: $(head -c 300 "$tmp/r.err") (wanted: $want)"; fi
}

# ---- a 7-item review from answers already generated
cp tests/fixtures/review/pairs.jsonl "$tmp/pairs.jsonl"   # 7 items, a blank line among them
if "$BIN" review --page-from "$tmp/pairs.jsonl" --out "$tmp/r" --seed 11 > "$tmp/p.out" 2>&1; then ok; else bad "--page-from failed: $(cat "$tmp/p.out")"; fi
for f in review.html items.jsonl key.json; do [ -s "$tmp/r/$f" ] && ok || bad "--page-from wrote no $f"; done
"$BIN" review --page-from "$tmp/pairs.jsonl" --out "$tmp/r2" --seed 11 > /dev/null 2>&1
if cmp -s "$tmp/r/review.html" "$tmp/r2/review.html" && cmp -s "$tmp/r/key.json" "$tmp/r2/key.json"; then ok; else bad "the same seed gave another page or key"; fi
"$BIN" review --page-from "$tmp/pairs.jsonl" --out "$tmp/r3" --seed 12 > /dev/null 2>&1
if ! cmp -s "$tmp/r/key.json" "$tmp/r3/key.json"; then ok; else bad "seeds 11 and 12 gave the same key"; fi

# the page: its data block holds no raw markup, no item text outside it, no side names, no network
python3 - "$tmp/r" <<'PY' || bad "page contents"
import json, re, sys
d = sys.argv[1]
page = open(d + "/review.html", encoding="utf-8").read()
m = re.search(r'<script type="application/json" id="review-data">(.*?)</script>', page, re.S)
assert m, "no data block"
block = m.group(1)
assert "<" not in block and ">" not in block and "&" not in block, "raw markup inside the data block"
data = json.loads(block)
items = [json.loads(l) for l in open(d + "/items.jsonl", encoding="utf-8")]
assert [it["id"] for it in data["items"]] == ["p1", "p2", "p3", "p4", "p5", "p6", "p7"]
for shown, it in zip(data["items"], items):
    assert (shown["left"], shown["right"]) == (it["left"], it["right"]), it["id"]
rest = page.replace(m.group(0), "")
assert "pwned" not in rest and "Hello" not in rest, "item text outside the data block"
assert "http://" not in rest and "https://" not in rest and " src=" not in rest and "<link" not in rest, "the page names a network resource"
key = json.load(open(d + "/key.json"))
assert key["review"] == data["review"] and "\"a\":" not in block.replace(' ', '')
assert sorted({e["a"] for e in key["items"]}) == ["left", "right"], "seed 11 put every A on one side"
PY
ok

# ---- judgements written in terms of A/B through the key: A wins p1 p3 p5 p6, B wins p2, ties p4 p7;
# p1 is judged twice (the later line counts), p2 has a correction, p4 a blank one.
python3 - "$tmp/r" "$tmp/j.jsonl" <<'PY'
import json, sys
d, out = sys.argv[1:3]
key = json.load(open(d + "/key.json"))
side = {e["id"]: e["a"] for e in key["items"]}
other = {"left": "right", "right": "left"}
def j(id, who, corr=""):
    choice = "tie" if who == "tie" else side[id] if who == "A" else other[side[id]]
    return json.dumps({"review": key["review"], "id": id, "choice": choice, "correction": corr, "time": "2026-01-01T00:00:00Z"}, ensure_ascii=False)
lines = [j("p1", "B"), j("p2", "B", "Paris, of course."), j("p3", "A"), j("p4", "tie", "  \n"), j("p5", "A"),
         j("p6", "A"), j("p7", "tie"), j("p1", "A")]
open(out, "w", encoding="utf-8").write("\n".join(lines) + "\n")
PY
if "$BIN" review --collect "$tmp/j.jsonl" --out "$tmp/r" > "$tmp/c.out" 2> "$tmp/c.err"; then ok; else bad "--collect failed: $(cat "$tmp/c.err")"; fi
grep -q "win rate of A: 0.714 (95% Wilson interval 0.359 to 0.918" "$tmp/c.out" && ok || bad "--collect summary: $(cat "$tmp/c.out")"
# exact files (computed again by review_expect.py), and the counts as the judgements above were made
if python3 tests/review_expect.py "$tmp/r" "$tmp/pairs.jsonl" "$tmp/j.jsonl" n_items=7 n_judged=7 wins_a=4 wins_b=1 ties=2 \
    n_preferences=5 n_corrections=1 a=a b=b; then ok; else bad "--collect outputs"; fi
python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))["ci95"]; sys.exit(not (abs(c[0]-0.3589) < 5e-4 and abs(c[1]-0.9178) < 5e-4))' \
    "$tmp/r/results.json" && ok || bad "Wilson interval for 5 of 7 is not [0.3589, 0.9178] (by hand, z = 1.96)"
# the outputs are data takumi trains on
"$BIN" data check "$tmp/r/preferences.jsonl" > "$tmp/dc.out" 2>&1 && grep -q "format: *preference" "$tmp/dc.out" && ok \
    || bad "preferences.jsonl: $(grep -m3 -i "format\|error" "$tmp/dc.out")"
"$BIN" data check "$tmp/r/sft.jsonl" > "$tmp/dc.out" 2>&1 && grep -q "format: *chat" "$tmp/dc.out" && ok \
    || bad "sft.jsonl: $(grep -m3 -i "format\|error" "$tmp/dc.out")"

# ---- bad judgements: exit 1 naming the line; nothing written
rm -rf "$tmp/e" && mkdir "$tmp/e" && cp "$tmp/r/items.jsonl" "$tmp/r/key.json" "$tmp/e/"
rid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["review"])' "$tmp/r/key.json")
good="{\"review\":\"$rid\",\"id\":\"p1\",\"choice\":\"left\"}"
printf '%s\n{"review":"%s","id":"p9","choice":"left"}\n' "$good" "$rid" > "$tmp/bad1.jsonl"
refused "unknown id" "bad1.jsonl: line 2: unknown id \"p9\"" "$BIN" review --collect "$tmp/bad1.jsonl" --out "$tmp/e"
printf '%s\n\n{"review":"%s","id":"p2",\n' "$good" "$rid" > "$tmp/bad2.jsonl"
refused "malformed line" "bad2.jsonl: line 3: not JSON" "$BIN" review --collect "$tmp/bad2.jsonl" --out "$tmp/e"
printf '{"review":"0123456789abcdef","id":"p1","choice":"left"}\n' > "$tmp/bad3.jsonl"
refused "another review" "line 1: a judgement of review 0123456789abcdef, but the key is review $rid" "$BIN" review --collect "$tmp/bad3.jsonl" --out "$tmp/e"
printf '%s\n{"review":"%s","id":"p2","choice":"both"}\n' "$good" "$rid" > "$tmp/bad4.jsonl"
refused "bad choice" "line 2: item \"p2\": \"choice\" is \"both\"" "$BIN" review --collect "$tmp/bad4.jsonl" --out "$tmp/e"
printf '{"review":"%s","id":"p2","choice":"tie","correction":5}\n' "$rid" > "$tmp/bad5.jsonl"
refused "correction not text" "line 1: item \"p2\": \"correction\" is a number" "$BIN" review --collect "$tmp/bad5.jsonl" --out "$tmp/e"
printf '\n\n' > "$tmp/bad6.jsonl"
refused "no judgements" "holds no judgements" "$BIN" review --collect "$tmp/bad6.jsonl" --out "$tmp/e"
printf '[1]\n' > "$tmp/bad7.jsonl"
refused "not an object" "line 1: is a list, expected an object" "$BIN" review --collect "$tmp/bad7.jsonl" --out "$tmp/e"
refused "judgements missing" "nope.jsonl" "$BIN" review --collect "$tmp/nope.jsonl" --out "$tmp/e"
if ls "$tmp/e" | grep -qv '^items.jsonl$\|^key.json$'; then bad "a refused --collect wrote $(ls "$tmp/e")"; else ok; fi
mkdir -p "$tmp/nokey"
refused "folder without a review" "items.jsonl" "$BIN" review --collect "$tmp/j.jsonl" --out "$tmp/nokey"
cp "$tmp/r/items.jsonl" "$tmp/nokey/"
refused "folder without key.json" "key.json" "$BIN" review --collect "$tmp/j.jsonl" --out "$tmp/nokey"
cp "$tmp/r3/key.json" "$tmp/nokey/"  # the key of another seed: another review id
refused "judgements of another key" "belong to another page" "$BIN" review --collect "$tmp/j.jsonl" --out "$tmp/nokey"

# ---- bad prompt / answer files
printf '{"prompt":"x","a":"1"}\n' > "$tmp/q1.jsonl"
refused "answer missing" "q1.jsonl: line 1: \"b\" is missing, expected a string" "$BIN" review --page-from "$tmp/q1.jsonl" --out "$tmp/q"
printf '{"id":"x","prompt":"x","a":"1","b":"2"}\n{"id":"x","prompt":"y","a":"1","b":"2"}\n' > "$tmp/q2.jsonl"
refused "duplicate id" "q2.jsonl: line 2: id \"x\" again" "$BIN" review --page-from "$tmp/q2.jsonl" --out "$tmp/q"
printf '{"messages":[{"role":"user","content":"x"},{"role":"assistant","content":"y"}],"a":"1","b":"2"}\n' > "$tmp/q3.jsonl"
refused "prompt ending with the assistant" "line 1: \"messages\" ends with a assistant message" "$BIN" review --page-from "$tmp/q3.jsonl" --out "$tmp/q"
printf '{"messages":[{"role":"robot","content":"x"}],"a":"1","b":"2"}\n' > "$tmp/q4.jsonl"
refused "unknown role" "message 1 has role \"robot\"" "$BIN" review --page-from "$tmp/q4.jsonl" --out "$tmp/q"
printf '{"text":"x","a":"1","b":"2"}\n' > "$tmp/q5.jsonl"
refused "no prompt" "line 1: no \"prompt\" or \"messages\"" "$BIN" review --page-from "$tmp/q5.jsonl" --out "$tmp/q"
: > "$tmp/q6.jsonl"
refused "empty file" "q6.jsonl: no items" "$BIN" review --page-from "$tmp/q6.jsonl" --out "$tmp/q"
printf '{"prompt":"x", "a":"1","b":"2"} x\n' > "$tmp/q7.jsonl"
refused "garbage after the object" "q7.jsonl: line 1: not JSON" "$BIN" review --page-from "$tmp/q7.jsonl" --out "$tmp/q"
[ -e "$tmp/q" ] && bad "a refused --page-from created its folder" || ok
"$BIN" review --page-from "$tmp/pairs.jsonl" --a "vendor X" --b mine --out "$tmp/r4" --seed 11 > /dev/null 2>&1
grep -q '"a": "vendor X",' "$tmp/r4/key.json" && grep -q '"b": "mine",' "$tmp/r4/key.json" && ok || bad "--page-from --a/--b names: $(head -5 "$tmp/r4/key.json")"
refused "names with --collect" "review takes one of" "$BIN" review --collect "$tmp/j.jsonl" --a x --out "$tmp/r"
refused "two modes" "review takes one of" "$BIN" review --collect "$tmp/j.jsonl" --page-from "$tmp/pairs.jsonl" --out "$tmp/q"
refused "no --out" "review needs --out DIR" "$BIN" review --page-from "$tmp/pairs.jsonl"
refused "generation without --b" "review needs --a A1, --b A2" "$BIN" review --a base --prompts "$tmp/pairs.jsonl" --out "$tmp/q"
"$BIN" review --help | grep -q -- "--collect J" && ok || bad "review --help"

# ---- generation: base against a LoRA trained here, both greedy, equal to takumi generate
S=${TAKUMI_SHARED:-../shared}/models/stories260K
if [ ! -f "$S/hf/model.safetensors" ]; then
    if [ "${CI:-}" = true ]; then echo "FAIL: required asset missing in CI: models/stories260K"; exit 1; fi
    echo "SKIP generation part: models/stories260K not found (set TAKUMI_SHARED or place ../shared)"
else
    M=(--model "$S/hf" --tokenizer "$S/llama2c/tok512.bin")
    printf '{"prompt":"Tell me about Lily.","completion":" Lily had a red ball. She was happy."}\n%.0s' 1 2 3 4 5 6 7 8 > "$tmp/tr.jsonl"
    if "$BIN" train "${M[@]}" --data "$tmp/tr.jsonl" --out "$tmp/run" --max-steps 6 --lr 1e-2 --samples 0 --threads 1 \
        > /dev/null 2> "$tmp/tr.err"; then ok; else bad "training the adapter failed: $(tail -3 "$tmp/tr.err")"; fi
    printf '%s\n' '{"prompt":"Tell me about Lily."}' '{"id":"tom","messages":[{"role":"user","content":"Tell me about Tom."}]}' \
        '{"messages":[{"role":"system","content":"Be short."},{"role":"user","content":"Once upon a time"}]}' > "$tmp/prompts.jsonl"
    if "$BIN" review "${M[@]}" --a base --b "$tmp/run/adapter" --prompts "$tmp/prompts.jsonl" --out "$tmp/g" --template alpaca \
        --system "You tell stories." --max-tokens 12 --seed 5 --threads 1 > "$tmp/g.out" 2> "$tmp/g.err"; then ok
    else bad "review with a model failed: $(tail -3 "$tmp/g.err")"; fi
    python3 - "$tmp/g" > "$tmp/g.ans" <<'PY' || bad "items.jsonl / key.json of the generated review"
import json, sys
d = sys.argv[1]
key = {e["id"]: e["a"] for e in json.load(open(d + "/key.json"))["items"]}
for l in open(d + "/items.jsonl", encoding="utf-8"):
    it = json.loads(l)
    a, b = (it["left"], it["right"]) if key[it["id"]] == "left" else (it["right"], it["left"])
    print(json.dumps([it["id"], a, b]))
PY
    i=0
    for spec in "Tell me about Lily.|You tell stories." "Tell me about Tom.|You tell stories." "Once upon a time|Be short."; do
        p=${spec%%|*} s=${spec#*|}
        ga=$("$BIN" generate "${M[@]}" --chat --template alpaca --system "$s" --temperature 0 --max-tokens 12 --threads 1 --prompt "$p")
        gb=$("$BIN" generate "${M[@]}" --chat --template alpaca --system "$s" --temperature 0 --max-tokens 12 --threads 1 --prompt "$p" --adapter "$tmp/run/adapter")
        i=$((i + 1))
        want=$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "$([ $i -eq 2 ] && echo tom || echo $i)" "$ga" "$gb")
        got=$(sed -n "${i}p" "$tmp/g.ans")
        [ "$got" = "$want" ] && ok || bad "item $i: review answers $got, generate gives $want"
        [ "$ga" != "$gb" ] && ok || bad "item $i: the adapter changed nothing ($ga): the test would not see a swap"
    done
    grep -q '"a": "base"' "$tmp/g/key.json" && grep -qF "\"b\": \"$tmp/run/adapter\"" "$tmp/g/key.json" && ok || bad "key.json names: $(head -6 "$tmp/g/key.json")"
    refused "an adapter that is not there" "cannot apply the adapter $tmp/none" "$BIN" review "${M[@]}" --a base --b "$tmp/none" --prompts "$tmp/prompts.jsonl" --out "$tmp/g2" --template alpaca
fi

echo "review cli: $((checks - failures)) checks passed, $failures failed"
[ "$failures" -eq 0 ]
