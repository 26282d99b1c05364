#!/usr/bin/env bash
# Shell tests of `takumi inspect | generate | chat | perplexity` on the real stories260K
# (and SmolLM2 when fetched): output forms scripts depend on (generated text only on
# stdout, `perplexity: <number>` last), exact greedy text, exit codes and messages for
# bad input (never a signal). Prints one line per failed check and a closing count.
set -u
cd "$(dirname "$0")/.."
T=${TAKUMI_BIN:-$PWD/build/takumi}
SHARED=${TAKUMI_SHARED:-../shared}
S=$SHARED/models/stories260K
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pass=0; fail=0
ok() { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL: $*"; }
expect_rc() {
    local want=$1; shift
    "$@" >"$work/out" 2>"$work/err" </dev/null
    local rc=$?
    if [ "$rc" -eq "$want" ]; then ok; else bad "exit $rc (expected $want): $*"; sed 's/^/    /' "$work/err" | head -5; fi
}
has() { if grep -qF -- "$2" "$work/$1"; then ok; else bad "$1 lacks: $2"; sed 's/^/    /' "$work/$1" | head -5; fi; }

[ -x "$T" ] || { echo "FAIL: $T not built"; exit 1; }
if [ ! -f "$S/llama2c/stories260K.bin" ]; then
    if [ "${CI:-}" = true ]; then echo "FAIL: $S missing in CI"; exit 1; fi
    echo "SKIP: $S not found"; exit 0
fi

# --- inspect: text and JSON
expect_rc 0 "$T" inspect "$S/llama2c/stories260K.bin"
has out "parameters:     260032"
has out "heads:          8 query, 4 key/value, head dim 8"
has out "blk.4.ffn_down.weight"
has out "SentencePiece-style BPE"
expect_rc 0 "$T" inspect --json "$S/gguf/stories260K-f16.gguf"
has out '"architecture":	"llama"'
has out '"dtype":	"f16"'
has out '"layout":	"interleaved"'
expect_rc 0 "$T" inspect "$S/hf" --tokenizer "$S/llama2c/tok512.bin"
has out "halves (HF rotate_half)"

# --- generate: greedy from BOS prints exactly the reference text, nothing else on stdout
tail -n +2 "$S/llama2c/greedy_64_from_bos.txt" | head -c -1 >"$work/want"
for m in "$S/llama2c/stories260K.bin" "$S/gguf/stories260K-f32.gguf" "$S/hf"; do
    expect_rc 0 "$T" generate --model "$m" --tokenizer "$S/llama2c/tok512.bin" --prompt "" --temperature 0 --max-tokens 64 --verbose
    if cmp -s "$work/out" "$work/want"; then ok; else bad "generate $m: stdout differs from greedy_64_from_bos.txt"; head -c 300 "$work/out"; echo; fi
    has err "decode: 64 tokens"
done
expect_rc 0 "$T" generate --model "$S/llama2c/stories260K.bin" --prompt "Once upon a time" --temperature 0 --max-tokens 40 --stop "Lily"
if [ "$(cat "$work/out")" = ", there was a little girl named " ]; then ok; else bad "stop string: '$(cat "$work/out")'"; fi
# same seed, same text
"$T" generate --model "$S/llama2c/stories260K.bin" --prompt "Once" --seed 7 --max-tokens 30 >"$work/a" 2>/dev/null
"$T" generate --model "$S/llama2c/stories260K.bin" --prompt "Once" --seed 7 --max-tokens 30 >"$work/b" 2>/dev/null
if cmp -s "$work/a" "$work/b" && [ -s "$work/a" ]; then ok; else bad "--seed 7 twice gave different text"; fi

# --- chat from a pipe: one answer per line of input
printf 'hello\n\nhow are you\n' | "$T" chat --model "$S/llama2c/stories260K.bin" --template chatml --temperature 0 --max-tokens 8 >"$work/out" 2>"$work/err"
rc=$?
if [ $rc -eq 0 ] && [ "$(wc -l <"$work/out")" -eq 2 ]; then ok; else bad "chat: rc $rc, $(wc -l <"$work/out") answer lines"; sed 's/^/    /' "$work/err" | head -3; fi

# --- perplexity: the last line is `perplexity: <number>`
tail -n +2 "$S/llama2c/greedy_64_from_bos.txt" >"$work/story.txt"
expect_rc 0 "$T" perplexity --model "$S/llama2c/stories260K.bin" "$work/story.txt" --ctx 32 --stride 16
last=$(tail -n 1 "$work/out")
if [[ "$last" =~ ^perplexity:\ [0-9]+\.[0-9]+$ ]]; then ok; else bad "perplexity last line: '$last'"; fi
# the model's own greedy text is very likely under it: perplexity close to exp(mean golden NLL) ~ 1.5
p=${last#perplexity: }
if awk -v p="$p" 'BEGIN { exit !(p > 1.0 && p < 2.5) }'; then ok; else bad "perplexity of the greedy story: $p"; fi

# --- bad input: exit 1 with a message, never a signal
expect_rc 1 "$T" generate --model /nonexistent.gguf --prompt hi
has err "/nonexistent.gguf"
expect_rc 1 "$T" generate --model "$S/llama2c/stories260K.bin" --prompt hi --adapter "$work/no-such-adapter"
has err "no-such-adapter"
expect_rc 1 "$T" generate --model "$S/llama2c/stories260K.bin"
has err "--prompt"
expect_rc 1 "$T" generate --model "$S/llama2c/stories260K.bin" --prompt hi --top-p 2
expect_rc 1 "$T" generate --model "$S/llama2c/stories260K.bin" --prompt hi --bogus
has err "unknown option '--bogus'"
head -c 1000 "$S/gguf/stories260K-f32.gguf" >"$work/trunc.gguf"
expect_rc 1 "$T" inspect "$work/trunc.gguf"
has err "trunc.gguf"
expect_rc 1 "$T" perplexity --model "$S/llama2c/stories260K.bin" /nonexistent.txt
expect_rc 1 "$T" generate --model "$S/llama2c/stories260K.bin" --prompt "Once upon a time" --ctx 4
has err "context"

# --- SmolLM2 (the default model), when fetched
if [ -f models/SmolLM2-135M-Instruct.Q4_1.gguf ]; then
    expect_rc 0 "$T" generate --chat --temperature 0 --max-tokens 30 --prompt "What is the capital of France?"
    if [ "$(cat "$work/out")" = "The capital of France is Paris." ]; then ok; else bad "SmolLM2 answer: '$(cat "$work/out")'"; fi
    expect_rc 0 "$T" inspect
    has out "chat template:  smollm2"
    has out "q4_1"
fi

echo "model_cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
