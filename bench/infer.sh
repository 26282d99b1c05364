#!/usr/bin/env bash
# Inference speed: takumi vs llama.cpp on the same GGUF, same machine, same thread
# count, in the same run. Prefill (pp: P prompt tokens in one batch) and decode
# (tg: G single-token steps with a KV cache), tokens/s, median over all repetitions.
# The two sides run alternately (--rounds times, order swapped each round) so that
# load from anything else on the machine hits both. Prints a markdown table on stdout;
# raw JSON of every run goes to bench/out/infer-raw.json.
# Usage: bench/infer.sh [--threads N] [--model M] [--prompt P] [--gen G] [--reps R] [--rounds K]
#                       [--no-build]  (build nothing: build/bench/bench_infer or $BENCH_INFER and the
#                                      peers' llama-bench as they are)
# Needs: bench/build-peers.sh (llama.cpp; PEERS_DIR=DIR uses a build elsewhere) and the takumi library (built here).
set -euo pipefail
cd "$(dirname "$0")/.."

threads=2 model=models/SmolLM2-135M-Instruct.Q4_1.gguf prompt=512 gen=128 reps=3 rounds=2 build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --prompt) prompt=$2; shift 2 ;;
    --gen) gen=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "infer.sh: unknown option $1" >&2; exit 1 ;;
  esac
done

[ -s "$model" ] || { echo "infer.sh: $model not found (scripts/fetch-model.sh fetches the default)" >&2; exit 1; }
[ "$build" = 0 ] || bench/build-peers.sh
peers=${PEERS_DIR:-bench/.peers}
llama_bench=$peers/llama.cpp-build/bin/llama-bench
llama_version=$(cat "$peers"/llama.cpp-build/.built-* 2>/dev/null | head -1 || true)
[ "$build" = 0 ] || make -s -C bench >&2
takumi_bench=${BENCH_INFER:-build/bench/bench_infer}

mkdir -p bench/out
raw=bench/out/infer-raw.json
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Both sides get the same thread count; OpenMP/OpenBLAS pools are pinned to it too.
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads

run_takumi() {
  echo "infer.sh: round $1: takumi (bench_infer -t $threads)" >&2
  "$takumi_bench" --model "$model" --threads "$threads" --prompt "$prompt" --gen "$gen" \
    --reps "$reps" > "$tmp/takumi-$1.json"
}
run_llama() {
  echo "infer.sh: round $1: llama.cpp (llama-bench -t $threads)" >&2
  "$llama_bench" -m "$model" -t "$threads" -p "$prompt" -n "$gen" -r "$reps" -o json \
    > "$tmp/llama-$1.json"
}
for ((r = 1; r <= rounds; r++)); do
  if ((r % 2)); then run_takumi "$r"; run_llama "$r"; else run_llama "$r"; run_takumi "$r"; fi
done

python3 - "$tmp" "$raw" "$threads" "$prompt" "$gen" "$reps" "$rounds" "$model" "$llama_version" <<'PY'
import glob, json, os, statistics, subprocess, sys
tmp, raw, threads, P, G, reps, rounds, model, llama_version = sys.argv[1:]
P, G = int(P), int(G)
tk = {"pp": [], "pp_exact": [], "tg": [], "tg_exact": []}
ll = {"pp": [], "tg": []}
runs = {"takumi": [], "llama.cpp": []}
build_commit = None
for f in sorted(glob.glob(os.path.join(tmp, "takumi-*.json"))):
    j = json.load(open(f))
    runs["takumi"].append(j)
    for k in tk:
        if k in j:
            tk[k] += j[k]["tok_s"]
for f in sorted(glob.glob(os.path.join(tmp, "llama-*.json"))):
    j = json.load(open(f))
    runs["llama.cpp"].append(j)
    for t in j:
        build_commit = t.get("build_commit", build_commit)
        k = "pp" if t["n_prompt"] > 0 and t["n_gen"] == 0 else "tg" if t["n_gen"] > 0 and t["n_prompt"] == 0 else None
        if k:
            ll[k] += t["samples_ts"]
json.dump(runs, open(raw, "w"), indent=1)

cpu = "unknown CPU"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
flags = open("/proc/cpuinfo").read()
isa = [x for x in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if f" {x}" in flags]
ncpu = os.cpu_count()
try:
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout.strip()
    rev = rev + (" + uncommitted changes in the working tree" if dirty else "")
except OSError:
    rev = "unknown"

def med(v):
    return statistics.median(v) if v else None
def fmt(x):
    return "—" if x is None else f"{x:.1f}"
print(f"| metric | takumi tok/s | llama.cpp tok/s | ratio (takumi / llama.cpp) |")
print(f"|---|---:|---:|---:|")
rows = (("pp", "pp", f"prefill (pp{P}), takumi default (bf16 GEMM where AVX512-BF16)"),
        ("pp_exact", "pp", f"prefill (pp{P}), takumi --exact (f32)"),
        ("tg", "tg", f"decode (tg{G}), takumi default (int8 activations, as llama.cpp)"),
        ("tg_exact", "tg", f"decode (tg{G}), takumi --exact (f32 activations)"))
for k, lk, name in rows:
    if not tk[k]:
        continue
    a, b = med(tk[k]), med(ll[lk])
    ratio = f"{a / b:.2f}x" if a and b else "—"
    print(f"| {name} | {fmt(a)} | {fmt(b)} | {ratio} |")
print()
print(f"Model {os.path.basename(model)}; {threads} threads on both sides; {cpu} "
      f"({ncpu} logical CPUs; {', '.join(isa) or 'no AVX2'}). Median of {int(reps) * int(rounds)} runs per "
      f"cell ({rounds} alternating rounds x {reps} repetitions, each after a warm-up). "
      f"Peer: {llama_version or 'llama.cpp (unknown version)'}, llama-bench build_commit {build_commit}, "
      f"CPU backend, -march=native, OpenMP. takumi: {rev}.")
print()
print(f"Command: `bench/infer.sh --threads {threads} --prompt {P} --gen {G} --reps {reps} --rounds {rounds}`; "
      f"llama.cpp side: `llama-bench -m {model} -t {threads} -p {P} -n {G} -r {reps}`.")
PY
