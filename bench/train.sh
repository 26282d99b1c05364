#!/usr/bin/env bash
# Training speed and memory: takumi (build/bench/bench_train, --precision fp32 and bf16) vs PyTorch + HF PEFT
# (bench/train_peer.py, fp32 and bf16 autocast) over the issue-3 matrix: method (lora,
# full) x batch (1, 4), sequence 512, same thread count, same LoRA configuration (r 8,
# alpha 16, dropout 0, all seven linears), same kind of data (seeded random token ids,
# loss on every next token), same optimizer (AdamW, constant lr, no clipping). One process
# per configuration so that each peak RSS is its own; for each (method, batch) takumi runs
# between the two PyTorch runs, so background load hits all. Prints a markdown table with
# MFU (useful FLOPs of a step, bench_train.c useful_flops, the same count for both sides,
# divided by the step time and by the peak of the precision used as bench/peak.sh measures it
# at the same thread count: fp32 FMA for fp32, vdpbf16ps for bf16 products / autocast) and
# takumi's step time split; raw JSON lines go to bench/out/train-raw.jsonl.
# Usage: bench/train.sh [--threads N] [--steps S] [--warmup W] [--bf16-steps S]
#                       [--methods lora,full] [--batches 1,4] [--dtypes fp32,bf16] [--quick]
#                       [--takumi-precisions fp32,bf16]   (default: bf16 too where the CPU has AVX512-BF16)
#   bf16 autocast is slow on CPUs without AVX512-BF16 (one step can take minutes), so it
#   runs --bf16-steps timed steps (default 1) after 1 warm-up.
#   --quick: 2 timed steps after 1 warm-up, batch 1 only, no bf16 (a smoke run).
set -euo pipefail
cd "$(dirname "$0")/.."

threads=2 steps=5 warmup=1 bf16_steps=1 methods=lora,full batches=1,4 dtypes=fp32,bf16
model=models/SmolLM2-135M-Instruct.Q4_1.gguf seq=512 build=1
tprec=fp32; grep -q -w avx512_bf16 /proc/cpuinfo && tprec=fp32,bf16
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
    --takumi-precisions) tprec=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --quick) steps=2; warmup=1; batches=1; dtypes=fp32; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "train.sh: unknown option $1" >&2; exit 1 ;;
  esac
done
[ -s "$model" ] || { echo "train.sh: $model not found (scripts/fetch-model.sh)" >&2; exit 1; }
python3 -c 'import peft' 2>/dev/null || { echo "train.sh: needs PEFT: pip install peft" >&2; exit 1; }
bdir=${BUILD:-build}   # the build folder to use (BUILD=build-dev bench/train.sh)
[ "$build" = 0 ] || make -s -C bench BUILD="$PWD/$bdir" >&2

