#!/usr/bin/env bash
# `takumi serve`'s deployments end to end on stories260K (../shared) with two LoRA versions trained here (v1, v2; ~3 s):
#   takumi deploy (the CLI over HTTP, libcurl): create, canary 20%, get, list, refusals (user key 403, an alias that is a
#   model id, an unknown model, a duplicate, a canary of the model itself);
#   the openai SDK (tests/serve_deploy.py): 200 distinct users routed by their sticky bucket, the share of v2 within
#   12..28%, x-takumi-model-version = the answer's model, the alias's text = the version's, promote and rollback
#   taking effect at the next request; a SIGTERM restart keeps the deployment; curl for the headers and 404s;
#   the request log and feedback: three answers rated through the SDK, GET /v1/feedback/export as sft (3 chat records,
#   the corrections as the answers) and preference (2 records, correction over the original), both accepted by
#   `takumi data check`; a restart with --log-contents off --log-days 1 logs no contents and drops a 2-day-old row;
#   job pause/resume through the SDK (a 100-step job on stories260K paused mid-run, then resumed from its checkpoint);
#   per-key limits (keys made with --rpm 3 and --token-budget 30): 429 rate_limit_exceeded / insufficient_quota through
#   the SDK, GET /v1/keys and /v1/usage counting the same tokens, POST /v1/keys/{id}/limits lifting a budget;
#   the adapter routes of other servers through curl: vLLM's load_lora_adapter / unload_lora_adapter (the loaded
#   adapter answers as its twin --adapter does; unloaded: 404) and llama-server's POST /lora-adapters global scales
#   (a base request then answers as the adapter; "lora": [] or scales reset: as the base).
set -u
cd "$(dirname "$0")/.."
BIN=${TAKUMI_BIN:-$PWD/build/takumi}
S=${TAKUMI_SHARED:-../shared}/models/stories260K
G=$S/gguf/stories260K-f32.gguf
need() {
    if [ "${CI:-}" = true ]; then echo "FAIL: required in CI: $1"; exit 1; fi
    echo "SKIP: $1"; exit 0
}
[ -f "$G" ] || need "models/stories260K (set TAKUMI_SHARED or place ../shared)"
command -v curl >/dev/null || need "curl"
python3 -c "import openai" 2>/dev/null || need "the openai package (bash scripts/deps-client.sh)"
export OMP_WAIT_POLICY=passive
tmp=$(mktemp -d /tmp/takumi_deploy_XXXXXX)
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
: > "$tmp/server.log"
start() {
    "$BIN" serve --port 0 --threads 1 --model "stories=$G" --adapter "v1=$tmp/v1/adapter" --adapter "v2=$tmp/v2/adapter" --data-dir "$D" "${@:2}" 2>> "$tmp/server.log" &
    PID=$!; PORT=
    for _ in $(seq 1 300); do
        PORT=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/server.log" | sed -n "$1p")   # the Nth start's
        [ -n "$PORT" ] && return 0
        sleep 0.1
    done
    echo "FAIL: the server did not start: $(tail -3 "$tmp/server.log")"; exit 1
}
sdk() {
    python3 tests/serve_deploy.py "$1" "http://127.0.0.1:$PORT/v1" "$AK" "$UK" "$tmp" > "$tmp/sdk_$1.txt" 2>&1
    local rc=$?
    expect '[ $rc = 0 ]' "openai SDK, $1: $(cat "$tmp/sdk_$1.txt")"
    cat "$tmp/sdk_$1.txt"
}

# two versions: LoRAs on stories260K (tests/lib/serve_versions.bash), 2 and 3 epochs
. tests/lib/serve_versions.bash
serve_versions_data "$tmp"
serve_versions_train "$BIN" "$S" "$tmp"
AK=$("$BIN" serve --create-key --admin --data-dir "$D") UK=$("$BIN" serve --create-key --data-dir "$D")
export UK2 RK BK; UK2=$("$BIN" serve --create-key --data-dir "$D")
RK=$("$BIN" serve --create-key --rpm 3 --data-dir "$D") BK=$("$BIN" serve --create-key --token-budget 30 --data-dir "$D")
start 1
U=http://127.0.0.1:$PORT
dep() { "$BIN" deploy "$@" --server "$U" > "$tmp/dep.out" 2> "$tmp/dep.err"; }
jq() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if ($2) else 1)" "$1"; }

