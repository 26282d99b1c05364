#!/usr/bin/env bash
# Load: `takumi serve` vs llama.cpp's llama-server on the same model and threads, chat completions
# (greedy, --max-tokens answers) from 1, 4 and 16 concurrent clients for a fixed time each
# (bench/serve_load.py): requests/s, p50/p99 latency, generated tokens/s, errors, and takumi's
# generated tokens/s as a ratio of llama-server's. llama-server runs with -np 16 (16 slots,
# continuous batching), takumi with --max-concurrent 16. Modes (each adds a table):
#   --adapters   clients spread over 4 LoRA adapters of the model (takumi: model ids a1..a4; llama-server:
#                --lora x4 and the request's "lora" field [{id, scale 1}]); the adapters are trained here
#                for one step each (takumi train --max-steps 1: a real, non-zero LoRA on every linear)
#   --train      the same loads while a LoRA training job runs: takumi serve's own fine-tuning job (at --job-nice 10,
#                its default), beside llama-server the same `takumi train` at nice 10; the job's steps are reported
#   --exact      takumi serve --exact (f32 activations in decode; default: int8 for quantized weights, as llama.cpp)
#   --fast       the default precision, said explicitly (kept for older command lines)
#   --takumi-only  skip llama-server
# Usage: bench/serve_load.sh [--threads N] [--seconds S] [--clients "1 4 16"] [--max-tokens 64] [--adapters] [--train] [--exact|--fast]
# Needs llama-server from bench/build-peers.sh (PEERS_DIR, default bench/.peers); without it, takumi alone.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=2 seconds=20 clients="1 4 16" max_tokens=64 adapters=0 train=0 fast=() takumi_only=0
while [ $# -gt 0 ]; do
    case "$1" in
        --threads) threads=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        --clients) clients=$2; shift 2 ;;
        --max-tokens) max_tokens=$2; shift 2 ;;
        --adapters) adapters=1; shift ;;
        --train) train=1; shift ;;
        --fast) fast=(--fast); shift ;;
        --exact) fast=(--exact); shift ;;
        --takumi-only) takumi_only=1; shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "serve_load.sh: unknown option $1" >&2; exit 1 ;;
    esac
