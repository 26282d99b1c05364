#!/usr/bin/env bash
# Sequence classification with a new head (issue 11, "Transfer learning: new heads"): SmolLM2-135M-Instruct
# (Q4_1) trained with `takumi train --task classify` on SST-2 (sentiment, 2 labels) and AG News (topic,
# 4 labels), LoRA + head (the default method) against the head alone on the frozen body (--method head),
# evaluated with `takumi eval` (accuracy and macro-F1 of held-out data). Subsets keep it to ~20 minutes on
# 2 shared cores:
#   SST-2    train: the first 400 phrases of ../shared/data/sst2/train.tsv; eval: every other sentence of
#            test.tsv (GLUE SST-2 dev), 436 sentences
#   AG News  train: the first 400 articles of ../shared/data/agnews/dev.tsv (a sample of AG News train);
#            eval: every 25th article of test.tsv, 304 articles (76 per class); texts cut to 96 tokens
# Three ways to train the body: LoRA on every layer + head (the default), LoRA on the upper half only
# (--freeze-layers 15: the lower 15 of 30 layers frozen) + head, and the head alone (--method head).
# Each method with its default settings otherwise (2 epochs; lr: auto, 1e-3). Prints a Markdown table (also
# written to $out/results.md) and the time of each step. With --peft, the same configuration also runs in
# PyTorch + PEFT (tools/peft_classify_demo.py: LoRA SEQ_CLS, layers_to_transform for the upper half, the
# head alone) right after takumi's run, on the same threads, and the table gets its accuracy and the ratio of
# training times.
#
# Usage: scripts/demo_classify.sh [--threads N] [--out DIR] [--peft] [--only NAMES]
#   (default 2 threads, DIR build/demo-classify; NAMES: comma list of sst2_lora,sst2_upper,sst2_head,
#   agnews_lora,agnews_upper,agnews_head)
# OMP_WAIT_POLICY=passive: on shared, oversubscribed cores OpenMP's spinning barriers cost far more than the
# work (measured: 40 s vs 5 s for 20 SST-2 sentences at a load average of 12 on 2 cores); results are the
# same bit for bit.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=2
out=build/demo-classify
peft=0 only=
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --peft) peft=1; shift ;;
    --only) only=",$2,"; shift 2 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "demo_classify.sh: unknown option $1" >&2; exit 1 ;;
  esac
