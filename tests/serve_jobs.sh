#!/usr/bin/env bash
# `takumi serve`'s Files and fine-tuning jobs APIs end to end with the official openai SDK (tests/serve_jobs.py) on
# stories260K (../shared) and SmolLM2 (models/, one step), two user keys, on a free port:
#   main:    upload / list / retrieve / content / delete, a bad upload refused with the data checker's findings, a job
#            polled to succeeded (events, checkpoints, hyperparameters), its ft: model chatting (plain = streamed =
#            takumi generate with the job's adapter), a second job cancelled while running, another key's 404s;
#   restart: SIGTERM (exit 0), start again: jobs, events and the ft: model are still there and answer the same;
#   kill -9: a job killed after its first checkpoint resumes from it when the server starts again, and succeeds;
#   curl:    the same endpoints without the SDK (multipart by curl -F, 401 without a key, 404 for path tricks).
set -u
cd "$(dirname "$0")/.."
BIN=${TAKUMI_BIN:-$PWD/build/takumi}
S=${TAKUMI_SHARED:-../shared}/models/stories260K
G=$S/gguf/stories260K-f32.gguf
SMOL=${TAKUMI_SMOL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
need() {
    if [ "${CI:-}" = true ]; then echo "FAIL: required in CI: $1"; exit 1; fi
    echo "SKIP: $1"; exit 0
}
[ -f "$G" ] || need "models/stories260K (set TAKUMI_SHARED or place ../shared)"
[ -f "$SMOL" ] || need "$SMOL (scripts/fetch-model.sh)"
command -v curl >/dev/null || need "curl"
python3 -c "import openai" 2>/dev/null || need "the openai package (bash scripts/deps-client.sh)"
export OMP_WAIT_POLICY=passive
tmp=$(mktemp -d /tmp/takumi_jobs_XXXXXX)
PID=
# the server pauses a running job at a checkpoint on SIGTERM: give it up to 10 s to finish writing before the folder goes
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.2; done
    rm -rf "$tmp"
}
trap cleanup EXIT
checks=0 failures=0
expect() { checks=$((checks + 1)); if ! eval "$1"; then failures=$((failures + 1)); echo "FAIL: $(eval "echo \"$2\"")" >&2; fi; }
D=$tmp/data
start() {
    "$BIN" serve --port 0 --threads 1 --model "stories=$G" --model "smol=$SMOL" --ctx 512 --data-dir "$D" --max-upload 100000 2>> "$tmp/server.log" &
    PID=$!; PORT=
    for _ in $(seq 1 300); do
        PORT=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/server.log" | sed -n "$1p")   # the Nth start's
        [ -n "$PORT" ] && return 0
        sleep 0.1
    done
    echo "FAIL: the server did not start: $(tail -3 "$tmp/server.log")"; exit 1
}
sdk() {  # sdk PHASE: the SDK's checks of that phase
    python3 tests/serve_jobs.py "$1" "http://127.0.0.1:$PORT/v1" "$K1" "$K2" "$tmp" > "$tmp/sdk_$1.txt" 2>&1
    local rc=$?
    expect '[ $rc = 0 ]' "openai SDK, $1: $(cat "$tmp/sdk_$1.txt")"
    tail -1 "$tmp/sdk_$1.txt"
}

# data: 24 short chats, a bad file (a message without content, a broken line), 400 chats for the long jobs
names=(Lily Tom Sue Ben Max Mia Sam Ann); things=(ball cat dog tree cake car boat kite)
for i in $(seq 0 23); do
    n=${names[$((i % 8))]}; t=${things[$(((i * 5) % 8))]}
    printf '{"messages":[{"role":"user","content":"Tell me about %s and the %s."},{"role":"assistant","content":"%s had a %s. %s was happy."}]}\n' "$n" "$t" "$n" "$t" "$n"
done > "$tmp/d.jsonl"
head -4 "$tmp/d.jsonl" > "$tmp/d4.jsonl"
printf '{"messages":[{"role":"user"},{"role":"assistant","content":"x"}]}\n{"messages": [\n' > "$tmp/bad.jsonl"
for i in $(seq 0 399); do
    printf '{"messages":[{"role":"user","content":"Tell me about %s, number %d."},{"role":"assistant","content":"%s had a %s and it was %d."}]}\n' \
        "${names[$((i % 8))]}" "$i" "${names[$(((i + 3) % 8))]}" "${things[$((i % 8))]}" "$i"
done > "$tmp/big.jsonl"
K1=$("$BIN" serve --create-key --data-dir "$D") K2=$("$BIN" serve --create-key --data-dir "$D")

start 1
# the job thread runs at nice 10 (--job-nice's default; the threads it starts inherit it), the request threads at 0
nices=$(ps -L -o nice= -p "$PID" | tr -d ' ' | sort | uniq -c | tr '\n' ' ')
expect '[ "$(ps -o nice= -p "$PID" | tr -d " ")" = 0 ] && ps -L -o nice= -p "$PID" | grep -qx " *10"' "thread nice values: $nices"
expect '! "$BIN" serve --job-nice 20 --data-dir "$tmp/none" 2> "$tmp/nice.err" && grep -q -- "--job-nice" "$tmp/nice.err"' "--job-nice 20: $(cat "$tmp/nice.err")"
sdk main
# the ft: model's greedy answer is takumi generate's with the job's adapter on the same base
job=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("job",""))' "$tmp/state.json")
"$BIN" generate --model "$G" --ctx 512 --threads 1 --adapter "$D/jobs/$job/adapter" --chat --prompt "Tell me about Ben and the kite." \
    --temperature 0 --max-tokens 16 > "$tmp/gen.txt" 2> "$tmp/gen.err"
