#!/usr/bin/env bash
# Context distillation and the teacher's answers, end to end on stories260K (data made here):
# - --teacher-context FILE on questions-only data: the base (reading FILE) answers them first into
#   RUN/teacher_answers.jsonl (valid chat JSONL, one record per question, the context not in it), then the
#   student learns its distributions at those answers; the loss is above 0 (the context changes the teacher);
# - a record that already has an answer keeps it; --teacher-answers makes the teacher answer it too;
# - killed and resumed: the answers file is reused (same key), the metrics are bit-identical;
# - plain --teacher distillation on questions-only data: the teacher answers first;
# - --teacher with another vocabulary (SmolLM2, when models/ has it): sequence-level distillation (SFT on its answers, said so);
# - bad input: a missing or empty context file, --teacher-context with --objective sft, with --val or
#   --train-on-prompt, a record the teacher cannot read: exit 1 with a clear message.
set -u
cd "$(dirname "$0")/.."
BIN=${TAKUMI_BIN:-$PWD/build/takumi}
SH=${TAKUMI_SHARED:-../shared}
S=$SH/models/stories260K
if [ ! -f "$S/hf/model.safetensors" ] || [ ! -f "$S/gguf/stories260K-f32.gguf" ]; then
    if [ "${CI:-}" = true ]; then echo "FAIL: required asset missing in CI: models/stories260K"; exit 1; fi
    echo "SKIP: models/stories260K not found (set TAKUMI_SHARED or place ../shared)"; exit 0
fi
tmp=$(mktemp -d /tmp/takumi_distill_ctx_XXXXXX)
checks=0 failures=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*" >&2; }

printf 'Lily has a red ball and a big dog named Max.\nTom lives in a small house by the sea.\n' > "$tmp/ctx.md"
names=(Lily Tom Sue Ben); things=(ball dog house sea)
for i in $(seq 0 11); do
    printf '{"prompt":"Tell me about %s and the %s."}\n' "${names[$((i % 4))]}" "${things[$(((i * 3) % 4))]}"
done > "$tmp/q.jsonl"
printf '{"messages":[{"role":"user","content":"Who has a dog?"},{"role":"assistant","content":"Lily has a dog named Max."}]}\n' >> "$tmp/q.jsonl"
common=(--model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --objective distill --threads 1 --seed 3 --lora-r 4 --lr 1e-3
        --samples 0 --batch-size 1 --max-new-tokens 12)
