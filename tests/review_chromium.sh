#!/usr/bin/env bash
# The blind A/B review page in a real browser: `takumi review --page-from` builds a 7-item page,
# tests/review_drive.py drives headless Chromium over the DevTools pipe (keys 1 / ← / → / t / n / p,
# a click, a typed correction, a reload that must keep everything in localStorage, the download
# button), then `takumi review --collect` unblinds the downloaded judgements.jsonl and the files it
# writes are checked exactly against what key.json says. An answer holding <script> and
# <img onerror> must show as text and run nothing. Needs Debian's chromium (scripts/deps.sh).
set -u
cd "$(dirname "$0")/.."
BIN=${TAKUMI_BIN:-$PWD/build/takumi}
CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
if [ -z "$CHROMIUM" ]; then
    if [ "${CI:-}" = true ]; then echo "FAIL: chromium missing in CI (scripts/deps.sh installs it)"; exit 1; fi
    echo "SKIP chromium not installed"; exit 0
fi
tmp=$(mktemp -d /tmp/takumi_review_chromium_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
checks=0 failures=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*" >&2; }

cp tests/fixtures/review/pairs.jsonl "$tmp/pairs.jsonl"   # 7 items; p3 holds </script>, <script>, <img onerror>
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
    (key["review"], "p1", "left", ""), (key["review"], "p2", "right", ""),
    (key["review"], "p3", "tie", "Hi there! <b>not bold</b>"), (key["review"], "p4", "right", "")], lines
assert all(j["time"].endswith("Z") for j in lines)
PY
if "$BIN" review --collect "$tmp/dl/judgements.jsonl" --out "$tmp/r" > "$tmp/c.out" 2> "$tmp/c.err"; then ok
else bad "--collect failed: $(cat "$tmp/c.err")"; fi
grep -q "4 of 7 items judged" "$tmp/c.out" && ok || bad "--collect summary: $(cat "$tmp/c.out")"

# unblinded: which system won each item follows from key.json (review_expect.py works it out again)
if python3 tests/review_expect.py "$tmp/r" "$tmp/pairs.jsonl" "$tmp/dl/judgements.jsonl" n_items=7 n_judged=4 ties=1 \
    n_preferences=3 n_corrections=1; then ok; else bad "--collect outputs"; fi
echo "review chromium: $((checks - failures)) checks passed, $failures failed"
[ "$failures" -eq 0 ]