expect 'python3 -c "import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))[\"answer\"] == open(sys.argv[2]).read() else 1)" $tmp/state.json $tmp/gen.txt' \
    'the ft: model answered differently from takumi generate --adapter: $(cat $tmp/gen.txt) $(cat $tmp/gen.err)'
expect 'python3 -c "import sqlite3,sys; db=sqlite3.connect(sys.argv[1]); sys.exit(0 if db.execute(\"pragma journal_mode\").fetchone()[0]==\"wal\" and db.execute(\"select count(*) from jobs\").fetchone()[0]==4 else 1)" $D/takumi.db' \
    'takumi.db: not WAL or not 4 jobs'

expect 'curl -s -H "Authorization: Bearer $K1" http://127.0.0.1:$PORT/metrics | grep -q "^takumi_fine_tuning_jobs{status=\"succeeded\"} 2$"' \
    '/metrics: $(curl -s -H "Authorization: Bearer $K1" http://127.0.0.1:$PORT/metrics | grep fine_tuning)'
# curl: multipart upload, 401 without a key, 404 for tricks, the file's bytes back
H="Authorization: Bearer $K1"
expect '[ "$(curl -s -o $tmp/c1.json -w %{http_code} -H "$H" -F purpose=fine-tune -F file=@$tmp/d.jsonl http://127.0.0.1:$PORT/v1/files)" = 200 ]' 'curl upload: $(cat $tmp/c1.json)'
fid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$tmp/c1.json" 2>/dev/null)
expect 'curl -s -H "$H" http://127.0.0.1:$PORT/v1/files/$fid/content | cmp -s - $tmp/d.jsonl' 'curl content differs'
expect '[ "$(curl -s -o /dev/null -w %{http_code} http://127.0.0.1:$PORT/v1/files)" = 401 ]' 'files without a key'
cat "$tmp/big.jsonl" "$tmp/big.jsonl" "$tmp/big.jsonl" > "$tmp/huge.jsonl"   # above --max-upload 100000
expect '[ "$(curl -s -o $tmp/c4.json -w %{http_code} -H "$H" -F purpose=fine-tune -F file=@$tmp/huge.jsonl http://127.0.0.1:$PORT/v1/files)" = 413 ] && grep -q request_too_large $tmp/c4.json' 'an upload above --max-upload: $(cat $tmp/c4.json)'
expect '[ "$(curl -s -o /dev/null -w %{http_code} -H "$H" --path-as-is http://127.0.0.1:$PORT/v1/files/../takumi.db/content)" = 404 ]' 'a path trick'
expect '[ "$(curl -s -o $tmp/c2.json -w %{http_code} -H "$H" -X DELETE http://127.0.0.1:$PORT/v1/files/$fid)" = 200 ] && grep -q "\"deleted\":true" $tmp/c2.json' 'curl delete: $(cat $tmp/c2.json)'
expect '[ "$(curl -s -o $tmp/c3.json -w %{http_code} -H "$H" -H "Content-Type: application/json" -d "{\"model\":\"stories\",\"training_file\":\"x\",\"method\":{\"type\":\"supervised\",\"supervised\":{\"hyperparameters\":{\"n_epochs\":\"many\"}}}}" http://127.0.0.1:$PORT/v1/fine_tuning/jobs)" = 400 ] && grep -q "method.supervised.hyperparameters.n_epochs" $tmp/c3.json' 'a bad job body: $(cat $tmp/c3.json)'
expect '[ "$(curl -s -o /dev/null -w %{http_code} -H "$H" http://127.0.0.1:$PORT/v1/fine_tuning/jobs?limit=0)" = 400 ]' 'limit=0'

# restart: SIGTERM, then the same answers
kill -TERM "$PID"; wait "$PID"; rc=$?; PID=
expect '[ $rc = 0 ]' 'exit status after SIGTERM: $rc'
start 2
sdk after
# kill -9 the job started by the "after" phase once it has written a checkpoint; it resumes at the next start
killed=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("killed",""))' "$tmp/state.json")
for _ in $(seq 1 300); do ls "$D/jobs/$killed/checkpoints" 2>/dev/null | grep -qx 'step-[0-9]*' && break; sleep 0.05; done   # a complete one, not a .tmp
kill -9 "$PID"; wait "$PID" 2>/dev/null; PID=
expect '[ -d $D/jobs/$killed/checkpoints ] && [ ! -d $D/jobs/$killed/adapter ]' 'the job was not killed mid-run'
start 3
sdk resume
kill -TERM "$PID"; wait "$PID"; rc=$?; PID=
expect '[ $rc = 0 ]' 'exit status after the last SIGTERM: $rc'
[ "$failures" -eq 0 ] || { echo "server log (last 30 lines):"; grep -v '" 200 ' "$tmp/server.log" | tail -30; }
echo "serve_jobs: $((checks - failures)) checks passed, $failures failed"
[ "$failures" -eq 0 ]