lines() { grep -v '"event"' "$1" | sed -E 's/"(tokens_per_s|step_s|elapsed_s|peak_rss_mb)":[^,}]*,?//g'; }
num() { grep '"train_loss"' "$1" | sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p"; }
# valid chat JSONL: every line an object whose messages end with a non-empty assistant answer, no context in them
valid() {
    python3 - "$1" "$2" <<'PY'
import json, sys
n = 0
for line in open(sys.argv[1], encoding="utf-8"):
    r = json.loads(line)
    m = r["messages"]
    assert m[-1]["role"] == "assistant" and m[-1]["content"], line
    assert all(x["role"] in ("system", "user", "assistant") for x in m), line
    assert not any("Tom lives in a small house" in x["content"] for x in m), "context leaked: " + line
    n += 1
assert n == int(sys.argv[2]), (n, sys.argv[2])
PY
}

# ---- questions only (+ one answered record): the teacher answers, the student learns
if "$BIN" train "${common[@]}" --data "$tmp/q.jsonl" --teacher-context "$tmp/ctx.md" --max-steps 8 --val-split 0.2 --eval-every 4 \
    --save-every 4 --out "$tmp/a" > /dev/null 2> "$tmp/a.err"; then ok; else bad "context run failed: $(tail -3 "$tmp/a.err")"; fi
A=$tmp/a/teacher_answers.jsonl
if [ -f "$A" ] && valid "$A" 13 2> "$tmp/valid.err"; then ok; else bad "teacher_answers.jsonl missing or invalid: $(tail -2 "$tmp/valid.err")"; fi
if grep -q '"content":"Lily has a dog named Max."' "$A"; then ok; else bad "the answered record did not keep its answer"; fi
if grep -q "answers 12 of 13 prompts" "$tmp/a.err" && grep -q "context distillation: the teacher (the base model) reads" "$tmp/a.err"; then ok
else bad "info lines missing: $(head -4 "$tmp/a.err")"; fi
m=$tmp/a/metrics.jsonl
if [ "$(grep -c '"train_loss"' "$m")" -eq 8 ] && [ "$(grep -c '"valid_loss"' "$m")" -ge 2 ]; then ok; else bad "missing step or validation lines"; fi
if awk -v a="$(num "$m" train_loss | head -1)" 'BEGIN { exit !(a > 0) }'; then ok
else bad "the first loss $(num "$m" train_loss | head -1) is not above 0 (the context should change the teacher)"; fi
for k in '"teacher-context":"/' '"objective":"distill"' '"max-new-tokens":12' "\"data\":\"$tmp/q.jsonl\""; do
    if grep -q "$k" "$tmp/a/config.json"; then ok; else bad "config.json lacks $k"; fi
done

# ---- --teacher-answers: the answered record is answered by the teacher too
if "$BIN" train "${common[@]}" --data "$tmp/q.jsonl" --teacher-context "$tmp/ctx.md" --teacher-answers --max-steps 1 --out "$tmp/f" \
    > /dev/null 2> "$tmp/f.err" && grep -q "answers 13 of 13 prompts" "$tmp/f.err" && ! grep -q 'Lily has a dog named Max.' "$tmp/f/teacher_answers.jsonl"
then ok; else bad "--teacher-answers: $(tail -3 "$tmp/f.err")"; fi

# ---- killed and resumed: the answers are reused and the run is bit-identical
"$BIN" train "${common[@]}" --data "$tmp/q.jsonl" --teacher-context "$tmp/ctx.md" --max-steps 8 --val-split 0.2 --eval-every 4 --save-every 4 \
    --out "$tmp/k" > /dev/null 2> "$tmp/k.err" &
pid=$! waited=0
while kill -0 "$pid" 2> /dev/null; do
    n=$(grep -c '"train_loss"' "$tmp/k/metrics.jsonl" 2> /dev/null) || n=0
    [ "$n" -ge 5 ] && break
    sleep 0.01; waited=$((waited + 1)); [ $waited -gt 20000 ] && break
done
kill -KILL "$pid" 2> /dev/null; wait "$pid" 2> /dev/null
rc=$?
if [ $rc -eq 137 ] || [ "$(grep -c '"train_loss"' "$tmp/k/metrics.jsonl")" -eq 8 ]; then ok; else bad "kill: exit $rc"; fi
if "$BIN" train --out "$tmp/k" --resume > /dev/null 2> "$tmp/k2.err"; then ok; else bad "resume failed: $(tail -3 "$tmp/k2.err")"; fi
if grep -q "reusing $tmp/k/teacher_answers.jsonl" "$tmp/k2.err"; then ok; else bad "resume did not reuse the answers: $(head -3 "$tmp/k2.err")"; fi
if cmp -s <(lines "$m") <(lines "$tmp/k/metrics.jsonl") && cmp -s "$A" "$tmp/k/teacher_answers.jsonl"; then ok
else bad "killed+resumed run differs:"; diff <(lines "$m") <(lines "$tmp/k/metrics.jsonl") | head -4 >&2; fi
# a changed context is not this run's: --resume refuses it (the option is part of the run)
printf 'Something else.\n' > "$tmp/ctx2.md"
"$BIN" train "${common[@]}" --data "$tmp/q.jsonl" --teacher-context "$tmp/ctx2.md" --max-steps 8 --val-split 0.2 --eval-every 4 \
    --save-every 4 --out "$tmp/k" --resume > /dev/null 2> "$tmp/k3.err"
if [ $? -eq 1 ] && grep -q "teacher-context" "$tmp/k3.err"; then ok; else bad "resume with another context: $(tail -2 "$tmp/k3.err")"; fi

# ---- plain distillation on questions-only data: the (same-vocabulary) teacher answers first
if "$BIN" train --model "$S/gguf/stories260K-f32.gguf" --data "$tmp/q.jsonl" --objective distill --teacher "$S/hf" \
    --tokenizer "$S/llama2c/tok512.bin" --threads 1 --max-steps 1 --samples 0 --max-new-tokens 8 --out "$tmp/same" > /dev/null 2> "$tmp/same.err" &&
   valid "$tmp/same/teacher_answers.jsonl" 13 && grep -q "answers 12 of 13 prompts" "$tmp/same.err"
then ok; else bad "same-vocabulary teacher on questions-only data: $(tail -3 "$tmp/same.err")"; fi

# ---- a teacher of another vocabulary (SmolLM2's 49152 tokens, the student's 512): sequence-level distillation
SM=models/SmolLM2-135M-Instruct.Q4_1.gguf
if [ -f "$SM" ]; then
    head -2 "$tmp/q.jsonl" > "$tmp/q2.jsonl"
    if "$BIN" train "${common[@]}" --data "$tmp/q2.jsonl" --teacher "$SM" --max-new-tokens 4 --max-steps 2 --threads 2 --out "$tmp/sk" \
        > /dev/null 2> "$tmp/sk.err" && valid "$tmp/sk/teacher_answers.jsonl" 2 &&
       grep -q "has another vocabulary (49152 tokens, the student's 512): sequence-level distillation" "$tmp/sk.err"
    then ok; else bad "sequence-level distillation: $(tail -3 "$tmp/sk.err")"; fi
    # the student learned with the SFT loss: its loss is a cross-entropy (has a perplexity), not a divergence
    if [ "$(grep -c '"train_loss"' "$tmp/sk/metrics.jsonl")" -eq 2 ]; then ok; else bad "sequence-level distillation: steps missing"; fi
elif [ "${CI:-}" = true ]; then bad "missing $SM in CI"; fi

# ---- bad input: exit 1 with a message
refuse() {   # name, expected message part, args...
    local name=$1 want=$2; shift 2
    "$BIN" train "$@" --out "$tmp/bad_$name" > /dev/null 2> "$tmp/bad_$name.err"
    local rc=$?
    if [ $rc -eq 1 ] && grep -q -- "$want" "$tmp/bad_$name.err"; then ok
    else bad "$name: exit $rc, message: $(tail -2 "$tmp/bad_$name.err") (expected '$want')"; fi
}
: > "$tmp/empty.md"
printf '{"instruction":"x","output":"y"}\n' > "$tmp/alpaca.jsonl"
printf '{"messages":[{"role":"user","content":"hi"}]}\n{"messages":[{"role":"robot","content":"hi"}]}\n' > "$tmp/badrole.jsonl"
refuse missing "--teacher-context: " "${common[@]}" --data "$tmp/q.jsonl" --teacher-context "$tmp/nope.md"
refuse empty "--teacher-context $tmp/empty.md is empty" "${common[@]}" --data "$tmp/q.jsonl" --teacher-context "$tmp/empty.md"
refuse sft "--teacher-context does not apply to --objective sft" "${common[@]/distill/sft}" --data "$tmp/q.jsonl" --teacher-context "$tmp/ctx.md"
refuse val "--teacher-context with --val is not supported" "${common[@]}" --data "$tmp/q.jsonl" --teacher-context "$tmp/ctx.md" --val "$tmp/q.jsonl"
refuse top "--train-on-prompt does not apply to context distillation" "${common[@]}" --data "$tmp/q.jsonl" --teacher-context "$tmp/ctx.md" --train-on-prompt
refuse format "line 1: the teacher's answers are made from chat records" "${common[@]}" --data "$tmp/alpaca.jsonl" --teacher-context "$tmp/ctx.md"
refuse role "line 2: message 1 needs a role" "${common[@]}" --data "$tmp/badrole.jsonl" --teacher-context "$tmp/ctx.md"
refuse answers_sft "--teacher-answers does not apply to --objective sft" "${common[@]/distill/sft}" --data "$tmp/q.jsonl" --teacher-answers
refuse none "needs --teacher PATH" "${common[@]}" --data "$tmp/q.jsonl"

rm -rf "$tmp"
echo "distill_context_cli: $checks checks, $failures failures"
[ "$failures" -eq 0 ]
