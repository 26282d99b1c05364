#!/usr/bin/env bash
# Training speed and memory: takumi (build/bench/bench_train, fp32) vs PyTorch + HF PEFT
# (bench/train_peer.py, fp32 and bf16 autocast) over the issue-3 matrix: method (lora,
# full) x batch (1, 4), sequence 512, same thread count, same LoRA configuration (r 8,
# alpha 16, dropout 0, all seven linears), same kind of data (seeded random token ids,
# loss on every next token), same optimizer (AdamW, constant lr, no clipping). One process
# per configuration so that each peak RSS is its own; for each (method, batch) takumi runs
# between the two PyTorch runs, so background load hits all. Prints a markdown table;
# raw JSON lines go to bench/out/train-raw.jsonl.
# Usage: bench/train.sh [--threads N] [--steps S] [--warmup W] [--bf16-steps S]
#                       [--methods lora,full] [--batches 1,4] [--dtypes fp32,bf16] [--quick]
#   bf16 autocast is slow on CPUs without AVX512-BF16 (one step can take minutes), so it
#   runs --bf16-steps timed steps (default 1) after 1 warm-up.
#   --quick: 2 timed steps after 1 warm-up, batch 1 only, no bf16 (a smoke run).
set -euo pipefail
cd "$(dirname "$0")/.."

threads=2 steps=5 warmup=1 bf16_steps=1 methods=lora,full batches=1,4 dtypes=fp32,bf16
model=models/SmolLM2-135M-Instruct.Q4_1.gguf seq=512 build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --bf16-steps) bf16_steps=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --seq) seq=$2; shift 2 ;;
    --methods) methods=$2; shift 2 ;;
    --batches) batches=$2; shift 2 ;;
    --dtypes) dtypes=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --quick) steps=2; warmup=1; batches=1; dtypes=fp32; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "train.sh: unknown option $1" >&2; exit 1 ;;
  esac
done
[ -s "$model" ] || { echo "train.sh: $model not found (scripts/fetch-model.sh)" >&2; exit 1; }
python3 -c 'import peft' 2>/dev/null || { echo "train.sh: needs PEFT: pip install peft" >&2; exit 1; }
[ "$build" = 0 ] || make -s -C bench >&2

mkdir -p bench/out
raw=bench/out/train-raw.jsonl
: > "$raw"
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads

peer() { # method batch dtype
  local s=$steps w=$warmup
  [ "$3" = bf16 ] && { s=$bf16_steps; w=1; }
  echo "train.sh: pytorch $1 batch $2 $3 ($w warm-up + $s timed steps)" >&2
  python3 bench/train_peer.py --model "$model" --method "$1" --batch "$2" --dtype "$3" --seq "$seq" \
    --threads "$threads" --steps "$s" --warmup "$w" 2> >(grep -E '^train_peer.py' >&2) | tail -n 1 >> "$raw"
}
for method in ${methods//,/ }; do
  for batch in ${batches//,/ }; do
    dt=(${dtypes//,/ })
    [ ${#dt[@]} -gt 0 ] && peer "$method" "$batch" "${dt[0]}"
    echo "train.sh: takumi $method batch $batch fp32" >&2
    build/bench/bench_train --model "$model" --method "$method" --batch "$batch" --seq "$seq" \
      --threads "$threads" --steps "$steps" --warmup "$warmup" >> "$raw"
    for d in "${dt[@]:1}"; do peer "$method" "$batch" "$d"; done
  done
done

python3 - "$raw" "$threads" "$steps" "$warmup" "$bf16_steps" <<'PY'
import json, sys
raw, threads, steps, warmup, bf16_steps = sys.argv[1:]
rows = [json.loads(l) for l in open(raw) if l.strip()]
keys = []
for r in rows:
    k = (r["method"], r["batch"])
    if k not in keys:
        keys.append(k)
def get(side, method, batch, dtype):
    for r in rows:
        if (r["side"], r["method"], r["batch"], r["dtype"]) == (side, method, batch, dtype):
            return r
    return None
def f(r, key, fmt):
    return "—" if r is None or r.get(key) is None else format(r[key], fmt)
print("| method | batch | takumi tok/s | takumi peak RSS MB | PyTorch fp32 tok/s | RSS MB | PyTorch bf16 tok/s | RSS MB | speed vs faster PyTorch | memory vs it |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for method, batch in keys:
    t = get("takumi", method, batch, "fp32")
    p32 = get("pytorch", method, batch, "fp32")
    p16 = get("pytorch", method, batch, "bf16")
    peers = [p for p in (p32, p16) if p and p.get("tokens_per_s")]
    best = max(peers, key=lambda p: p["tokens_per_s"]) if peers else None
    sp = f"{t['tokens_per_s'] / best['tokens_per_s']:.2f}x ({best['dtype']})" if t and best else "—"
    mem = f"{t['peak_rss_mb'] / best['peak_rss_mb']:.2f}x" if t and best else "—"
    print(f"| {method} | {batch} | {f(t, 'tokens_per_s', '.1f')} | {f(t, 'peak_rss_mb', '.0f')} | "
          f"{f(p32, 'tokens_per_s', '.1f')} | {f(p32, 'peak_rss_mb', '.0f')} | {f(p16, 'tokens_per_s', '.1f')} | "
          f"{f(p16, 'peak_rss_mb', '.0f')} | {sp} | {mem} |")
print()
print("takumi time split per step (median s): " + "; ".join(
    f"{r['method']} b{r['batch']}: forward {r['forward_s_median']:.2f}, LM head+loss {r['head_s_median']:.2f}, "
    f"backward {r['backward_s_median']:.2f}, AdamW {r['adamw_s_median']:.3f}"
    for r in rows if r["side"] == "takumi"))
pv = next((r["versions"] for r in rows if r["side"] == "pytorch"), None)
print()
print(f"Sequence {rows[0]['seq'] if rows else '?'}, {threads} threads on both sides, {steps} timed steps after {warmup} "
      f"warm-up (PyTorch bf16: {bf16_steps} after 1); LoRA r 8, alpha 16, dropout 0, q,k,v,o,gate,up,down; "
      f"seeded random token ids, loss on every next token; AdamW, constant lr, no clipping. "
      + (f"torch {pv['torch']}, transformers {pv['transformers']}, peft {pv['peft']}, attention sdpa; "
         f"bf16 = torch.autocast(cpu, bfloat16). " if pv else "")
      + "takumi trains in fp32 (LoRA: base kept Q4_1, per-block dequantization; full: f32 masters). "
      "Peak RSS = getrusage ru_maxrss of the whole process.")
PY
