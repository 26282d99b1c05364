#!/usr/bin/env bash
# `takumi train --objective kto|reward` and `takumi reward` end to end on stories260K with small
# files made here (desirable / chosen answers repeat the prompt's facts, the others do not):
# - kto: TRL's metrics (rewards/…, logps/…, kl) on every step and validation line; config.json
#   records --desirable-weight / --undesirable-weight; killed mid-run and resumed with --resume:
#   bit-identical metrics; --precompute-ref gives the same losses; the LLaMA-Factory layout
#   (messages + label) of kto_en_demo.json trains;
# - reward: accuracy/margin metrics, RUN/adapter in PEFT's SEQ_CLS layout, held-out accuracy 1
#   after training, `takumi reward` on the held-out pairs agrees with the last validation; a resume
#   is bit-identical (the score head is in the checkpoints);
# - bad input: a non-boolean label (naming the line), preference options on the wrong objective,
#   chat data for reward, preference data for kto, --batch-size 1 for kto, a causal-LM adapter
#   given to `takumi reward`: exit 1 with a message.
set -u
cd "$(dirname "$0")/.."
BIN=${TAKUMI_BIN:-$PWD/build/takumi}
SH=${TAKUMI_SHARED:-../shared}
S=$SH/models/stories260K
if [ ! -f "$S/hf/model.safetensors" ]; then
    if [ "${CI:-}" = true ]; then echo "FAIL: required asset missing in CI: models/stories260K"; exit 1; fi
    echo "SKIP: models/stories260K not found (set TAKUMI_SHARED or place ../shared)"; exit 0
fi
tmp=$(mktemp -d /tmp/takumi_train_kto_XXXXXX)
checks=0 failures=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*" >&2; }

names=(Lily Tom Sue Ben Max Mia Sam Ann); things=(ball cat dog tree cake car boat kite)
kto() {   # first, count: alternately desirable and undesirable completions
    for i in $(seq "$1" $(($1 + $2 - 1))); do
        n=${names[$((i % 8))]}; t=${things[$(((i * 5) % 8))]}; u=${things[$(((i * 3 + 1) % 8))]}
        if [ $((i % 2)) = 0 ]; then c="$n had a $t. $n was happy."; l=true; else c="$n saw a big $u. It was sad."; l=false; fi
        printf '{"prompt":"Tell me about %s and the %s.","completion":"%s","label":%s}\n' "$n" "$t" "$c" "$l"
    done
}
pairs() {
    for i in $(seq "$1" $(($1 + $2 - 1))); do
        n=${names[$((i % 8))]}; t=${things[$(((i * 5) % 8))]}; u=${things[$(((i * 3 + 1) % 8))]}
        printf '{"prompt":"Tell me about %s and the %s.","chosen":"%s had a %s. %s was happy.","rejected":"%s saw a big %s. It was sad."}\n' \
            "$n" "$t" "$n" "$t" "$n" "$n" "$u"
    done
}
kto 0 16 > "$tmp/k.jsonl"; kto 16 4 > "$tmp/kv.jsonl"
pairs 0 16 > "$tmp/p.jsonl"; pairs 16 4 > "$tmp/pv.jsonl"
common=(--model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --max-seq-len 160 --threads 1 --seed 5 --epochs 2 --lora-r 4 --lr 3e-3
        --eval-every 4 --samples 0 --batch-size 2)