done
BIN=${TAKUMI_BIN:-$PWD/build/takumi}
MODEL=${TAKUMI_MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
PEERS=${PEERS_DIR:-bench/.peers}
LS=$PEERS/llama.cpp-build/bin/llama-server
[ -x "$BIN" ] || { echo "serve_load.sh: build takumi first (make)" >&2; exit 1; }
[ -f "$MODEL" ] || { echo "serve_load.sh: $MODEL missing (scripts/fetch-model.sh)" >&2; exit 1; }
[ -x "$LS" ] || { echo "serve_load.sh: no llama-server at $LS (bench/build-peers.sh): takumi alone" >&2; LS=; }
export OMP_WAIT_POLICY=passive
tmp=$(mktemp -d /tmp/takumi_load_XXXXXX)
srv=
trainpid=
cleanup() {
    [ -n "$srv" ] && kill "$srv" 2>/dev/null && wait "$srv" 2>/dev/null
    [ -n "$trainpid" ] && kill "$trainpid" 2>/dev/null && wait "$trainpid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
port=$((20000 + RANDOM % 20000))
wait_up() {  # wait_up URL: until /health answers 200 (llama-server: after loading)
    for _ in $(seq 1 600); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$1/health" || true)" = 200 ] && return 0
        kill -0 "$srv" 2>/dev/null || return 1
        sleep 0.2
    done
    return 1
}
stop_srv() { kill "$srv" 2>/dev/null; wait "$srv" 2>/dev/null || true; srv=; }

if [ "$adapters" = 1 ]; then
    for a in 1 2 3 4; do
        "$BIN" train --model "$MODEL" --data examples/support/train.jsonl --out "$tmp/run$a" --max-steps 1 --seed $a --lr 1e-3 \
            --samples 0 --threads "$threads" > "$tmp/train$a.log" 2>&1 || { echo "adapter $a: $(tail -2 "$tmp/train$a.log")" >&2; exit 1; }
    done
fi
# --train: a LoRA job on examples/support for the whole run. takumi: a fine-tuning job of the server itself (its job
# thread runs at nice 10, --job-nice's default, with the server's threads); llama-server: the same `takumi train`
# beside it at nice 10 and the same threads. The job's optimizer steps during the load are reported.
jobid=
start_train() {  # start_train NAME URL
    [ "$train" = 1 ] || return 0
    if [ "$1" = takumi ]; then
        local f
        f=$(curl -sf "$2/v1/files" -F purpose=fine-tune -F file=@examples/support/train.jsonl | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
        jobid=$(curl -sf "$2/v1/fine_tuning/jobs" -H 'Content-Type: application/json' \
            -d "{\"model\":\"smol\",\"training_file\":\"$f\",\"method\":{\"type\":\"supervised\",\"supervised\":{\"hyperparameters\":{\"n_epochs\":50}}}}" \
            | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
        jobdir=$tmp/data/jobs/$jobid
    else
        nice -n 10 "$BIN" train --model "$MODEL" --data examples/support/train.jsonl --out "$tmp/job" --epochs 50 --samples 0 \
            --threads "$threads" > "$tmp/job.log" 2>&1 &
        trainpid=$!
        jobdir=$tmp/job
    fi
    for _ in $(seq 1 600); do [ -s "$jobdir/metrics.jsonl" ] && break; sleep 0.1; done   # training has started
}
train_steps() { awk '/"train_loss"/ { n++ } END { print n + 0 }' "$jobdir/metrics.jsonl" 2>/dev/null || echo 0; }
stop_train() {  # stop_train NAME URL
    [ "$train" = 1 ] || return 0
    echo "$1: the training job made $(train_steps) optimizer steps during the load" >&2
    echo "$1 $(train_steps)" >> "$tmp/train_steps.txt"
    if [ -n "$jobid" ]; then curl -s -X POST "$2/v1/fine_tuning/jobs/$jobid/cancel" > /dev/null; jobid=; fi
    [ -n "$trainpid" ] && { kill "$trainpid" 2>/dev/null; wait "$trainpid" 2>/dev/null || true; trainpid=; rm -rf "$tmp/job"; }
    return 0
}

# run_side NAME: starts that server, runs every client count, writes $tmp/NAME.jsonl
run_side() {
    local name=$1 url=http://127.0.0.1:$port extra=()
    : > "$tmp/$name.jsonl"
    if [ "$name" = takumi ]; then
        local args=(serve --model "smol=$MODEL" --port "$port" --threads "$threads" --max-concurrent 16 --max-queue 64 --data-dir "$tmp/data" "${fast[@]}")
        if [ "$adapters" = 1 ]; then for a in 1 2 3 4; do args+=(--adapter "a$a=$tmp/run$a/adapter"); done; extra=(--models a1,a2,a3,a4)
        else extra=(--models smol); fi
        "$BIN" "${args[@]}" > "$tmp/$name.log" 2>&1 &
    else
        local args=(-m "$MODEL" --port "$port" -t "$threads" -tb "$threads" -np 16 -c $((16 * 1024)) --no-webui)
        if [ "$adapters" = 1 ]; then for a in 1 2 3 4; do args+=(--lora "$tmp/run$a/adapter.gguf"); done; extra=(--lora 4); fi
        "$LS" "${args[@]}" > "$tmp/$name.log" 2>&1 &
    fi
    srv=$!
    wait_up "$url" || { echo "$name did not start: $(tail -5 "$tmp/$name.log")" >&2; exit 1; }
    python3 bench/serve_load.py --url "$url" --clients 1 --seconds 3 --max-tokens 8 "${extra[@]}" > /dev/null  # warm-up
    start_train "$name" "$url"
    for c in $clients; do
        python3 bench/serve_load.py --url "$url" --clients "$c" --seconds "$seconds" --max-tokens "$max_tokens" --label "$name" \
            "${extra[@]}" >> "$tmp/$name.jsonl"
        tail -n1 "$tmp/$name.jsonl" >&2
    done
    stop_train "$name" "$url"
    [ "$name" = takumi ] && curl -s "$url/metrics" | grep -E '^takumi_batch_(rows_max|steps_total|rows_total) ' > "$tmp/batch.txt" || true
    stop_srv
}
run_side takumi
[ -n "$LS" ] && [ "$takumi_only" = 0 ] && run_side llama-server
mode="base model"; [ "$adapters" = 1 ] && mode="4 adapters"; [ ${#fast[@]} -gt 0 ] && mode="$mode, takumi ${fast[0]}"; [ "$train" = 1 ] && mode="$mode, a training job running"
python3 - "$tmp" "$mode" "$threads" "$seconds" "$max_tokens" "$(lscpu | sed -n 's/^Model name: *//p' | head -1)" <<'PY'
import json, os, sys
tmp, mode, threads, seconds, mt, cpu = sys.argv[1:7]
load = lambda n: [json.loads(l) for l in open(os.path.join(tmp, n + ".jsonl"))] if os.path.exists(os.path.join(tmp, n + ".jsonl")) else []
t, l = load("takumi"), load("llama-server")
print(f"\nServing load ({mode}): SmolLM2-135M-Instruct Q4_1, chat completions, greedy, max_tokens {mt}, clients start requests for {seconds} s (those running then finish), "
      f"{threads} threads each, {cpu}")
print("\n| clients | server | req/s | p50 s | p99 s | gen tok/s | errors | tok/s vs llama-server |")
print("|---|---|---|---|---|---|---|---|")
for i, a in enumerate(t):
    b = l[i] if i < len(l) else None
    for r, name in ((a, "takumi serve"), (b, "llama-server -np 16")):
        if r is None:
            continue
        ratio = f"{a['tok_s'] / b['tok_s']:.2f}x" if (b and b["tok_s"] > 0 and r is a) else ""
        print(f"| {r['clients']} | {name} | {r['req_s']:.2f} | {r['p50_s']:.2f} | {r['p99_s']:.2f} | {r['tok_s']:.1f} | {r['errors']} | {ratio} |")
ts = os.path.join(tmp, "train_steps.txt")
if os.path.exists(ts):
    print("\ntraining job's optimizer steps during the load: " + ", ".join(f"beside {l.split()[0]} {l.split()[1]}" for l in open(ts)))
b = os.path.join(tmp, "batch.txt")
if os.path.exists(b):
    m = dict(line.split() for line in open(b))
    steps, rows = float(m.get("takumi_batch_steps_total", 0)), float(m.get("takumi_batch_rows_total", 0))
    print(f"\ntakumi: {int(steps)} decode steps, mean {rows / max(steps, 1):.2f} rows a step, at most {m.get('takumi_batch_rows_max')}")
PY
