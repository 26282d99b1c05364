#!/usr/bin/env bash
# `takumi train --method prompt` on the tiny stories260K model: random and text-initialised soft
# prompts; the run writes the adapter in PEFT's layout (peft_type PROMPT_TUNING, prompt_tuning_init
# RANDOM / TEXT with its text) and, as llama.cpp cannot apply it, no GGUF adapter but a note;
# `takumi generate --adapter` applies it on both containers alike (the greedy text changes), `takumi
# eval --adapter` scores with it (another loss than the base's); `takumi export` refuses a merge and
# a GGUF conversion with a clear message; options that do not apply fail naming the option.
set -u
cd "$(dirname "$0")/.."
BIN=${TAKUMI_BIN:-$PWD/build/takumi}
S=${TAKUMI_SHARED:-../shared}/models/stories260K
if [ ! -f "$S/hf/model.safetensors" ] || [ ! -f "$S/llama2c/tok512.bin" ] || [ ! -f "$S/gguf/stories260K-f32.gguf" ]; then
    if [ "${CI:-}" = true ]; then echo "FAIL: required asset missing in CI: models/stories260K"; exit 1; fi
    echo "SKIP: models/stories260K not found (set TAKUMI_SHARED or place ../shared)"; exit 0
fi
tmp=$(mktemp -d /tmp/takumi_prompt_XXXXXX)
checks=0 failures=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*" >&2; }
TOK=$S/llama2c/tok512.bin
G=$S/gguf/stories260K-f32.gguf
jget() { python3 -c "import json,sys; d=json.load(open('$1')); print($2)"; }

names=(Lily Tom Sue Ben Max Mia Sam Ann); things=(ball cat dog tree cake car boat kite)
for i in $(seq 0 23); do
    n=${names[$((i % 8))]}; t=${things[$(((i * 5) % 8))]}
    printf '{"prompt":"Tell me about %s and the %s.","completion":"%s had a %s. %s was happy."}\n' "$n" "$t" "$n" "$t" "$n"
done > "$tmp/d.jsonl"
head -4 "$tmp/d.jsonl" > "$tmp/v.jsonl"
gen() {  # gen NAME MODEL [args...]: greedy text into $tmp/NAME.txt
    local name=$1 model=$2; shift 2
    if "$BIN" generate --model "$model" --tokenizer "$TOK" --prompt "Tell me about Ben and the kite." --temperature 0 \
          --max-tokens 24 --threads 1 "$@" > "$tmp/$name.txt" 2> "$tmp/$name.err"; then ok
    else bad "generate $name failed: $(tail -2 "$tmp/$name.err")"; fi
}
gen base "$S/hf"