# the CLI: create, canary, refusals
expect 'dep create bot --model v1 --key $AK && jq $tmp/dep.out "d[\"id\"] == \"bot\" and d[\"model\"] == \"v1\" and d[\"canary\"] is None"' 'deploy create: $(cat $tmp/dep.out $tmp/dep.err)'
expect '! dep create bot2 --model v1 --key $UK && grep -q "HTTP 403" $tmp/dep.err' 'deploy create with a user key: $(cat $tmp/dep.err)'
expect '! dep create bot --model v2 --key $AK && grep -q "HTTP 409" $tmp/dep.err' 'a duplicate alias: $(cat $tmp/dep.err)'
expect '! dep create v2 --model v1 --key $AK && grep -q "HTTP 400.*is a model id" $tmp/dep.err' 'an alias that is a model id: $(cat $tmp/dep.err)'
expect '! dep create bot3 --model nope --key $AK && grep -q "HTTP 404.*model_not_found" $tmp/dep.err' 'an unknown model: $(cat $tmp/dep.err)'
expect '! dep canary bot --model v1 --percent 5 --key $AK && grep -q "HTTP 400.*own model" $tmp/dep.err' 'a canary of the model itself: $(cat $tmp/dep.err)'
expect '! dep canary bot --model v2 --key $AK && grep -q "needs --percent" $tmp/dep.err' 'canary without --percent: $(cat $tmp/dep.err)'
expect '! dep promote nobot --key $AK && grep -q "HTTP 404" $tmp/dep.err' 'promote of an unknown alias: $(cat $tmp/dep.err)'
expect 'dep canary bot --model v2 --percent 20 --key $AK && jq $tmp/dep.out "d[\"canary\"] == {\"model\": \"v2\", \"percent\": 20}"' 'deploy canary: $(cat $tmp/dep.out $tmp/dep.err)'
expect 'TAKUMI_API_KEY=$AK dep list && jq $tmp/dep.out "[x[\"id\"] for x in d[\"data\"]] == [\"bot\"]"' 'deploy list: $(cat $tmp/dep.out $tmp/dep.err)'
# curl: the headers; a user key may call the alias; the alias is not a model of GET /v1/models
expect 'curl -s -D $tmp/h.txt -o $tmp/c.json -H "Authorization: Bearer $UK" -d "{\"model\":\"bot\",\"prompt\":\"Hi\",\"max_tokens\":2,\"user\":\"u1\"}" $U/v1/completions && grep -qi "^x-takumi-deployment: bot" $tmp/h.txt && grep -qi "^x-takumi-model-version: v[12]" $tmp/h.txt' \
    'curl headers: $(cat $tmp/h.txt $tmp/c.json)'
expect '[ "$(curl -s -o /dev/null -w %{http_code} -H "Authorization: Bearer $UK" $U/v1/deployments)" = 403 ]' 'a user key lists deployments'
expect '[ "$(curl -s -o /dev/null -w %{http_code} -H "Authorization: Bearer $AK" --path-as-is $U/v1/deployments/../takumi.db)" = 404 ]' 'a path trick'

sdk canary
sdk feedback
sdk pause
sdk limits
expect '[ "$(curl -s -o $tmp/k1.json -w %{http_code} -H "Authorization: Bearer $AK" -d "{\"rpm\":-1}" $U/v1/keys/key1/limits)" = 400 ] && [ "$(curl -s -o /dev/null -w %{http_code} -H "Authorization: Bearer $AK" -d "{\"rpm\":1}" $U/v1/keys/key99/limits)" = 404 ]' \
    'bad limits: $(cat $tmp/k1.json)'
expect '! "$BIN" serve --rpm 5 --data-dir $D 2> $tmp/rpm.err && grep -q "go with --create-key" $tmp/rpm.err' '--rpm without --create-key: $(cat $tmp/rpm.err)'

# the exports: ready for the next job by the data checker
ex() { curl -s -o "$tmp/$1.jsonl" -w %{http_code} -H "Authorization: Bearer $2" "$U/v1/feedback/export?format=$1"; }
expect '[ "$(ex sft $AK)" = 200 ] && [ $(wc -l < $tmp/sft.jsonl) = 3 ]' 'sft export: $(cat $tmp/sft.jsonl)'
expect '[ "$(ex preference $AK)" = 200 ] && [ $(wc -l < $tmp/preference.jsonl) = 2 ]' 'preference export: $(cat $tmp/preference.jsonl)'
expect 'python3 - $tmp <<"PY"
import json, sys
t = sys.argv[1]
st = json.load(open(t + "/state.json"))
sft = [json.loads(l) for l in open(t + "/sft.jsonl")]
pref = [json.loads(l) for l in open(t + "/preference.jsonl")]
ok = [r["messages"][0] == {"role": "user", "content": p} for r, p in zip(sft, ("Lily had a", "Tom went to the", "Sue saw a big"))]
ok += [sft[0]["messages"][-1]["content"] == "Lily had a red ball.", sft[1]["messages"][-1]["content"] == st["answers"][1],
       sft[2]["messages"][-1]["content"] == "Sue saw a big dog."]
