#!/usr/bin/env bash
# takumi serve's web page (GET /dashboard, compiled into the binary) in a real browser: a server on stories260K
# (../shared) with two LoRA versions v1, v2 (trained here, ~3 s) and the deployment "bot" = v1 promoted to v2 (so it
# has a previous version); a 200-step fine-tuning job (curl: upload + create, with a validation file) runs while
# tests/serve_dashboard_drive.py drives headless Chromium over the DevTools pipe: the page asks for the key, shows
# the job's training-loss curve with N points and then more (advancing), lists the models, the deployment, usage
# and feedback, the validation curve and the checkpoints' losses (evaluation results); a click on the deployment's Rollback button must put "bot" back
# on v1, the canary form must give "helper" a 25% canary on v2 (150% refused by the form, a canary on its own model by the server, shown), the new-deployment
# form must create "fresh" = v1 — all checked here through the API (curl); a reinforcement job queued behind the first
# (the driver cancels that one) must show its mean training and validation rewards as curves. Needs Debian's chromium
# (scripts/deps.sh).
set -u
cd "$(dirname "$0")/.."
BIN=${TAKUMI_BIN:-$PWD/build/takumi}
S=${TAKUMI_SHARED:-../shared}/models/stories260K
G=$S/gguf/stories260K-f32.gguf
CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
need() {
    if [ "${CI:-}" = true ]; then echo "FAIL: required in CI: $1"; exit 1; fi
    echo "SKIP: $1"; exit 0
}
[ -f "$G" ] || need "models/stories260K (set TAKUMI_SHARED or place ../shared)"
[ -n "$CHROMIUM" ] || need "chromium (scripts/deps.sh)"
command -v curl >/dev/null || need "curl"
export OMP_WAIT_POLICY=passive
tmp=$(mktemp -d /tmp/takumi_dashboard_XXXXXX)
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

. tests/lib/serve_versions.bash
serve_versions_data "$tmp"
head -40 "$tmp/big.jsonl" > "$tmp/valid.jsonl"
serve_versions_train "$BIN" "$S" "$tmp"
AK=$("$BIN" serve --create-key --admin --data-dir "$D")
"$BIN" serve --port 0 --threads 1 --model "stories=$G" --adapter "v1=$tmp/v1/adapter" --adapter "v2=$tmp/v2/adapter" --data-dir "$D" 2> "$tmp/server.log" &
PID=$!; PORT=
for _ in $(seq 1 300); do
    PORT=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/server.log" | head -1)
    [ -n "$PORT" ] && break
    sleep 0.1
done
[ -n "$PORT" ] || { echo "FAIL: the server did not start: $(tail -3 "$tmp/server.log")"; exit 1; }
U=http://127.0.0.1:$PORT
H="Authorization: Bearer $AK"
post() { curl -s -o "$tmp/post.json" -w '%{http_code}' -H "$H" -H 'Content-Type: application/json' -d "$2" "$U$1"; }
field() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); [d := d[k] if isinstance(d, dict) else None for k in sys.argv[2:]]; print("null" if d is None else d)' "$@"; }

# the page: served without a key, as HTML with a CSP that allows this server only
curl -s -D "$tmp/page.h" -o "$tmp/page.html" "$U/dashboard"
expect 'grep -q "^HTTP/1.1 200" $tmp/page.h && grep -qi "^Content-Type: text/html" $tmp/page.h && grep -qi "^Content-Security-Policy: .*connect-src .self." $tmp/page.h' \
    'GET /dashboard headers: $(cat $tmp/page.h)'
expect 'cmp -s $tmp/page.html src/serve/dashboard.html' 'the page served differs from src/serve/dashboard.html'
expect '! grep -Eq "(src|href)=\"(https?:)?//" $tmp/page.html' 'the page fetches something from elsewhere'

# the deployment: bot = v1, canary v2, promoted (bot = v2, previous v1)
expect '[ "$(post /v1/deployments "{\"alias\":\"bot\",\"model\":\"v1\"}")" = 200 ]' 'create: $(cat $tmp/post.json)'
expect '[ "$(post /v1/deployments/bot/canary "{\"model\":\"v2\",\"percent\":30}")" = 200 ]' 'canary: $(cat $tmp/post.json)'
expect '[ "$(post /v1/deployments/bot/promote "{}")" = 200 ] && [ "$(field $tmp/post.json model)" = v2 ] && [ "$(field $tmp/post.json previous)" = v1 ]' \
    'promote: $(cat $tmp/post.json)'