for variant in random text; do
    r=$tmp/$variant
    extra=(); [ $variant = text ] && extra=(--prompt-init text --prompt-init-text "Once upon a time")
    if "$BIN" train --model "$S/hf" --tokenizer "$TOK" --data "$tmp/d.jsonl" --method prompt --num-virtual-tokens 8 "${extra[@]}" \
          --max-seq-len 160 --samples 0 --threads 1 --seed 5 --epochs 8 --lr 3e-2 --out "$r" > "$tmp/$variant.out" 2> "$tmp/$variant.err"; then ok
    else bad "$variant: train failed: $(tail -3 "$tmp/$variant.err")"; continue; fi
    c=$r/adapter/adapter_config.json
    if [ -s "$r/adapter/adapter_model.safetensors" ] &&
       [ "$(jget "$c" "(d['peft_type'], d['num_virtual_tokens'], d['token_dim'])")" = "('PROMPT_TUNING', 8, 64)" ]; then ok
    else bad "$variant: adapter_config.json: $(cat "$c")"; fi
    want=RANDOM; [ $variant = text ] && want="TEXT Once upon a time"
    got=$(jget "$c" "d['prompt_tuning_init'] + ((' ' + d['prompt_tuning_init_text']) if d['prompt_tuning_init_text'] else '')")
    if [ "$got" = "$want" ]; then ok; else bad "$variant: prompt_tuning_init '$got', expected '$want'"; fi
    if [ ! -e "$r/adapter.gguf" ] && grep -q "no GGUF adapter: llama.cpp cannot apply prompt adapters" "$r/metrics.jsonl" &&
       grep -q "cannot be merged into the weights either" "$r/metrics.jsonl"; then ok
    else bad "$variant: expected no adapter.gguf and a note without --merge advice"; fi
    if grep -q "prompt tuning, 8 virtual tokens ($variant init)" "$r/report.html"; then ok; else bad "$variant: report title"; fi
    gen "$variant" "$S/hf" --adapter "$r/adapter"
    gen "${variant}_gguf" "$G" --adapter "$r/adapter"
    if [ -s "$tmp/$variant.txt" ] && ! cmp -s "$tmp/base.txt" "$tmp/$variant.txt"; then ok
    else bad "$variant: the adapter does not change the text: '$(cat "$tmp/$variant.txt")'"; fi
    if cmp -s "$tmp/$variant.txt" "$tmp/${variant}_gguf.txt"; then ok; else bad "$variant: HF and GGUF bases differ"; fi
    "$BIN" export --model "$G" --adapter "$r/adapter" --merge --to "$tmp/$variant-merged.gguf" --dtype f32 > /dev/null 2> "$tmp/e.err"
    if [ $? = 1 ] && grep -q "prompt adapters cannot be merged into the weights (they add virtual tokens before the input" "$tmp/e.err" &&
       [ ! -e "$tmp/$variant-merged.gguf" ]; then ok
    else bad "$variant: export --merge: $(cat "$tmp/e.err")"; fi
    "$BIN" export --model "$G" --adapter "$r/adapter" --to "$tmp/$variant.gguf" > /dev/null 2> "$tmp/c.err"
    if [ $? = 1 ] && grep -q "prompt adapters have no GGUF layout" "$tmp/c.err" && ! grep -q -- "--merge" "$tmp/c.err"; then ok
    else bad "$variant: conversion to GGUF: $(cat "$tmp/c.err")"; fi
    # eval with the adapter: the trained prompt lowers the loss on (part of) its training data
    for who in base adapted; do
        a=(); [ $who = adapted ] && a=(--adapter "$r/adapter")
        if "$BIN" eval --model "$S/hf" --tokenizer "$TOK" "${a[@]}" --data "$tmp/v.jsonl" --threads 1 --json > "$tmp/$variant-$who.json" 2> "$tmp/ev.err"
        then ok; else bad "$variant: eval ($who): $(tail -2 "$tmp/ev.err")"; fi
    done
    if [ "$(python3 -c "
import json; b=json.load(open('$tmp/$variant-base.json')); a=json.load(open('$tmp/$variant-adapted.json'))
def loss(d):
    m=d['metrics'] if 'metrics' in d else d
    v=m['loss']; return v['value'] if isinstance(v, dict) else v
print(loss(a) < loss(b))" 2> "$tmp/py.err")" = True ]; then ok
    else bad "$variant: eval --adapter must give a lower loss than the base: $(cat "$tmp/py.err") $(head -c 600 "$tmp/$variant-adapted.json")"; fi
done

refuse() {  # refuse MESSAGE ARGS...: train fails (exit 1) with MESSAGE
    local msg=$1; shift
    "$BIN" train --model "$S/hf" --tokenizer "$TOK" --data "$tmp/d.jsonl" --out "$tmp/bad" "$@" > /dev/null 2> "$tmp/f.err"
    if [ $? = 1 ] && grep -q -- "$msg" "$tmp/f.err"; then ok; else bad "$*: expected '$msg', got: $(cat "$tmp/f.err")"; fi
}
refuse "--lora-r does not apply to --method prompt" --method prompt --lora-r 4
refuse "--lora-targets does not apply to --method prompt" --method prompt --lora-targets q,v
refuse "--freeze-layers does not apply to --method prompt" --method prompt --freeze-layers 1
refuse "--prefix-projection does not apply to --method prompt" --method prompt --prefix-projection
refuse "--prompt-init applies to --method prompt only" --method prefix --prompt-init text --prompt-init-text hi
refuse "--prompt-init-text applies to --method prompt only" --prompt-init-text hi
refuse "--prompt-init text needs the text" --method prompt --prompt-init text
refuse "add --prompt-init text" --method prompt --prompt-init-text hi
refuse "do not fit the model's context of 512 tokens" --method prompt --num-virtual-tokens 600

[ -n "${KEEP:-}" ] || rm -rf "$tmp"
if [ "$failures" -gt 0 ]; then echo "prompt_cli: $failures of $checks checks FAILED"; exit 1; fi
echo "prompt_cli: $checks checks passed"
