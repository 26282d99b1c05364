#!/usr/bin/env bash
# Tokenizer encode throughput, takumi vs HF `tokenizers` (Rust, via Python), single thread,
# on the same few MB of mixed English / Japanese / Chinese text and the same SmolLM2
# vocabulary. Prints Markdown. takumi's side is build/bench/tokenizer_speed (bench/
# tokenizer_speed.c); the HF side rebuilds SmolLM2's tokenizer from the GGUF with
# transformers (plus its declared digit split, see tools/compare_tokenizer_hf.py) and is
# skipped when transformers/tokenizers are not installed.
# Usage: bench/tokenizer_speed.sh [--model M] [--reps N]
set -euo pipefail
cd "$(dirname "$0")/.."
model=models/SmolLM2-135M-Instruct.Q4_1.gguf reps=3
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "tokenizer_speed.sh: unknown option $1" >&2; exit 1 ;;
  esac
done
[ -f "$model" ] || { echo "tokenizer_speed.sh: $model not found (scripts/fetch-model.sh)" >&2; exit 1; }
make -s -C bench >&2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
build/bench/tokenizer_speed --model "$model" --reps "$reps" --dump "$tmp/corpus.txt"
echo
if python3 -c "import tokenizers, transformers" 2>/dev/null; then
  HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false RAYON_NUM_THREADS=1 python3 - "$model" "$tmp" "$reps" <<'EOF' 2>/dev/null || echo "(HF tokenizers peer failed to run)"
import json, os, sys, time
model, tmp, reps = sys.argv[1], sys.argv[2], int(sys.argv[3])
from transformers import AutoTokenizer
import tokenizers
tok = AutoTokenizer.from_pretrained(os.path.dirname(os.path.abspath(model)), gguf_file=os.path.basename(model))
tok.save_pretrained(os.path.join(tmp, "hf"))
spec = json.load(open(os.path.join(tmp, "hf", "tokenizer.json"), encoding="utf-8"))
spec["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True},
    {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]}
path = os.path.join(tmp, "smollm.json")
json.dump(spec, open(path, "w", encoding="utf-8"), ensure_ascii=False)
text = open(os.path.join(tmp, "corpus.txt"), encoding="utf-8", errors="surrogateescape").read()
mb = len(text.encode("utf-8", "surrogateescape")) / 1e6
lines = text.splitlines(keepends=True)
best_whole, best_lines = 1e9, 1e9
for _ in range(reps):
    t = tokenizers.Tokenizer.from_file(path)  # fresh: HF also caches words
    c0 = time.process_time(); t.encode(text, add_special_tokens=False); c1 = time.process_time()
    best_whole = min(best_whole, c1 - c0)
    c0 = time.process_time()
    for l in lines:
        t.encode(l, add_special_tokens=False)
    c1 = time.process_time()
    best_lines = min(best_lines, c1 - c0)
print("HF tokenizers %s (Rust, called from Python, 1 thread), same text and vocabulary, process CPU time:\n" % tokenizers.__version__)
print("| encode | MB/s |\n|---|---:|")
print("| whole text, fresh tokenizer | %.1f |" % (mb / best_whole))
print("| line by line (%d calls, incl. Python call overhead) | %.1f |" % (len(lines), mb / best_lines))
EOF
else
  echo "(HF tokenizers peer skipped: python3 with tokenizers + transformers not found)"
fi
