#!/usr/bin/env bash
# `takumi serve` end to end, on stories260K (../shared) and SmolLM2 (models/), on free ports:
#   (a) curl: every endpoint, greedy answers equal to `takumi generate`'s on the same prompt and model
#       (base, adapter by model id, adapter by llama-server's "lora" field, chat template on SmolLM2),
#       seeded sampling equal to generate's, stop strings, SSE stream shape and content, errors in
#       OpenAI's shape (400 malformed JSON / wrong type / unknown field / bad role, 401, 404, 405, 413),
#       concurrency (parallel answers unchanged; a full queue -> 503), a trickling client timed out,
#       /metrics and one log line per request, keys stored hashed in SQLite (WAL); logprobs equal to the
#       reference's teacher-forced log-probabilities, cut with a stop string, streamed in chat chunks, bad values;
#   (b) the official openai SDK (tests/serve_openai.py): models, chat plain and streamed, completions,
#       an adapter model id, typed errors, keys (missing under CI=true: a failure, not a skip), logprobs
#       (chat and completions, plain and streamed), n choices equal to n=1 with seed + k and interleaved;
#   (c) SIGTERM: the request in flight completes and the server exits 0.
set -u
cd "$(dirname "$0")/.."
BIN=${TAKUMI_BIN:-$PWD/build/takumi}
S=${TAKUMI_SHARED:-../shared}/models/stories260K
SMOL=${TAKUMI_SMOL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
need() {
    if [ "${CI:-}" = true ]; then echo "FAIL: required in CI: $1"; exit 1; fi
    echo "SKIP: $1 not found"; exit 0
}
[ -f "$S/hf/model.safetensors" ] && [ -f "$S/gguf/stories260K-f32.gguf" ] || need "models/stories260K (set TAKUMI_SHARED or place ../shared)"
[ -f "$SMOL" ] || need "$SMOL (scripts/fetch-model.sh)"
command -v curl >/dev/null || need "curl"
export OMP_WAIT_POLICY=passive
G=$S/gguf/stories260K-f32.gguf
tmp=$(mktemp -d /tmp/takumi_serve_XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT
checks=0 failures=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*" >&2; }
# expect CHECK MESSAGE: both evaluated when used (single-quote them), so the message shows the files after the check
expect() { if eval "$1"; then ok; else bad "$(eval "cat <<__MSG__
$2
__MSG__
")"; fi; }
# jq FILE PYEXPR: evaluates PYEXPR with d = the JSON in FILE; exit 0 when true
jq() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2" 2>/dev/null; }
# post PORT PATH BODY OUT [curl args]: prints the HTTP status
post() { local port=$1 path=$2 body=$3 out=$4; shift 4
    curl -s -o "$out" -w '%{http_code}' -H 'Content-Type: application/json' "$@" --data-binary "$body" "http://127.0.0.1:$port$path"; }
get() { local port=$1 path=$2 out=$3; shift 3; curl -s -o "$out" -w '%{http_code}' "$@" "http://127.0.0.1:$port$path"; }
# start NAME ARGS...: starts a server on a free port; sets PORT and PID
start() { local name=$1; shift
    "$BIN" serve --port 0 --threads 1 "$@" 2> "$tmp/$name.log" &
    PID=$!; pids+=("$PID"); PORT=
    for _ in $(seq 1 600); do
        PORT=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/$name.log" | head -1)
        [ -n "$PORT" ] && return 0
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    bad "server $name did not start: $(tail -3 "$tmp/$name.log")"; return 1
}
# wait_running PORT N: until /metrics shows N generations running
wait_running() { for _ in $(seq 1 600); do
        curl -s "http://127.0.0.1:$1/metrics" | grep -q "^takumi_generations_running $2\$" && return 0; sleep 0.05; done; return 1; }

# ---- an adapter to serve: a small LoRA on stories260K (as tests/adapter_cli.sh)
names=(Lily Tom Sue Ben Max Mia Sam Ann); things=(ball cat dog tree cake car boat kite)
for i in $(seq 0 23); do
    n=${names[$((i % 8))]}; t=${things[$(((i * 5) % 8))]}
    printf '{"prompt":"Tell me about %s and the %s.","completion":"%s had a %s. %s was happy."}\n' "$n" "$t" "$n" "$t" "$n"
done > "$tmp/d.jsonl"
"$BIN" train --model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --data "$tmp/d.jsonl" --max-seq-len 160 --samples 0 --threads 1 \
    --seed 5 --epochs 8 --lr 5e-3 --out "$tmp/run" > "$tmp/train.out" 2> "$tmp/train.err" || { bad "train: $(tail -2 "$tmp/train.err")"; exit 1; }

# ---- expected answers from takumi generate (greedy unless said)
P="Tell me about Ben and the kite."
CQ="What is the capital of France? Answer in one sentence."
gen() { local out=$1; shift; "$BIN" generate --ctx 512 --threads 1 "$@" > "$tmp/$out" 2> "$tmp/$out.err" || bad "generate $out: $(tail -2 "$tmp/$out.err")"; }
gen base.txt --model "$G" --prompt "$P" --temperature 0 --max-tokens 24
gen adapter.txt --model "$G" --adapter "$tmp/run/adapter" --prompt "$P" --temperature 0 --max-tokens 24
gen stop.txt --model "$G" --prompt "Once upon a time" --temperature 0 --max-tokens 40 --stop "Lily"
gen seeded.txt --model "$G" --prompt "Once upon a time" --temperature 1 --top-k 0 --top-p 1 --min-p 0 --seed 7 --max-tokens 24
gen chat.txt --model "$SMOL" --chat --prompt "$CQ" --temperature 0 --max-tokens 24
expect '! cmp -s "$tmp/base.txt" "$tmp/adapter.txt"' "the adapter does not change generate's text"
python3 - "$tmp" "$P" "$CQ" <<'PY'
import json, sys
t, p, cq = sys.argv[1:4]
r = lambda f: open(f"{t}/{f}", encoding="utf-8").read()
json.dump({"models": ["stories", "smol", "kids"], "base": "stories", "adapter": "kids", "prompt": p, "max_tokens": 24,
           "base_text": r("base.txt"), "adapter_text": r("adapter.txt"), "chat_model": "smol", "chat_prompt": cq,
           "chat_max_tokens": 24, "chat_text": r("chat.txt")}, open(f"{t}/expect.json", "w"))
PY

# ---- server A: no keys, two models and an adapter
start A --model "stories=$G" --model "smol=$SMOL" --adapter "kids=$tmp/run/adapter" --ctx 512 --data-dir "$tmp/dA" \
    --max-concurrent 2 --max-body 65536 --timeout 2 || exit 1
A=$PORT APID=$PID
expect '[ "$(get $A /health $tmp/h.json)" = 200 ] && jq $tmp/h.json "d == {\"status\": \"ok\"}"' '/health'
expect '[ "$(get $A /v1/models $tmp/m.json)" = 200 ] && jq $tmp/m.json "d[\"object\"] == \"list\" and sorted(m[\"id\"] for m in d[\"data\"]) == [\"kids\", \"smol\", \"stories\"] and all(m[\"object\"] == \"model\" and m[\"owned_by\"] and isinstance(m[\"created\"], int) for m in d[\"data\"])"' \
    '/v1/models: $(cat $tmp/m.json)'
expect '[ "$(get $A /v1/models/kids $tmp/m1.json)" = 200 ] && jq $tmp/m1.json "d[\"id\"] == \"kids\" and d[\"parent\"] == \"stories\""' '/v1/models/kids: $(cat $tmp/m1.json)'
expect '[ "$(get $A /v1/models/nope $tmp/m2.json)" = 404 ] && jq $tmp/m2.json "d[\"error\"][\"code\"] == \"model_not_found\" and d[\"error\"][\"type\"] == \"invalid_request_error\" and d[\"error\"][\"param\"] == \"model\""' \
    '/v1/models/nope: $(cat $tmp/m2.json)'
expect '[ "$(get $A /lora-adapters $tmp/l.json)" = 200 ] && jq $tmp/l.json "len(d) == 1 and d[0][\"id\"] == 0 and d[0][\"name\"] == \"kids\" and d[0][\"path\"].endswith(\"run/adapter\") and \"scale\" in d[0]"' \
    '/lora-adapters: $(cat $tmp/l.json)'

# greedy completions equal generate's: base, adapter by model id, adapter by "lora"
cmpl() { printf '{"model":"%s","prompt":"%s","max_tokens":24,"temperature":0%s}' "$1" "$P" "${2:-}"; }
text_is() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); c=d["choices"][0]; t=c.get("text", c.get("message", {}).get("content")); sys.exit(0 if t == open(sys.argv[2], encoding="utf-8").read() else 1)' "$1" "$2"; }
expect '[ "$(post $A /v1/completions "$(cmpl stories)" $tmp/c1.json)" = 200 ] && text_is $tmp/c1.json $tmp/base.txt' 'completions (base) differs from generate: $(cat $tmp/c1.json) vs $(cat $tmp/base.txt)'
expect 'jq $tmp/c1.json "d[\"object\"] == \"text_completion\" and d[\"model\"] == \"stories\" and d[\"id\"].startswith(\"cmpl-\") and d[\"usage\"][\"completion_tokens\"] == 24 and d[\"usage\"][\"prompt_tokens\"] > 5 and d[\"choices\"][0][\"finish_reason\"] == \"length\""' \
    'completion object: $(cat $tmp/c1.json)'
expect '[ "$(post $A /v1/completions "$(cmpl kids)" $tmp/c2.json)" = 200 ] && text_is $tmp/c2.json $tmp/adapter.txt && jq $tmp/c2.json "d[\"model\"] == \"kids\""' \
    'completions (adapter model id) differs from generate --adapter: $(cat $tmp/c2.json)'
expect '[ "$(post $A /v1/completions "$(cmpl stories ",\"lora\":[{\"id\":0,\"scale\":1.0}]")" $tmp/c3.json)" = 200 ] && text_is $tmp/c3.json $tmp/adapter.txt' \
    'completions with lora [{id 0}] differs from generate --adapter: $(cat $tmp/c3.json)'
expect '[ "$(post $A /v1/completions "$(cmpl stories)" $tmp/c4.json)" = 200 ] && text_is $tmp/c4.json $tmp/base.txt' 'base after the adapter: the adapter leaked into the next request'
expect '[ "$(post $A /v1/completions "{\"model\":\"stories\",\"prompt\":\"Once upon a time\",\"max_tokens\":40,\"temperature\":0,\"stop\":[\"Lily\"]}" $tmp/c5.json)" = 200 ] && text_is $tmp/c5.json $tmp/stop.txt && jq $tmp/c5.json "d[\"choices\"][0][\"finish_reason\"] == \"stop\""' \
    'stop string: $(cat $tmp/c5.json) vs $(cat $tmp/stop.txt)'
expect '[ "$(post $A /v1/completions "{\"model\":\"stories\",\"prompt\":\"Once upon a time\",\"max_tokens\":24,\"temperature\":1,\"seed\":7,\"n\":2}" $tmp/c6.json)" = 200 ] && text_is $tmp/c6.json $tmp/seeded.txt && jq $tmp/c6.json "len(d[\"choices\"]) == 2 and [c[\"index\"] for c in d[\"choices\"]] == [0, 1] and d[\"choices\"][0][\"text\"] != d[\"choices\"][1][\"text\"]"' \
    'seeded sampling (seed 7, n 2) differs from generate --seed 7: $(cat $tmp/c6.json) vs $(cat $tmp/seeded.txt)'
# chat on SmolLM2 (its chat template) equals generate --chat
chat_body='{"model":"smol","messages":[{"role":"user","content":"'"$CQ"'"}],"max_tokens":24,"temperature":0'
expect '[ "$(post $A /v1/chat/completions "$chat_body}" $tmp/ch.json)" = 200 ] && text_is $tmp/ch.json $tmp/chat.txt' 'chat differs from generate --chat: $(cat $tmp/ch.json) vs $(cat $tmp/chat.txt)'
expect 'jq $tmp/ch.json "d[\"object\"] == \"chat.completion\" and d[\"id\"].startswith(\"chatcmpl-\") and d[\"choices\"][0][\"message\"][\"role\"] == \"assistant\" and d[\"usage\"][\"total_tokens\"] == d[\"usage\"][\"prompt_tokens\"] + d[\"usage\"][\"completion_tokens\"]"' \
    'chat object: $(cat $tmp/ch.json)'
# content parts join to the same text
parts_body='{"model":"smol","messages":[{"role":"user","content":[{"type":"text","text":"What is the capital of France? "},{"type":"text","text":"Answer in one sentence."}]}],"max_tokens":24,"temperature":0}'
expect '[ "$(post $A /v1/chat/completions "$parts_body" $tmp/ch2.json)" = 200 ] && text_is $tmp/ch2.json $tmp/chat.txt' 'chat with content parts: $(cat $tmp/ch2.json)'

# SSE: shape and content
sse_check() {  # sse_check FILE EXPECTED_TEXT_FILE chat|cmpl usage|nousage
    python3 - "$@" <<'PY'
import json, sys
f, want, kind, usage = sys.argv[1:5]
raw = open(f, encoding="utf-8").read()
assert raw.endswith("data: [DONE]\n\n"), "no final data: [DONE]"
events = [e for e in raw.split("\n\n") if e and e != ": keep-alive"]  # SSE comments: keep-alives during a long prefill
assert all(e.startswith("data: ") and "\n" not in e for e in events), "an event is not one data: line"
objs = [json.loads(e[6:]) for e in events[:-1]]
text, finish, roles, ids = "", [], [], {o["id"] for o in objs}
assert len(ids) == 1, "ids differ between chunks"
for o in objs:
    assert o["object"] == ("chat.completion.chunk" if kind == "chat" else "text_completion"), o["object"]
    for c in o["choices"]:
        if kind == "chat":
            if "role" in c["delta"]: roles.append(c["delta"]["role"])
            text += c["delta"].get("content", "")
        else:
            text += c["text"]
        if c["finish_reason"]: finish.append(c["finish_reason"])
assert text == open(want, encoding="utf-8").read(), f"streamed text {text!r}"
assert len(finish) == 1, f"finish reasons {finish}"
if kind == "chat": assert roles == ["assistant"], f"roles {roles}"
if usage == "usage":
    assert objs[-1]["choices"] == [] and objs[-1]["usage"]["completion_tokens"] > 0, "no usage chunk"
    assert all(o["usage"] is None for o in objs[:-1]), "usage before the last chunk"
else:
    assert all("usage" not in o for o in objs), "usage without include_usage"
PY
}
expect 'post $A /v1/chat/completions "$chat_body,\"stream\":true,\"stream_options\":{\"include_usage\":true}}" $tmp/s1.txt -N > $tmp/s1.code && [ "$(cat $tmp/s1.code)" = 200 ] && sse_check $tmp/s1.txt $tmp/chat.txt chat usage' \
    'chat SSE stream: $(head -c 600 $tmp/s1.txt)'
expect 'curl -s -D $tmp/s2.h -o $tmp/s2.txt -N --data-binary "$(cmpl kids ",\"stream\":true")" http://127.0.0.1:$A/v1/completions && sse_check $tmp/s2.txt $tmp/adapter.txt cmpl nousage && grep -qi "^content-type: text/event-stream" $tmp/s2.h' \
    'completions SSE stream: $(head -c 600 $tmp/s2.txt)'

# n = 2 streamed: each index's chunks join to the same texts as the non-streamed answer with the same seed
expect 'curl -s -o $tmp/s3.txt -N --data-binary "{\"model\":\"stories\",\"prompt\":\"Once upon a time\",\"max_tokens\":24,\"temperature\":1,\"seed\":7,\"n\":2,\"stream\":true}" http://127.0.0.1:$A/v1/completions && python3 -c "import json,sys
ev=[json.loads(e[6:]) for e in open(sys.argv[1]).read().split(chr(10)*2) if e.startswith(\"data: {\")]
got=[\"\".join(c[\"text\"] for o in ev for c in o[\"choices\"] if c[\"index\"]==i) for i in (0,1)]
want=[c[\"text\"] for c in json.load(open(sys.argv[2]))[\"choices\"]]
sys.exit(0 if got==want and sum(1 for o in ev for c in o[\"choices\"] if c[\"finish_reason\"])==2 else 1)" $tmp/s3.txt $tmp/c6.json' \
    'n=2 stream differs from the non-streamed answer: $(head -c 400 $tmp/s3.txt)'

# errors in OpenAI's shape
err_is() {  # err_is FILE PARAM CODE: the error object, its param (None for null) and code
    python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["error"]; p=None if sys.argv[2]=="None" else sys.argv[2]; c=None if sys.argv[3]=="None" else sys.argv[3]
sys.exit(0 if set(e)=={"message","type","param","code"} and e["message"] and e["type"] and e["param"]==p and e["code"]==c else 1)' "$@"; }
expect '[ "$(post $A /v1/chat/completions "{\"model\":\"smol\",\"messages\":[" $tmp/e1.json)" = 400 ] && err_is $tmp/e1.json None None && grep -q "could not parse the JSON body" $tmp/e1.json' 'malformed JSON: $(cat $tmp/e1.json)'
expect '[ "$(post $A /v1/chat/completions "{\"model\":\"smol\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":\"hot\"}" $tmp/e2.json)" = 400 ] && err_is $tmp/e2.json temperature invalid_type' 'wrong type: $(cat $tmp/e2.json)'
expect '[ "$(post $A /v1/chat/completions "{\"model\":\"smol\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"temprature\":0}" $tmp/e3.json)" = 400 ] && err_is $tmp/e3.json temprature unknown_parameter' 'unknown field: $(cat $tmp/e3.json)'
expect '[ "$(post $A /v1/chat/completions "{\"model\":\"smol\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"robot\",\"content\":\"x\"}]}" $tmp/e4.json)" = 400 ] && err_is $tmp/e4.json "messages[1].role" invalid_value' 'bad role: $(cat $tmp/e4.json)'
expect '[ "$(post $A /v1/chat/completions "{\"model\":\"smol\"}" $tmp/e5.json)" = 400 ] && err_is $tmp/e5.json messages missing_required_parameter' 'missing messages: $(cat $tmp/e5.json)'
expect '[ "$(post $A /v1/chat/completions "{\"model\":\"gpt-5\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}" $tmp/e6.json)" = 404 ] && err_is $tmp/e6.json model model_not_found' 'unknown model: $(cat $tmp/e6.json)'
expect '[ "$(post $A /v1/chat/completions "{\"model\":\"smol\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":0}" $tmp/e7.json)" = 400 ] && err_is $tmp/e7.json max_tokens invalid_value' 'max_tokens 0: $(cat $tmp/e7.json)'
expect '[ "$(post $A /v1/chat/completions "{\"model\":\"smol\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"logprobs\":true,\"top_logprobs\":21}" $tmp/e8.json)" = 400 ] && err_is $tmp/e8.json top_logprobs invalid_value' 'top_logprobs 21: $(cat $tmp/e8.json)'
expect '[ "$(post $A /v1/chat/completions "{\"model\":\"smol\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"logprobs\":\"yes\"}" $tmp/e8b.json)" = 400 ] && err_is $tmp/e8b.json logprobs invalid_type' 'logprobs "yes": $(cat $tmp/e8b.json)'
expect '[ "$(post $A /v1/chat/completions "{\"model\":\"smol\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"top_logprobs\":2}" $tmp/e8c.json)" = 400 ] && err_is $tmp/e8c.json top_logprobs invalid_value && grep -q "only allowed when .logprobs. is enabled" $tmp/e8c.json' 'top_logprobs without logprobs: $(cat $tmp/e8c.json)'
expect '[ "$(post $A /v1/completions "$(cmpl stories ",\"logprobs\":6")" $tmp/e8d.json)" = 400 ] && err_is $tmp/e8d.json logprobs invalid_value' 'completions logprobs 6: $(cat $tmp/e8d.json)'
expect '[ "$(post $A /v1/completions "$(cmpl stories ",\"lora\":[{\"id\":5}]")" $tmp/e9.json)" = 400 ] && err_is $tmp/e9.json "lora[0].id" invalid_value' 'bad lora id: $(cat $tmp/e9.json)'
expect '[ "$(post $A /v1/completions "{\"model\":\"stories\",\"prompt\":\"$(head -c 3000 /dev/zero | tr "\0" "a")\"}" $tmp/e10.json)" = 400 ] && err_is $tmp/e10.json prompt context_length_exceeded' 'prompt over the context: $(cat $tmp/e10.json)'
head -c 70000 /dev/zero | tr '\0' 'x' > "$tmp/big.txt"
expect '[ "$(curl -s -o $tmp/e11.json -w "%{http_code}" --data-binary @$tmp/big.txt http://127.0.0.1:$A/v1/chat/completions)" = 413 ] && err_is $tmp/e11.json None request_too_large' '413 (Content-Length): $(cat $tmp/e11.json)'
expect '[ "$(curl -s -o $tmp/e12.json -w "%{http_code}" -H "Transfer-Encoding: chunked" --data-binary @$tmp/big.txt http://127.0.0.1:$A/v1/chat/completions)" = 413 ] && err_is $tmp/e12.json None request_too_large' '413 (chunked): $(cat $tmp/e12.json)'
expect '[ "$(get $A /v1/chat/completions $tmp/e13.json)" = 405 ] && err_is $tmp/e13.json None method_not_allowed' 'GET on a POST route: $(cat $tmp/e13.json)'
expect '[ "$(get $A /v1/assistants $tmp/e14.json)" = 404 ] && err_is $tmp/e14.json None unknown_url' 'unknown URL: $(cat $tmp/e14.json)'
expect '[ "$(get $A /v1/models/../../etc/passwd $tmp/e15.json --path-as-is)" = 404 ]' 'path tricks: $(cat $tmp/e15.json)'

# concurrency: 4 parallel greedy requests (2 generate at once, 2 wait) all give generate's answer
# (and two SmolLM2 chats at once: their prefills run through the BLAS products side by side)
for i in 1 2 3 4; do post $A /v1/completions "$(cmpl stories)" "$tmp/p$i.json" > "$tmp/p$i.code" & done; wait_n=0
for i in 5 6; do post $A /v1/chat/completions "$chat_body}" "$tmp/p$i.json" > "$tmp/p$i.code" & done
for i in 1 2 3 4 5 6; do while [ ! -s "$tmp/p$i.code" ] && [ $wait_n -lt 1200 ]; do sleep 0.05; wait_n=$((wait_n + 1)); done; done
sleep 0.2
for i in 1 2 3 4; do expect '[ "$(cat $tmp/p$i.code)" = 200 ] && text_is $tmp/p$i.json $tmp/base.txt' 'parallel request $i: $(cat $tmp/p$i.json)'; done
for i in 5 6; do expect '[ "$(cat $tmp/p$i.code)" = 200 ] && text_is $tmp/p$i.json $tmp/chat.txt' 'parallel chat $i: $(cat $tmp/p$i.json)'; done

# a client trickling its request is cut off after --timeout (2 s); the server keeps serving
python3 - "$A" > "$tmp/slow.txt" 2>&1 <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
s.settimeout(10)
t0 = time.time()
try:
    data = s.recv(100)
    print("closed" if data == b"" else "data", round(time.time() - t0, 1))
except (socket.timeout, TimeoutError):
    print("open", round(time.time() - t0, 1))
except ConnectionResetError:
    print("closed", round(time.time() - t0, 1))
PY
expect 'grep -q "^closed" $tmp/slow.txt' 'a trickling client was not timed out: $(cat $tmp/slow.txt)'
expect '[ "$(get $A /health $tmp/h2.json)" = 200 ]' '/health after the slow client'
# 300 connections opened and left idle (more than --max-connections' 256): all are timed out, the server serves on
python3 - "$A" > "$tmp/idle.txt" 2>&1 <<'PY'
import socket, sys, time
socks = [socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5) for _ in range(300)]
time.sleep(6.5)  # two rounds of the 2 s timeout: 256 at once, then the rest
closed = 0
for s in socks:
    s.settimeout(0.5)
    try:
        closed += s.recv(1) == b""
    except ConnectionResetError:
        closed += 1
    except (socket.timeout, TimeoutError):
        pass
print(closed)
PY
expect '[ "$(cat $tmp/idle.txt)" = 300 ]' '300 idle connections: $(cat $tmp/idle.txt) closed after 6.5 s'
expect '[ "$(get $A /health $tmp/h3.json)" = 200 ]' '/health after 300 idle connections'

# a client that gives up (curl -m 1) frees its generation slot: the generation stops early and is logged as 499
curl -s -m 1 -o /dev/null --data-binary '{"model":"smol","messages":[{"role":"user","content":"Write a long story about a dragon."}],"max_tokens":300,"temperature":0}' \
    "http://127.0.0.1:$A/v1/chat/completions"
expect 'wait_running $A 0' 'the abandoned generation still runs'
expect 'grep -q "\"POST /v1/chat/completions\" 499 [0-9.]*s in=[0-9]* out=\([0-9]\|[0-9][0-9]\|1[0-9][0-9]\) model=smol" $tmp/A.log' \
    'the abandoned request: $(grep " 499 " $tmp/A.log)'

# metrics and the log
get $A /metrics "$tmp/metrics.txt" > /dev/null
expect 'grep -q "^takumi_requests_total{route=\"/v1/completions\",status=\"200\"} 1[0-9]$" $tmp/metrics.txt' 'metrics: completions 200 count: $(grep requests_total $tmp/metrics.txt)'
expect 'grep -q "^takumi_requests_total{route=\"/v1/chat/completions\",status=\"400\"} [0-9]" $tmp/metrics.txt && grep -q "^takumi_requests_total{route=\"/v1/chat/completions\",status=\"413\"} 2$" $tmp/metrics.txt' 'metrics: error counts: $(grep requests_total $tmp/metrics.txt)'
expect 'grep -q "^takumi_request_duration_seconds_bucket{route=\"/v1/chat/completions\",le=\"+Inf\"} [0-9]" $tmp/metrics.txt && grep -q "^# TYPE takumi_request_duration_seconds histogram$" $tmp/metrics.txt' 'metrics: histogram'
expect 'awk "/^takumi_completion_tokens_total/ {exit !(\$2 > 200)}" $tmp/metrics.txt && awk "/^takumi_prompt_tokens_total/ {exit !(\$2 > 100)}" $tmp/metrics.txt' 'metrics: token counters: $(grep tokens_total $tmp/metrics.txt)'
n_log=$(grep -c '"POST /v1/completions" 200 ' "$tmp/A.log")
n_metric=$(sed -n 's/^takumi_requests_total{route="\/v1\/completions",status="200"} //p' "$tmp/metrics.txt")
expect '[ "$n_log" = "$n_metric" ]' 'log lines ($n_log) != completions counted ($n_metric)'
expect 'grep -q "\"POST /v1/completions\" 200 [0-9.]*s in=[0-9]* out=24 model=kids" $tmp/A.log' 'log line format: $(grep completions $tmp/A.log | head -2)'

# logprobs against the model's reference: greedy from BOS (an empty prompt) gives stories260K's 64 reference ids,
# whose teacher-forced log-probabilities the reference file holds (per_position_nll, from llama2.c's forward)
expect '[ "$(post $A /v1/completions "{\"model\":\"stories\",\"prompt\":\"\",\"max_tokens\":64,\"temperature\":0,\"logprobs\":1}" $tmp/lp1.json)" = 200 ] && python3 -c "import json,sys
d=json.load(open(sys.argv[1]))[\"choices\"][0]; ref=json.load(open(sys.argv[2])); lp=d[\"logprobs\"]
want=[-x for x in ref[\"per_position_nll\"]]; got=lp[\"token_logprobs\"]
ok=len(got)==64 and max(abs(a-b) for a,b in zip(got,want))<1e-4 and abs(sum(got)-sum(want))<1e-3 and \"\".join(lp[\"tokens\"])==d[\"text\"] and d[\"text\"].startswith(\"Once upon a time, there was a little girl named Lily.\")
sys.exit(0 if ok else 1)" $tmp/lp1.json $S/llama2c/golden_logits_and_loss.json' \
    'logprobs vs the teacher-forced reference: $(head -c 900 $tmp/lp1.json)'
# a stop string: tokens past the returned text are not reported (the token the stop string cuts into is)
expect '[ "$(post $A /v1/completions "{\"model\":\"stories\",\"prompt\":\"Once upon a time\",\"max_tokens\":40,\"temperature\":0,\"stop\":[\"Lily\"],\"logprobs\":0}" $tmp/lp2.json)" = 200 ] && text_is $tmp/lp2.json $tmp/stop.txt && python3 -c "import json,sys
d=json.load(open(sys.argv[1]))[\"choices\"][0]; t=d[\"logprobs\"][\"tokens\"]; j=\"\".join(t)
sys.exit(0 if d[\"finish_reason\"]==\"stop\" and j.startswith(d[\"text\"]) and len(\"\".join(t[:-1]))<len(d[\"text\"]) and all(len(x)==1 for x in d[\"logprobs\"][\"top_logprobs\"]) else 1)" $tmp/lp2.json' \
    'logprobs with a stop string: $(cat $tmp/lp2.json)'
# streamed chat on SmolLM2: each text chunk carries {"content": [its tokens], "refusal": null}; role and finish chunks null
expect 'post $A /v1/chat/completions "$chat_body,\"logprobs\":true,\"top_logprobs\":1,\"stream\":true}" $tmp/lp3.txt -N > /dev/null && python3 -c "import json,sys
ev=[json.loads(e[6:]) for e in open(sys.argv[1]).read().split(chr(10)*2) if e.startswith(\"data: {\")]
cs=[c for o in ev for c in o[\"choices\"]]
txt=[c for c in cs if c[\"delta\"].get(\"content\")]
ok=all(c[\"logprobs\"] is None for c in cs if not c[\"delta\"].get(\"content\")) and all(set(c[\"logprobs\"])=={\"content\",\"refusal\"} and c[\"logprobs\"][\"refusal\"] is None and bytes(b for e in c[\"logprobs\"][\"content\"] for b in e[\"bytes\"])==c[\"delta\"][\"content\"].encode() and all(len(e[\"top_logprobs\"])==1 for e in c[\"logprobs\"][\"content\"]) for c in txt)
sys.exit(0 if ok and \"\".join(c[\"delta\"][\"content\"] for c in txt)==open(sys.argv[2]).read() else 1)" $tmp/lp3.txt $tmp/chat.txt' \
    'streamed chat logprobs: $(head -c 900 $tmp/lp3.txt)'

# n choices of one prompt: the prompt is prefilled once, its cache copied to the other choices (/metrics' counters)
metric() { curl -s "http://127.0.0.1:$A/metrics" | sed -n "s/^$1 //p"; }
pf0=$(metric takumi_prompt_tokens_prefilled_total) ru0=$(metric takumi_prompt_tokens_reused_total)
expect '[ "$(post $A /v1/completions "{\"model\":\"stories\",\"prompt\":\"Ben saw a red kite in the park.\",\"max_tokens\":8,\"temperature\":1,\"seed\":3,\"n\":3}" $tmp/n3.json)" = 200 ]' 'n=3: $(cat $tmp/n3.json)'
pt=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["usage"]["prompt_tokens"])' "$tmp/n3.json" 2>/dev/null)
pf1=$(metric takumi_prompt_tokens_prefilled_total) ru1=$(metric takumi_prompt_tokens_reused_total)
expect '[ -n "$pt" ] && [ $((pf1 - pf0)) = "$pt" ] && [ $((ru1 - ru0)) = $((2 * pt)) ]' \
    'n=3 over a $pt-token prompt: $((pf1 - pf0)) prompt tokens evaluated (want $pt), $((ru1 - ru0)) reused (want $((2 * pt)))'

# ---- (b) the openai SDK, and keys (server K)
"$BIN" serve --create-key --data-dir "$tmp/dK" > "$tmp/key.txt" 2> "$tmp/key.err"
KEY=$(cat "$tmp/key.txt")
expect '[[ "$KEY" =~ ^tk-[0-9a-f]{48}$ ]]' '--create-key printed "$KEY" $(cat $tmp/key.err)'
"$BIN" serve --create-key --admin --data-dir "$tmp/dK" > "$tmp/key2.txt" 2>&1
expect 'python3 -c "import sqlite3,sys; db=sqlite3.connect(sys.argv[1]); rows=db.execute(\"select lookup,salt,hash,admin from api_keys\").fetchall(); j=db.execute(\"pragma journal_mode\").fetchone()[0]
import hashlib; k=open(sys.argv[2]).read().strip(); ok=[r for r in rows if hashlib.sha256(bytes.fromhex(r[1])+k.encode()).hexdigest()==r[2]]
sys.exit(0 if j==\"wal\" and len(rows)==2 and len(ok)==1 and ok[0][3]==0 and sorted(r[3] for r in rows)==[0,1] else 1)" $tmp/dK/takumi.db $tmp/key.txt' \
    "takumi.db: WAL, two keys stored as salted SHA-256 (checked with Python's hashlib)"
expect '! grep -qa "$KEY" $tmp/dK/takumi.db*' 'the key is stored in the clear'
echo "a-file-key-0123456789" > "$tmp/keys.txt"
start K --model "stories=$G" --ctx 512 --data-dir "$tmp/dK" --api-key-file "$tmp/keys.txt" || exit 1
K=$PORT KPID=$PID
expect '[ "$(get $K /v1/models $tmp/k1.json)" = 401 ] && err_is $tmp/k1.json None missing_api_key' 'no key: $(cat $tmp/k1.json)'
expect '[ "$(get $K /v1/models $tmp/k2.json -H "Authorization: Bearer tk-000000000000000000000000000000000000000000000000")" = 401 ] && err_is $tmp/k2.json None invalid_api_key' 'wrong key: $(cat $tmp/k2.json)'
expect '[ "$(post $K /v1/completions "$(cmpl stories)" $tmp/k3.json)" = 401 ]' 'completion without a key: $(cat $tmp/k3.json)'
expect '[ "$(get $K /v1/models $tmp/k4.json -H "Authorization: Bearer $KEY")" = 200 ]' 'the created key: $(cat $tmp/k4.json)'
expect '[ "$(get $K /v1/models $tmp/k5.json -H "Authorization: Bearer $(cat $tmp/key2.txt)")" = 200 ]' 'the admin key: $(cat $tmp/k5.json)'
expect '[ "$(get $K /v1/models $tmp/k6.json -H "Authorization: Bearer a-file-key-0123456789")" = 200 ]' 'the --api-key-file key: $(cat $tmp/k6.json)'
expect '[ "$(get $K /health $tmp/k7.json)" = 200 ]' '/health needs no key'
"$BIN" serve --create-key --data-dir "$tmp/dK" > "$tmp/key3.txt" 2>&1   # created while the server runs
expect '[ "$(get $K /v1/models $tmp/k8.json -H "Authorization: Bearer $(cat $tmp/key3.txt)")" = 200 ]' 'a key created while serving'

python3 tests/serve_openai.py "http://127.0.0.1:$A/v1" "$tmp/expect.json" "http://127.0.0.1:$K/v1" "$KEY" > "$tmp/sdk.txt" 2>&1
rc=$?
if [ $rc = 2 ] && [ "${CI:-}" != true ]; then echo "$(cat "$tmp/sdk.txt") — the SDK part skipped"
else expect '[ $rc = 0 ]' "openai SDK: $(cat $tmp/sdk.txt)"; fi
[ $rc = 0 ] && tail -1 "$tmp/sdk.txt"

# ---- a full queue answers 503 (server Q: 1 generation, no queue)
start Q --model "smol=$SMOL" --ctx 512 --data-dir "$tmp/dQ" --max-concurrent 1 --max-queue 0 || exit 1
Q=$PORT QPID=$PID
long_body='{"model":"smol","messages":[{"role":"user","content":"Write a long story about a dragon."}],"temperature":0'
post $Q /v1/chat/completions "$long_body,\"max_tokens\":48}" "$tmp/q1.json" > "$tmp/q1.code" &
qc=$!
expect 'wait_running $Q 1' 'the first request never ran'
expect '[ "$(post $Q /v1/chat/completions "$chat_body}" $tmp/q2.json)" = 503 ] && err_is $tmp/q2.json None server_overloaded' 'queue full: $(cat $tmp/q2.json)'
wait $qc
expect '[ "$(cat $tmp/q1.code)" = 200 ]' 'the running request after a 503: $(cat $tmp/q1.json)'

# ---- (c) SIGTERM: the request in flight completes, exit 0
post $Q /v1/chat/completions "$long_body,\"max_tokens\":40,\"stream\":true}" "$tmp/t1.txt" -N > "$tmp/t1.code" &
tc=$!
expect 'wait_running $Q 1' 'the request before SIGTERM never ran'
kill -TERM "$QPID"
wait "$QPID"; qrc=$?
wait $tc
expect '[ $qrc = 0 ]' 'exit status after SIGTERM: $qrc ($(tail -2 $tmp/Q.log))'
expect '[ "$(cat $tmp/t1.code)" = 200 ] && tail -c 14 $tmp/t1.txt | grep -q "data: \[DONE\]" && grep -q "\"finish_reason\":\"length\"" $tmp/t1.txt' 'the stream in flight at SIGTERM: $(tail -c 300 $tmp/t1.txt)'
expect 'grep -q "stopped" $tmp/Q.log' "no 'stopped' in the log"
expect '! curl -s -m 2 http://127.0.0.1:$Q/health > /dev/null' 'still answering after SIGTERM'
kill -TERM "$APID" "$KPID"; wait "$APID"; arc=$?; wait "$KPID"; krc=$?
expect '[ $arc = 0 ] && [ $krc = 0 ]' 'servers A, K exit status $arc, $krc: $(grep -v " 200 " $tmp/A.log | tail -40)'

# ---- bad command lines
expect '! "$BIN" serve --model "$G" --adapter nameless --data-dir $tmp/dX --port 0 2> $tmp/b1.err && grep -q "NAME=DIR" $tmp/b1.err' '--adapter without NAME: $(cat $tmp/b1.err)'
expect '! "$BIN" serve --model "$G" --host example.com --data-dir $tmp/dX 2> $tmp/b2.err && grep -q "host" $tmp/b2.err' '--host name: $(cat $tmp/b2.err)'
expect '! "$BIN" serve --model "$tmp/nope.gguf" --data-dir $tmp/dX --port 0 2> $tmp/b3.err && grep -q "nope.gguf" $tmp/b3.err' 'missing model: $(cat $tmp/b3.err)'
expect '! "$BIN" serve --model "a=$G" --model "a=$G" --data-dir $tmp/dX --port 0 2> $tmp/b4.err && grep -q "used twice" $tmp/b4.err' 'duplicate model id: $(cat $tmp/b4.err)'
expect '! "$BIN" serve --model "$G" --port 70000 2> $tmp/b5.err && grep -q "port" $tmp/b5.err' '--port 70000: $(cat $tmp/b5.err)'

expect 'python3 -c "import socket,subprocess,sys
s=socket.socket(); s.bind((\"127.0.0.1\",0)); s.listen(); p=s.getsockname()[1]
r=subprocess.run([sys.argv[1],\"serve\",\"--model\",sys.argv[2],\"--port\",str(p),\"--data-dir\",sys.argv[3]],capture_output=True,text=True)
sys.exit(0 if r.returncode==1 and \"cannot listen on 127.0.0.1:%d\" % p in r.stderr else 1)" "$BIN" "$G" $tmp/dX' 'a port in use is not refused with a message'

echo "serve_cli: $((checks - failures)) checks passed, $failures failed"
[ "$failures" -eq 0 ]
