#!/usr/bin/env bash
# Training speed and memory of the PyTorch + HF PEFT peer (bench/train_peer.py) over
# the issue-3 matrix: method (lora, full) x batch (1, 4) x dtype (fp32, bf16 autocast),
# sequence 512, same thread count; one process per configuration so that each peak
# RSS is its own. Prints a markdown table; raw JSON lines go to bench/out/train-raw.jsonl.
# takumi's side joins this table once `takumi train` exists (issue 3).
# Usage: bench/train.sh [--threads N] [--steps S] [--warmup W] [--data FILE]
#                       [--methods lora,full] [--batches 1,4] [--dtypes fp32,bf16] [--quick]
#   --quick: 2 timed steps after 1 warm-up, batch 1 only (a smoke run).
set -euo pipefail
cd "$(dirname "$0")/.."

threads=2 steps=5 warmup=1 data="" methods=lora,full batches=1,4 dtypes=fp32,bf16
model=models/SmolLM2-135M-Instruct.Q4_1.gguf seq=512
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --seq) seq=$2; shift 2 ;;
    --methods) methods=$2; shift 2 ;;
    --batches) batches=$2; shift 2 ;;
    --dtypes) dtypes=$2; shift 2 ;;
    --quick) steps=2; warmup=1; batches=1; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "train.sh: unknown option $1" >&2; exit 1 ;;
  esac
done
[ -s "$model" ] || { echo "train.sh: $model not found (scripts/fetch-model.sh)" >&2; exit 1; }
python3 -c 'import peft' 2>/dev/null || { echo "train.sh: needs PEFT: pip install peft" >&2; exit 1; }

mkdir -p bench/out
raw=bench/out/train-raw.jsonl
: > "$raw"
export OMP_NUM_THREADS=$threads
for method in ${methods//,/ }; do
  for batch in ${batches//,/ }; do
    for dtype in ${dtypes//,/ }; do
      echo "train.sh: pytorch $method batch $batch $dtype" >&2
      python3 bench/train_peer.py --model "$model" --method "$method" --batch "$batch" --dtype "$dtype" \
        --seq "$seq" --threads "$threads" --steps "$steps" --warmup "$warmup" ${data:+--data "$data"} \
        2> >(grep -E '^train_peer.py' >&2) | tail -n 1 >> "$raw"
    done
  done
done

python3 - "$raw" "$threads" "$steps" "$warmup" <<'PY'
import json, sys
raw, threads, steps, warmup = sys.argv[1:]
rows = [json.loads(l) for l in open(raw) if l.strip()]
print("| method | batch | dtype | PyTorch tokens/s | PyTorch peak RSS (MB) |")
print("|---|---:|---|---:|---:|")
for r in rows:
    print(f"| {r['method']} | {r['batch']} | {r['dtype']} | {r['tokens_per_s']:.1f} | {r['peak_rss_mb']:.0f} |")
if rows:
    v = rows[0]["versions"]
    lo = rows[0].get("lora") or {}
    print()
    print(f"Sequence {rows[0]['seq']}, {threads} threads, {steps} timed AdamW steps after {warmup} warm-up; "
          f"LoRA r {lo.get('r', 8)} alpha {lo.get('alpha', 16)} on {','.join(lo.get('targets', []))}; "
          f"data: {rows[0]['data']}. torch {v['torch']}, transformers {v['transformers']}, peft {v['peft']}; "
          f"attention {rows[0]['attn']}. bf16 = torch.autocast(cpu, bfloat16).")
PY
