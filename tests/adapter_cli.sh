#!/usr/bin/env bash
# Adapters from the command line, on the tiny stories260K model: a LoRA trained by
# `takumi train` (RUN/adapter and RUN/adapter.gguf) changes `takumi generate`'s greedy text,
# and the same text comes out of
#   - generate --adapter RUN/adapter (PEFT) and --adapter RUN/adapter.gguf (llama.cpp layout),
#   - the GGUF f32 container of the same model (llama.cpp's permuted q/k rows) with either file,
#   - `takumi export --merge` into a GGUF (f32) and into an HF folder (f32), run without adapter,
#   - the adapter converted by `takumi export` (GGUF -> PEFT folder, PEFT -> GGUF);
# and bad requests fail with exit 1 and a message.
set -u
cd "$(dirname "$0")/.."
BIN=${TAKUMI_BIN:-$PWD/build/takumi}
S=${TAKUMI_SHARED:-../shared}/models/stories260K
if [ ! -f "$S/hf/model.safetensors" ] || [ ! -f "$S/llama2c/tok512.bin" ] || [ ! -f "$S/gguf/stories260K-f32.gguf" ]; then
    if [ "${CI:-}" = true ]; then echo "FAIL: required asset missing in CI: models/stories260K"; exit 1; fi
    echo "SKIP: models/stories260K not found (set TAKUMI_SHARED or place ../shared)"; exit 0
fi
tmp=$(mktemp -d /tmp/takumi_adapter_cli_XXXXXX)
checks=0 failures=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*" >&2; }
TOK=$S/llama2c/tok512.bin
G=$S/gguf/stories260K-f32.gguf

# ---- a small LoRA run (prompt/completion records the model cannot continue on its own)
names=(Lily Tom Sue Ben Max Mia Sam Ann); things=(ball cat dog tree cake car boat kite)
for i in $(seq 0 23); do
    n=${names[$((i % 8))]}; t=${things[$(((i * 5) % 8))]}
    printf '{"prompt":"Tell me about %s and the %s.","completion":"%s had a %s. %s was happy."}\n' "$n" "$t" "$n" "$t" "$n"
done > "$tmp/d.jsonl"
if "$BIN" train --model "$S/hf" --tokenizer "$TOK" --data "$tmp/d.jsonl" --max-seq-len 160 --samples 0 --threads 1 --seed 5 \
      --epochs 8 --lr 5e-3 --out "$tmp/run" > "$tmp/train.out" 2> "$tmp/train.err"; then ok; else bad "train failed: $(tail -3 "$tmp/train.err")"; fi

gen() {  # gen NAME MODEL [args...]: greedy text into $tmp/NAME.txt
    local name=$1 model=$2; shift 2
    if "$BIN" generate --model "$model" --tokenizer "$TOK" --prompt "Tell me about Ben and the kite." --temperature 0 \
          --max-tokens 24 --threads 1 "$@" > "$tmp/$name.txt" 2> "$tmp/$name.err"; then ok
    else bad "generate $name failed: $(tail -2 "$tmp/$name.err")"; fi
}
same() {  # same A B: identical texts
    if cmp -s "$tmp/$1.txt" "$tmp/$2.txt"; then ok; else bad "$1 and $2 differ: '$(cat "$tmp/$1.txt")' vs '$(cat "$tmp/$2.txt")'"; fi
}

gen base "$S/hf"
gen peft "$S/hf" --adapter "$tmp/run/adapter"
gen gguf_ad "$S/hf" --adapter "$tmp/run/adapter.gguf"
gen on_gguf_peft "$G" --adapter "$tmp/run/adapter"
gen on_gguf_gg "$G" --adapter "$tmp/run/adapter.gguf"
if [ -s "$tmp/peft.txt" ] && ! cmp -s "$tmp/base.txt" "$tmp/peft.txt"; then ok; else bad "the adapter does not change the text: '$(cat "$tmp/peft.txt")'"; fi
same peft gguf_ad
same peft on_gguf_peft
same peft on_gguf_gg

# ---- merged exports
if "$BIN" export --model "$G" --adapter "$tmp/run/adapter" --merge --to "$tmp/merged.gguf" --dtype f32 > "$tmp/e1.out" 2> "$tmp/e1.err" \
   && grep -q "merged adapter" "$tmp/e1.out"; then ok; else bad "export GGUF: $(tail -2 "$tmp/e1.err")"; fi
