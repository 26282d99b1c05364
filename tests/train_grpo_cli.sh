#!/usr/bin/env bash
# `takumi train --objective grpo` end to end on stories260K with prompts in OpenAI's RFT format made
# here ("messages" ending with a user turn, plus a "name" field the grader reads) and a string_check
# grader (does the answer contain the name?):
# - `takumi data check` recognises the rft format and names a bad record's line;
# - the held-out greedy reward (valid_reward) goes from 0 before training to 1 at the end; every
#   step line carries TRL's metrics (reward, reward_std, kl, clip ratios, completion lengths, the
#   grader's score, the time split); config.json records the options; the adapter is written;
# - killed mid-run and continued with `--out RUN --resume` alone: bit-identical metrics (answers
#   are sampled from per-step seeds);
# - --passes 2 (the sampling policy's log-probs in the ratio) and --beta (KL to the base) run;
# - bad input: no --grader, a grader of unknown type, rft data for sft, grpo options for dpo, a
#   DPO loss for grpo, a command grader that prints no number (the run stops once failures pass
#   --max-grader-failures, naming the grader's error): exit 1 with a message.
set -u
cd "$(dirname "$0")/.."
NAME=train_grpo_cli
# shellcheck source=tests/lib/sampled.bash
. tests/lib/sampled.bash
common=(--model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --data "$tmp/p.jsonl" --val "$tmp/v.jsonl" --objective grpo
        --grader "$tmp/g.json" --max-new-tokens 16 --group-size 4 --max-seq-len 256 --threads 1 --seed 5 --lora-r 4 --lr 5e-3)
# every step / validation line without its timings
lines() { grep -v '"event"' "$1" | sed -E 's/"(tokens_per_s|step_s|elapsed_s|peak_rss_mb|time\/[a-z_]+|generation\/tokens_per_s)":[^,}]*,?//g'; }

# ---- the data checker knows the format
if "$BIN" data check "$tmp/p.jsonl" > "$tmp/check.out" 2>&1 && grep -q "rft" "$tmp/check.out"; then ok; else bad "data check: $(head -c 300 "$tmp/check.out")"; fi
{ prompts 0 3; printf '{"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello"}],"name":"x"}\n'; } > "$tmp/badrec.jsonl"
"$BIN" data check --format rft "$tmp/badrec.jsonl" > "$tmp/check2.out" 2>&1
if [ $? -ne 0 ] && grep -q "4" "$tmp/check2.out" && grep -q "last_message_not_user" "$tmp/check2.out"; then ok; else bad "data check of a reply in rft data: $(head -c 400 "$tmp/check2.out")"; fi

# ---- the reference run
if "$BIN" train "${common[@]}" --epochs 6 --eval-every 6 --save-every 4 --out "$tmp/ref" > /dev/null 2> "$tmp/ref.err"; then ok; else bad "grpo run failed: $(tail -3 "$tmp/ref.err")"; fi
m=$tmp/ref/metrics.jsonl
for k in train_loss reward reward_std frac_reward_zero_std kl clip_ratio/region_mean ratio/mean completions/mean_length \
         completions/clipped_ratio grader_failures rewards/has_name/mean time/generation_s time/grading_s time/training_s; do
    if [ "$(grep '"train_loss"' "$m" | grep -c "\"$k\":")" -eq 24 ]; then ok; else bad "step lines lack $k"; fi
done
rw=$(grep valid_reward "$m" | num /dev/stdin valid_reward | tr '\n' ' ')
if [ "${rw%% *}" = 0 ] && [ "$(echo "$rw" | awk '{print $NF}')" = 1 ]; then ok; else bad "held-out reward: $rw (want 0 first, 1 last)"; fi
if grep -q '"objective":"grpo"' "$tmp/ref/config.json" && grep -q '"loss":"dapo"' "$tmp/ref/config.json" &&
   grep -q '"group-size":4' "$tmp/ref/config.json" && grep -q '"grader":"/' "$tmp/ref/config.json"; then ok; else bad "config.json lacks the grpo options"; fi
