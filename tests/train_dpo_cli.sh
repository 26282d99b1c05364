#!/usr/bin/env bash
# `takumi train --objective dpo|orpo|simpo` end to end on stories260K with a small preference
# file made here (the chosen answer repeats the prompt's facts, the rejected one does not):
# - a LoRA DPO run writes TRL's metrics (rewards/…, logps/…) to every step line and as valid_…
#   to every validation line; the held-out reward accuracy ends at 1 (0 before training:
#   policy = reference); config.json records the objective options;
# - killed mid-run and continued with `--out RUN --resume` alone: bit-identical metrics; a
#   resume with another --beta is refused naming it;
# - --precompute-ref gives the same losses; orpo, simpo and full fine-tuning DPO run;
# - bad input: an empty side, identical answers, chat data for dpo, preference data for sft,
#   options that do not apply to the objective: exit 1 with a message naming the line / option.
set -u
cd "$(dirname "$0")/.."
BIN=${TAKUMI_BIN:-$PWD/build/takumi}
S=${TAKUMI_SHARED:-../shared}/models/stories260K
if [ ! -f "$S/hf/model.safetensors" ]; then
    if [ "${CI:-}" = true ]; then echo "FAIL: required asset missing in CI: models/stories260K"; exit 1; fi
    echo "SKIP: models/stories260K not found (set TAKUMI_SHARED or place ../shared)"; exit 0
fi
tmp=$(mktemp -d /tmp/takumi_train_dpo_XXXXXX)
checks=0 failures=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*" >&2; }

names=(Lily Tom Sue Ben Max Mia Sam Ann); things=(ball cat dog tree cake car boat kite)
pairs() {   # first, count
    for i in $(seq "$1" $(($1 + $2 - 1))); do
        n=${names[$((i % 8))]}; t=${things[$(((i * 5) % 8))]}; u=${things[$(((i * 3 + 1) % 8))]}
        printf '{"prompt":"Tell me about %s and the %s.","chosen":"%s had a %s. %s was happy.","rejected":"%s saw a big %s. It was sad."}\n' \
            "$n" "$t" "$n" "$t" "$n" "$n" "$u"
    done
}
pairs 0 16 > "$tmp/p.jsonl"
pairs 16 4 > "$tmp/v.jsonl"
common=(--model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --data "$tmp/p.jsonl" --val "$tmp/v.jsonl" --max-seq-len 160
        --threads 1 --seed 5 --epochs 2 --lora-r 4 --lr 3e-3 --eval-every 8 --samples 1 --sample-tokens 8)
