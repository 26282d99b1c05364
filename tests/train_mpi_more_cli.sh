#!/usr/bin/env bash
# `mpirun -np 2 takumi train` for the objectives that make their own data (issue 13), on stories260K,
# against one process with the same options (the same global batch):
# - grpo (each rank samples and grades whole groups: the prompts of micro-batch j are rank j mod 2's, answer
#   seeds from the answer's index in the step; LoRA dropout on; --passes 1, and --passes 2 with --beta):
#   every loss and TRL metric of metrics.jsonl (reward, reward_std, kl, clip ratios, completion lengths,
#   valid_reward, ...) equals the one-process run's within 1e-5 relative (floor 1e-3: the dapo loss is ~1e-9;
#   measured: 0 with --passes 1, 1.6e-6 (grad_norm) with --passes 2);
# - self-training (prompt i sampled by rank i mod 2, rank 0 writes the files, each round trains data-parallel):
#   round 1's samples.jsonl and train.jsonl byte-identical, rounds.jsonl's scores and every round's losses the same
#   (measured 3.1e-7);
# - --task classify (micro-batches shared as SFT's): losses, accuracy and the validation metrics the same (4.1e-7);
# - distillation when the teacher writes the answers (questions-only data, with and without --teacher-context):
#   the ranks share the generation, rank 0 writes RUN/teacher_answers.jsonl once, byte-identical to one
#   process's; the losses the same (2.7e-6).
set -u
cd "$(dirname "$0")/.."
NAME=train_mpi_more_cli
# shellcheck source=tests/lib/mpi.bash
. tests/lib/mpi.bash
M=(--model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --threads 1)

# same(A B what): every number of A's metrics.jsonl (step and validation lines; not the timings) equals B's within
# 1e-5 relative (floor 1e-3), key by key and line by line
same() {
    if python3 - "$1" "$2" "$3" <<'PY'
import sys, json, math
def rows(p):
    out = []
    for l in open(p):
        o = json.loads(l)
        if "event" in o: continue
        out.append({k: v for k, v in o.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
                    and not (k.startswith("time/") or k in ("tokens_per_s", "step_s", "elapsed_s", "peak_rss_mb", "generation/tokens_per_s"))})
    return out
a, b, what = rows(sys.argv[1]), rows(sys.argv[2]), sys.argv[3]
if len(a) != len(b) or len(a) < 3: sys.exit("%s: %d vs %d lines" % (what, len(a), len(b)))
worst, n, where = 0.0, 0, ""
for x, y in zip(a, b):
    if sorted(x) != sorted(y): sys.exit("%s: keys differ: %s vs %s" % (what, sorted(x), sorted(y)))
    for k in x:
        n += 1
        if isinstance(x[k], float) and math.isnan(x[k]) and math.isnan(y[k]): continue
        d = abs(x[k] - y[k]) / max(abs(y[k]), 1e-3)
        if d > worst: worst, where = d, "%s at step %s: %r vs %r" % (k, x.get("step"), x[k], y[k])
print("%s: %d lines, %d numbers, max rel diff %.2e%s" % (what, len(a), n, worst, " (" + where + ")" if where else ""))
sys.exit(0 if worst <= 1e-5 else "%s: max rel diff %.3e > 1e-5" % (what, worst))
PY
    then ok; else bad "$3"; fi
}
# pair(NAME ARGS...): the run by one process into $tmp/NAME1 and by 2 ranks into $tmp/NAME2, both --precision fp32: the
# 1e-5 comparisons are of summation orders, which bf16 rounding (auto on AVX512-BF16 CPUs) swamps
pair() {
    local name=$1; shift
    set -- "$@" --precision fp32
    "$BIN" train "$@" --out "$tmp/${name}1" > /dev/null 2> "$tmp/${name}1.err" || bad "$name, one process: $(tail -3 "$tmp/${name}1.err")"
    if timeout 300 "${MPIRUN[@]}" "$BIN" train "$@" --out "$tmp/${name}2" > "$tmp/${name}2.out" 2> "$tmp/${name}2.err"; then ok
    else bad "$name, 2 ranks: $(tail -5 "$tmp/${name}2.err")"; fi
}

# ---- grpo
names=(Lily Tom Sue Ben Max Mia Sam Ann); things=(ball cat dog tree cake car boat kite)
rft() { for i in $(seq "$1" $(($1 + $2 - 1))); do n=${names[$((i % 8))]}; t=${things[$(((i * 5) % 8))]}
    printf '{"messages":[{"role":"user","content":"Tell me about %s and the %s."}],"name":"%s"}\n' "$n" "$t" "$n"; done; }
rft 0 16 > "$tmp/p.jsonl"
rft 16 5 > "$tmp/v.jsonl"
printf '{"type":"string_check","name":"has_name","input":"{{ sample.output_text }}","reference":"{{ item.name }}","operation":"like"}\n' > "$tmp/g.json"
grpo=("${M[@]}" --data "$tmp/p.jsonl" --val "$tmp/v.jsonl" --objective grpo --grader "$tmp/g.json" --max-new-tokens 16 --group-size 4
      --max-seq-len 256 --seed 5 --lora-r 4 --lora-dropout 0.1 --samples 0 --batch-size 1 --grad-accum 4)
