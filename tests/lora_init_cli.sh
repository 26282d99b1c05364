#!/usr/bin/env bash
# `takumi train --lora-init pissa|olora` on the tiny stories260K model:
# - the run writes PEFT's conversion (a rank-2r LoRA, lora_alpha 2 alpha; rsLoRA sqrt(2) alpha) and
#   its GGUF twin; `takumi eval --adapter RUN/adapter` on the ORIGINAL base gives the run's final
#   validation loss (the trained model); on the f32 GGUF container RUN/adapter.gguf gives the loss of
#   RUN/adapter, and so does `takumi export --merge` of the adapter into that original base, whose
#   greedy text is that of `generate --adapter`;
# - --resume from a checkpoint in the middle ends bit-identical to the uninterrupted run (losses
#   and the written adapter): A0/B0 are recomputed from the base;
# - a bf16 base (HF folder) trains with PiSSA and its adapter reproduces its loss;
# - --lora-init pissa with --method dora fails naming the option.
set -u
cd "$(dirname "$0")/.."
BIN=${TAKUMI_BIN:-$PWD/build/takumi}
S=${TAKUMI_SHARED:-../shared}/models/stories260K
if [ ! -f "$S/hf/model.safetensors" ] || [ ! -f "$S/llama2c/tok512.bin" ] || [ ! -f "$S/gguf/stories260K-f32.gguf" ]; then
    if [ "${CI:-}" = true ]; then echo "FAIL: required asset missing in CI: models/stories260K"; exit 1; fi
    echo "SKIP: models/stories260K not found (set TAKUMI_SHARED or place ../shared)"; exit 0
fi
S=$(cd "$S" && pwd)
tmp=$(mktemp -d /tmp/takumi_lora_init_XXXXXX)
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
head -6 "$tmp/d.jsonl" > "$tmp/v.jsonl"
common=(--tokenizer "$TOK" --data "$tmp/d.jsonl" --val "$tmp/v.jsonl" --lora-r 4 --max-seq-len 160 --samples 0 --threads 1
        --seed 5 --epochs 3 --lr 3e-3 --save-every 9 --keep-checkpoints 20)
losses() { sed -n 's/^{"step":\([0-9]*\),.*"train_loss":\([^,]*\),.*/\1 \2/p' "$1/metrics.jsonl"; }
final_val() { sed -n 's/.*"valid_loss":\([^,]*\),.*/\1/p' "$1/metrics.jsonl" | tail -1; }
evloss() {  # evloss MODEL ADAPTER|"": the loss of v.jsonl
    local a=(); [ -n "$2" ] && a=(--adapter "$2")
    "$BIN" eval --model "$1" --tokenizer "$TOK" "${a[@]}" --data "$tmp/v.jsonl" --metrics loss --threads 1 --json 2> "$tmp/ev.err" |
        python3 -c 'import json,sys; print(repr(json.load(sys.stdin)["metrics"]["loss"]["value"]))'
}
near() {  # near A B TOL WHAT
    if python3 -c 'import sys; a,b,t=map(float,sys.argv[1:4]); sys.exit(0 if abs(a-b) <= t*abs(b) else 1)' "$1" "$2" "$3" 2>/dev/null; then ok
    else bad "$4: $1 vs $2 (tolerance $3 relative)"; fi
}
gen() {  # gen NAME MODEL [args...]: greedy text into $tmp/NAME.txt
    local name=$1 model=$2; shift 2
    if "$BIN" generate --model "$model" --tokenizer "$TOK" --prompt "Tell me about Ben and the kite." --temperature 0 \
          --max-tokens 24 --threads 1 "$@" > "$tmp/$name.txt" 2> "$tmp/$name.err"; then ok
    else bad "generate $name failed: $(tail -2 "$tmp/$name.err")"; fi
}