# every step / validation line without its timings
lines() { grep -v '"event"' "$1" | sed -E 's/"(tokens_per_s|step_s|elapsed_s|peak_rss_mb)":[^,}]*,?//g'; }
num() { sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" "$1"; }

# ---- the reference run
if "$BIN" train "${common[@]}" --objective dpo --save-every 4 --out "$tmp/ref" > /dev/null 2> "$tmp/ref.err"; then ok; else bad "dpo run failed: $(tail -3 "$tmp/ref.err")"; fi
m=$tmp/ref/metrics.jsonl
for k in train_loss rewards/chosen rewards/rejected rewards/accuracies rewards/margins logps/chosen logps/rejected; do
    if [ "$(grep '"train_loss"' "$m" | grep -c "\"$k\":")" -eq 32 ]; then ok; else bad "step lines lack $k"; fi
done
for k in valid_loss valid_rewards/accuracies valid_rewards/margins valid_logps/chosen; do
    if [ "$(grep -c "\"$k\":" "$m")" -eq 5 ]; then ok; else bad "validation lines lack $k"; fi
done
acc=$(grep valid_loss "$m" | num /dev/stdin 'valid_rewards\/accuracies' | tr '\n' ' ')
if [ "${acc%% *}" = 0 ] && [ "$(echo "$acc" | awk '{print $NF}')" = 1 ]; then ok; else bad "held-out reward accuracy: $acc (want 0 first, 1 last)"; fi
if grep -q '"objective":"dpo"' "$tmp/ref/config.json" && grep -q '"loss":"sigmoid"' "$tmp/ref/config.json" &&
   grep -q '"beta":0.10000000000000001' "$tmp/ref/config.json"; then ok; else bad "config.json lacks the objective options"; fi
for f in adapter/adapter_model.safetensors report.html samples.json; do
    if [ -s "$tmp/ref/$f" ]; then ok; else bad "run folder lacks $f"; fi
done

# ---- killed mid-run, continued with --out RUN --resume alone
"$BIN" train "${common[@]}" --objective dpo --save-every 4 --out "$tmp/k" > /dev/null 2> "$tmp/k.err" &
pid=$! waited=0
while kill -0 "$pid" 2> /dev/null; do
    n=$(grep -c '"train_loss"' "$tmp/k/metrics.jsonl" 2> /dev/null) || n=0
    [ "$n" -ge 14 ] && break
    sleep 0.02; waited=$((waited + 1)); [ $waited -gt 15000 ] && break
done
kill -KILL "$pid" 2> /dev/null; wait "$pid" 2> /dev/null
if [ $? -eq 137 ]; then ok; else bad "the run was not killed (it finished first)"; fi
if "$BIN" train --out "$tmp/k" --resume > /dev/null 2>> "$tmp/k.err"; then ok; else bad "resume failed: $(tail -3 "$tmp/k.err")"; fi
if cmp -s <(lines "$m") <(lines "$tmp/k/metrics.jsonl"); then ok; else bad "killed+resumed dpo run differs:"; diff <(lines "$m") <(lines "$tmp/k/metrics.jsonl") | head -4 >&2; fi
"$BIN" train "${common[@]}" --objective dpo --beta 0.2 --out "$tmp/ref" --resume > /dev/null 2> "$tmp/rb.err"
if [ $? -eq 1 ] && grep -q -- "--beta: checkpoint 0.1" "$tmp/rb.err"; then ok; else bad "resume with another --beta: $(head -c 300 "$tmp/rb.err")"; fi

# ---- --precompute-ref: the same losses; orpo, simpo, full fine-tuning
short=("${common[@]}" --max-steps 6 --eval-every 3 --samples 0)
"$BIN" train "${short[@]}" --objective dpo --out "$tmp/d1" > /dev/null 2> "$tmp/d.err" &&
"$BIN" train "${short[@]}" --objective dpo --precompute-ref --out "$tmp/d2" > /dev/null 2>> "$tmp/d.err" || bad "dpo runs failed: $(tail -3 "$tmp/d.err")"
if cmp -s <(lines "$tmp/d1/metrics.jsonl") <(lines "$tmp/d2/metrics.jsonl"); then ok; else bad "--precompute-ref changes the run:"; diff <(lines "$tmp/d1/metrics.jsonl") <(lines "$tmp/d2/metrics.jsonl") | head -4 >&2; fi
for o in "orpo:nll_loss" "simpo:rewards/margins" "dpo --method full --lr 1e-3 --loss ipo:rewards/accuracies" "dpo --loss robust --label-smoothing 0.1:rewards/margins"; do
    name=$(echo "${o%%:*}" | tr -c 'a-z0-9\n' _)
    args=() skip=0   # --lora-r does not apply to --method full (refused): leave it out there
    for a in "${short[@]}"; do
        if [ $skip = 1 ]; then skip=0; continue; fi
        if [ "$a" = --lora-r ] && [[ $o == *"--method full"* ]]; then skip=1; continue; fi
        args+=("$a")
    done
    # shellcheck disable=SC2086
    if "$BIN" train "${args[@]}" --objective ${o%%:*} --out "$tmp/$name" > /dev/null 2> "$tmp/$name.err" &&
       [ "$(grep -c "\"${o##*:}\"" "$tmp/$name/metrics.jsonl")" -eq 6 ]; then ok; else bad "--objective ${o%%:*}: $(tail -2 "$tmp/$name.err")"; fi
done
l0=$(grep -m1 train_loss "$tmp/orpo/metrics.jsonl" | num /dev/stdin train_loss); l1=$(grep train_loss "$tmp/orpo/metrics.jsonl" | tail -1 | num /dev/stdin train_loss)
if awk "BEGIN{exit !($l1 < $l0)}"; then ok; else bad "orpo loss did not fall: $l0 -> $l1"; fi

# ---- bad input
expect_fail() {   # message-regex, args...
    local re=$1; shift
    "$BIN" train "$@" > /dev/null 2> "$tmp/bad.err"
    local rc=$?
    if [ $rc -eq 1 ] && grep -Eq -- "$re" "$tmp/bad.err"; then ok; else bad "train $* -> exit $rc, stderr: $(head -c 300 "$tmp/bad.err")"; fi
}
base=(--model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --threads 1 --samples 0)
{ pairs 0 2; printf '{"prompt":"Tell me about Tom.","chosen":"","rejected":"Tom was sad."}\n'; } > "$tmp/empty.jsonl"
expect_fail "line 3: the chosen answer is empty" "${base[@]}" --objective dpo --data "$tmp/empty.jsonl" --out "$tmp/b1"
{ pairs 0 3; printf '{"prompt":"Tell me about Tom.","chosen":"Tom ran.","rejected":"Tom ran."}\n'; } > "$tmp/same.jsonl"
expect_fail "line 4: the chosen and rejected answers are identical" "${base[@]}" --objective dpo --data "$tmp/same.jsonl" --out "$tmp/b2"
printf '{"prompt":"Tell me about Tom.","completion":"Tom ran."}\n' > "$tmp/sft.jsonl"
expect_fail "has no chosen and rejected answers" "${base[@]}" --objective dpo --data "$tmp/sft.jsonl" --out "$tmp/b3"
expect_fail "with --objective dpo, orpo, simpo or reward" "${base[@]}" --data "$tmp/p.jsonl" --out "$tmp/b4"
expect_fail "^.*--beta does not apply to --objective sft" "${base[@]}" --data "$tmp/sft.jsonl" --beta 0.2 --out "$tmp/b5"
expect_fail "--loss does not apply to --objective orpo" "${base[@]}" --objective orpo --loss ipo --data "$tmp/p.jsonl" --out "$tmp/b6"
expect_fail "--label-smoothing applies to --loss robust only" "${base[@]}" --objective dpo --label-smoothing 0.1 --data "$tmp/p.jsonl" --out "$tmp/b7"
expect_fail "--precompute-ref does not apply to --objective simpo" "${base[@]}" --objective simpo --precompute-ref --data "$tmp/p.jsonl" --out "$tmp/b8"
expect_fail "--loss: unknown loss type 'kto'" "${base[@]}" --objective dpo --loss kto --data "$tmp/p.jsonl" --out "$tmp/b9"
expect_fail "--objective: 'ppo' is not sft, dpo, orpo, simpo, kto, reward, distill, grpo or self" "${base[@]}" --objective ppo --data "$tmp/p.jsonl" --out "$tmp/b10"

if [ $failures -eq 0 ]; then
    rm -rf "$tmp"
    echo "train_dpo_cli: $checks checks passed"
    exit 0
fi
echo "train_dpo_cli: $failures of $checks checks FAILED (files kept in $tmp)"
exit 1
