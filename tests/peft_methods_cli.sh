#!/usr/bin/env bash
# `takumi train --method dora|ia3|prefix|adalora` on the tiny stories260K model: the run writes the adapter in
# PEFT's layout (use_dora / peft_type IA3) and, as llama.cpp cannot apply these methods, no GGUF
# adapter but a note; `takumi generate --adapter` applies it (the greedy text changes), and `takumi eval`
# gives the same loss with it on the HF and GGUF containers and on the model `takumi export --merge` writes; options that do not apply (--lora-r with
# --method ia3) fail naming the option. Prefix adapters (no merge) are applied and refused a merge.
set -u
cd "$(dirname "$0")/.."
BIN=${TAKUMI_BIN:-$PWD/build/takumi}
S=${TAKUMI_SHARED:-../shared}/models/stories260K
if [ ! -f "$S/hf/model.safetensors" ] || [ ! -f "$S/llama2c/tok512.bin" ] || [ ! -f "$S/gguf/stories260K-f32.gguf" ]; then
    if [ "${CI:-}" = true ]; then echo "FAIL: required asset missing in CI: models/stories260K"; exit 1; fi
    echo "SKIP: models/stories260K not found (set TAKUMI_SHARED or place ../shared)"; exit 0
fi
tmp=$(mktemp -d /tmp/takumi_peft_methods_XXXXXX)
checks=0 failures=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*" >&2; }
TOK=$S/llama2c/tok512.bin
G=$S/gguf/stories260K-f32.gguf

names=(Lily Tom Sue Ben Max Mia Sam Ann); things=(ball cat dog tree cake car boat kite)
for i in $(seq 0 23); do
    n=${names[$((i % 8))]}; t=${things[$(((i * 5) % 8))]}
    printf '{"prompt":"Tell me about %s and the %s.","completion":"%s had a %s. %s was happy."}\n' "$n" "$t" "$n" "$t" "$n"
done > "$tmp/d.jsonl"
sed 's/^{"prompt":"\(.*\)","completion":"\(.*\)"}$/{"text":"\1 \2"}/' "$tmp/d.jsonl" > "$tmp/t.jsonl"
gen() {  # gen NAME MODEL [args...]: greedy text into $tmp/NAME.txt
    local name=$1 model=$2; shift 2
    if "$BIN" generate --model "$model" --tokenizer "$TOK" --prompt "Tell me about Ben and the kite." --temperature 0 \
          --max-tokens 24 --threads 1 "$@" > "$tmp/$name.txt" 2> "$tmp/$name.err"; then ok
    else bad "generate $name failed: $(tail -2 "$tmp/$name.err")"; fi
}
gen base "$S/hf"
# evloss NAME MODEL [args...]: the loss of the records as plain text (t.jsonl: no chat template, which the
# two containers carry differently) by takumi eval --json, into $tmp/NAME.loss. Two paths that
# compute the same model (HF vs GGUF container, applied vs merged) are compared by it within 1e-5 relative:
# their greedy texts may part at a near-tie of two logits, as the summation order differs by CPU.
evloss() {
    local name=$1 model=$2; shift 2
    if "$BIN" eval --model "$model" --tokenizer "$TOK" --data "$tmp/t.jsonl" --metrics loss --threads 1 --json "$@" 2> "$tmp/$name.eerr" |
       python3 -c 'import json, sys; print(repr(json.load(sys.stdin)["metrics"]["loss"]["value"]))' > "$tmp/$name.loss"; then ok
    else bad "eval $name failed: $(tail -2 "$tmp/$name.eerr")"; fi
}
same_loss() {  # same_loss A B WHAT
    if python3 -c 'import sys; a, b = float(open(sys.argv[1]).read()), float(open(sys.argv[2]).read()); sys.exit(0 if abs(a - b) <= 1e-5 * abs(b) else 1)' \
           "$tmp/$1.loss" "$tmp/$2.loss" 2> /dev/null; then ok
    else bad "$3: loss $(cat "$tmp/$1.loss" 2> /dev/null) vs $(cat "$tmp/$2.loss" 2> /dev/null)"; fi
}