pair grpo "${grpo[@]}" --lr 2e-2 --max-steps 4 --eval-every 2
same "$tmp/grpo2/metrics.jsonl" "$tmp/grpo1/metrics.jsonl" "grpo: 2 ranks vs 1 process"
if [ "$(grep -c '"reward"' "$tmp/grpo2/metrics.jsonl")" = 4 ] && [ "$(grep -c report.html "$tmp/grpo2.out")" = 1 ]; then ok
else bad "grpo, 2 ranks: metrics.jsonl should hold 4 step lines from rank 0 only, and rank 0 alone print the paths"; fi
if awk -F'"reward":' 'NF > 1 { split($2, a, ","); if (a[1] + 0 > 0) f = 1 } END { exit !f }' "$tmp/grpo1/metrics.jsonl"; then ok
else bad "grpo: no step had a reward above 0 (the comparison would not exercise the advantages)"; fi
pair grpo_p2 "${grpo[@]}" --lr 3e-3 --max-steps 2 --eval-every 2 --passes 2 --beta 0.04
same "$tmp/grpo_p22/metrics.jsonl" "$tmp/grpo_p21/metrics.jsonl" "grpo --passes 2 --beta 0.04: 2 ranks vs 1 process"

# ---- self-training
pair self "${M[@]}" --data "$tmp/p.jsonl" --val "$tmp/v.jsonl" --objective self --grader "$tmp/g.json" --max-new-tokens 16 --group-size 4 \
     --max-seq-len 256 --seed 5 --lora-r 4 --lr 5e-3 --epochs 2 --samples 0 --rounds 2 --batch-size 1 --grad-accum 4 --no-packing --lora-dropout 0.1
if cmp -s "$tmp/self1/rounds/round-1/samples.jsonl" "$tmp/self2/rounds/round-1/samples.jsonl" &&
   cmp -s "$tmp/self1/rounds/round-1/train.jsonl" "$tmp/self2/rounds/round-1/train.jsonl"; then ok
else bad "self: round 1's samples.jsonl / train.jsonl differ between 2 ranks and 1 process"; fi
for k in 1 2; do same "$tmp/self2/rounds/round-$k/run/metrics.jsonl" "$tmp/self1/rounds/round-$k/run/metrics.jsonl" "self round $k: 2 ranks vs 1 process"; done
if python3 - "$tmp/self2/rounds.jsonl" "$tmp/self1/rounds.jsonl" <<'PY'
import sys, json
a, b = [[json.loads(l) for l in open(p)] for p in sys.argv[1:]]
assert len(a) == len(b) == 3, (len(a), len(b))
for x, y in zip(a, b):
    assert sorted(x) == sorted(y), (x, y)
    for k in x: assert x[k] == y[k] or abs(x[k] - y[k]) <= 1e-9, (k, x[k], y[k])
print("self: rounds.jsonl the same (%d rounds)" % len(a))
PY
then ok; else bad "self: rounds.jsonl differs"; fi
if [ -s "$tmp/self2/adapter/adapter_model.safetensors" ] && [ "$(grep -c "self-training finished" "$tmp/self2.err")" = 1 ]; then ok
else bad "self, 2 ranks: no adapter, or the end printed by more than rank 0"; fi

# ---- classification
for i in $(seq 0 23); do n=${names[$((i % 8))]}; t=${things[$(((i * 5) % 8))]}
    if [ $((i % 2)) = 0 ]; then printf '{"text":"%s played with the %s. %s was very happy and smiled.","label":"pos"}\n' "$n" "$t" "$n"
    else printf '{"text":"%s lost the %s. %s was very sad and cried.","label":"neg"}\n' "$n" "$t" "$n"; fi
done > "$tmp/c.jsonl"
pair cls "${M[@]}" --data "$tmp/c.jsonl" --val-split 0.25 --task classify --labels neg,pos --epochs 2 --lr 3e-3 --seed 3 --lora-dropout 0.1 \
     --batch-size 1 --grad-accum 4 --eval-every 2 --no-packing
same "$tmp/cls2/metrics.jsonl" "$tmp/cls1/metrics.jsonl" "classify: 2 ranks vs 1 process"
if [ -s "$tmp/cls2/adapter/adapter_model.safetensors" ] && grep -q '"accuracy"\|valid_acc' "$tmp/cls2/metrics.jsonl"; then ok
else bad "classify, 2 ranks: no adapter or no accuracy in metrics.jsonl"; fi

# ---- distillation on answers the teacher writes (questions only; with and without a context the teacher reads)
printf 'Lily has a red ball and a big dog named Max.\nTom lives in a small house by the sea.\n' > "$tmp/ctx.md"
for i in $(seq 0 11); do printf '{"prompt":"Tell me about %s and the %s."}\n' "${names[$((i % 4))]}" "${things[$(((i * 3) % 4))]}"; done > "$tmp/q.jsonl"
kd=("${M[@]}" --data "$tmp/q.jsonl" --objective distill --seed 3 --lora-r 4 --lr 1e-3 --samples 0 --batch-size 1 --grad-accum 4
    --max-new-tokens 12 --max-steps 6 --val-split 0.2 --eval-every 3)
pair kda "${kd[@]}" --teacher "$S/hf-bf16"
pair kdc "${kd[@]}" --teacher-context "$tmp/ctx.md"
for v in kda kdc; do
    if [ -s "$tmp/${v}1/teacher_answers.jsonl" ] && cmp -s "$tmp/${v}1/teacher_answers.jsonl" "$tmp/${v}2/teacher_answers.jsonl"; then ok
    else bad "$v: teacher_answers.jsonl of 2 ranks differs from one process's"; fi
    same "$tmp/${v}2/metrics.jsonl" "$tmp/${v}1/metrics.jsonl" "distill ($v): 2 ranks vs 1 process"
done
if [ "$(grep -c "answers 12 of 12 prompts" "$tmp/kdc2.err")" = 1 ]; then ok; else bad "kdc, 2 ranks: the teacher's info line should come once (rank 0)"; fi

rm -rf "$tmp"
if [ "$failures" -gt 0 ]; then echo "train_mpi_more_cli: $failures of $checks checks FAILED"; exit 1; fi
echo "train_mpi_more_cli: $checks checks passed"
