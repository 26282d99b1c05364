#!/usr/bin/env bash
# `takumi train --augment` (issue 15) on SmolLM2-135M with six support conversations and 1-2 steps:
# the paraphrased records are written to RUN/augmented-train.jsonl and trained on (each keeps its
# original's answer), the summary's counts add up, --resume reuses the file, the same seed gives the
# same bytes, auto is off without --augment-model and on with it, and bad values or combinations exit
# 1 with a message naming the option.
set -u
cd "$(dirname "$0")/.."
T=${TAKUMI_BIN:-$PWD/build/takumi}
M=${TAKUMI_SMOL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
. tests/lib/cli_checks.bash
[ -x "$T" ] || { echo "FAIL: $T not built"; exit 1; }
if [ ! -f "$M" ]; then
    [ "${CI:-}" = true ] && { echo "FAIL: $M missing in CI"; exit 1; }
    echo "SKIP: $M not found (scripts/fetch-model.sh)"; exit 0
fi
export OMP_WAIT_POLICY=passive
head -6 examples/support/train.jsonl > "$work/d.jsonl"
common=(--model "$M" --data "$work/d.jsonl" --samples 0 --threads 1 --precision fp32)

expect_rc 0 "$T" train "${common[@]}" --out "$work/a" --augment 2 --max-steps 1
has err "--augment 2: "
has err "paraphrased records added to 6 (12 asked; dropped: "
has err "by the base model in "
# the file: the six records in order, each followed by its kept paraphrases, whose answers are the original's;
# the summary's counts: added + dropped = asked
if python3 - "$work/d.jsonl" "$work/a/augmented-train.jsonl" "$work/err" <<'EOF'
import json, re, sys
orig = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
aug = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8")]
assert [r for r in aug if "paraphrase_of_line" not in r.get("metadata", {})] == orig, "the originals are not all there, in order"
added = [r for r in aug if "paraphrase_of_line" in r.get("metadata", {})]
for r in added:
    o = orig[r["metadata"]["paraphrase_of_line"] - 1]
    assert r["messages"][-1] == o["messages"][-1] and r["messages"][0] == o["messages"][0], "an answer or system prompt changed"
    assert r["messages"][-2]["content"] != o["messages"][-2]["content"], "a paraphrase equal to its question"
line = next(l for l in open(sys.argv[3], encoding="utf-8") if "--augment 2:" in l)
m = re.search(r"(\d+) paraphrased records added to 6 \(12 asked; dropped: ([^)]*)\)", line)
dropped = sum(int(x.split()[-1]) for x in m.group(2).split(", ")) if m.group(2) != "none" else 0
assert int(m.group(1)) == len(added) and len(added) + dropped == 12, (line, len(added), dropped)
EOF
then ok; else bad "augmented-train.jsonl or the summary's counts"; fi
if grep -qF '"augment":"2"' "$work/a/config.json"; then ok; else bad "config.json lacks augment 2"; fi
# --resume reuses the file (no second generation)
expect_rc 0 "$T" train --out "$work/a" --resume --max-steps 2
has err "reusing $work/a/augmented-train.jsonl"
if grep -qF -- "--augment 2:" "$work/err"; then bad "--resume generated the paraphrases again"; else ok; fi
# auto: off without --augment-model (the base's own paraphrases did not help: README), on with one; the writer
# here is the same file and seed, so the bytes are the first run's
expect_rc 0 "$T" train "${common[@]}" --out "$work/b" --max-steps 1
if [ -e "$work/b/augmented-train.jsonl" ]; then bad "auto without --augment-model augmented"; else ok; fi
expect_rc 0 "$T" train "${common[@]}" --out "$work/c" --augment-model "$M" --max-steps 1
has err "--augment 2: "
has err "by $M in "
if cmp -s "$work/a/augmented-train.jsonl" "$work/c/augmented-train.jsonl"; then ok; else bad "the same seed and writer gave other bytes"; fi
# bad values and combinations
expect_rc 1 "$T" train "${common[@]}" --out "$work/x1" --augment 17
has err "--augment 17: use auto, off or a number of paraphrases per record (0..16)"
expect_rc 1 "$T" train "${common[@]}" --out "$work/x2" --augment often
has err "--augment often:"
expect_rc 1 "$T" train "${common[@]}" --out "$work/x3" --augment 2 --objective dpo
has err "--augment 2 applies to SFT on chat records, not to preference objectives"
expect_rc 1 "$T" train --model "$M" --data examples/support/heldout.jsonl --out "$work/x4" --augment 1 --samples 0 --threads 1
has err "examples/support/heldout.jsonl is not chat data"
expect_rc 1 "$T" train "${common[@]}" --out "$work/x5" --augment 1 --augment-model "$work/none.gguf"
has err "--augment-model $work/none.gguf"
checks_done train_augment_cli
