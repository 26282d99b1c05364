#!/usr/bin/env bash
# takumi serve applies every PEFT method takumi trains, not only LoRA: on stories260K (../shared) one short run
# each of --method dora, ia3, prefix, prompt, adapter (bottleneck) and adalora, all served at once as model ids
# of one `takumi serve` (--adapter NAME=DIR), and each id's greedy answer over /v1/completions equals
# `takumi generate --adapter DIR` on the same prompt (and differs from the base's); a folder that is no adapter
# is refused at start naming it.
set -u
cd "$(dirname "$0")/.."
NAME=serve_peft_methods
. tests/lib/serve_harness.bash
S=${TAKUMI_SHARED:-../shared}/models/stories260K
[ -f "$S/hf/model.safetensors" ] && [ -f "$S/llama2c/tok512.bin" ] || need "models/stories260K (set TAKUMI_SHARED or place ../shared)"
command -v curl > /dev/null || need "curl"
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*" >&2; }
TOK=$S/llama2c/tok512.bin
P="Tell me about Ben and the kite."

names=(Lily Tom Sue Ben Max Mia Sam Ann); things=(ball cat dog tree cake car boat kite)
for i in $(seq 0 23); do
    n=${names[$((i % 8))]}; t=${things[$(((i * 5) % 8))]}
    printf '{"prompt":"Tell me about %s and the %s.","completion":"%s had a %s. %s was happy."}\n' "$n" "$t" "$n" "$t" "$n"
done > "$tmp/d.jsonl"

gen() {  # gen OUT [args...]: takumi generate's greedy text
    local out=$1; shift
    "$BIN" generate --model "$S/hf" --tokenizer "$TOK" --prompt "$P" --temperature 0 --max-tokens 24 --threads 1 "$@" \
        > "$tmp/$out" 2> "$tmp/$out.err" || bad "generate $out: $(tail -2 "$tmp/$out.err")"
}
gen base.txt
methods="dora ia3 prefix prompt adapter adalora"
served=()
for m in $methods; do
    extra=()
    case $m in
        prefix) extra=(--num-virtual-tokens 4) ;;
        prompt) extra=(--num-virtual-tokens 4) ;;
        adalora) extra=(--adalora-tinit 2 --adalora-tfinal 2) ;;
    esac
    if "$BIN" train --model "$S/hf" --tokenizer "$TOK" --data "$tmp/d.jsonl" --method "$m" --max-seq-len 160 --samples 0 \
          --threads 1 --seed 5 --epochs 4 --lr 1e-2 --out "$tmp/$m" "${extra[@]}" > "$tmp/$m.out" 2> "$tmp/$m.err"; then ok
    else bad "$m: train failed: $(tail -3 "$tmp/$m.err")"; continue; fi
    gen "$m.txt" --adapter "$tmp/$m/adapter"
    if cmp -s "$tmp/base.txt" "$tmp/$m.txt"; then bad "$m: the adapter does not change generate's text"; else ok; fi
    served+=(--adapter "$m=$tmp/$m/adapter")
done

serve_start 1 --threads 1 --model "base=$S/hf" --tokenizer "$TOK" --data-dir "$D" "${served[@]}"
ok
for m in base $methods; do
    [ "$m" = base ] || [ -s "$tmp/$m.txt" ] || continue
    body=$(python3 -c 'import json, sys; print(json.dumps({"model": sys.argv[1], "prompt": sys.argv[2], "max_tokens": 24, "temperature": 0}))' "$m" "$P")
    code=$(curl -s -o "$tmp/$m.json" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "$body" "http://127.0.0.1:$PORT/v1/completions")
    if [ "$code" != 200 ]; then bad "$m: HTTP $code: $(head -c 300 "$tmp/$m.json")"; continue; fi
    if python3 - "$tmp/$m.json" "$tmp/$m.txt" "$P" <<'PY'
import json, sys
got = json.load(open(sys.argv[1]))["choices"][0]["text"]
want = open(sys.argv[2]).read()
# takumi generate prints the prompt and the answer (and a newline); the API answers the continuation only
for w in (want, want.rstrip("\n")):
    if w.endswith(got) and got and (w == got or w[:len(w) - len(got)].rstrip() in (sys.argv[3], sys.argv[3].rstrip())):
        sys.exit(0)
sys.exit(f"served {got!r}\n  generate {want!r}")
PY
    then ok; else bad "$m: served answer differs from takumi generate --adapter"; fi
done
serve_stop

# a folder that is no adapter: refused at start, naming it
mkdir -p "$tmp/notadapter"
echo '{}' > "$tmp/notadapter/adapter_config.json"
if "$BIN" serve --port 0 --threads 1 --model "base=$S/hf" --tokenizer "$TOK" --data-dir "$tmp/data2" --adapter "x=$tmp/notadapter" \
       > /dev/null 2> "$tmp/bad.log"; then bad "serve accepted a folder without an adapter"
elif grep -q "notadapter" "$tmp/bad.log"; then ok
else bad "the refusal does not name the folder: $(tail -2 "$tmp/bad.log")"; fi

serve_finish serve_peft_methods