for method in dora ia3; do
    r=$tmp/$method
    if "$BIN" train --model "$S/hf" --tokenizer "$TOK" --data "$tmp/d.jsonl" --method "$method" --max-seq-len 160 --samples 0 \
          --threads 1 --seed 5 --epochs 8 --lr 1e-2 --out "$r" > "$tmp/$method.out" 2> "$tmp/$method.err"; then ok
    else bad "$method: train failed: $(tail -3 "$tmp/$method.err")"; continue; fi
    if [ -s "$r/adapter/adapter_model.safetensors" ] && grep -q "$r/adapter" "$tmp/$method.out"; then ok; else bad "$method: no adapter/"; fi
    if [ ! -e "$r/adapter.gguf" ] && grep -q "no GGUF adapter: llama.cpp cannot apply $method" "$r/metrics.jsonl"; then ok
    else bad "$method: expected no adapter.gguf and a note"; fi
    case $method in
        dora) key='"use_dora":[[:space:]]*true' ;;
        ia3) key='"peft_type":[[:space:]]*"IA3"' ;;
    esac
    if grep -q "$key" "$r/adapter/adapter_config.json"; then ok; else bad "$method: adapter_config.json lacks $key"; fi
    gen "$method" "$S/hf" --adapter "$r/adapter"
    gen "${method}_gguf" "$G" --adapter "$r/adapter"   # the GGUF container: llama.cpp's permuted q/k rows
    if [ -s "$tmp/$method.txt" ] && ! cmp -s "$tmp/base.txt" "$tmp/$method.txt"; then ok
    else bad "$method: the adapter does not change the text: '$(cat "$tmp/$method.txt")'"; fi
    evloss "$method" "$S/hf" --adapter "$r/adapter"
    evloss "${method}_gguf" "$G" --adapter "$r/adapter"
    same_loss "${method}_gguf" "$method" "$method: HF and GGUF bases differ"
    if "$BIN" export --model "$G" --adapter "$r/adapter" --merge --to "$tmp/$method-merged.gguf" --dtype f32 > /dev/null 2> "$tmp/e.err"; then ok
    else bad "$method: export --merge: $(tail -2 "$tmp/e.err")"; fi
    evloss "${method}_merged" "$tmp/$method-merged.gguf"
    same_loss "${method}_merged" "$method" "$method: merged vs applied"
    "$BIN" export --model "$G" --adapter "$r/adapter" --to "$tmp/$method.gguf" > /dev/null 2> "$tmp/c.err"
    if [ $? = 1 ] && grep -q "no GGUF layout" "$tmp/c.err"; then ok; else bad "$method: conversion to GGUF: $(cat "$tmp/c.err")"; fi
done

# prefix tuning: a PEFT folder (peft_type PREFIX_TUNING), no GGUF adapter, applied by generate on both
# containers alike; neither merged nor converted to GGUF (clear refusals); with the projection too
for variant in prefix prefix_proj; do
    r=$tmp/$variant
    extra=(); [ $variant = prefix_proj ] && extra=(--prefix-projection --encoder-hidden-size 16)
    if "$BIN" train --model "$S/hf" --tokenizer "$TOK" --data "$tmp/d.jsonl" --method prefix --num-virtual-tokens 8 "${extra[@]}" \
          --max-seq-len 160 --samples 0 --threads 1 --seed 5 --epochs 8 --lr 1e-2 --out "$r" > "$tmp/$variant.out" 2> "$tmp/$variant.err"; then ok
    else bad "$variant: train failed: $(tail -3 "$tmp/$variant.err")"; continue; fi
    if grep -q '"peft_type":[[:space:]]*"PREFIX_TUNING"' "$r/adapter/adapter_config.json" && [ -s "$r/adapter/adapter_model.safetensors" ]; then ok
    else bad "$variant: no PREFIX_TUNING adapter folder"; fi
    if [ ! -e "$r/adapter.gguf" ] && grep -q "no GGUF adapter: llama.cpp cannot apply prefix adapters" "$r/metrics.jsonl" &&
       grep -q "cannot be merged into the weights either" "$r/metrics.jsonl"; then ok
    else bad "$variant: expected no adapter.gguf and a note without --merge advice"; fi
    gen "$variant" "$S/hf" --adapter "$r/adapter"
    gen "${variant}_gguf" "$G" --adapter "$r/adapter"
    if [ -s "$tmp/$variant.txt" ] && ! cmp -s "$tmp/base.txt" "$tmp/$variant.txt"; then ok
    else bad "$variant: the adapter does not change the text: '$(cat "$tmp/$variant.txt")'"; fi
    evloss "$variant" "$S/hf" --adapter "$r/adapter"
    evloss "${variant}_gguf" "$G" --adapter "$r/adapter"
    same_loss "${variant}_gguf" "$variant" "$variant: HF and GGUF bases differ"
    "$BIN" export --model "$G" --adapter "$r/adapter" --merge --to "$tmp/$variant-merged.gguf" --dtype f32 > /dev/null 2> "$tmp/e.err"
    if [ $? = 1 ] && grep -q "prefix adapters cannot be merged into the weights" "$tmp/e.err" && [ ! -e "$tmp/$variant-merged.gguf" ]; then ok
    else bad "$variant: export --merge: $(cat "$tmp/e.err")"; fi
    "$BIN" export --model "$G" --adapter "$r/adapter" --to "$tmp/$variant.gguf" > /dev/null 2> "$tmp/c.err"
    if [ $? = 1 ] && grep -q "prefix adapters have no GGUF layout" "$tmp/c.err" && ! grep -q -- "--merge" "$tmp/c.err"; then ok
    else bad "$variant: conversion to GGUF: $(cat "$tmp/c.err")"; fi
