#!/usr/bin/env bash
# DPO step speed (issue 8): takumi (`takumi train --objective dpo`, fp32, LoRA) vs TRL 1.16's
# DPOTrainer on PyTorch + PEFT LoRA (bench/dpo_peer.py, fp32 on CPU), same machine, same
# configuration: SmolLM2-135M-Instruct from the same GGUF file, preference pairs of
# examples/support/prefs_train.jsonl, --batch pairs per optimizer step, one pair per row
# (no packing on either side; TRL pads each batch), sequences cut at --max-len tokens, LoRA r 8,
# alpha 16, dropout 0 on all seven linears, sigmoid loss, beta 0.1, AdamW at a constant lr 5e-4,
# clip 1.0, the reference = the base with the adapter off, same thread count. Tokens of a step =
# the non-padding tokens of prompt+chosen and prompt+rejected of its pairs (both sides count
# them the same way). Also takumi's packed layout (pairs packed into rows of 512 tokens, 2 rows
# a step: its usual way to train) for reference. Prints a markdown table; raw JSON lines in
# bench/out/dpo-raw.jsonl.
# Usage: bench/dpo.sh [--threads N] [--steps S] [--warmup W] [--batch B] [--max-len L] [--no-packed]
set -euo pipefail
cd "$(dirname "$0")/.."

threads=2 steps=5 warmup=1 batch=8 maxlen=256 packed=1
model=models/SmolLM2-135M-Instruct.Q4_1.gguf data=examples/support/prefs_train.jsonl
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --max-len) maxlen=$2; shift 2 ;;
    --no-packed) packed=0; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "dpo.sh: unknown option $1" >&2; exit 1 ;;
  esac
done
[ -s "$model" ] || { echo "dpo.sh: $model not found (scripts/fetch-model.sh)" >&2; exit 1; }
[ -x build/takumi ] || { echo "dpo.sh: build/takumi is missing (run make)" >&2; exit 1; }
python3 -c 'import trl, peft' 2>/dev/null || { echo "dpo.sh: needs TRL and PEFT: pip install trl peft" >&2; exit 1; }

mkdir -p bench/out
raw=bench/out/dpo-raw.jsonl
: > "$raw"
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads
n=$((warmup + steps))

takumi() { # label, extra options...
  local label=$1 run
  shift
  run=$(mktemp -d /tmp/takumi_dpo_bench_XXXXXX)
  echo "dpo.sh: takumi $label ($warmup warm-up + $steps timed steps)" >&2
  ./build/takumi train --objective dpo --beta 0.1 --model "$model" --data "$data" --out "$run/run" --max-seq-len "$maxlen" \
    --lora-r 8 --lora-alpha 16 --lora-dropout 0 --lr 5e-4 --schedule constant --warmup 1 --clip 1.0 --grad-accum 1 \
    --max-steps "$n" --eval-every "$n" --save-every "$n" --samples 0 --threads "$threads" "$@" > "$run/log" 2>&1 \
    || { cat "$run/log" >&2; exit 1; }
  python3 - "$run/run/metrics.jsonl" "$label" "$warmup" "$batch" "$maxlen" "$threads" >> "$raw" <<'PY'
import json, statistics, sys
path, label, warmup, batch, maxlen, threads = sys.argv[1:]
rows = [json.loads(l) for l in open(path) if l.strip()]
st = [r for r in rows if "train_loss" in r][int(warmup):]
print(json.dumps({"side": "takumi", "layout": label, "batch": int(batch), "max_length": int(maxlen), "threads": int(threads),
                  "steps_timed": len(st), "tokens_per_s": sum(r["tokens"] for r in st) / sum(r["step_s"] for r in st),
                  "step_s_median": statistics.median(r["step_s"] for r in st),
                  "tokens_per_step": sum(r["tokens"] for r in st) / len(st),
                  "steps": [{"loss": r["train_loss"], "rewards/accuracies": r["rewards/accuracies"]} for r in st],
                  "peak_rss_mb": max(r.get("peak_rss_mb", 0) for r in rows)}))
PY
  rm -rf "$run"
}

echo "dpo.sh: TRL DPOTrainer, batch $batch ($warmup warm-up + $steps timed steps)" >&2
python3 bench/dpo_peer.py --model "$model" --data "$data" --threads "$threads" --batch "$batch" --max-length "$maxlen" \
  --steps "$steps" --warmup "$warmup" 2> >(grep -E '^dpo_peer.py' >&2) | tail -n 1 >> "$raw"
takumi "one pair a row" --no-packing --batch-size "$batch"
[ "$packed" = 1 ] && takumi "packed, 2 rows of 512" --pack-len 512 --batch-size 2

python3 - "$raw" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
trl = next((r for r in rows if r["side"] == "trl"), None)
print("| side | layout | pairs/step | tokens/step | step s (median) | tokens/s | vs TRL | peak RSS MB |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for r in rows:
    ratio = f"{r['tokens_per_s'] / trl['tokens_per_s']:.2f}x" if trl and r is not trl else "1.00x" if r is trl else "—"
    layout = r.get("layout", "one pair a row, padded per batch")
    pairs = r["batch"] if "packed" not in layout else "≈7"
    print(f"| {'TRL DPOTrainer (PyTorch + PEFT)' if r['side'] == 'trl' else 'takumi'} | {layout} | {pairs} | {r['tokens_per_step']:.0f} | "
          f"{r['step_s_median']:.2f} | {r['tokens_per_s']:.1f} | {ratio} | {r['peak_rss_mb']:.0f} |")
if trl:
    v = trl["versions"]
    print(f"\nTRL {v['trl']}, torch {v['torch']}, transformers {v['transformers']}, peft {v['peft']} (fp32, sdpa attention, "
          f"no gradient checkpointing); {trl['threads']} threads on both sides; {trl['steps_timed']} timed steps after "
          f"{trl['warmup']} warm-up; max length {trl['max_length']}.")
PY
