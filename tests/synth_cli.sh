#!/usr/bin/env bash
# Shell tests of `takumi data synth` and `takumi data augment` with the tiny stories260K model
# (its text is gibberish, so this checks the plumbing, not the pairs): batched generation runs,
# the summary's counts add up, a seed gives the same bytes, bad documents (empty, not UTF-8,
# a scanned PDF, a missing file) are named in the summary and the exit code, usage errors exit 2.
set -u
cd "$(dirname "$0")/.."
T=${TAKUMI_BIN:-$PWD/build/takumi}
SHARED=${TAKUMI_SHARED:-../shared}
M=$SHARED/models/stories260K/gguf/stories260K-f32.gguf
. tests/lib/cli_checks.bash
[ -x "$T" ] || { echo "FAIL: $T not built"; exit 1; }
if [ ! -f "$M" ]; then
    [ "${CI:-}" = true ] && { echo "FAIL: $M missing in CI"; exit 1; }
    echo "SKIP: $M not found"; exit 0
fi
export OMP_WAIT_POLICY=passive
printf '# Shop\n\n## Returns\n\nReturns within 14 days.\n\n## Fees\n\nThe fee is 770 yen.\n' >"$work/p.md"
printf '<h1>Hours</h1><p>Open 9:30&ndash;18:00.</p><script>x()</script>' >"$work/h.html"
printf '\n' >"$work/empty.txt"
printf 'ok\n\x93\xfa\n' >"$work/sjis.txt"
# the tiny model's context is 128 tokens: --n-ctx makes room for the request
run() { "$T" data synth --model "$M" --n-ctx 1024 --max-new-tokens 24 --questions-per-chunk 2 --paraphrases 1 --languages en,ja "$@"; }

expect_rc 0 run --from "$work/p.md" "$work/h.html" --out "$work/a.jsonl" --seed 3 --json
python3 - "$work/out" <<'PY' && ok || bad "summary counts do not add up: $(cat "$work/out")"
import json, sys
s = json.load(open(sys.argv[1]))
docs = s["documents"]
assert len(docs) == 2 and s["skipped_documents"] == 0
assert docs[0]["chunks"] == 2 and docs[1]["chunks"] == 1, docs
for d in docs:
    assert d["asked"] == d["chunks"] * 2 * 2, d                          # chunks x languages x questions
    dr = d["dropped"]
    missing = dr["no_pairs_parsed"] + dr["prompt_over_context"]
    assert d["asked"] == d["parsed"] + missing, d
    assert d["parsed"] == d["kept"] + sum(v for k, v in dr.items() if k not in ("no_pairs_parsed", "prompt_over_context")), d
assert s["generated_tokens"] > 0, s
assert s["records"] == sum(d["kept"] + d["paraphrases"] for d in docs), s
PY
expect_rc 0 run --from "$work/p.md" "$work/h.html" --out "$work/b.jsonl" --seed 3 --json
cp "$work/out" "$work/summary_b"
if cmp -s "$work/a.jsonl" "$work/b.jsonl"; then ok; else bad "same seed, different output"; fi
# a context too small for the request: counted, not a crash
expect_rc 0 "$T" data synth --model "$M" --from "$work/p.md" --out "$work/c.jsonl" --json
has out '"prompt_over_context":6'

# bad documents: named, counted, exit 1; the readable one still used
expect_rc 1 run --from "$work/p.md" "$work/empty.txt" "$work/sjis.txt" "$work/missing.md" --out "$work/d.jsonl"
has err "empty.txt: skipped: "
has err "empty.txt: an empty document"
has err "sjis.txt: line 2: byte 0x93 is not UTF-8"
has err "missing.md: skipped: "
has err "total: 4 documents (3 skipped)"
if command -v pdftotext >/dev/null; then
    printf '%%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >> endobj\ntrailer << /Root 1 0 R >>\n%%%%EOF\n' >"$work/scan.pdf"
    expect_rc 1 run --from "$work/scan.pdf" --out "$work/e.jsonl"
    has err "scan.pdf: no extractable text on any of its 1 page"
else
    echo "SKIP: scanned-PDF check (pdftotext not installed: apt-get install poppler-utils)"
fi
expect_rc 2 "$T" data synth --model "$M" --out "$work/x.jsonl"
has err "no documents"
expect_rc 2 "$T" data synth --from "$work/p.md"
has err "no --out"
expect_rc 2 "$T" data synth --from "$work/p.md" --out "$work/p.md"
expect_rc 2 "$T" data synth --from "$work/p.md" --out "$work/x.jsonl" --languages "en,j a"
expect_rc 2 "$T" data synth --from "$work/p.md" --out "$work/x.jsonl" --questions-per-chunk 0

# augment: originals kept byte for byte, counts add up, same seed same bytes
printf '%s\n' '{"messages":[{"role":"user","content":"What are your hours?"},{"role":"assistant","content":"9:30-18:00"}]}' \
    'broken' '{"messages":[{"role":"user","content":"Phone?"},{"role":"assistant","content":"0120-874-312"}]}' >"$work/chat.jsonl"
aug() { "$T" data augment "$work/chat.jsonl" --model "$M" --n-ctx 1024 --max-new-tokens 32 --paraphrases 2 --seed 1 --json "$@"; }
expect_rc 1 aug --out "$work/aug1.jsonl"
python3 - "$work/out" "$work/chat.jsonl" "$work/aug1.jsonl" <<'PY' && ok || bad "augment counts: $(cat "$work/out")"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["records"] == 2 and s["bad_lines"] == 1, s
assert s["added"] + sum(s["dropped"].values()) == 4, s
out = open(sys.argv[3]).read().splitlines()
src = open(sys.argv[2]).read().splitlines()
assert len(out) == 2 + s["added"] and src[0] in out and src[2] in out, out
PY
expect_rc 1 aug --out "$work/aug2.jsonl"
if cmp -s "$work/aug1.jsonl" "$work/aug2.jsonl"; then ok; else bad "augment: same seed, different output"; fi
expect_rc 2 "$T" data augment "$work/chat.jsonl" --out "$work/chat.jsonl"

echo "synth_cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