ok += [pref[0]["preferred_output"][0]["content"] == "Lily had a red ball.", pref[0]["non_preferred_output"][0]["content"] == st["answers"][0],
       pref[1]["input"]["messages"][0]["content"] == "Sue saw a big"]
sys.exit(0 if all(ok) else 1)
PY' 'export contents: $(cat $tmp/sft.jsonl $tmp/preference.jsonl)'
expect '"$BIN" data check $tmp/sft.jsonl --approx-tokens --threads 1 > $tmp/chk1.txt 2>&1' 'data check refuses the sft export: $(tail -5 $tmp/chk1.txt)'
expect '"$BIN" data check $tmp/preference.jsonl --format preference --approx-tokens --threads 1 > $tmp/chk2.txt 2>&1' 'data check refuses the preference export: $(tail -5 $tmp/chk2.txt)'
expect '[ "$(ex sft $UK)" = 403 ] && [ "$(ex csv $AK)" = 400 ]' 'export with a user key / a bad format'
kill -TERM "$PID"; wait "$PID"; rc=$?; PID=
expect '[ $rc = 0 ]' 'exit status after SIGTERM: $rc'
# a row two days old, dropped by --log-days 1 at the next logged request
python3 -c "import sqlite3,sys,time; db=sqlite3.connect(sys.argv[1]); db.execute(\"insert into requests values('cmpl-old',?,'key2',NULL,'v1',200,0.1,1,1,NULL,NULL)\", (int(time.time()) - 2*86400,)); db.commit()" "$D/takumi.db"
start 2 --log-contents off --log-days 1
U=http://127.0.0.1:$PORT
sdk after
expect 'python3 -c "
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1]); u = json.load(open(sys.argv[2]))[\"unlogged\"]
row = db.execute(\"select request, response, model, deployment, tokens_out, owner from requests where id = ?\", (u,)).fetchone()
old = db.execute(\"select count(*) from requests where id = \x27cmpl-old\x27\").fetchone()[0]
n = db.execute(\"select count(*) from requests where request is not null\").fetchone()[0]
sys.exit(0 if row and row[0] is None and row[1] is None and row[2] == \"v1\" and row[3] == \"bot\" and row[4] == 4 and row[5].startswith(\"key\") and old == 0 and n > 200 else 1)
" $D/takumi.db $tmp/state2.json' 'the request log after --log-contents off --log-days 1'

# ---- vLLM's and llama-server's adapter routes (curl, as their users script them)
post() { curl -s -o "$3" -w %{http_code} -H "Authorization: Bearer ${4:-$AK}" -H "Content-Type: application/json" -d "$2" "$U$1"; }
text() { curl -s -H "Authorization: Bearer $AK" -d "{\"model\":\"$1\",\"prompt\":\"Lily had a\",\"temperature\":0,\"max_tokens\":12${2:-}}" $U/v1/completions |
         python3 -c "import json,sys; print(json.load(sys.stdin)[\"choices\"][0][\"text\"])"; }
base_t=$(text stories) v1_t=$(text v1) v2_t=$(text v2)
expect '[ "$base_t" != "$v2_t" ] && [ "$v1_t" != "$v2_t" ]' 'the versions answer alike: base $base_t, v1 $v1_t, v2 $v2_t'
expect '[ "$(post /v1/load_lora_adapter "{\"lora_name\":\"v3\",\"lora_path\":\"$tmp/v2/adapter\"}" $tmp/l1.txt)" = 200 ] && grep -q "^Success: LoRA adapter .v3. added successfully.$" $tmp/l1.txt' 'load_lora_adapter: $(cat $tmp/l1.txt)'
expect '[ "$(post /v1/load_lora_adapter "{\"lora_name\":\"v3\",\"lora_path\":\"$tmp/v2/adapter\"}" $tmp/l2.txt)" = 400 ]' 'loading v3 twice: $(cat $tmp/l2.txt)'
expect '[ "$(post /v1/load_lora_adapter "{\"lora_name\":\"v4\",\"lora_path\":\"$tmp/nope\"}" $tmp/l3.txt)" = 400 ] && grep -q lora_path $tmp/l3.txt' 'a missing lora_path: $(cat $tmp/l3.txt)'
expect '[ "$(post /v1/load_lora_adapter "{\"lora_name\":\"v5\",\"lora_path\":\"$tmp/v2/adapter\"}" $tmp/l4.txt $UK)" = 403 ]' 'a user key loads an adapter: $(cat $tmp/l4.txt)'
expect '[ "$(text v3)" = "$v2_t" ]' 'the loaded v3 (v2 files) answers $(text v3), v2 $v2_t'
expect 'curl -s -H "Authorization: Bearer $AK" $U/lora-adapters | python3 -c "import json,sys; d=json.load(sys.stdin); sys.exit(0 if [(a[\"id\"], a[\"name\"], a[\"scale\"]) for a in d if a[\"name\"] in (\"v1\",\"v2\",\"v3\")] == [(0,\"v1\",0),(1,\"v2\",0),(max(a[\"id\"] for a in d),\"v3\",0)] else 1)"' \
    '/lora-adapters: $(curl -s -H "Authorization: Bearer $AK" $U/lora-adapters)'
expect '[ "$(post /lora-adapters "[{\"id\":1,\"scale\":1.0}]" $tmp/s1.json)" = 200 ] && grep -q "{\"success\":true}" $tmp/s1.json' 'POST /lora-adapters: $(cat $tmp/s1.json)'
expect 'curl -s -H "Authorization: Bearer $AK" $U/lora-adapters | python3 -c "import json,sys; d=json.load(sys.stdin); sys.exit(0 if [a[\"name\"] for a in d if a[\"scale\"]] == [\"v2\"] and [a[\"scale\"] for a in d if a[\"name\"] == \"v2\"] == [1] else 1)"' 'scales after POST /lora-adapters'
expect '[ "$(text stories)" = "$v2_t" ]' 'a base request under the global scale of v2 answers $(text stories), v2 $v2_t'
expect '[ "$(text stories ",\"lora\":[]")" = "$base_t" ]' 'a request with lora [] under global scales: not the base'
expect '[ "$(text stories ",\"lora\":[{\"id\":0,\"scale\":1}]")" = "$v1_t" ]' 'per-request lora [{id 0}] is not v1'
expect '[ "$(post /lora-adapters "[{\"id\":9,\"scale\":1}]" $tmp/s2.json)" = 400 ] && [ "$(post /lora-adapters "{\"id\":0}" $tmp/s3.json)" = 400 ] && [ "$(post /lora-adapters "[]" $tmp/s4.json $UK)" = 403 ]' \
    'bad POST /lora-adapters: $(cat $tmp/s2.json $tmp/s3.json $tmp/s4.json)'
expect '[ "$(post /lora-adapters "[]" $tmp/s5.json)" = 200 ] && [ "$(text stories)" = "$base_t" ]' 'scales reset: the base request is not the base'
expect '[ "$(post /v1/unload_lora_adapter "{\"lora_name\":\"v3\"}" $tmp/u1.txt)" = 200 ] && grep -q "^Success: LoRA adapter .v3. removed successfully.$" $tmp/u1.txt' 'unload_lora_adapter: $(cat $tmp/u1.txt)'
expect '[ "$(post /v1/completions "{\"model\":\"v3\",\"prompt\":\"Hi\",\"max_tokens\":2}" $tmp/u2.json)" = 404 ] && [ "$(post /v1/unload_lora_adapter "{\"lora_name\":\"v3\"}" $tmp/u3.txt)" = 404 ]' 'v3 after unload: $(cat $tmp/u2.json $tmp/u3.txt)'
expect '! curl -s -H "Authorization: Bearer $AK" $U/v1/models | grep -q "\"v3\"" && ! curl -s -H "Authorization: Bearer $AK" $U/lora-adapters | grep -q "\"v3\""' 'v3 still listed after unload'
expect '[ "$(post /v1/load_lora_adapter "{\"lora_name\":\"v3\",\"lora_path\":\"$tmp/v1/adapter\"}" $tmp/l5.txt)" = 200 ] && [ "$(text v3)" = "$v1_t" ]' 'v3 loaded again (v1 files): $(cat $tmp/l5.txt)'

expect 'dep delete bot --key $AK && jq $tmp/dep.out "d[\"deleted\"]"' 'deploy delete: $(cat $tmp/dep.out $tmp/dep.err)'
expect '[ "$(curl -s -o /dev/null -w %{http_code} -H "Authorization: Bearer $UK" -d "{\"model\":\"bot\",\"prompt\":\"Hi\",\"max_tokens\":2}" $U/v1/completions)" = 404 ]' 'a deleted alias still answers'
kill -TERM "$PID"; wait "$PID"; rc=$?; PID=
expect '[ $rc = 0 ] && ! grep -q "Sanitizer" $tmp/server.log' 'the last exit: $rc $(grep -A5 Sanitizer $tmp/server.log | head -20)'
[ "$failures" -eq 0 ] || { echo "server log (last 30 lines):"; grep -v '" 200 ' "$tmp/server.log" | tail -30; }
echo "serve_deploy: $((checks - failures)) checks passed, $failures failed"
[ "$failures" -eq 0 ]