done
# AdaLoRA: PEFT's ADALORA folder with the rank pattern the allocator chose, and adapter.gguf (the plain LoRA B, E ⊙ A);
# applied on both containers, merged, converted by export: the same loss everywhere
r=$tmp/adalora
if "$BIN" train --model "$S/hf" --tokenizer "$TOK" --data "$tmp/d.jsonl" --method adalora --adalora-init-r 4 --adalora-target-r 2 \
      --adalora-tfinal 4 --max-seq-len 160 --samples 0 --threads 1 --seed 5 --epochs 8 --lr 1e-2 --out "$r" > "$tmp/ada.out" 2> "$tmp/ada.err"; then ok
else bad "adalora: train failed: $(tail -3 "$tmp/ada.err")"; fi
if python3 - "$r/adapter/adapter_config.json" <<'PY'; then ok; else bad "adalora: adapter_config.json"; fi
import json, sys
c = json.load(open(sys.argv[1]))
p = c["rank_pattern"]
kept = sum(sum(v) for v in p.values())
assert c["peft_type"] == "ADALORA" and c["init_r"] == 4 and c["target_r"] == 2 and len(p) == 35, c
assert kept == 2 * 35, kept   # the final budget: target_r per module on average
PY
if [ -s "$r/adapter.gguf" ]; then ok; else bad "adalora: no adapter.gguf"; fi
gen adalora "$S/hf" --adapter "$r/adapter"
if [ -s "$tmp/adalora.txt" ] && ! cmp -s "$tmp/base.txt" "$tmp/adalora.txt"; then ok
else bad "adalora: the adapter does not change the text: '$(cat "$tmp/adalora.txt")'"; fi
evloss adalora "$S/hf" --adapter "$r/adapter"
evloss adalora_gguf "$G" --adapter "$r/adapter"
same_loss adalora_gguf adalora "adalora: HF and GGUF bases differ"
evloss adalora_lora "$G" --adapter "$r/adapter.gguf"
same_loss adalora_lora adalora "adalora: adapter.gguf (plain LoRA) vs the PEFT folder"
if "$BIN" export --model "$G" --adapter "$r/adapter" --merge --to "$tmp/ada-merged.gguf" --dtype f32 > /dev/null 2> "$tmp/e.err"; then ok
else bad "adalora: export --merge: $(tail -2 "$tmp/e.err")"; fi
evloss adalora_merged "$tmp/ada-merged.gguf"
same_loss adalora_merged adalora "adalora: merged vs applied"
if "$BIN" export --model "$G" --adapter "$r/adapter" --to "$tmp/ada.gguf" > /dev/null 2> "$tmp/c.err"; then ok
else bad "adalora: conversion to GGUF: $(cat "$tmp/c.err")"; fi
evloss adalora_conv "$G" --adapter "$tmp/ada.gguf"
same_loss adalora_conv adalora "adalora: converted GGUF vs the PEFT folder"
# a resumed AdaLoRA run continues exactly: the checkpoint holds the rank allocator's estimates and pattern
# (interrupted at step 36 of 72, inside the budgeting phase: tinit 5, tfinal 20, an allocation every 3 steps)
losses() { sed -n 's/^{"step":\([0-9]*\),.*"train_loss":\([^,]*\),.*/\1 \2/p' "$1/metrics.jsonl"; }
ra=(--model "$S/hf" --tokenizer "$TOK" --data "$tmp/d.jsonl" --method adalora --adalora-init-r 4 --adalora-target-r 2 --adalora-tinit 5
    --adalora-tfinal 20 --adalora-delta-t 3 --max-seq-len 160 --samples 0 --threads 1 --seed 5 --epochs 3 --lr 1e-2 --save-every 12
    --keep-checkpoints 20)