main=""   # the init the resume and bf16 checks use: pissa, or olora in a build without LAPACK (BLAS=0)
for init in pissa olora; do
    r=$tmp/$init
    extra=(); alpha=32; [ $init = olora ] && { extra=(--rslora --lora-alpha 8); alpha=11.31371; }
    if "$BIN" train --model "$S/hf" "${common[@]}" --lora-init $init "${extra[@]}" --out "$r" > "$tmp/$init.out" 2> "$tmp/$init.err"; then ok
    elif [ $init = pissa ] && grep -q "this build has no OpenBLAS" "$tmp/$init.err"; then echo "note: pissa skipped (a build without LAPACK)"; continue
    else bad "$init: train failed: $(tail -3 "$tmp/$init.err")"; continue; fi
    [ -z "$main" ] && main=$init
    cfg=$r/adapter/adapter_config.json
    if grep -q '"r":[[:space:]]*8,' "$cfg" && grep -q "\"lora_alpha\":[[:space:]]*$alpha" "$cfg" && grep -q '"init_lora_weights":[[:space:]]*true' "$cfg"; then ok
    else bad "$init: adapter_config.json is not the rank-8 conversion with alpha $alpha: $(grep -E '"r"|lora_alpha' "$cfg" | tr -d '\n\t')"; fi
    if [ -s "$r/adapter.gguf" ]; then ok; else bad "$init: no adapter.gguf"; fi
    v=$(final_val "$r")
    [ -n "$v" ] && ok || bad "$init: no validation loss in metrics.jsonl"
    base=$(evloss "$S/hf" "")
    if python3 -c 'import sys; sys.exit(0 if abs(float(sys.argv[1]) - float(sys.argv[2])) > 0.01 else 1)' "$base" "$v"; then ok
    else bad "$init: training did not move the loss ($base -> $v)"; fi
    near "$(evloss "$S/hf" "$r/adapter")" "$v" 1e-5 "$init: eval with RUN/adapter on the original HF base vs the run's final validation loss"
    # the GGUF container (its own context and data handling: compared with itself)
    vg=$(evloss "$G" "$r/adapter")
    near "$(evloss "$G" "$r/adapter.gguf")" "$vg" 1e-5 "$init: eval with RUN/adapter.gguf vs RUN/adapter on the f32 GGUF base"
    if "$BIN" export --model "$G" --adapter "$r/adapter" --merge --to "$tmp/$init-merged.gguf" --dtype f32 > /dev/null 2> "$tmp/e.err"; then ok
    else bad "$init: export --merge: $(tail -2 "$tmp/e.err")"; fi
    near "$(evloss "$tmp/$init-merged.gguf" "")" "$vg" 1e-4 "$init: the merged original base vs the adapter applied"
    gen "$init" "$S/hf" --adapter "$r/adapter"
    gen "${init}_merged" "$tmp/$init-merged.gguf"
    if [ -s "$tmp/$init.txt" ] && cmp -s "$tmp/$init.txt" "$tmp/${init}_merged.txt"; then ok
    else bad "$init: merged '$(cat "$tmp/${init}_merged.txt")' vs applied '$(cat "$tmp/$init.txt")'"; fi
done

# ---- resume from step 36 of the PiSSA run: bit-identical losses and adapter
[ -n "$main" ] || { bad "no run to resume"; main=pissa; }
ref=$tmp/$main
if [ -d "$ref/checkpoints/step-00000036" ]; then
    out=$tmp/resumed
    cp -r "$ref" "$out"
    for c in "$out"/checkpoints/step-*; do [ "${c##*step-}" -gt 36 ] && rm -rf "$c"; done
    rm -rf "$out/adapter" "$out/adapter.gguf"
    if "$BIN" train --out "$out" --resume > /dev/null 2> "$out.err"; then ok; else bad "resume failed: $(tail -2 "$out.err")"; fi
    if grep -q "resumed from .*step-00000036" "$out/metrics.jsonl"; then ok; else bad "did not resume from step 36"; fi
    if cmp -s <(losses "$ref") <(losses "$out") && [ "$(losses "$ref" | wc -l)" -ge 9 ]; then ok
    else bad "the resumed $main run differs from the uninterrupted one"; diff <(losses "$ref") <(losses "$out") | head -3 >&2; fi
    if cmp -s "$ref/adapter/adapter_model.safetensors" "$out/adapter/adapter_model.safetensors"; then ok
    else bad "the resumed run wrote another adapter"; fi
else
    bad "$main: no checkpoint at step 36"
fi

# ---- a bf16 base (HF folder): PiSSA (OLoRA) of the weight as stored, the adapter reproduces the run's loss on that base
B16=$S/hf-bf16
if [ -f "$B16/model.safetensors" ]; then
    r=$tmp/bf16
    if "$BIN" train --model "$B16" "${common[@]}" --lora-init $main --epochs 1 --out "$r" > /dev/null 2> "$tmp/bf16.err"; then ok
    else bad "bf16: train failed: $(tail -3 "$tmp/bf16.err")"; fi
    near "$(evloss "$B16" "$r/adapter")" "$(final_val "$r")" 1e-5 "bf16 base: eval with RUN/adapter vs the run's validation loss"
fi

# ---- refusals
"$BIN" train --model "$S/hf" "${common[@]}" --method dora --lora-init pissa --out "$tmp/bad" > /dev/null 2> "$tmp/bad.err"; rc=$?
if [ $rc -ne 0 ] && grep -q -- "--lora-init pissa does not apply to --method dora" "$tmp/bad.err"; then ok
else bad "dora + pissa: exit $rc, $(tail -2 "$tmp/bad.err")"; fi
"$BIN" train --model "$S/hf" "${common[@]}" --lora-init svd --out "$tmp/bad2" > /dev/null 2> "$tmp/bad2.err"; rc=$?
if [ $rc -ne 0 ] && grep -q -- "lora-init" "$tmp/bad2.err"; then ok; else bad "--lora-init svd: exit $rc, $(tail -2 "$tmp/bad2.err")"; fi

rm -rf "$tmp"
if [ $failures -eq 0 ]; then echo "lora_init_cli: $checks checks passed"; exit 0; fi
echo "lora_init_cli: $failures of $checks checks FAILED"; exit 1
