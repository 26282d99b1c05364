#!/usr/bin/env bash
# The cost of logprobs and of n choices in `takumi serve` (one server, one client at a time):
#   (a) chat completions, greedy, --max-tokens answers, alternating logprobs off / logprobs true + top_logprobs 20:
#       the median and fastest wall time and generated tokens/s of each (greedy: both generate the same tokens;
#       on a loaded machine read the fastest runs too: one descheduled run moves a median of few);
#   (b) completions at temperature 1: n=4 in one request (the 4 choices are rows of one batch) against n=1 with
#       each of its seeds (seed + k) one after another (what n=4 cost before the choices became parallel rows).
# Usage: bench/serve_logprobs.sh [--threads N] [--reps R] [--max-tokens T]   (defaults 1, 5, 128)
set -euo pipefail
cd "$(dirname "$0")/.."
threads=1 reps=5 max_tokens=128
while [ $# -gt 0 ]; do
    case "$1" in
        --threads) threads=$2; shift 2 ;;
        --reps) reps=$2; shift 2 ;;
        --max-tokens) max_tokens=$2; shift 2 ;;
        -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
        *) echo "serve_logprobs.sh: unknown option $1" >&2; exit 1 ;;
    esac
done
BIN=${TAKUMI_BIN:-$PWD/build/takumi}
MODEL=${TAKUMI_MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
[ -x "$BIN" ] || { echo "serve_logprobs.sh: build takumi first (make)" >&2; exit 1; }
[ -f "$MODEL" ] || { echo "serve_logprobs.sh: $MODEL missing (scripts/fetch-model.sh)" >&2; exit 1; }
export OMP_WAIT_POLICY=passive
tmp=$(mktemp -d /tmp/takumi_lpbench_XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
"$BIN" serve --port 0 --threads "$threads" --model "m=$MODEL" --ctx 1024 --data-dir "$tmp/d" 2> "$tmp/log" &
pid=$!
port=
for _ in $(seq 1 600); do
    port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/log" | head -1)
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { echo "serve_logprobs.sh: the server did not start: $(tail -3 "$tmp/log")" >&2; exit 1; }
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores; takumi serve --threads $threads"
python3 - "$port" "$reps" "$max_tokens" <<'PY'
import json, statistics, sys, time, urllib.request
port, reps, mt = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])

def post(path, body):
    t0 = time.perf_counter()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", json.dumps(body).encode(), {"Content-Type": "application/json"})
    d = json.load(urllib.request.urlopen(req, timeout=600))
    return time.perf_counter() - t0, d

chat = {"model": "m", "messages": [{"role": "user", "content": "Write a long story about a dragon who learns to cook."}],
        "temperature": 0, "max_tokens": mt}
post("/v1/chat/completions", dict(chat, max_tokens=8))  # warm-up
runs = {"off": [], "on": []}
for _ in range(reps):
    for k, extra in (("off", {}), ("on", {"logprobs": True, "top_logprobs": 20})):
        s, d = post("/v1/chat/completions", dict(chat, **extra))
        runs[k].append((s, d["usage"]["completion_tokens"]))
med = {k: statistics.median(s for s, _ in v) for k, v in runs.items()}
low = {k: min(s for s, _ in v) for k, v in runs.items()}
tok = {k: v[0][1] for k, v in runs.items()}
print(f"(a) chat, greedy, {tok['off']} tokens, {reps} runs each (median / fastest): logprobs off {med['off']:.3f} / {low['off']:.3f} s "
      f"({tok['off'] / med['off']:.1f} / {tok['off'] / low['off']:.1f} tok/s), logprobs + top_logprobs 20 {med['on']:.3f} / {low['on']:.3f} s "
      f"({tok['on'] / med['on']:.1f} / {tok['on'] / low['on']:.1f} tok/s): {100 * (med['on'] / med['off'] - 1):+.1f}% / "
      f"{100 * (low['on'] / low['off'] - 1):+.1f}%")

cmpl = {"model": "m", "prompt": "Once upon a time", "temperature": 1, "max_tokens": mt}
n4, n1, n1sum = [], [], []
for r in range(reps):
    seed = 100 + 10 * r
    s4, d4 = post("/v1/completions", dict(cmpl, n=4, seed=seed))
    singles = [post("/v1/completions", dict(cmpl, n=1, seed=seed + k)) for k in range(4)]
    same = all(d4["choices"][k]["text"] == singles[k][1]["choices"][0]["text"] for k in range(4))
    n4.append(s4); n1.append(singles[0][0]); n1sum.append(sum(s for s, _ in singles))
    print(f"    seed {seed}: n=4 {s4:.3f} s ({d4['usage']['completion_tokens']} tokens), n=1 {singles[0][0]:.3f} s "
          f"({singles[0][1]['usage']['completion_tokens']} tokens), 4 x n=1 {n1sum[-1]:.3f} s; choices equal to n=1 seed+k: {same}")
print(f"(b) completions, temperature 1, max {mt} tokens, median of {reps}: n=4 {statistics.median(n4):.3f} s, n=1 {statistics.median(n1):.3f} s, "
      f"4 x n=1 one after another {statistics.median(n1sum):.3f} s")
PY