lines() { grep -v '"event"' "$1" | sed -E 's/"(tokens_per_s|step_s|elapsed_s|peak_rss_mb)":[^,}]*,?//g'; }
num() { sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" "$1"; }
killed_resume() {   # name, args...: a run killed after 9 steps and resumed equals the uninterrupted one ($tmp/<name>)
    local name=$1; shift
    "$BIN" train "$@" --save-every 4 --out "$tmp/$name.k" > /dev/null 2> "$tmp/$name.k.err" &
    local pid=$! waited=0 n
    while kill -0 "$pid" 2> /dev/null; do
        n=$(grep -c '"train_loss"' "$tmp/$name.k/metrics.jsonl" 2> /dev/null) || n=0
        [ "$n" -ge 9 ] && break
        sleep 0.02; waited=$((waited + 1)); [ $waited -gt 15000 ] && break
    done
    kill -KILL "$pid" 2> /dev/null; wait "$pid" 2> /dev/null
    if [ $? -eq 137 ]; then ok; else bad "$name: the run was not killed (it finished first)"; fi
    if "$BIN" train --out "$tmp/$name.k" --resume > /dev/null 2>> "$tmp/$name.k.err"; then ok; else bad "$name resume failed: $(tail -3 "$tmp/$name.k.err")"; fi
    if cmp -s <(lines "$tmp/$name/metrics.jsonl") <(lines "$tmp/$name.k/metrics.jsonl"); then ok
    else bad "killed+resumed $name run differs:"; diff <(lines "$tmp/$name/metrics.jsonl") <(lines "$tmp/$name.k/metrics.jsonl") | head -4 >&2; fi
}

# ---- KTO
if "$BIN" train "${common[@]}" --data "$tmp/k.jsonl" --val "$tmp/kv.jsonl" --objective kto --desirable-weight 1.2 --save-every 4 \
    --out "$tmp/kto" > /dev/null 2> "$tmp/kto.err"; then ok; else bad "kto run failed: $(tail -3 "$tmp/kto.err")"; fi
m=$tmp/kto/metrics.jsonl
steps=$(grep -c '"train_loss"' "$m")
for k in train_loss rewards/chosen rewards/rejected rewards/margins logps/chosen logps/rejected kl; do
    if [ "$steps" -ge 8 ] && [ "$(grep '"train_loss"' "$m" | grep -c "\"$k\":")" -eq "$steps" ]; then ok; else bad "kto step lines lack $k"; fi
done
for k in valid_loss valid_rewards/chosen valid_kl; do
    if [ "$(grep -c "\"$k\":" "$m")" -ge 2 ]; then ok; else bad "kto validation lines lack $k"; fi
done
l0=$(grep -m1 valid_loss "$m" | num /dev/stdin valid_loss); l1=$(grep valid_loss "$m" | tail -1 | num /dev/stdin valid_loss)
if awk "BEGIN{exit !($l1 < $l0)}"; then ok; else bad "kto validation loss did not fall: $l0 -> $l1"; fi
if grep -q '"objective":"kto"' "$tmp/kto/config.json" && grep -q '"desirable-weight":1.2' "$tmp/kto/config.json" &&
   grep -q '"undesirable-weight":1,' "$tmp/kto/config.json"; then ok; else bad "config.json lacks the kto options"; fi
if [ -s "$tmp/kto/adapter/adapter_model.safetensors" ]; then ok; else bad "kto run wrote no adapter"; fi
killed_resume kto "${common[@]}" --data "$tmp/k.jsonl" --val "$tmp/kv.jsonl" --objective kto --desirable-weight 1.2
short=("${common[@]}" --max-steps 4 --eval-every 2)
"$BIN" train "${short[@]}" --data "$tmp/k.jsonl" --val "$tmp/kv.jsonl" --objective kto --out "$tmp/k1" > /dev/null 2> "$tmp/k1.err" &&
"$BIN" train "${short[@]}" --data "$tmp/k.jsonl" --val "$tmp/kv.jsonl" --objective kto --precompute-ref --out "$tmp/k2" > /dev/null 2>> "$tmp/k1.err" ||
    bad "kto runs failed: $(tail -3 "$tmp/k1.err")"
if cmp -s <(lines "$tmp/k1/metrics.jsonl") <(lines "$tmp/k2/metrics.jsonl"); then ok; else bad "--precompute-ref changes the kto run"; fi
LF=$SH/data/llamafactory-demo/kto_en_demo.json
if [ -f "$LF" ]; then
    if "$BIN" train --model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --data "$LF" --objective kto --max-seq-len 128 --threads 1 \
        --max-steps 2 --batch-size 2 --samples 0 --lora-r 2 --out "$tmp/lf" > /dev/null 2> "$tmp/lf.err" &&
       grep -q '"data_format":"kto"' "$tmp/lf/config.json" && [ "$(grep -c '"kl":' "$tmp/lf/metrics.jsonl")" -eq 2 ]; then ok
    else bad "kto_en_demo.json: $(tail -2 "$tmp/lf.err")"; fi
fi

# ---- reward model
if "$BIN" train "${common[@]}" --data "$tmp/p.jsonl" --val "$tmp/pv.jsonl" --objective reward --center-rewards 0.01 --out "$tmp/rm" \
    > /dev/null 2> "$tmp/rm.err"; then ok; else bad "reward run failed: $(tail -3 "$tmp/rm.err")"; fi
m=$tmp/rm/metrics.jsonl
for k in accuracy margin mean_reward min_reward max_reward; do
    if [ "$(grep '"train_loss"' "$m" | grep -c "\"$k\":")" -ge 8 ]; then ok; else bad "reward step lines lack $k"; fi
done
acc=$(grep valid_loss "$m" | tail -1 | num /dev/stdin valid_accuracy)
if [ "$acc" = 1 ]; then ok; else bad "held-out reward accuracy after training: $acc (want 1)"; fi
if grep -Eq '"task_type":[[:space:]]*"SEQ_CLS"' "$tmp/rm/adapter/adapter_config.json" && grep -q '"score"' "$tmp/rm/adapter/adapter_config.json" &&
   [ ! -e "$tmp/rm/adapter.gguf" ]; then ok; else bad "reward adapter is not in PEFT's SEQ_CLS layout"; fi
"$BIN" reward --model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --adapter "$tmp/rm/adapter" --data "$tmp/pv.jsonl" --max-seq-len 160 \
    > "$tmp/score.out" 2> "$tmp/score.err"
if [ $? -eq 0 ] && [ "$(grep -c '^line [0-9]*: chosen' "$tmp/score.out")" -eq 4 ] && grep -q "pairwise accuracy: 1.0000 (4 of 4 pairs)" "$tmp/score.out"
then ok; else bad "takumi reward: $(cat "$tmp/score.out" "$tmp/score.err" | tail -3)"; fi
vm=$(grep valid_loss "$m" | tail -1 | num /dev/stdin valid_margin)
sm=$(awk '/^line/{s += $4 - $6; n++} END{printf "%.6f", s / n}' "$tmp/score.out")
if awk "BEGIN{d = $vm - $sm; exit !(d < 1e-4 && d > -1e-4)}"; then ok; else bad "takumi reward's mean margin $sm differs from the last validation's $vm"; fi
killed_resume rm "${common[@]}" --data "$tmp/p.jsonl" --val "$tmp/pv.jsonl" --objective reward --center-rewards 0.01

# ---- bad input
expect_fail() {   # message-regex, command args...
    local re=$1; shift
    "$BIN" "$@" > /dev/null 2> "$tmp/bad.err"
    local rc=$?
    if [ $rc -eq 1 ] && grep -Eq -- "$re" "$tmp/bad.err"; then ok; else bad "$* -> exit $rc, stderr: $(head -c 300 "$tmp/bad.err")"; fi
}
base=(train --model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --threads 1 --samples 0)
{ kto 0 2; printf '{"prompt":"Tell me about Tom.","completion":"Tom ran.","label":"yes"}\n'; } > "$tmp/lab.jsonl"
expect_fail 'line 3: invalid_label: "label" is a string, expected true \(desirable\) or false' "${base[@]}" --objective kto --data "$tmp/lab.jsonl" --out "$tmp/b1"
expect_fail "--desirable-weight does not apply to --objective dpo" "${base[@]}" --objective dpo --desirable-weight 2 --data "$tmp/p.jsonl" --out "$tmp/b2"
expect_fail "--center-rewards does not apply to --objective kto" "${base[@]}" --objective kto --center-rewards 0.1 --data "$tmp/k.jsonl" --out "$tmp/b3"
expect_fail "--beta does not apply to --objective reward" "${base[@]}" --objective reward --beta 0.2 --data "$tmp/p.jsonl" --out "$tmp/b4"
printf '{"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello."}]}\n' > "$tmp/chat.jsonl"
expect_fail "chat data has no chosen and rejected answers: preference objectives \(dpo, orpo, simpo, reward\)" "${base[@]}" --objective reward \
    --data "$tmp/chat.jsonl" --out "$tmp/b5"
expect_fail "preference data has no labelled completions: --objective kto trains on KTO data" "${base[@]}" --objective kto --data "$tmp/p.jsonl" --out "$tmp/b6"
expect_fail "--objective kto needs --batch-size >= 2" "${base[@]}" --objective kto --batch-size 1 --data "$tmp/k.jsonl" --out "$tmp/b7"
expect_fail "kto data cannot be used for supervised fine-tuning .*--objective kto" "${base[@]}" --data "$tmp/k.jsonl" --out "$tmp/b8"
expect_fail "task_type is CAUSAL_LM, not SEQ_CLS: not a reward model" reward --model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" \
    --adapter "$tmp/kto/adapter" --data "$tmp/pv.jsonl"

if [ $failures -eq 0 ]; then
    rm -rf "$tmp"
    echo "train_kto_cli: $checks checks passed"
    exit 0
fi
echo "train_kto_cli: $failures of $checks checks FAILED (files kept in $tmp)"
exit 1
