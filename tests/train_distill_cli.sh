#!/usr/bin/env bash
# `takumi train --objective distill` end to end on stories260K (prompt/completion data made here):
# - the teacher is the base model itself: the LoRA student (B = 0) starts as the teacher, so the
#   first step's loss and gradient norm are exactly 0;
# - the teacher is the hf-bf16 variant (other weights): the loss is above 0 and falls over the run;
#   every step and validation line has its loss; config.json records the options;
# - killed mid-run and resumed with --resume: bit-identical metrics; --distill-loss reverse_kl runs;
# - bad input: a teacher with another vocabulary and no tokenizer (nothing to answer with), --temperature / --teacher on sft, distill without
#   --teacher, --jsd-beta without jsd or outside [0, 1], a teacher that does not exist: exit 1 with a clear message;
# - --distill-loss jsd --jsd-beta 0.3 runs (the first loss is in (0, log 2)).
set -u
cd "$(dirname "$0")/.."
BIN=${TAKUMI_BIN:-$PWD/build/takumi}
SH=${TAKUMI_SHARED:-../shared}
S=$SH/models/stories260K
if [ ! -f "$S/hf/model.safetensors" ] || [ ! -f "$S/hf-bf16/model.safetensors" ]; then
    if [ "${CI:-}" = true ]; then echo "FAIL: required asset missing in CI: models/stories260K"; exit 1; fi
    echo "SKIP: models/stories260K not found (set TAKUMI_SHARED or place ../shared)"; exit 0
fi
tmp=$(mktemp -d /tmp/takumi_train_distill_XXXXXX)
checks=0 failures=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*" >&2; }

names=(Lily Tom Sue Ben Max Mia Sam Ann); things=(ball cat dog tree cake car boat kite)
for i in $(seq 0 19); do
    n=${names[$((i % 8))]}; t=${things[$(((i * 5) % 8))]}
    printf '{"prompt":"Tell me about %s and the %s.","completion":"%s had a %s. %s was happy."}\n' "$n" "$t" "$n" "$t" "$n"
done > "$tmp/d.jsonl"
head -4 "$tmp/d.jsonl" > "$tmp/v.jsonl"
common=(--model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --data "$tmp/d.jsonl" --val "$tmp/v.jsonl" --objective distill --threads 1
        --seed 5 --max-steps 12 --lora-r 4 --lr 1e-4 --eval-every 4 --samples 0 --batch-size 2
        --precision fp32)   # fp32: the bf16 teacher's KL (~4e-5) is below bf16 products' rounding (auto on AVX512-BF16)
