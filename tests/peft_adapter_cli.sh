#!/usr/bin/env bash
# `takumi train --method adapter` (bottleneck adapters) on the tiny stories260K model, each placement
# (pfeiffer, houlsby): the run writes takumi's adapter folder (peft_type TAKUMI_BOTTLENECK, the
# placement, reduction, nonlinearity and width in adapter_config.json) and, as llama.cpp cannot apply
# these adapters, no GGUF adapter but a note; the run cut back to its step-4 checkpoint and resumed
# equals the uninterrupted run bit for bit (losses, learning rates, gradient norms, validation); `takumi eval
# --adapter` on the validation file gives the run's last validation loss; `generate` and `chat`
# apply it (the text changes; HF and GGUF containers alike); `export --merge` and the conversion to
# a GGUF adapter are refused naming why; a bottleneck folder where a classifier is expected, and
# options that do not apply, fail with a clear message.
set -u
cd "$(dirname "$0")/.."
BIN=${TAKUMI_BIN:-$PWD/build/takumi}
S=${TAKUMI_SHARED:-../shared}/models/stories260K
if [ ! -f "$S/hf/model.safetensors" ] || [ ! -f "$S/llama2c/tok512.bin" ] || [ ! -f "$S/gguf/stories260K-f32.gguf" ]; then
    if [ "${CI:-}" = true ]; then echo "FAIL: required asset missing in CI: models/stories260K"; exit 1; fi
    echo "SKIP: models/stories260K not found (set TAKUMI_SHARED or place ../shared)"; exit 0
fi
tmp=$(mktemp -d /tmp/takumi_peft_adapter_XXXXXX)
checks=0 failures=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*" >&2; }
TOK=$S/llama2c/tok512.bin
G=$S/gguf/stories260K-f32.gguf
jget() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

names=(Lily Tom Sue Ben Max Mia Sam Ann); things=(ball cat dog tree cake car boat kite)
for i in $(seq 0 31); do
    n=${names[$((i % 8))]}; t=${things[$(((i * 5) % 8))]}
    printf '{"prompt":"Tell me about %s and the %s.","completion":"%s had a %s. %s was happy."}\n' "$n" "$t" "$n" "$t" "$n"
done > "$tmp/all.jsonl"
head -24 "$tmp/all.jsonl" > "$tmp/d.jsonl"
tail -8 "$tmp/all.jsonl" > "$tmp/v.jsonl"
gen() {  # gen NAME MODEL [args...]: greedy text into $tmp/NAME.txt
    local name=$1 model=$2; shift 2
    if "$BIN" generate --model "$model" --tokenizer "$TOK" --prompt "Tell me about Ben and the kite." --temperature 0 \
          --max-tokens 24 --threads 1 "$@" > "$tmp/$name.txt" 2> "$tmp/$name.err"; then ok
    else bad "generate $name failed: $(tail -2 "$tmp/$name.err")"; fi
}
gen base "$S/hf"
# step, train_loss, lr, grad_norm of every step; step, valid_loss of every evaluation
curve() {
    sed -n -e 's/^{"step":\([0-9]*\),.*"train_loss":\([^,]*\),"lr":\([^,]*\),"grad_norm":\([^,]*\),.*/t \1 \2 \3 \4/p' \
           -e 's/^{"step":\([0-9]*\),.*"valid_loss":\([^,]*\),.*/v \1 \2/p' "$1"
}

