#!/usr/bin/env bash
# The fact-sticking study (issue 15): trains one adapter per configuration on a small fact set and
# scores held-out paraphrases with `takumi eval --metrics fact_match` (greedy, 64 tokens), so the
# default recipe of `takumi train` is chosen by measurement. Each configuration is a line
# "NAME|takumi train options" (options added to the fixed --model/--data/--val/--out).
#
# Usage: bench/facts_study.sh [--set support|policy] [--model M] [--threads N] [--out DIR]
#                             [--configs FILE] [--only NAME,...]
#   --set support: examples/support (Hanamori Cycle, en+ja, 24 facts, 48 held-out questions)
#   --set policy : examples/policy (Larkspur Home Goods, en, a second domain: 20 facts, 38 held-out questions)
#   --configs FILE: one "NAME|options" per line (# comments); default: the built-in list below
# Writes DIR/NAME/ (the run and its eval) and appends a row per configuration to DIR/results.tsv:
#   name, steps, train tokens, train s, valid loss first/last, fact-match en, ja, all (of n), options
# A finished configuration (DIR/NAME/eval/results.json present) is not run again.
# Needs: build/takumi, the model (scripts/fetch-model.sh), python3 (stdlib).
set -euo pipefail
cd "$(dirname "$0")/.."

set_name=support
model=${TAKUMI_MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
threads=2
out=""
configs=""
only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --set) set_name=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --configs) configs=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "facts_study.sh: unknown option $1" >&2; exit 1 ;;
  esac
done
case "$set_name" in
  support) dir=examples/support heldout=examples/support/heldout.jsonl ;;
  policy) dir=examples/policy heldout=examples/policy/heldout_facts.jsonl ;;
  *) echo "facts_study.sh: --set must be support or policy" >&2; exit 1 ;;
esac
[ -x build/takumi ] || { echo "facts_study.sh: build/takumi is missing (run make)" >&2; exit 1; }
[ -f "$model" ] || { echo "facts_study.sh: $model is missing" >&2; exit 1; }
[ -n "$out" ] || out=bench/out/facts-$set_name-$(basename "$model" .gguf)
mkdir -p "$out"

default_configs() {
  cat <<'EOF'
defaults|
EOF
}
if [ -n "$configs" ]; then list=$(grep -v '^[[:space:]]*#' "$configs" | grep -v '^[[:space:]]*$')
else list=$(default_configs); fi

[ -f "$out/results.tsv" ] || printf 'name\tsteps\ttrain_tokens\ttrain_s\tvalid_first\tvalid_last\tfm_en\tfm_ja\tfm_all\tn\toptions\n' > "$out/results.tsv"

while IFS='|' read -r name opts; do
  [ -n "$name" ] || continue
  if [ -n "$only" ] && [[ ",$only," != *",$name,"* ]]; then continue; fi
  run=$out/$name
  if [ -f "$run/eval/results.json" ]; then echo "== $name: done before (kept)"; continue; fi
  rm -rf "$run"
  echo "== $name: takumi train $opts"
  t0=$(date +%s.%N)
  # shellcheck disable=SC2086
  data=(--data "$dir/train.jsonl")
  [[ " $opts " == *" --data "* ]] && data=()   # a configuration may train on another file (augmented data)
  OMP_WAIT_POLICY=passive ./build/takumi train --model "$model" "${data[@]}" --val "$dir/valid.jsonl" \
    --out "$run" --threads "$threads" --samples 0 $opts > "$run.train.log" 2>&1 \
    || { echo "   training failed: $run.train.log" >&2; tail -3 "$run.train.log" >&2; continue; }
  t1=$(date +%s.%N)
  OMP_WAIT_POLICY=passive ./build/takumi eval --model "$model" --adapter "$run/adapter" --data "$heldout" \
    --metrics fact_match --max-tokens 64 --threads "$threads" --out "$run/eval" > "$run.eval.log" 2>&1 \
    || { echo "   eval failed: $run.eval.log" >&2; tail -3 "$run.eval.log" >&2; continue; }
  python3 - "$run" "$name" "$opts" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" >> "$out/results.tsv" <<'EOF'
import json, sys
run, name, opts, secs = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
rows = [json.loads(l) for l in open(run + "/metrics.jsonl", encoding="utf-8") if l.strip()]
val = [r for r in rows if "valid_loss" in r]
steps = [r for r in rows if "train_loss" in r]
tok = sum(r.get("tokens", 0) for r in steps)
en = ja = n_en = n_ja = 0
for l in open(run + "/eval/examples.jsonl", encoding="utf-8"):
    e = json.loads(l)
    s = e["scores"]["fact_match"]
    if e["id"].endswith("-ja"):
        ja += s; n_ja += 1
    else:
        en += s; n_en += 1
print(f"{name}\t{len(steps)}\t{tok}\t{secs:.0f}\t{val[0]['valid_loss']:.4f}\t{val[-1]['valid_loss']:.4f}\t"
      f"{en:g}/{n_en}\t{ja:g}/{n_ja}\t{en + ja:g}\t{n_en + n_ja}\t{opts}")
EOF
  tail -1 "$out/results.tsv"
done <<< "$list"
