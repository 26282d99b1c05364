#!/usr/bin/env bash
# "The table users want" (issue 11): every PEFT method of `takumi train` on SmolLM2-135M-Instruct
# (Q4_1 GGUF) with examples/support, each with its own defaults and the same step budget:
# trainable parameters, peak memory, mean tokens/s, final validation loss, held-out fact-match
# (examples/support/heldout.jsonl scored as tools/fact_match.py / scripts/demo-finetune.sh do:
# greedy `takumi generate --chat`, max 64 tokens) and merge/export support (`takumi export --merge`
# and the GGUF adapter, from their exit status). Prints a markdown table; raw logs in OUT/.
#
# Usage: bash bench/methods.sh [--max-steps N] [--methods LIST] [--out DIR] [--threads N] [--no-fact]
#   --max-steps N  optimizer steps per method (default 6, so that the whole table fits half an
#                  hour on 2 loaded cores); validation at step 0 and at the end only
#                  (--eval-every N), --samples 0. --max-steps 0: each method's whole default run
#                  (its own epochs and validation schedule), the budget a user gets
#   --methods      comma list of lora,dora,ia3,prefix,prompt,adapter-pfeiffer,adapter-houlsby,adalora,
#                  full,pissa,olora,loraplus (default: the first nine)
#   --out DIR      raw output folder (default bench/out/methods): METHOD.time (train's stderr and
#                  /usr/bin/time -v), METHOD.rc (exit statuses), METHOD.merge.err, METHOD/ (the run),
#                  fact_match.METHOD.json (answers and verdicts), table.md
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${TAKUMI_BIN:-$PWD/build/takumi}
G=models/SmolLM2-135M-Instruct.Q4_1.gguf
STEPS=6 METHODS=lora,dora,ia3,prefix,prompt,adapter-pfeiffer,adapter-houlsby,adalora,full OUT=bench/out/methods THREADS=() FACT=1
while [ $# -gt 0 ]; do
  case "$1" in
    --max-steps) STEPS=$2; shift 2 ;;
    --methods) METHODS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --threads) THREADS=(--threads "$2"); shift 2 ;;
    --no-fact) FACT=0; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "methods.sh: unknown option $1" >&2; exit 1 ;;
  esac
done
[ -x "$BIN" ] || { echo "methods.sh: $BIN is missing (run make)" >&2; exit 1; }
[ -f "$G" ] || { echo "methods.sh: $G is missing (run scripts/fetch-model.sh)" >&2; exit 1; }
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
mkdir -p "$OUT"

args_of() {
  case "$1" in
    lora|dora|ia3|prefix|prompt|adalora|full) echo "--method $1" ;;
    adapter-pfeiffer) echo "--method adapter --adapter-placement pfeiffer" ;;
    adapter-houlsby) echo "--method adapter --adapter-placement houlsby" ;;
    pissa|olora) echo "--method lora --lora-init $1" ;;
    loraplus) echo "--method lora --lora-plus-ratio 16" ;;
    *) echo "methods.sh: unknown method $1" >&2; return 1 ;;
  esac
}

for m in ${METHODS//,/ }; do
  a=$(args_of "$m") || exit 1
  run=$OUT/$m
  rm -rf "$run"
  budget=(--max-steps "$STEPS" --eval-every "$STEPS")
  [ "$STEPS" = 0 ] && budget=()
  echo "== $m: takumi train $a ${budget[*]}" >&2
  # shellcheck disable=SC2086
  /usr/bin/time -v "$BIN" train --model "$G" --data examples/support/train.jsonl --val examples/support/valid.jsonl \
      $a "${budget[@]}" --samples 0 --out "$run" "${THREADS[@]}" \
      > "$OUT/$m.train.log" 2> "$OUT/$m.time"
  echo "train_rc=$?" > "$OUT/$m.rc"
  # merge / export: the merged model (GGUF, f16) and the GGUF adapter
  {
    if [ -d "$run/adapter" ]; then
      "$BIN" export --model "$G" --adapter "$run/adapter" --merge --to "$OUT/$m.merged.gguf" > /dev/null 2> "$OUT/$m.merge.err"
      echo "merge_rc=$?"
      rm -f "$OUT/$m.merged.gguf"
      if [ -f "$run/adapter.gguf" ]; then
        echo "gguf_rc=0"
      else
        "$BIN" export --model "$G" --adapter "$run/adapter" --to "$OUT/$m.adapter.gguf" > /dev/null 2> "$OUT/$m.gguf.err"
        echo "gguf_rc=$?"
        rm -f "$OUT/$m.adapter.gguf"
      fi
    fi
  } >> "$OUT/$m.rc"
done

python3 bench/methods_table.py --out "$OUT" --methods "$METHODS" --steps "$STEPS" --fact "$FACT" "${THREADS[@]}"