mkdir -p bench/out
raw=bench/out/train-raw.jsonl
: > "$raw"
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads
echo "train.sh: measuring the machine's peak (bench/peak.sh, $threads threads)" >&2
BUILD=$bdir bench/peak.sh --json --seconds 1 > bench/out/train-peak.json

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
    for tp in ${tprec//,/ }; do
      echo "train.sh: takumi $method batch $batch $tp" >&2
      "$bdir/bench/bench_train" --model "$model" --method "$method" --batch "$batch" --seq "$seq" \
        --threads "$threads" --steps "$steps" --warmup "$warmup" --precision "$tp" >> "$raw"
    done
    for d in "${dt[@]:1}"; do peer "$method" "$batch" "$d"; done
  done
done

python3 - "$raw" "$threads" "$steps" "$warmup" "$bf16_steps" bench/out/train-peak.json <<'PY'
import json, sys
raw, threads, steps, warmup, bf16_steps, peakf = sys.argv[1:]
rows = [json.loads(l) for l in open(raw) if l.strip()]
pk = json.load(open(peakf))
def peak(name):
    v = [f["value"] for f in pk["figures"] if f["name"].startswith(name) and f["threads"] == int(threads) and f.get("value")]
    return max(v) if v else None
peaks = {"fp32": peak("fp32_fma"), "bf16": peak("bf16_dp")}
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
def mfu(r, flops):
    if r is None or not r.get("tokens_per_s") or not flops or not peaks.get(r["dtype"]):
        return None
    step_s = r["batch"] * r["seq"] / r["tokens_per_s"]
    return flops / step_s / (peaks[r["dtype"]] * 1e9)
def cell(r, flops):
    if r is None or r.get("tokens_per_s") is None:
        return "—"
    m = mfu(r, flops)
    return f"{r['tokens_per_s']:.1f}" + (f" ({100 * m:.0f}%)" if m is not None else "")
def rss(r):
    return "—" if r is None or r.get("peak_rss_mb") is None else f"{r['peak_rss_mb']:.0f}"
print("| method | batch | takumi fp32 tok/s (MFU) | takumi bf16 tok/s (MFU) | takumi peak RSS MB | PyTorch fp32 tok/s (MFU) | RSS MB "
      "| PyTorch bf16 autocast tok/s (MFU) | RSS MB | faster takumi vs faster PyTorch | memory vs it |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for method, batch in keys:
    t32, t16 = get("takumi", method, batch, "fp32"), get("takumi", method, batch, "bf16")
    p32, p16 = get("pytorch", method, batch, "fp32"), get("pytorch", method, batch, "bf16")
    flops = next((t["useful_flops_per_step"] for t in (t32, t16) if t and t.get("useful_flops_per_step")), None)
    mine = [t for t in (t32, t16) if t and t.get("tokens_per_s")]
    peers = [p for p in (p32, p16) if p and p.get("tokens_per_s")]
    t = max(mine, key=lambda x: x["tokens_per_s"]) if mine else None
    best = max(peers, key=lambda p: p["tokens_per_s"]) if peers else None
    sp = f"{t['tokens_per_s'] / best['tokens_per_s']:.2f}x ({t['dtype']} vs {best['dtype']})" if t and best else "—"
    mem = f"{t['peak_rss_mb'] / best['peak_rss_mb']:.2f}x" if t and best else "—"
    print(f"| {method} | {batch} | {cell(t32, flops)} | {cell(t16, flops)} | {rss(t)} | {cell(p32, flops)} | {rss(p32)} | "
          f"{cell(p16, flops)} | {rss(p16)} | {sp} | {mem} |")
print()
print("takumi step time split (median seconds per step; products = tk_matmul*/tk_sgemm, attention = tk_attention_*, "
      "both measured inside forward + head + backward):")
print()
print("| method | batch | precision | step | forward | LM head + loss | backward | AdamW | products | attention | other |")
print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    if r["side"] != "takumi":
        continue
    fb = r["forward_s_median"] + r["head_s_median"] + r["backward_s_median"]
    other = fb - r.get("gemm_s_median", 0) - r.get("attention_s_median", 0)
    print(f"| {r['method']} | {r['batch']} | {r['dtype']} | {r['step_s_median']:.2f} | {r['forward_s_median']:.2f} | "
          f"{r['head_s_median']:.2f} | {r['backward_s_median']:.2f} | {r['adamw_s_median']:.3f} | "
          f"{r.get('gemm_s_median', float('nan')):.2f} | {r.get('attention_s_median', float('nan')):.2f} | {other:.2f} |")
pv = next((r["versions"] for r in rows if r["side"] == "pytorch"), None)
print()
print(f"Sequence {rows[0]['seq'] if rows else '?'}, {threads} threads on both sides, {steps} timed steps after {warmup} "
      f"warm-up (PyTorch bf16: {bf16_steps} after 1); LoRA r 8, alpha 16, dropout 0, q,k,v,o,gate,up,down; "
      f"seeded random token ids, loss on every next token; AdamW, constant lr, no clipping. "
      + (f"torch {pv['torch']}, transformers {pv['transformers']}, peft {pv['peft']}, attention sdpa; "
         f"bf16 = torch.autocast(cpu, bfloat16). " if pv else "")
      + "takumi fp32 = --precision fp32; bf16 = --precision bf16 (= auto on AVX512-BF16 CPUs: base and LM-head products "
      "with bf16 inputs and fp32 sums; weights, gradients, moments fp32). LoRA: base kept Q4_1, dequantized per block; "
      "full: f32 masters. Peak RSS = getrusage ru_maxrss of the whole process. "
      f"MFU peaks ({pk['cpu']}, {threads} threads, bench/peak.sh, per-thread CPU time): fp32 "
      + (f"{peaks['fp32']:.0f}" if peaks['fp32'] else "?") + " GFLOP/s, bf16 "
      + (f"{peaks['bf16']:.0f}" if peaks['bf16'] else "n/a") + " GFLOP/s; useful FLOPs per step (bench_train.c): "
      + ", ".join(f"{m} b{b} {next((r['useful_flops_per_step'] for r in rows if r['side'] == 'takumi' and r['method'] == m and r['batch'] == b), 0) / 1e9:.0f} G"
                  for m, b in keys) + ".")
PY