lines() { grep -v '"event"' "$1" | sed -E 's/"(tokens_per_s|step_s|elapsed_s|peak_rss_mb)":[^,}]*,?//g'; }
num() { grep '"train_loss"' "$1" | sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p"; }

# ---- the teacher is the base: nothing to learn at the start
if "$BIN" train "${common[@]}" --teacher "$S/hf" --max-steps 2 --out "$tmp/self" > /dev/null 2> "$tmp/self.err"; then ok
else bad "self-teacher run failed: $(tail -3 "$tmp/self.err")"; fi
l1=$(num "$tmp/self/metrics.jsonl" train_loss | head -1); g1=$(num "$tmp/self/metrics.jsonl" grad_norm | head -1)
if [ "$l1" = 0 ] && [ "$g1" = 0 ]; then ok; else bad "self-teacher: first loss $l1 and grad norm $g1 are not exactly 0"; fi

# ---- the bf16 teacher: a real difference that training reduces
if "$BIN" train "${common[@]}" --teacher "$S/hf-bf16" --temperature 2 --save-every 4 --out "$tmp/bf" > /dev/null 2> "$tmp/bf.err"; then ok
else bad "bf16-teacher run failed: $(tail -3 "$tmp/bf.err")"; fi
m=$tmp/bf/metrics.jsonl
if [ "$(grep -c '"train_loss"' "$m")" -eq 12 ] && [ "$(grep -c '"valid_loss"' "$m")" -ge 4 ]; then ok; else bad "bf16 run: missing step or validation lines"; fi
if awk -v a="$(num "$m" train_loss | head -1)" -v b="$(num "$m" train_loss | tail -1)" 'BEGIN { exit !(a > 0 && b < a) }'; then ok
else bad "bf16 run: loss did not fall ($(num "$m" train_loss | head -1) -> $(num "$m" train_loss | tail -1))"; fi
for k in '"objective":"distill"' '"distill-loss":"forward_kl"' '"temperature":2' '"teacher":"/'; do
    if grep -q "$k" "$tmp/bf/config.json"; then ok; else bad "config.json lacks $k"; fi
done

# ---- killed and resumed: bit-identical
"$BIN" train "${common[@]}" --teacher "$S/hf-bf16" --temperature 2 --save-every 4 --out "$tmp/bf.k" > /dev/null 2> "$tmp/bf.k.err" &
pid=$! waited=0
while kill -0 "$pid" 2> /dev/null; do
    n=$(grep -c '"train_loss"' "$tmp/bf.k/metrics.jsonl" 2> /dev/null) || n=0
    [ "$n" -ge 6 ] && break
    sleep 0.02; waited=$((waited + 1)); [ $waited -gt 15000 ] && break
done
kill -KILL "$pid" 2> /dev/null; wait "$pid" 2> /dev/null
if [ $? -eq 137 ]; then ok; else bad "the run was not killed (it finished first)"; fi
if "$BIN" train --out "$tmp/bf.k" --resume > /dev/null 2>> "$tmp/bf.k.err"; then ok; else bad "resume failed: $(tail -3 "$tmp/bf.k.err")"; fi
if cmp -s <(lines "$m") <(lines "$tmp/bf.k/metrics.jsonl"); then ok
else bad "killed+resumed run differs:"; diff <(lines "$m") <(lines "$tmp/bf.k/metrics.jsonl") | head -4 >&2; fi

# ---- reverse KL
if "$BIN" train "${common[@]}" --teacher "$S/hf-bf16" --distill-loss reverse_kl --max-steps 2 --out "$tmp/rk" > /dev/null 2> "$tmp/rk.err" &&
   grep -q '"distill-loss":"reverse_kl"' "$tmp/rk/config.json"; then ok; else bad "reverse_kl run failed: $(tail -3 "$tmp/rk.err")"; fi

# ---- the generalised JSD (TRL's GKD loss)
if "$BIN" train "${common[@]}" --teacher "$S/hf-bf16" --distill-loss jsd --jsd-beta 0.3 --max-steps 2 --out "$tmp/js" > /dev/null 2> "$tmp/js.err" &&
   grep -q '"distill-loss":"jsd"' "$tmp/js/config.json" && grep -q '"jsd-beta":0.29999' "$tmp/js/config.json"; then ok
else bad "jsd run failed: $(tail -3 "$tmp/js.err")"; fi
if awk -v a="$(num "$tmp/js/metrics.jsonl" train_loss | head -1)" 'BEGIN { exit !(a > 0 && a < 0.6931472) }'; then ok
else bad "jsd: first loss $(num "$tmp/js/metrics.jsonl" train_loss | head -1) outside (0, log 2)"; fi

# ---- bad input: exit 1 with a message
refuse() {   # name, expected message part, args...
    local name=$1 want=$2; shift 2
    "$BIN" train "$@" --out "$tmp/bad_$name" > /dev/null 2> "$tmp/bad_$name.err"
    local rc=$?
    if [ $rc -eq 1 ] && grep -q -- "$want" "$tmp/bad_$name.err"; then ok
    else bad "$name: exit $rc, message: $(tail -2 "$tmp/bad_$name.err") (expected '$want')"; fi
}
refuse vocab "and no tokenizer: it cannot write the answers" "${common[@]}" --teacher tests/fixtures/arch/qwen3/model.gguf
refuse temp_sft "--temperature does not apply to --objective sft" "${common[@]/distill/sft}" --temperature 2
refuse teacher_sft "--teacher does not apply to --objective sft" "${common[@]/distill/sft}" --teacher "$S/hf"
refuse no_teacher "needs --teacher" "${common[@]}"
refuse jsd_beta "--jsd-beta is the generalised JSD's beta: it needs --distill-loss jsd" "${common[@]}" --teacher "$S/hf" --jsd-beta 0.2
refuse jsd_range "jsd-beta" "${common[@]}" --teacher "$S/hf" --distill-loss jsd --jsd-beta 1.5
refuse jsd_sft "--jsd-beta does not apply to --objective sft" "${common[@]/distill/sft}" --jsd-beta 0.2
refuse loss_name "unknown distillation loss 'xx' (choose from forward_kl, reverse_kl, jsd)" "${common[@]}" --teacher "$S/hf" --distill-loss xx
refuse missing "--teacher $tmp/nope" "${common[@]}" --teacher "$tmp/nope"

rm -rf "$tmp"
echo "train_distill_cli: $checks checks, $failures failures"
[ "$failures" -eq 0 ]