done
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
model=${TAKUMI_MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
SH=${TAKUMI_SHARED:-../shared}
BIN=build/takumi
[ -x $BIN ] || { echo "demo_classify.sh: build/takumi is missing (run make)" >&2; exit 1; }
[ -f "$model" ] || { echo "demo_classify.sh: $model is missing (run scripts/fetch-model.sh)" >&2; exit 1; }
[ -f "$SH/data/sst2/train.tsv" ] && [ -f "$SH/data/agnews/test.tsv" ] || { echo "demo_classify.sh: ../shared/data/{sst2,agnews} missing" >&2; exit 1; }
rm -rf "$out"
mkdir -p "$out"
awk 'NR > 1 && NR <= 401' "$SH/data/sst2/train.tsv" > "$out/sst2_train.tsv"
awk 'NR > 1 && NR % 2 == 0' "$SH/data/sst2/test.tsv" > "$out/sst2_eval.tsv"
awk 'NR <= 400' "$SH/data/agnews/dev.tsv" > "$out/agnews_train.tsv"
awk 'NR % 25 == 0' "$SH/data/agnews/test.tsv" > "$out/agnews_eval.tsv"
if [ $peft = 1 ]; then
  echo "| data | method | trainable parameters | train time | accuracy | macro-F1 | eval examples | PEFT train time | PEFT accuracy | PEFT macro-F1 | takumi time / PEFT time |" > "$out/results.md"
  echo "|---|---|---|---|---|---|---|---|---|---|---|" >> "$out/results.md"
else
  echo "| data | method | trainable parameters | train time | accuracy | macro-F1 | eval examples |" > "$out/results.md"
  echo "|---|---|---|---|---|---|---|" >> "$out/results.md"
fi

run() {   # name, labels, max-seq-len, method args...
  local name=$1 labels=$2 msl=$3; shift 3
  local data=${name%%_*} t0 t1 t2 kind=${name#*_}
  [ -z "$only" ] || [[ $only == *",$name,"* ]] || return 0
  t0=$(date +%s)
  echo "== $name: takumi train --task classify --labels $labels $* ($(wc -l < "$out/${data}_train.tsv") examples)"
  $BIN train --model "$model" --data "$out/${data}_train.tsv" --task classify --labels "$labels" --max-seq-len "$msl" --epochs 2 \
      --threads "$threads" --out "$out/$name" "$@" > "$out/$name.log" 2>&1 || { tail -5 "$out/$name.log"; exit 1; }
  t1=$(date +%s)
  $BIN eval --model "$model" --adapter "$out/$name/adapter" --data "$out/${data}_eval.tsv" --max-seq-len "$msl" --threads "$threads" \
      --out "$out/$name.eval" > "$out/$name.eval.txt" 2> "$out/$name.eval.log" || { tail -5 "$out/$name.eval.log"; exit 1; }
  t2=$(date +%s)
  local acc f1 n params
  acc=$(awk '$1 == "accuracy" {print $2}' "$out/$name.eval.txt")
  f1=$(awk '$1 == "macro_f1" {print $2}' "$out/$name.eval.txt")
  n=$(awk '$1 == "accuracy" {print $NF}' "$out/$name.eval.txt")
  params=$(sed -n 's/.*, \([0-9]*\) trainable parameters.*/\1/p' "$out/$name.log" | head -1)
  echo "   accuracy $acc, macro-F1 $f1 on $n examples; train $((t1 - t0)) s, eval $((t2 - t1)) s"
  if [ $peft = 0 ]; then
    echo "| $data | $* | $params | $((t1 - t0)) s | $acc | $f1 | $n |" >> "$out/results.md"
    return 0
  fi
  local pm=lora pa=() pl
  [ "$kind" = head ] && pm=head
  [ "$kind" = upper ] && pa=(--lower-frozen 15)
  echo "== $name: PEFT (tools/peft_classify_demo.py --method $pm ${pa[*]})"
  python3 tools/peft_classify_demo.py --train "$out/${data}_train.tsv" --eval "$out/${data}_eval.tsv" --labels "$labels" \
      --method "$pm" "${pa[@]}" --max-seq-len "$msl" --threads "$threads" > "$out/$name.peft.txt" 2> "$out/$name.peft.log" \
      || { tail -5 "$out/$name.peft.log"; exit 1; }
  pl=$(tail -1 "$out/$name.peft.txt")
  echo "   $pl"
  local pacc pf1 pt
  pacc=$(sed -n 's/.*accuracy \([0-9.]*\),.*/\1/p' <<< "$pl")
  pf1=$(sed -n 's/.*macro-F1 \([0-9.]*\);.*/\1/p' <<< "$pl")
  pt=$(sed -n 's/.*; train \([0-9]*\) s,.*/\1/p' <<< "$pl")
  echo "| $data | $* | $params | $((t1 - t0)) s | $acc | $f1 | $n | $pt s | $pacc | $pf1 | $(awk -v a=$((t1 - t0)) -v b="$pt" 'BEGIN { printf "%.2fx", b ? a / b : 0 }') |" >> "$out/results.md"
}
start=$(date +%s)
run sst2_lora negative,positive 64 --method lora
run sst2_upper negative,positive 64 --method lora --freeze-layers 15
run sst2_head negative,positive 64 --method head
run agnews_lora World,Sports,Business,Sci/Tech 96 --method lora
run agnews_upper World,Sports,Business,Sci/Tech 96 --method lora --freeze-layers 15
run agnews_head World,Sports,Business,Sci/Tech 96 --method head
echo
cat "$out/results.md"
echo
echo "total: $(( $(date +%s) - start )) s with --threads $threads ($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg))"