# a second deployment with a canary (shown with its percent)
expect '[ "$(post /v1/deployments "{\"alias\":\"helper\",\"model\":\"stories\"}")" = 200 ] && [ "$(post /v1/deployments/helper/canary "{\"model\":\"v1\",\"percent\":10}")" = 200 ]' \
    'helper: $(cat $tmp/post.json)'

# a long job: 400 records, batch 4, 2 epochs = 200 steps, with a validation file
up() { curl -s -H "$H" -F purpose=fine-tune -F "file=@$1" "$U/v1/files" > "$tmp/up.json"; field "$tmp/up.json" id; }
tf=$(up "$tmp/big.jsonl") vf=$(up "$tmp/valid.jsonl")
expect '[ "$(post /v1/fine_tuning/jobs "{\"model\":\"stories\",\"training_file\":\"$tf\",\"validation_file\":\"$vf\",\"seed\":3,\"suffix\":\"dash\",\"method\":{\"type\":\"supervised\",\"supervised\":{\"hyperparameters\":{\"n_epochs\":2,\"batch_size\":4}}}}")" = 200 ]' \
    'job create: $(cat $tmp/post.json)'
job=$(field "$tmp/post.json" id)
# a reinforcement job queued behind it (the driver cancels the first): 8 prompts, a string_check grader, 4 steps,
# validation every 2 steps; the page draws its mean rewards instead of losses
names=(Lily Tom Sue Ben)
for i in $(seq 0 7); do printf '{"messages":[{"role":"user","content":"Tell me about %s."}],"name":"%s"}\n' "${names[$((i % 4))]}" "${names[$((i % 4))]}"; done > "$tmp/rft.jsonl"
head -3 "$tmp/rft.jsonl" > "$tmp/rft_val.jsonl"
rf=$(up "$tmp/rft.jsonl") rv=$(up "$tmp/rft_val.jsonl")
grader='{"type":"string_check","name":"has_name","input":"{{ sample.output_text }}","reference":"{{ item.name }}","operation":"ilike"}'
expect '[ "$(post /v1/fine_tuning/jobs "{\"model\":\"stories\",\"training_file\":\"$rf\",\"validation_file\":\"$rv\",\"seed\":1,\"method\":{\"type\":\"reinforcement\",\"reinforcement\":{\"grader\":$grader,\"hyperparameters\":{\"n_epochs\":1,\"batch_size\":2,\"eval_interval\":2}}}}")" = 200 ]' \
    'rft job create: $(cat $tmp/post.json)'
rjob=$(field "$tmp/post.json" id)

mkdir -p "$tmp/profile"
if timeout 150 python3 tests/serve_dashboard_drive.py "$CHROMIUM" "$U/dashboard" "$AK" "$job" "$tmp/profile" "$rjob" > "$tmp/drive.out" 2>&1; then checks=$((checks + 1))
else checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: driving the page:" >&2; cat "$tmp/drive.out" >&2; tail -5 "$tmp/profile/chromium.log" >&2 2>/dev/null; fi
grep '^ok \|^info ' "$tmp/drive.out"
n_drive=$(grep -c '^ok ' "$tmp/drive.out")
expect '[ "$n_drive" -eq 17 ]' 'the driver passed $n_drive checks of 17'

# the click took effect: bot is on v1 again (its previous version), checked through the API
curl -s -H "$H" "$U/v1/deployments/bot" > "$tmp/bot.json"
expect '[ "$(field $tmp/bot.json model)" = v1 ] && [ "$(field $tmp/bot.json previous)" = v2 ]' 'bot after the click on Rollback: $(cat $tmp/bot.json)'
# the canary form took effect: helper's canary is v2 for 25% (the refused tries changed nothing), and the new deployment exists
curl -s -H "$H" "$U/v1/deployments/helper" > "$tmp/helper.json"
expect '[ "$(field $tmp/helper.json canary model)" = v2 ] && awk -v p="$(field $tmp/helper.json canary percent)" "BEGIN { exit !(p == 25) }"' \
    'helper after the canary form: $(cat $tmp/helper.json)'
curl -s -H "$H" "$U/v1/deployments/fresh" > "$tmp/fresh.json"
expect '[ "$(field $tmp/fresh.json model)" = v1 ]' 'the deployment created on the page: $(cat $tmp/fresh.json)'
post /v1/fine_tuning/jobs/$job/cancel "{}" > /dev/null
post /v1/fine_tuning/jobs/$rjob/cancel "{}" > /dev/null
echo "serve dashboard: $((checks - failures)) checks passed, $failures failed"
[ "$failures" -eq 0 ]
