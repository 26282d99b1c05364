# Shared set-up of the tests of objectives that sample their own answers (train_grpo_cli.sh,
# train_self_cli.sh): the stories260K model (skip outside CI when ../shared is missing), a temporary
# folder, the ok/bad counters, prompts in OpenAI's RFT format ("Tell me about NAME and the THING.",
# the name in a field the grader reads) and a string_check grader (does the answer contain the name?).
# Sourced with NAME set to the test's name; defines BIN, S, tmp, ok, bad, prompts and writes
# $tmp/p.jsonl (16 prompts), $tmp/v.jsonl (4 held-out prompts) and $tmp/g.json.
BIN=${TAKUMI_BIN:-$PWD/build/takumi}
S=${TAKUMI_SHARED:-../shared}/models/stories260K
if [ ! -f "$S/hf/model.safetensors" ]; then
    if [ "${CI:-}" = true ]; then echo "FAIL: required asset missing in CI: models/stories260K"; exit 1; fi
    echo "SKIP: models/stories260K not found (set TAKUMI_SHARED or place ../shared)"; exit 0
fi
tmp=$(mktemp -d "/tmp/takumi_${NAME}_XXXXXX")
checks=0 failures=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*" >&2; }
names=(Lily Tom Sue Ben Max Mia Sam Ann); things=(ball cat dog tree cake car boat kite)
prompts() {   # first, count
    for i in $(seq "$1" $(($1 + $2 - 1))); do
        n=${names[$((i % 8))]}; t=${things[$(((i * 5) % 8))]}
        printf '{"messages":[{"role":"user","content":"Tell me about %s and the %s."}],"name":"%s"}\n' "$n" "$t" "$n"
    done
}
prompts 0 16 > "$tmp/p.jsonl"
prompts 16 4 > "$tmp/v.jsonl"
printf '{"type":"string_check","name":"has_name","input":"{{ sample.output_text }}","reference":"{{ item.name }}","operation":"like"}\n' > "$tmp/g.json"
num() { sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" "$1"; }
fails() {   # expected message, then the command: exit 1 with the message
    local want=$1; shift
    "$@" > /dev/null 2> "$tmp/e.err"
    if [ $? -eq 1 ] && grep -q -- "$want" "$tmp/e.err"; then ok; else bad "$* -> $(head -c 300 "$tmp/e.err") (want: $want)"; fi
}