if "$BIN" train "${ra[@]}" --out "$tmp/ada_ref" > /dev/null 2> "$tmp/ada_ref.err"; then ok; else bad "adalora reference: $(tail -2 "$tmp/ada_ref.err")"; fi
cp -r "$tmp/ada_ref" "$tmp/ada_res"
for c in "$tmp/ada_res"/checkpoints/step-*; do [ "$((10#${c##*step-}))" -gt 36 ] && rm -rf "$c"; done
rm -rf "$tmp/ada_res/adapter" "$tmp/ada_res/adapter.gguf"
if "$BIN" train --out "$tmp/ada_res" --resume > /dev/null 2> "$tmp/ada_res.err"; then ok; else bad "adalora resume: $(tail -2 "$tmp/ada_res.err")"; fi
if grep -q "resumed from .*step-00000036" "$tmp/ada_res/metrics.jsonl"; then ok; else bad "adalora: did not resume from step 36"; fi
losses "$tmp/ada_ref" > "$tmp/ada_ref.loss"; losses "$tmp/ada_res" > "$tmp/ada_res.loss"
if [ "$(wc -l < "$tmp/ada_ref.loss")" -ge 72 ] && cmp -s "$tmp/ada_ref.loss" "$tmp/ada_res.loss"; then ok
else bad "adalora: the resumed run differs from the uninterrupted one"; diff "$tmp/ada_ref.loss" "$tmp/ada_res.loss" | head -3 >&2; fi
# (base_model_name_or_path: the path as given, relative here, absolute from config.json on resume)
if cmp -s "$tmp/ada_ref/adapter/adapter_model.safetensors" "$tmp/ada_res/adapter/adapter_model.safetensors" &&
   python3 -c 'import json, sys; a, b = (json.load(open(f)) for f in sys.argv[1:]); a.pop("base_model_name_or_path"); b.pop("base_model_name_or_path"); sys.exit(a != b)' \
       "$tmp/ada_ref/adapter/adapter_config.json" "$tmp/ada_res/adapter/adapter_config.json"; then ok
else bad "adalora: the resumed run's adapter (rank pattern, triplets) differs"; fi

refuse() {  # refuse MESSAGE ARGS...: train fails (exit 1) with MESSAGE
    local msg=$1; shift
    "$BIN" train --model "$S/hf" --tokenizer "$TOK" --data "$tmp/d.jsonl" --out "$tmp/bad" "$@" > /dev/null 2> "$tmp/f.err"
    if [ $? = 1 ] && grep -q -- "$msg" "$tmp/f.err"; then ok; else bad "$*: expected '$msg', got: $(cat "$tmp/f.err")"; fi
}
refuse "--lora-r does not apply to --method prefix" --method prefix --lora-r 4
refuse "--freeze-layers does not apply to --method prefix" --method prefix --freeze-layers 1
refuse "--num-virtual-tokens applies to --method prefix and prompt only" --num-virtual-tokens 4
refuse "add --prefix-projection" --method prefix --encoder-hidden-size 8
refuse "do not fit the model's context of 512 tokens" --method prefix --num-virtual-tokens 600
refuse "--lora-r does not apply to --method adalora" --method adalora --lora-r 4
refuse "--adalora-tinit applies to --method adalora only" --adalora-tinit 2
refuse "leave no budgeting phase" --method adalora --adalora-tinit 100000
refuse "--method adalora with --task classify|regress: not supported yet" --method adalora --task classify --labels a,b

"$BIN" train --model "$S/hf" --tokenizer "$TOK" --data "$tmp/d.jsonl" --method ia3 --lora-r 4 --out "$tmp/bad" > /dev/null 2> "$tmp/f.err"
if [ $? = 1 ] && grep -q -- "--lora-r does not apply to --method ia3" "$tmp/f.err"; then ok; else bad "--lora-r with ia3: $(cat "$tmp/f.err")"; fi

rm -rf "$tmp"
if [ "$failures" -gt 0 ]; then echo "peft_methods_cli: $failures of $checks checks FAILED"; exit 1; fi
echo "peft_methods_cli: $checks checks passed"
