#!/usr/bin/env bash
# Options and messages (issue 14, items 7-11), each case failing before its fix:
# - numeric options are range-checked alike in every command: no wrap-around modulo 2^32
#   (--ctx 4294967360 was taken as 64), no NaN, --threads 0..4096 everywhere as in train;
# - (item 9) --method full with LoRA options, --patience without validation data, --pack-len with
#   --no-packing and a warmup longer than the run are refused; --epochs with --max-steps warns;
# - `takumi chat` keeps the session when one message does not fit the context; a NUL byte in
#   a prompt is kept by generate as by tokenize (and refused with --chat); a closed standard
#   input is an error, not an empty prompt;
# - messages say what is wrong: an empty .gguf is "not a GGUF file", perplexity of a folder,
#   --resume of a folder that holds no run, the near-duplicate threshold actually used;
# - (item 7) a GGUF whose block_count is below the layers its tensors hold, and a PEFT adapter whose
#   tensors adapt modules or layers its adapter_config.json does not declare, are refused.
set -u
cd "$(dirname "$0")/.."
BIN=${TAKUMI_BIN:-$PWD/build/takumi}
S=${TAKUMI_SHARED:-../shared}/models/stories260K
if [ ! -f "$S/gguf/stories260K-f32.gguf" ]; then
    if [ "${CI:-}" = true ]; then echo "FAIL: required asset missing in CI: models/stories260K"; exit 1; fi
    echo "SKIP: models/stories260K not found (set TAKUMI_SHARED or place ../shared)"; exit 0
