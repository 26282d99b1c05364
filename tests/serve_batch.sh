#!/usr/bin/env bash
# Continuous batching in `takumi serve` (src/serve/batcher.c), on stories260K (../shared) with two LoRAs:
#   - 12 clients at once (base and two adapters by model id, SSE and plain, max_tokens 8..40, greedy and
#     seeded) each get exactly the text `takumi generate` gives alone;
#   - /metrics: the batch counters agree with the tokens (every generated token but a row's last is one
#     row of a decode step: takumi_batch_rows_total = completion tokens - rows), the most rows of a step
#     is within --max-concurrent, no row is left once the clients are done;
#   - a streaming client that leaves after two chunks (asking for 400 tokens) does not change the others'
#     answers, and its row is freed early (fewer than 400 tokens generated, takumi_batch_rows back to 0).
# Whether rows overlap in time depends on the machine; that every row equals its one-at-a-time answer
# whatever the overlap, and that mixed-adapter rows decode together exactly, is also checked without
# timing in tests/test_generate_batch.c (the continuous batcher, 4 rows over 4 adapter lists).
set -u
cd "$(dirname "$0")/.."
NAME=serve_batch
. tests/lib/serve_harness.bash
S=${TAKUMI_SHARED:-../shared}/models/stories260K
[ -f "$S/hf/model.safetensors" ] && [ -f "$S/gguf/stories260K-f32.gguf" ] || need "models/stories260K (set TAKUMI_SHARED or place ../shared)"
command -v curl >/dev/null || need "curl"
G=$S/gguf/stories260K-f32.gguf
bad() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*" >&2; }
metric() { curl -s "http://127.0.0.1:$PORT/metrics" | sed -n "s/^$1 //p"; }

# ---- two adapters: the LoRAs v1, v2 on stories260K of tests/lib/serve_versions.bash
. tests/lib/serve_versions.bash
serve_versions_data "$tmp"
serve_versions_train "$BIN" "$S" "$tmp"

# ---- the cases and their answers from takumi generate, one at a time
prompts=("Tell me about Ben and the kite." "Once upon a time" "Lily had a cat.")
models=(stories kids1 kids2)
echo "[" > "$tmp/cases.json"
for i in $(seq 0 11); do
    p=${prompts[$((i % 3))]}; mi=$(((i / 3 + i) % 3)); model=${models[$mi]}
    mt=$((8 + 8 * (i % 4))); stream=false; [ $((i % 2)) = 1 ] && stream=true
    args=(--model "$G" --prompt "$p" --ctx 512 --threads 1 --max-tokens $mt)
    [ "$mi" -gt 0 ] && args+=(--adapter "$tmp/v$mi/adapter")
    seed=null temp=0
    if [ $((i % 5)) = 2 ]; then seed=$((100 + i)); temp=1; args+=(--temperature 1 --top-k 0 --top-p 1 --min-p 0 --seed $seed)
    else args+=(--temperature 0); fi
    "$BIN" generate "${args[@]}" > "$tmp/want$i.txt" 2> "$tmp/want$i.err" || bad "generate case $i: $(tail -2 "$tmp/want$i.err")"
    python3 - "$tmp/want$i.txt" "$i" "$model" "$p" "$mt" "$stream" "$temp" "$seed" >> "$tmp/cases.json" <<'PY'
import json, sys
f, i, model, p, mt, stream, temp, seed = sys.argv[1:9]
print(("," if i != "0" else "") + json.dumps({"name": "case %s (%s, %s tokens, stream %s, seed %s)" % (i, model, mt, stream, seed),
      "model": model, "prompt": p, "max_tokens": int(mt), "stream": stream == "true", "temperature": float(temp),
      "seed": None if seed == "null" else int(seed), "want": open(f, encoding="utf-8").read()}))
PY
done
echo "]" >> "$tmp/cases.json"
expect '! cmp -s "$tmp/want0.txt" "$tmp/want3.txt" || ! cmp -s "$tmp/want3.txt" "$tmp/want6.txt"' 'the adapters do not change the answers'

# ---- the server: 8 rows per batch (12 clients: 4 wait in the queue)
serve_start 1 --threads 1 --model "stories=$G" --adapter "kids1=$tmp/v1/adapter" --adapter "kids2=$tmp/v2/adapter" --ctx 512 \
    --data-dir "$D" --max-concurrent 8

python3 tests/serve_batch_drive.py "$PORT" "$tmp/cases.json" all > "$tmp/r1.json" 2> "$tmp/r1.err"
expect 'python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d[\"ok\"] == 12 and not d[\"bad\"] else 1)" $tmp/r1.json' \
    '12 clients at once: $(cat $tmp/r1.json $tmp/r1.err)'
tokens=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tokens"])' "$tmp/r1.json" 2>/dev/null || echo -1)
rows_total=$(metric takumi_batch_rows_total); steps=$(metric takumi_batch_steps_total); rmax=$(metric takumi_batch_rows_max)
expect '[ "$rows_total" = $((tokens - 12)) ]' '/metrics takumi_batch_rows_total $rows_total, want completion tokens $tokens - 12 rows'
expect '[ "${rmax:-0}" -ge 1 ] && [ "$rmax" -le 8 ] && [ "${steps:-0}" -ge 1 ] && [ "$steps" -le "$rows_total" ]' \
    'batch metrics: max $rmax rows in a step, $steps steps, $rows_total rows'
expect '[ "$(metric takumi_batch_rows)" = 0 ]' 'rows left in the batch after the clients: $(metric takumi_batch_rows)'
echo "12 clients: $tokens tokens in $steps decode steps (mean $(python3 -c "print(round($rows_total / max($steps, 1), 2))") rows, at most $rmax)"

# ---- the same with a client leaving mid-stream
python3 tests/serve_batch_drive.py "$PORT" "$tmp/cases.json" leave > "$tmp/r2.json" 2> "$tmp/r2.err"
expect 'python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d[\"ok\"] == 12 and not d[\"bad\"] else 1)" $tmp/r2.json' \
    'with a client leaving: $(cat $tmp/r2.json $tmp/r2.err)'
# the leaving client's tokens: the completion tokens counted since phase 1 less the 12 answers'
completions() { curl -s "http://127.0.0.1:$PORT/metrics" | sed -n 's/^takumi_requests_total{route="\/v1\/completions",status="[0-9]*"} //p' | awk '{s += $1} END {print s + 0}'; }
for _ in $(seq 1 100); do [ "$(completions)" = 25 ] && break; sleep 0.1; done   # the stream is counted when its connection ends
tokens2=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tokens"])' "$tmp/r2.json" 2>/dev/null || echo -1)
left=$(( $(metric takumi_completion_tokens_total) - tokens - tokens2 ))
expect '[ "$(completions)" = 25 ] && [ "$left" -ge 1 ] && [ "$left" -lt 400 ]' 'the leaving client generated $left of its 400 tokens (its row was not freed early)'
expect '[ "$(metric takumi_batch_rows)" = 0 ]' 'rows left after the leaving client: $(metric takumi_batch_rows)'

echo "the leaving client: $left tokens generated before its row was freed"
serve_finish serve_batch