for placement in pfeiffer houlsby; do
    r=$tmp/$placement
    common=(--model "$S/hf" --tokenizer "$TOK" --data "$tmp/d.jsonl" --val "$tmp/v.jsonl" --method adapter --adapter-placement "$placement"
            --max-seq-len 160 --samples 0 --threads 1 --seed 5 --lr 1e-2 --batch-size 2 --grad-accum 1 --max-steps 8 --eval-every 4
            --save-every 2 --keep-checkpoints 0)
    if "$BIN" train "${common[@]}" --out "$r" > "$tmp/$placement.out" 2> "$tmp/$placement.err"; then ok
    else bad "$placement: train failed: $(tail -3 "$tmp/$placement.err")"; continue; fi
    c=$r/adapter/adapter_config.json
    act=relu; [ $placement = houlsby ] && act=swish
    if [ -s "$r/adapter/adapter_model.safetensors" ] && [ "$(jget "$c" "(d['peft_type'], d['architecture'], d['reduction_factor'], \
          d['non_linearity'], d['hidden_size'], d['bottleneck_size'])")" = "('TAKUMI_BOTTLENECK', '$placement', 16, '$act', 64, 4)" ]; then ok
    else bad "$placement: adapter_config.json: $(cat "$c")"; fi
    if [ ! -e "$r/adapter.gguf" ] && grep -q "no GGUF adapter: llama.cpp cannot apply bottleneck adapters" "$r/metrics.jsonl" &&
       grep -q "cannot be merged into the weights either" "$r/metrics.jsonl"; then ok
    else bad "$placement: expected no adapter.gguf and a note without --merge advice"; fi
    P=Pfeiffer; [ $placement = houlsby ] && P=Houlsby
    if grep -q "bottleneck adapters ($P, reduction 16)" "$r/report.html"; then ok; else bad "$placement: report title"; fi

    # a copy of the run cut back to its step-4 checkpoint (as if stopped there), resumed: the same run bit for bit
    rm -rf "$r-r" && cp -r "$r" "$r-r" && rm -rf "$r-r/adapter" "$r-r/checkpoints/step-00000006" "$r-r/checkpoints/step-00000008"
    if [ -d "$r-r/checkpoints/step-00000004" ] && "$BIN" train --out "$r-r" --resume > /dev/null 2> "$tmp/r2.err"; then ok
    else bad "$placement: resume failed: $(ls "$r/checkpoints") $(tail -2 "$tmp/r2.err")"; fi
    curve "$r/metrics.jsonl" > "$tmp/ref.curve"
    curve "$r-r/metrics.jsonl" > "$tmp/res.curve"
    if [ "$(grep -c '^t ' "$tmp/ref.curve")" = 8 ] && grep -q '^v 8 ' "$tmp/ref.curve" && cmp -s "$tmp/ref.curve" "$tmp/res.curve"; then ok
    else bad "$placement: resumed run differs:"; diff "$tmp/ref.curve" "$tmp/res.curve" | head -5 >&2; fi
    if cmp -s "$r/adapter/adapter_model.safetensors" "$r-r/adapter/adapter_model.safetensors"; then ok
    else bad "$placement: the resumed run's adapter differs"; fi

    # eval with the saved adapter: the run's last validation loss
    if "$BIN" eval --model "$S/hf" --tokenizer "$TOK" --adapter "$r/adapter" --data "$tmp/v.jsonl" --metrics loss --threads 1 --json \
          > "$tmp/$placement-eval.json" 2> "$tmp/ev.err"; then ok
    else bad "$placement: eval: $(tail -2 "$tmp/ev.err")"; fi
    vl=$(sed -n 's/^v 8 \(.*\)$/\1/p' "$tmp/ref.curve")
    if [ "$(python3 -c "
import json; d=json.load(open('$tmp/$placement-eval.json'))
m=d['metrics'] if 'metrics' in d else d
v=m['loss']; v=v['value'] if isinstance(v, dict) else v
print(abs(v - $vl) <= 1e-5 * abs($vl), v, $vl)" 2> "$tmp/py.err" | cut -d' ' -f1)" = True ]; then ok
    else bad "$placement: eval --adapter loss vs the run's valid_loss $vl: $(cat "$tmp/py.err") $(head -c 400 "$tmp/$placement-eval.json")"; fi

    gen "$placement" "$S/hf" --adapter "$r/adapter"
    gen "${placement}_gguf" "$G" --adapter "$r/adapter"
    if [ -s "$tmp/$placement.txt" ] && ! cmp -s "$tmp/base.txt" "$tmp/$placement.txt"; then ok
    else bad "$placement: the adapter does not change the text: '$(cat "$tmp/$placement.txt")'"; fi
    if cmp -s "$tmp/$placement.txt" "$tmp/${placement}_gguf.txt"; then ok; else bad "$placement: HF and GGUF bases differ"; fi
    for who in base adapted; do
        a=(); [ $who = adapted ] && a=(--adapter "$r/adapter")
        if echo "Tell me about Ben and the kite." | "$BIN" chat --model "$S/hf" --tokenizer "$TOK" "${a[@]}" --template chatml --temperature 0 \
              --max-tokens 16 --threads 1 > "$tmp/chat-$who.txt" 2> "$tmp/chat.err"; then ok
        else bad "$placement: chat ($who): $(tail -2 "$tmp/chat.err")"; fi
    done
    if [ -s "$tmp/chat-adapted.txt" ] && ! cmp -s "$tmp/chat-base.txt" "$tmp/chat-adapted.txt"; then ok
    else bad "$placement: chat --adapter does not change the answer"; fi

    "$BIN" export --model "$G" --adapter "$r/adapter" --merge --to "$tmp/$placement-merged.gguf" --dtype f32 > /dev/null 2> "$tmp/e.err"
    if [ $? = 1 ] && grep -q "bottleneck adapters cannot be merged into the weights (they add a nonlinear bottleneck" "$tmp/e.err" &&
       [ ! -e "$tmp/$placement-merged.gguf" ]; then ok
    else bad "$placement: export --merge: $(cat "$tmp/e.err")"; fi
    "$BIN" export --model "$G" --adapter "$r/adapter" --to "$tmp/$placement.gguf" > /dev/null 2> "$tmp/c.err"
    if [ $? = 1 ] && grep -q "bottleneck adapters have no GGUF layout (llama.cpp applies LoRA adapters only" "$tmp/c.err" &&
       ! grep -q -- "--merge" "$tmp/c.err"; then ok
    else bad "$placement: conversion to GGUF: $(cat "$tmp/c.err")"; fi
