#!/usr/bin/env bash
# Throughput of `takumi data check` on a 100k-example chat JSONL built from the shared
# datasets (bench/make_chat_100k.py: alpaca en/zh, dolly15k-ja, gsm8k, glaive tool
# calls -> OpenAI chat records; written to bench/out/, git-ignored, never committed).
#
# Prints MB/s and examples/s from wall time, with the model's tokenizer and chat
# template (exact counts, the default) and with --approx-tokens (everything but
# tokenization), plus the CPU-time rate (bytes / (CPU seconds / threads)): on a machine
# shared with other jobs the wall time includes waiting for a core, the CPU time does not.
#
# usage: bench/data_check.sh [--threads N] [--reps R] [--examples N]   (TAKUMI_BIN overrides ./build/takumi)
set -euo pipefail
cd "$(dirname "$0")/.."
threads=2; reps=1; n=100000
while [ $# -gt 0 ]; do
    case "$1" in
        --threads) threads=$2; shift 2 ;;
        --reps) reps=$2; shift 2 ;;
        --examples) n=$2; shift 2 ;;
        *) echo "usage: bench/data_check.sh [--threads N] [--reps R] [--examples N]" >&2; exit 2 ;;
    esac
done
T=${TAKUMI_BIN:-./build/takumi}
[ -x "$T" ] || { echo "build first: make" >&2; exit 1; }
out=bench/out
mkdir -p "$out"
f="$out/chat_${n}.jsonl"
[ -s "$f" ] || python3 bench/make_chat_100k.py "$f" "$n"
bytes=$(stat -c %s "$f")
echo "file: $f ($n examples, $(awk -v b="$bytes" 'BEGIN{printf "%.1f", b/1e6}') MB); threads $threads; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| mode | wall s | CPU s | MB/s (wall) | examples/s (wall) | MB/s (CPU time / $threads threads) |"
echo "|---|---|---|---|---|---|"
TIMEFORMAT='%R %U %S'
for mode in exact approx; do
    flags=(--threads "$threads" --json)
    [ "$mode" = approx ] && flags+=(--approx-tokens)
    best_wall=""; best_cpu=""
    for ((r = 0; r < reps; r++)); do
        # exit status 1 only means "not ready"; the timing is what matters here
        { time "$T" data check "$f" "${flags[@]}" >"$out/data_check_$mode.json" 2>"$out/data_check_$mode.err" || true; } 2>"$out/time.txt"
        grep -q '"verdict"' "$out/data_check_$mode.json" || { echo "data check failed:" >&2; cat "$out/data_check_$mode.err" >&2; exit 1; }
        read -r wall user sys <"$out/time.txt"
        cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN{print u+s}')
        if [ -z "$best_wall" ] || awk -v a="$wall" -v b="$best_wall" 'BEGIN{exit !(a<b)}'; then best_wall=$wall; best_cpu=$cpu; fi
    done
    awk -v m="$mode" -v w="$best_wall" -v c="$best_cpu" -v b="$bytes" -v n="$n" -v t="$threads" \
        'BEGIN{printf "| %s | %.2f | %.2f | %.1f | %.0f | %.1f |\n", m=="exact"?"exact tokens (SmolLM2 tokenizer + chat template)":"--approx-tokens", w, c, b/1e6/w, n/w, b/1e6/(c/t)}'
done
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg); reports in $out/data_check_{exact,approx}.json"