gen merged_gguf "$tmp/merged.gguf"
same peft merged_gguf
if "$BIN" export --model "$S/hf" --adapter "$tmp/run/adapter.gguf" --merge --to "$tmp/merged_hf" --dtype f32 > "$tmp/e2.out" 2> "$tmp/e2.err"; then ok
else bad "export HF: $(tail -2 "$tmp/e2.err")"; fi
for f in config.json model.safetensors; do [ -s "$tmp/merged_hf/$f" ] && ok || bad "merged HF folder lacks $f"; done
gen merged_hf "$tmp/merged_hf"
same peft merged_hf
# from the GGUF to an HF folder: config.json written, note on stderr about the tokenizer
if "$BIN" export --model "$G" --adapter "$tmp/run/adapter" --merge --to "$tmp/merged_hf2" --dtype f32 > /dev/null 2> "$tmp/e3.err" \
   && grep -q "tokenizer" "$tmp/e3.err" && grep -q '"LlamaForCausalLM"' "$tmp/merged_hf2/config.json"; then ok
else bad "export GGUF -> HF: $(tail -2 "$tmp/e3.err")"; fi
gen merged_hf2 "$tmp/merged_hf2"
same peft merged_hf2

# ---- adapter conversion (no --merge)
if "$BIN" export --model "$S/hf" --adapter "$tmp/run/adapter.gguf" --to "$tmp/conv_peft" > /dev/null 2> "$tmp/c1.err" \
   && [ -s "$tmp/conv_peft/adapter_config.json" ]; then ok; else bad "GGUF -> PEFT conversion: $(tail -2 "$tmp/c1.err")"; fi
if "$BIN" export --model "$S/hf" --adapter "$tmp/run/adapter" --to "$tmp/conv.gguf" > /dev/null 2> "$tmp/c2.err"; then ok
else bad "PEFT -> GGUF conversion: $(tail -2 "$tmp/c2.err")"; fi
gen conv_peft "$S/hf" --adapter "$tmp/conv_peft"
gen conv_gguf "$G" --adapter "$tmp/conv.gguf"
same peft conv_peft
same peft conv_gguf

# ---- bad requests: exit 1 with a message
expect_fail() {  # expect_fail NEEDLE args...
    local needle=$1; shift
    "$BIN" "$@" > /dev/null 2> "$tmp/f.err"; local rc=$?
    if [ "$rc" = 1 ] && grep -q -- "$needle" "$tmp/f.err"; then ok; else bad "'$*' -> rc $rc, stderr: $(head -c 300 "$tmp/f.err")"; fi
}
expect_fail "needs --adapter" export --model "$G" --merge --to "$tmp/x.gguf"
expect_fail "needs --to" export --model "$G" --adapter "$tmp/run/adapter"
expect_fail "expected f32" export --model "$G" --to "$tmp/x.gguf" --dtype q4_7
expect_fail "q8_0" export --model "$G" --to "$tmp/xq" --dtype q8_0
expect_fail "GGUF source" export --model "$S/hf" --adapter "$tmp/run/adapter" --merge --to "$tmp/x.gguf"
expect_fail "adapter_config.json" generate --model "$G" --prompt hi --adapter "$tmp"
echo '{"peft_type": "LORA", "r": 8, "lora_alpha": 16, "use_dora": true}' > "$tmp/run/adapter/adapter_config.json"
expect_fail "use_dora" generate --model "$G" --prompt hi --adapter "$tmp/run/adapter"
echo '{"peft_type": "IA3", "target_modules": ["v_proj"]}' > "$tmp/run/adapter/adapter_config.json"
expect_fail "is not an IA3 vector" export --model "$G" --adapter "$tmp/run/adapter" --to "$tmp/ia3.gguf"
echo '{"peft_type": "VERA", "target_modules": ["v_proj"]}' > "$tmp/run/adapter/adapter_config.json"
expect_fail 'peft_type "VERA" is not supported (supported: LORA, IA3, PREFIX_TUNING, PROMPT_TUNING' export --model "$G" --adapter "$tmp/run/adapter" --to "$tmp/a.gguf"

rm -rf "$tmp"
if [ "$failures" -gt 0 ]; then echo "adapter_cli: $failures of $checks checks FAILED"; exit 1; fi
echo "adapter_cli: $checks checks passed"
