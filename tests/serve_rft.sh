#!/usr/bin/env bash
# `takumi serve`'s reinforcement fine-tuning jobs, checkpoints as models and CPU seconds in /v1/usage, with the official
# openai SDK (tests/serve_rft.py) on stories260K (../shared), two user keys and an admin key, on a free port:
#   main:  an RFT job (GRPO, a string_check grader) to succeeded, its reward in the metrics events, bad grader and
#          hyperparameter bodies refused naming the field, each kept checkpoint a model (pruned ones gone) whose greedy
#          answer equals `takumi generate --adapter RUN/checkpoints/step-N/adapter`, CPU seconds > 0 and growing;
#   after: kill -9 during a second RFT job, start again: the checkpoint models are served again and answer the same, and
#          the job resumes from its newest checkpoint and succeeds.
set -u
cd "$(dirname "$0")/.."
NAME=rft
. tests/lib/serve_harness.bash
S=${TAKUMI_SHARED:-../shared}/models/stories260K
G=$S/gguf/stories260K-f32.gguf
[ -f "$G" ] || need "models/stories260K (set TAKUMI_SHARED or place ../shared)"
python3 -c "import openai" 2>/dev/null || need "the openai package (bash scripts/deps-client.sh)"
# the model's own context (128): GRPO answers of up to 128 / 8 = 16 tokens, as the trainer sees the model
start() { serve_start "$1" --threads 1 --model "stories=$G" --ctx 128 --data-dir "$D"; }
sdk() {
    python3 tests/serve_rft.py "$1" "http://127.0.0.1:$PORT/v1" "$K1" "$K2" "$KA" "$tmp" > "$tmp/sdk_$1.txt" 2>&1
    local rc=$?
    expect '[ $rc = 0 ]' "openai SDK, $1: $(cat "$tmp/sdk_$1.txt")"
    tail -1 "$tmp/sdk_$1.txt"
}
# 8 prompts in OpenAI's RFT format: the grader checks that the answer names {{ item.name }}; a chat file for the refusal
names=(Lily Tom Sue Ben)
for i in $(seq 0 7); do
    n=${names[$((i % 4))]}
    printf '{"messages":[{"role":"user","content":"Tell me about %s."}],"name":"%s"}\n' "$n" "$n"
done > "$tmp/rft.jsonl"
head -3 "$tmp/rft.jsonl" > "$tmp/val.jsonl"
for i in $(seq 1 8); do cat "$tmp/rft.jsonl"; done > "$tmp/rft_big.jsonl"   # 64 prompts: 32 steps of 2, a checkpoint every 4
for i in $(seq 0 9); do printf '{"messages":[{"role":"user","content":"Hi %d"},{"role":"assistant","content":"Hello %d"}]}\n' "$i" "$i"; done > "$tmp/sft.jsonl"
K1=$("$BIN" serve --create-key --data-dir "$D") K2=$("$BIN" serve --create-key --data-dir "$D") KA=$("$BIN" serve --create-key --admin --data-dir "$D")

start 1
sdk main
# the checkpoint model's greedy answer is takumi generate's with that checkpoint's adapter
job=$(serve_state job)
ck=$(serve_state ckpt); ck=${ck##*-}
A=$D/jobs/$job/checkpoints/$(printf 'step-%08d' "${ck:-0}")/adapter
expect '[ -f $A/adapter_model.safetensors ] && [ ! -d $D/jobs/$job/checkpoints/step-00000001 ]' 'checkpoint folders: $(ls $D/jobs/$job/checkpoints 2>&1)'
"$BIN" generate --model "$G" --ctx 128 --threads 1 --adapter "$A" --chat --prompt "Tell me about Tom." --temperature 0 --max-tokens 8 \
    > "$tmp/gen.txt" 2> "$tmp/gen.err"
expect 'python3 -c "import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))[\"ckpt_answer\"] == open(sys.argv[2]).read() else 1)" $tmp/state.json $tmp/gen.txt' \
    'the checkpoint model answered differently from takumi generate --adapter $A: $(cat $tmp/gen.txt) $(cat $tmp/gen.err) vs $(cat $tmp/state.json)'
expect 'python3 -c "import sqlite3,sys; db=sqlite3.connect(sys.argv[1]); sys.exit(0 if db.execute(\"select cpu_seconds from jobs where id=?\", (sys.argv[2],)).fetchone()[0] > 0 and db.execute(\"select sum(cpu_seconds) from usage\").fetchone()[0] > 0 else 1)" $D/takumi.db $job' \
    'takumi.db: no CPU seconds stored'

# kill -9 the long job once it has a complete checkpoint; it resumes at the next start
long=$(serve_state long)
serve_kill9_at_checkpoint "$long"
expect '[ -d $D/jobs/$long/checkpoints ] && [ ! -d $D/jobs/$long/adapter ] && [ -f $D/jobs/$long.grader.json ]' 'the long job was not killed mid-run'
start 2
sdk after
serve_stop
serve_finish serve_rft