fi
M=$S/gguf/stories260K-f32.gguf
tmp=$(mktemp -d /tmp/takumi_cli_strict_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
checks=0 failures=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*" >&2; }
# refused NAME PATTERN CMD...: exits non-zero and says PATTERN on stderr
refused() {
    local name=$1 pat=$2; shift 2
    "$@" > "$tmp/out" 2> "$tmp/err" < /dev/null; local rc=$?
    if [ $rc -ne 0 ] && grep -q -- "$pat" "$tmp/err"; then ok; else bad "$name: exit $rc, stderr: $(head -c 300 "$tmp/err")"; fi
}

# ---- item 8: one range rule for every command
refused "generate --ctx 2^32+64" "outside 1..16777216" "$BIN" generate --model "$M" --prompt x --ctx 4294967360
refused "generate --max-tokens 2^32+3" "outside 0..2147483647" "$BIN" generate --model "$M" --prompt x --max-tokens 4294967299
refused "generate --threads 2^32+1" "outside 0..4096" "$BIN" generate --model "$M" --prompt x --threads 4294967297
refused "generate --threads 10000" "outside 0..4096" "$BIN" generate --model "$M" --prompt x --threads 10000
refused "train --threads 10000" "threads" "$BIN" train --model "$M" --data x.jsonl --out "$tmp/t" --threads 10000
refused "generate --temperature nan" "finite number" "$BIN" generate --model "$M" --prompt x --temperature nan
refused "generate --top-p 2" "outside" "$BIN" generate --model "$M" --prompt x --top-p 2
refused "generate --seed -1" "non-negative integer" "$BIN" generate --model "$M" --prompt x --seed -1
refused "perplexity --ctx 2^32+64" "outside 2..16777216" "$BIN" perplexity --model "$M" --ctx 4294967360 "$M"
refused "perplexity --threads -1" "outside 0..4096" "$BIN" perplexity --model "$M" --threads -1 "$M"
refused "export --threads 2^32+1" "outside 0..4096" "$BIN" export --model "$M" --to "$tmp/e.gguf" --threads 4294967297
printf '{"text":"a"}\n' > "$tmp/d.jsonl"
refused "data check --near-dup nan" "finite number" "$BIN" data check "$tmp/d.jsonl" --near-dup nan
refused "data check --threads 300000" "outside 0..4096" "$BIN" data check "$tmp/d.jsonl" --threads 300000
# a valid seed above 2^63 is a seed, not an error
if "$BIN" generate --model "$M" --prompt "Once" --max-tokens 2 --seed 18446744073709551615 > /dev/null 2>&1; then ok; else bad "--seed 2^64-1 refused"; fi

# ---- item 9: options that contradict each other are refused or warned about, naming both
T=(--model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --samples 0 --threads 1)
printf '{"prompt":"Once upon","completion":" a time there was a cat."}\n%.0s' $(seq 1 8) > "$tmp/c.jsonl"
refused "--method full --lora-r" "--lora-r does not apply to --method full" "$BIN" train "${T[@]}" --data "$tmp/c.jsonl" --out "$tmp/c1" --method full --lora-r 4
refused "--rslora --method full" "--rslora does not apply to --method full" "$BIN" train "${T[@]}" --data "$tmp/c.jsonl" --out "$tmp/c2" --rslora --method full
refused "--patience without validation" "needs validation data" "$BIN" train "${T[@]}" --data "$tmp/c.jsonl" --out "$tmp/c3" --patience 2
refused "--no-packing --pack-len" "--no-packing switches packing off" "$BIN" train "${T[@]}" --data "$tmp/c.jsonl" --out "$tmp/c4" --no-packing --pack-len 64
refused "--warmup 1e9" "exceeds the run's" "$BIN" train "${T[@]}" --data "$tmp/c.jsonl" --out "$tmp/c5" --warmup 1e9
"$BIN" train "${T[@]}" --data "$tmp/c.jsonl" --out "$tmp/c6" --epochs 1 --max-steps 12 > /dev/null 2> "$tmp/c6.err"
if grep -q "warning: --max-steps 12 ends the run after .* epochs, not the 1 --epochs asks for" "$tmp/c6.err"; then ok
else bad "--epochs 1 --max-steps 12: no warning naming both: $(head -c 300 "$tmp/c6.err")"; fi
for d in c1 c2 c3 c4 c5; do [ -e "$tmp/$d" ] && bad "a refused run left $tmp/$d behind"; done

# ---- item 10: chat keeps the session; NUL bytes; closed stdin
long=$(for _ in $(seq 1 100); do printf 'word '; done)
printf 'hi\n%s\nOnce\n' "$long" | "$BIN" chat --model "$M" --ctx 128 --max-tokens 4 --temperature 0 > "$tmp/chat.out" 2> "$tmp/chat.err"; rc=$?
if [ $rc -eq 0 ] && [ "$(grep -c 'not sent' "$tmp/chat.err")" -eq 1 ] && [ "$(wc -l < "$tmp/chat.out")" -eq 2 ]; then ok
else bad "chat with one message too long: exit $rc, $(wc -l < "$tmp/chat.out") answers, $(head -c 300 "$tmp/chat.err")"; fi
a=$(printf 'Once\0upon' | "$BIN" tokenize --model "$M" 2> /dev/null | wc -w)
b=$(printf 'Once\0upon' | "$BIN" generate --model "$M" --prompt - --max-tokens 1 --temperature 0 --verbose 2>&1 >/dev/null | sed -n 's/.*prompt: \([0-9]*\) tokens.*/\1/p')
if [ -n "$b" ] && [ "$a" -gt 2 ] && [ "$b" -eq "$a" ]; then ok; else bad "NUL in a prompt: tokenize gives $a tokens, generate used '$b'"; fi
refused "NUL with --chat" "NUL byte" sh -c "printf 'Once\\0upon' | '$BIN' generate --model '$M' --prompt - --chat --max-tokens 1"
refused "generate, stdin closed" "cannot read the prompt" sh -c "'$BIN' generate --model '$M' --prompt - --max-tokens 1 <&-"
refused "chat, stdin closed" "cannot read standard input" sh -c "'$BIN' chat --model '$M' --max-tokens 1 <&-"

# ---- item 11: messages that say what is wrong
: > "$tmp/empty.gguf"
refused "empty .gguf" "not a GGUF file (empty or truncated" "$BIN" inspect "$tmp/empty.gguf"
refused "perplexity of a folder" "is a folder" "$BIN" perplexity --model "$M" "$tmp"
refused "resume of an empty folder" "no run to resume in" "$BIN" train --out "$tmp/none" --resume
"$BIN" export --model "$S/llama2c/stories260K.bin" --to "$tmp/hf" > /dev/null 2> "$tmp/exp.err"
if grep -q "llama2.c tokenizer file" "$tmp/exp.err" && ! grep -q -- "--tokenizer [^ ]*stories260K.bin" "$tmp/exp.err"; then ok
else bad "export from llama2.c: $(cat "$tmp/exp.err")"; fi
for i in 1 2 3; do printf '{"text":"the same sentence about a cat that sat on the mat number %d"}\n' $i; done > "$tmp/near.jsonl"
"$BIN" data check "$tmp/near.jsonl" --near-dup 0.5 > "$tmp/near.out" 2>&1
if grep -q "Jaccard >= 0.50" "$tmp/near.out" && ! grep -q "Jaccard >= 0.8" "$tmp/near.out"; then ok; else bad "near-dup report does not show the threshold used"; fi

# ---- item 7: files whose parts disagree are refused, not applied as they come
python3 - "$M" "$tmp/short.gguf" <<'PY'
import struct, sys
b = bytearray(open(sys.argv[1], 'rb').read())
k = b'llama.block_count'
i = b.index(k) + len(k)
assert struct.unpack_from('<I', b, i)[0] == 4          # GGUF type u32
n = struct.unpack_from('<I', b, i + 4)[0]
struct.pack_into('<I', b, i + 4, n - 1)                # one block fewer than the tensors hold
open(sys.argv[2], 'wb').write(b)
PY
refused "GGUF block_count below its tensors" "belongs to layer 4, but the model has 4 layers" "$BIN" inspect "$tmp/short.gguf"
printf '{"prompt":"Once upon","completion":" a time there was a cat."}\n%.0s' 1 2 3 4 5 6 > "$tmp/tr.jsonl"
if "$BIN" train --model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --data "$tmp/tr.jsonl" --out "$tmp/run" --max-steps 2 \
       --samples 0 --threads 1 > /dev/null 2>&1; then ok; else bad "a short training run for the adapter cases failed"; fi
edit_cfg() { # $1 = python expression on c (the adapter config), $2 = folder
    cp -r "$tmp/run/adapter" "$2"
    python3 -c "import json,sys; p=sys.argv[1]+'/adapter_config.json'; c=json.load(open(p)); $1; json.dump(c, open(p,'w'))" "$2"
}
edit_cfg 'c["target_modules"]=["q_proj"]' "$tmp/a_tm"
refused "adapter tensors beyond target_modules" "which \"target_modules\"" "$BIN" generate --model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --adapter "$tmp/a_tm" --prompt Once --max-tokens 1
edit_cfg 'c["layers_to_transform"]=[0]' "$tmp/a_lt"
refused "adapter tensors beyond layers_to_transform" "which \"layers_to_transform\"" "$BIN" generate --model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --adapter "$tmp/a_lt" --prompt Once --max-tokens 1
edit_cfg 'c["target_modules"]=".*\\.(q|k|v|o|gate|up|down)_proj"' "$tmp/a_re"
if "$BIN" generate --model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --adapter "$tmp/a_re" --prompt Once --max-tokens 1 > /dev/null 2> "$tmp/re.err"; then ok
else bad "a regex target_modules that names every module was refused: $(cat "$tmp/re.err")"; fi

echo "cli_strict: $checks checks, $failures failed"
[ $failures -eq 0 ]