done

# a bottleneck folder where a classifier is expected
"$BIN" classify --model "$S/hf" --tokenizer "$TOK" --adapter "$tmp/pfeiffer/adapter" "a text" > /dev/null 2> "$tmp/k.err"
if [ $? = 1 ] && grep -q "adapter" "$tmp/k.err" && grep -qi "classif\|SEQ_CLS\|head" "$tmp/k.err"; then ok
else bad "classify with a bottleneck adapter: $(cat "$tmp/k.err")"; fi
# a classifier with bottleneck adapters (--task classify): its folder turns SEQ_CLS, `takumi classify` and eval read it
for i in $(seq 0 15); do printf 'a %s day\t%d\n' "$([ $((i % 2)) = 1 ] && echo good || echo bad)" $((i % 2)); done > "$tmp/c.tsv"
if "$BIN" train --model "$S/hf" --tokenizer "$TOK" --data "$tmp/c.tsv" --task classify --labels neg,pos --method adapter \
      --adapter-placement houlsby --max-steps 4 --threads 1 --out "$tmp/cls" > /dev/null 2> "$tmp/cls.err" &&
   [ "$(jget "$tmp/cls/adapter/adapter_config.json" "(d['peft_type'], d['task_type'], d['modules_to_save'])")" = \
     "('TAKUMI_BOTTLENECK', 'SEQ_CLS', ['classifier', 'score'])" ]; then ok
else bad "classifier run: $(tail -2 "$tmp/cls.err")"; fi
if "$BIN" classify --model "$S/hf" --tokenizer "$TOK" --adapter "$tmp/cls/adapter" "a good day" 2> "$tmp/k2.err" | grep -q "^\(neg\|pos\) 0\.[0-9]*  (neg"; then ok
else bad "classify --adapter (bottleneck classifier): $(cat "$tmp/k2.err")"; fi
if "$BIN" eval --model "$S/hf" --tokenizer "$TOK" --adapter "$tmp/cls/adapter" --data "$tmp/c.tsv" --json 2> "$tmp/k3.err" | grep -q '"accuracy"'; then ok
else bad "eval of the bottleneck classifier: $(cat "$tmp/k3.err")"; fi
# another model's width
"$BIN" generate --model "$S/hf" --tokenizer "$TOK" --adapter "$tmp/pfeiffer/adapter" --prompt x --max-tokens 1 > /dev/null 2> /dev/null && ok || bad "generate"
sed 's/"hidden_size":[[:space:]]*64/"hidden_size": 128/; s/"reduction_factor":[[:space:]]*16/"reduction_factor": 32/' \
    "$tmp/pfeiffer/adapter/adapter_config.json" > "$tmp/cfg.json" && cp "$tmp/cfg.json" "$tmp/pfeiffer/adapter/adapter_config.json"
"$BIN" generate --model "$S/hf" --tokenizer "$TOK" --adapter "$tmp/pfeiffer/adapter" --prompt x --max-tokens 1 > /dev/null 2> "$tmp/w.err"
if [ $? = 1 ] && grep -q "must have torch shape \[bottleneck_size, hidden_size\]" "$tmp/w.err"; then ok
else bad "an adapter for another width: $(cat "$tmp/w.err")"; fi

refuse() {  # refuse MESSAGE ARGS...: train fails (exit 1) with MESSAGE
    local msg=$1; shift
    "$BIN" train --model "$S/hf" --tokenizer "$TOK" --data "$tmp/d.jsonl" --out "$tmp/bad" "$@" > /dev/null 2> "$tmp/f.err"
    if [ $? = 1 ] && grep -q -- "$msg" "$tmp/f.err"; then ok; else bad "$*: expected '$msg', got: $(cat "$tmp/f.err")"; fi
}
refuse "--lora-r does not apply to --method adapter" --method adapter --lora-r 4
refuse "--lora-targets does not apply to --method adapter" --method adapter --lora-targets q,v
refuse "--lora-dropout does not apply to --method adapter" --method adapter --lora-dropout 0.1
refuse "--num-virtual-tokens applies to --method prefix and prompt only" --method adapter --num-virtual-tokens 4
refuse "--adapter-placement applies to --method adapter only" --adapter-placement houlsby
refuse "--adapter-reduction applies to --method adapter only" --method ia3 --adapter-reduction 8
refuse "--adapter-act applies to --method adapter only" --method prefix --adapter-act gelu
refuse "--adapter-placement: 'parallel' is not pfeiffer or houlsby" --method adapter --adapter-placement parallel
refuse "reduction factor 128 is larger than the model's width 64" --method adapter --adapter-reduction 128

[ -n "${KEEP:-}" ] || rm -rf "$tmp"
if [ "$failures" -gt 0 ]; then echo "peft_adapter_cli: $failures of $checks checks FAILED"; exit 1; fi
echo "peft_adapter_cli: $checks checks passed"
