#!/usr/bin/env bash
# The blind A/B review page in a real browser: `takumi review --page-from` builds a 5-item page,
# tests/review_drive.py drives headless Chromium over the DevTools pipe (keys 1 / ← / → / t / n / p,
# a click, a typed correction, a reload that must keep everything in localStorage, the download
# button), then `takumi review --collect` unblinds the downloaded judgements.jsonl and the files it
# writes are checked exactly against what key.json says. An answer holding <script> and
# <img onerror> must show as text and run nothing. Needs Debian's chromium (scripts/deps.sh).
set -u
cd "$(dirname "$0")/.."
BIN=${TAKUMI_BIN:-$PWD/build/takumi}
CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
if [ -z "$CHROMIUM" ]; then echo "SKIP chromium not installed"; exit 0; fi
tmp=$(mktemp -d /tmp/takumi_review_chromium_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
checks=0 failures=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*" >&2; }

cat > "$tmp/pairs.jsonl" <<'EOF'
{"id":"q1","prompt":"What is 2+2?","a":"4","b":"5"}
{"id":"q2","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Capital of France?"}],"a":"Paris","b":"Lyon"}
{"id":"q3","prompt":"Say hi","a":"<script>window.pwned=1</script><img src=x onerror=\"window.pwned=2\">hi!","b":"Hello."}
{"id":"q4","prompt":"Name a colour.","a":"Blue.","b":"Blue, like the sky."}
{"id":"q5","prompt":"Count to three.","a":"1 2 3","b":"one two"}
EOF
if "$BIN" review --page-from "$tmp/pairs.jsonl" --out "$tmp/r" --seed 3 --title "Test review" > /dev/null 2> "$tmp/p.err"; then ok
else bad "--page-from failed: $(cat "$tmp/p.err")"; fi
mkdir -p "$tmp/dl" "$tmp/profile"
if timeout 60 python3 tests/review_drive.py "$CHROMIUM" "$tmp/r/review.html" "$tmp/dl" "$tmp/profile" > "$tmp/drive.out" 2>&1; then ok
else bad "driving the page failed:"; cat "$tmp/drive.out" >&2; tail -5 "$tmp/profile/chromium.log" >&2 2>/dev/null; fi
n_drive=$(grep -c '^ok ' "$tmp/drive.out")
[ "$n_drive" -eq 14 ] && ok || bad "the driver passed $n_drive checks of 14"

# the downloaded judgements: one line per judged item, in item order, choices as clicked
python3 - "$tmp/r/key.json" "$tmp/dl/judgements.jsonl" <<'PY' || bad "judgements.jsonl"
import json, sys
key = json.load(open(sys.argv[1]))
lines = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8")]
assert [(j["review"], j["id"], j["choice"], j["correction"]) for j in lines] == [
    (key["review"], "q1", "left", ""), (key["review"], "q2", "right", ""),
    (key["review"], "q3", "tie", "Hi there! <b>not bold</b>"), (key["review"], "q4", "right", "")], lines
assert all(j["time"].endswith("Z") for j in lines)
PY
if "$BIN" review --collect "$tmp/dl/judgements.jsonl" --out "$tmp/r" > "$tmp/c.out" 2> "$tmp/c.err"; then ok
else bad "--collect failed: $(cat "$tmp/c.err")"; fi
grep -q "4 of 5 items judged" "$tmp/c.out" && ok || bad "--collect summary: $(cat "$tmp/c.out")"

# unblinded: which system won each item follows from key.json (left/right as clicked above)
python3 - "$tmp/r" "$tmp/pairs.jsonl" <<'PY' || bad "--collect outputs"
import json, math, sys
d, pairs = sys.argv[1:3]
key = {e["id"]: e["a"] for e in json.load(open(d + "/key.json"))["items"]}
src = {r["id"]: r for r in map(json.loads, open(pairs, encoding="utf-8"))}
clicked = {"q1": "left", "q2": "right", "q4": "right"}
winner = {id: ("a" if side == key[id] else "b") for id, side in clicked.items()}
wa = sum(w == "a" for w in winner.values()); wb = 3 - wa; t = 1; n = 4
p = (wa + t / 2) / n
z = 1.959963984540054
c = (p + z * z / (2 * n)) / (1 + z * z / n)
h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
res = json.load(open(d + "/results.json"))
want = {"n_items": 5, "n_judged": 4, "wins_a": wa, "wins_b": wb, "ties": 1, "win_rate_a": round(p, 6),
        "ci95": [round(c - h, 6), round(c + h, 6)], "n_preferences": 3, "n_corrections": 1}
for k, v in want.items():
    assert res[k] == v, (k, res[k], v)
pref = []
for id in ["q1", "q2", "q4"]:
    r = src[id]; w = winner[id]; l = "b" if w == "a" else "a"
    if "messages" in r:
        pref.append({"prompt": r["messages"], "chosen": [{"role": "assistant", "content": r[w]}],
                     "rejected": [{"role": "assistant", "content": r[l]}]})
    else:
        pref.append({"prompt": r["prompt"], "chosen": r[w], "rejected": r[l]})
dump = lambda x: json.dumps(x, ensure_ascii=False, separators=(",", ":")) + "\n"
got = open(d + "/preferences.jsonl", encoding="utf-8").read()
assert got == "".join(map(dump, pref)), got
sft = {"messages": [{"role": "user", "content": "Say hi"}, {"role": "assistant", "content": "Hi there! <b>not bold</b>"}]}
got = open(d + "/sft.jsonl", encoding="utf-8").read()
assert got == dump(sft), got
PY
ok
echo "review chromium: $((checks - failures)) checks passed, $failures failed"
[ "$failures" -eq 0 ]