for f in adapter/adapter_model.safetensors report.html; do
    if [ -s "$tmp/ref/$f" ]; then ok; else bad "run folder lacks $f"; fi
done

# ---- killed mid-run, continued with --out RUN --resume alone
"$BIN" train "${common[@]}" --epochs 6 --eval-every 6 --save-every 4 --out "$tmp/k" > /dev/null 2> "$tmp/k.err" &
pid=$! waited=0
while kill -0 "$pid" 2> /dev/null; do
    n=$(grep -c '"train_loss"' "$tmp/k/metrics.jsonl" 2> /dev/null) || n=0
    [ "$n" -ge 10 ] && break
    sleep 0.02; waited=$((waited + 1)); [ $waited -gt 15000 ] && break
done
kill -KILL "$pid" 2> /dev/null; wait "$pid" 2> /dev/null
if [ $? -eq 137 ]; then ok; else bad "the run was not killed (it finished first)"; fi
if "$BIN" train --out "$tmp/k" --resume > /dev/null 2>> "$tmp/k.err"; then ok; else bad "resume failed: $(tail -3 "$tmp/k.err")"; fi
if cmp -s <(lines "$m") <(lines "$tmp/k/metrics.jsonl"); then ok; else bad "killed+resumed grpo run differs:"; diff <(lines "$m") <(lines "$tmp/k/metrics.jsonl") | head -4 >&2; fi

# ---- --passes 2, --beta, another loss type
short=("${common[@]}" --max-steps 3 --eval-every 3 --samples 0)
for o in "--passes 2:ratio/mean" "--beta 0.05:kl" "--loss grpo --scale-rewards batch:advantage/mean"; do
    name=$(echo "${o%%:*}" | tr -c 'a-z0-9\n' _)
    # shellcheck disable=SC2086
    if "$BIN" train "${short[@]}" ${o%%:*} --out "$tmp/$name" > /dev/null 2> "$tmp/$name.err" &&
       [ "$(grep -c "\"${o##*:}\"" "$tmp/$name/metrics.jsonl")" -eq 3 ]; then ok; else bad "grpo ${o%%:*}: $(tail -2 "$tmp/$name.err")"; fi
done
kl=$(grep train_loss "$tmp/__beta_0_05/metrics.jsonl" | tail -1 | num /dev/stdin kl)
if awk -v k="$kl" 'BEGIN { exit !(k > 0) }'; then ok; else bad "--beta 0.05: kl $kl (want > 0 after an update)"; fi

# ---- bad input
base=(--model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --max-seq-len 256 --threads 1 --max-steps 2 --samples 0)
fails "needs --grader" "$BIN" train "${base[@]}" --data "$tmp/p.jsonl" --objective grpo --out "$tmp/e1"
printf '{"type":"python","source":"x"}\n' > "$tmp/gpy.json"
fails "python" "$BIN" train "${base[@]}" --data "$tmp/p.jsonl" --objective grpo --grader "$tmp/gpy.json" --out "$tmp/e2"
fails "no answers to learn from" "$BIN" train "${base[@]}" --data "$tmp/p.jsonl" --out "$tmp/e3"
fails "epsilon does not apply" "$BIN" train "${base[@]}" --data "$tmp/p.jsonl" --objective dpo --epsilon 0.3 --out "$tmp/e4"
fails "dapo, grpo, bnpo or dr_grpo" "$BIN" train "${base[@]}" --data "$tmp/p.jsonl" --objective grpo --grader "$tmp/g.json" --loss ipo --out "$tmp/e5"
printf '{"type":"command","name":"silent","command":["true"],"timeout_s":5}\n' > "$tmp/gcmd.json"
fails "max-grader-failures 3" "$BIN" train "${base[@]}" --data "$tmp/p.jsonl" --objective grpo --grader "$tmp/gcmd.json" --group-size 2 \
    --max-new-tokens 4 --max-grader-failures 3 --out "$tmp/e6"

rm -rf "$tmp"
if [ $failures -gt 0 ]; then echo "train_grpo_cli: $failures of $checks checks FAILED"; exit 1; fi
echo "train_grpo_cli: $checks checks passed"
