#!/usr/bin/env bash
# `takumi train --task classify|regress`, `takumi classify` and `takumi eval` on a classifier,
# end to end on stories260K with small files made here (label pos: a happy story, neg: a sad one):
# - LoRA + head: RUN/adapter in PEFT's SEQ_CLS layout (adapter_config.json task_type SEQ_CLS,
#   modules_to_save, the head "base_model.model.score.weight" [2 x C]) and config.json with
#   id2label/label2id/problem_type; held-out accuracy 1 after training; `takumi classify --data`
#   and `takumi eval` (accuracy, macro_f1) agree; --json; TSV data (header row) trains the same as
#   the JSONL; labels given as indices train the same as names; a killed run resumed is bit-identical;
# - --method head: head.safetensors only; the training loss falls;
# - --task regress: MSE on numbers, `takumi classify --data` prints the MSE;
# - bad input names the line or option: an unknown label, an index out of range, a non-number for
#   regress, options that do not apply (--labels / --pooling without a task, --method head without
#   one, --objective with a task, --labels with regress, --freeze-layers or --lora-r with head), chat data,
#   eval data with a label the classifier does not know.
set -u
cd "$(dirname "$0")/.."
BIN=${TAKUMI_BIN:-$PWD/build/takumi}
SH=${TAKUMI_SHARED:-../shared}
S=$SH/models/stories260K
if [ ! -f "$S/hf/model.safetensors" ]; then
    if [ "${CI:-}" = true ]; then echo "FAIL: required asset missing in CI: models/stories260K"; exit 1; fi
    echo "SKIP: models/stories260K not found (set TAKUMI_SHARED or place ../shared)"; exit 0
fi
tmp=$(mktemp -d /tmp/takumi_train_cls_XXXXXX)
checks=0 failures=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*" >&2; }

names=(Lily Tom Sue Ben Max Mia Sam Ann); things=(ball cat dog tree cake car boat kite)
story() {   # i -> text<TAB>label
    local i=$1 n=${names[$(($1 % 8))]} t=${things[$((($1 * 5) % 8))]}
    if [ $((i % 2)) = 0 ]; then printf '%s played with the %s. %s was very happy and smiled.\tpos\n' "$n" "$t" "$n"
    else printf '%s lost the %s. %s was very sad and cried.\tneg\n' "$n" "$t" "$n"; fi
}
tsv() { for i in $(seq "$1" $(($1 + $2 - 1))); do story "$i"; done; }
jsonl() {   # the same records as {"text", "label"} (label: $3 = names or index)
    tsv "$1" "$2" | python3 -c '
import json, sys
for l in sys.stdin:
    t, lab = l.rstrip("\n").split("\t")
    print(json.dumps({"text": t, "label": lab if sys.argv[1] == "names" else ["neg", "pos"].index(lab)}))' "$3"
}
{ printf 'sentence\tlabel\n'; tsv 0 24; } > "$tmp/train.tsv"
jsonl 0 24 names > "$tmp/train.jsonl"
jsonl 0 24 index > "$tmp/train_idx.jsonl"
jsonl 100 8 names > "$tmp/val.jsonl"
base=(train --model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --threads 1)
common=(--task classify --labels neg,pos --epochs 4 --lr 3e-3 --seed 3)
m=(--model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --threads 1)

# ---- LoRA + head
"$BIN" "${base[@]}" "${common[@]}" --data "$tmp/train.jsonl" --val "$tmp/val.jsonl" --out "$tmp/run" > "$tmp/run.log" 2>&1 || bad "classify training: $(tail -3 "$tmp/run.log")"
A=$tmp/run/adapter
python3 - "$A" <<'PY' && ok || bad "RUN/adapter is not PEFT's SEQ_CLS layout with the labels"
import json, struct, sys
d = sys.argv[1]
c = json.load(open(d + "/adapter_config.json"))
assert c["task_type"] == "SEQ_CLS" and "score" in c["modules_to_save"], c
h = json.load(open(d + "/config.json"))
assert h["id2label"] == {"0": "neg", "1": "pos"} and h["label2id"] == {"neg": 0, "pos": 1}, h
assert h["problem_type"] == "single_label_classification" and h["architectures"] == ["LlamaForSequenceClassification"], h
f = open(d + "/adapter_model.safetensors", "rb"); n = struct.unpack("<Q", f.read(8))[0]; meta = json.loads(f.read(n))
assert meta["base_model.model.score.weight"]["shape"] == [2, 64], meta["base_model.model.score.weight"]
PY
[ ! -e "$tmp/run/adapter.gguf" ] && ok || bad "a classifier has no GGUF adapter"
grep -q '"accuracy"' "$tmp/run/metrics.jsonl" && ok || bad "metrics.jsonl has no accuracy"
grep -q 'valid loss .* accuracy 1.0000' "$tmp/run.log" && ok || bad "held-out accuracy is not 1 after training: $(grep 'valid loss' "$tmp/run.log" | tail -1)"
"$BIN" classify "${m[@]}" --adapter "$A" --data "$tmp/val.jsonl" > "$tmp/cls.txt" 2> "$tmp/err" || bad "classify --data: $(cat "$tmp/err")"
grep -q '^accuracy: 1.0000 (8 texts)$' "$tmp/cls.txt" && ok || bad "classify --data accuracy: $(tail -1 "$tmp/cls.txt")"
grep -q '^line 1: pos 0\.[0-9]*  (neg 0\.[0-9]*, pos 0\.[0-9]*)  label pos$' "$tmp/cls.txt" && ok || bad "classify line: $(head -1 "$tmp/cls.txt")"
out=$("$BIN" classify "${m[@]}" --adapter "$A" "Tom was very sad and cried." 2> "$tmp/err")
[[ "$out" == neg* ]] && ok || bad "classify TEXT: '$out' $(cat "$tmp/err")"
"$BIN" classify "${m[@]}" --adapter "$A" --json "Sue was very happy and smiled." > "$tmp/j.txt" 2> "$tmp/err"
python3 -c 'import json,sys; o=json.loads(open(sys.argv[1]).read()); assert o["label"]=="pos" and abs(sum(o["probs"].values())-1)<1e-9, o' "$tmp/j.txt" && ok || bad "classify --json: $(cat "$tmp/j.txt" "$tmp/err")"
"$BIN" eval "${m[@]}" --adapter "$A" --data "$tmp/val.jsonl" --out "$tmp/ev" > "$tmp/ev.txt" 2> "$tmp/err" || bad "eval: $(cat "$tmp/err")"
grep -Eq '^accuracy +1.0000' "$tmp/ev.txt" && grep -Eq '^macro_f1 +1.0000' "$tmp/ev.txt" && ok || bad "eval accuracy/macro_f1: $(cat "$tmp/ev.txt")"
# the same records as TSV (header row) and with index labels train bit-identically
"$BIN" "${base[@]}" "${common[@]}" --data "$tmp/train.tsv" --val "$tmp/val.jsonl" --out "$tmp/tsv" > /dev/null 2>&1 || bad "TSV training"
"$BIN" "${base[@]}" "${common[@]}" --data "$tmp/train_idx.jsonl" --val "$tmp/val.jsonl" --out "$tmp/idx" > /dev/null 2>&1 || bad "index-label training"
losses() { grep -o '"train_loss":[^,]*' "$1/metrics.jsonl"; }
[ -n "$(losses "$tmp/run")" ] && [ "$(losses "$tmp/run")" = "$(losses "$tmp/tsv")" ] && [ "$(losses "$tmp/run")" = "$(losses "$tmp/idx")" ] && ok \
    || bad "JSONL, TSV and index labels should train identically"
# a run interrupted after step 4 (its later checkpoints gone) and resumed: the same metrics, bit for bit
lines() { grep -v '"event"' "$1" | sed -E 's/"(tokens_per_s|step_s|elapsed_s|peak_rss_mb)":[^,}]*,?//g'; }
"$BIN" "${base[@]}" "${common[@]}" --data "$tmp/train.jsonl" --val "$tmp/val.jsonl" --out "$tmp/res" --save-every 4 --keep-checkpoints 0 > /dev/null 2>&1
for c in "$tmp"/res/checkpoints/step-*; do [ "$(basename "$c")" = step-00000004 ] || rm -rf "$c"; done
rm -rf "$tmp/res/adapter"
"$BIN" train --out "$tmp/res" --resume > /dev/null 2> "$tmp/err" || bad "resume: $(tail -3 "$tmp/err")"
[ -f "$tmp/res/adapter/config.json" ] && cmp -s <(lines "$tmp/run/metrics.jsonl") <(lines "$tmp/res/metrics.jsonl") && ok \
    || { bad "resumed classifier run differs"; diff <(lines "$tmp/run/metrics.jsonl") <(lines "$tmp/res/metrics.jsonl") | head -4 >&2; }

# ---- head only
"$BIN" "${base[@]}" "${common[@]}" --method head --lr 1e-2 --data "$tmp/train.jsonl" --out "$tmp/head" > "$tmp/head.log" 2>&1 || bad "head training: $(tail -3 "$tmp/head.log")"
[ -f "$tmp/head/adapter/head.safetensors" ] && [ ! -e "$tmp/head/adapter/adapter_config.json" ] && grep -q '"adapter":\s*false' "$tmp/head/adapter/config.json" \
    && ok || bad "head-only output: $(ls "$tmp/head/adapter")"
python3 - "$tmp/head/metrics.jsonl" <<'PY' && ok || bad "head-only training loss does not fall"
import json, sys
l = [json.loads(x)["train_loss"] for x in open(sys.argv[1]) if '"train_loss"' in x]
assert sum(l[-3:]) / 3 < sum(l[:3]) / 3, l
PY
"$BIN" classify "${m[@]}" --adapter "$tmp/head/adapter" --data "$tmp/val.jsonl" --quiet > "$tmp/h.txt" 2> "$tmp/err" && grep -q '^accuracy: ' "$tmp/h.txt" && ok \
    || bad "classify with a head-only classifier: $(cat "$tmp/h.txt" "$tmp/err")"

# ---- regression
python3 - "$tmp" <<'PY'
import json, sys
with open(sys.argv[1] + "/reg.jsonl", "w") as f:
    for i in range(16):
        f.write(json.dumps({"text": "Tom had %d %s." % (i % 4, ["balls", "cats"][i % 2]), "label": float(i % 4)}) + "\n")
PY
"$BIN" "${base[@]}" --task regress --epochs 2 --data "$tmp/reg.jsonl" --out "$tmp/reg" > "$tmp/reg.log" 2>&1 || bad "regress training: $(tail -3 "$tmp/reg.log")"
grep -q '"problem_type":\s*"regression"' "$tmp/reg/adapter/config.json" && ok || bad "regression config"
"$BIN" classify "${m[@]}" --adapter "$tmp/reg/adapter" --data "$tmp/reg.jsonl" > "$tmp/r.txt" 2> "$tmp/err" && grep -q '^mse: ' "$tmp/r.txt" \
    && grep -q '^line 1: -\?[0-9.]*  (label 0)$' "$tmp/r.txt" && ok || bad "classify with a regression head: $(head -2 "$tmp/r.txt") $(tail -1 "$tmp/r.txt") $(cat "$tmp/err")"

# ---- bad input
expect_fail() {   # message-regex, command args...
    local re=$1; shift
    "$BIN" "$@" > /dev/null 2> "$tmp/bad.err"
    local rc=$?
    if [ $rc -eq 1 ] && grep -Eq -- "$re" "$tmp/bad.err"; then ok; else bad "$* -> exit $rc, stderr: $(head -c 300 "$tmp/bad.err")"; fi
}
{ jsonl 0 2 names; printf '{"text":"Tom ran.","label":"neutral"}\n'; } > "$tmp/unk.jsonl"
expect_fail 'line 3: label "neutral" is neither one of --labels neg,pos nor an index in \[0, 2\)' "${base[@]}" "${common[@]}" --data "$tmp/unk.jsonl" --out "$tmp/b1"
{ tsv 0 3; printf 'Tom ran.\t2\n'; } > "$tmp/range.tsv"
expect_fail 'line 4: label "2" is neither' "${base[@]}" "${common[@]}" --data "$tmp/range.tsv" --out "$tmp/b2"
expect_fail 'line 1: label "pos" is not a number \(--task regress\)' "${base[@]}" --task regress --data "$tmp/train.jsonl" --out "$tmp/b3"
expect_fail '--labels applies to --task classify' "${base[@]}" --labels a,b --data "$tmp/train.jsonl" --out "$tmp/b4"
expect_fail '--pooling applies to --task classify or regress' "${base[@]}" --pooling mean --data "$tmp/train.jsonl" --out "$tmp/b5"
expect_fail '--method head trains a task head alone' "${base[@]}" --method head --data "$tmp/train.jsonl" --out "$tmp/b6"
expect_fail '--objective dpo does not apply to --task classify' "${base[@]}" "${common[@]}" --objective dpo --data "$tmp/train.jsonl" --out "$tmp/b7"
expect_fail '--labels does not apply to --task regress' "${base[@]}" --task regress --labels a,b --data "$tmp/reg.jsonl" --out "$tmp/b8"
expect_fail '--freeze-layers does not apply to --method head' "${base[@]}" "${common[@]}" --method head --freeze-layers 2 --data "$tmp/train.jsonl" --out "$tmp/b9"
expect_fail '--lora-r does not apply to --method head \(only the task head trains' "${base[@]}" "${common[@]}" --method head --lora-r 4 --data "$tmp/train.jsonl" --out "$tmp/b9b"
expect_fail '--labels: no labels' "${base[@]}" --task classify --data "$tmp/train.jsonl" --out "$tmp/b10"
expect_fail 'a classifier needs at least 2 labels' "${base[@]}" --task classify --labels pos --data "$tmp/train.jsonl" --out "$tmp/b11"
printf '{"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello."}]}\n' > "$tmp/chat.jsonl"
expect_fail 'chat data has no labels: --task classify and regress train on' "${base[@]}" "${common[@]}" --data "$tmp/chat.jsonl" --out "$tmp/b12"
printf '{"text":"Tom ran.","label":"maybe"}\n' > "$tmp/evbad.jsonl"
expect_fail 'line 1: label "maybe" is unknown to the classifier' eval "${m[@]}" --adapter "$A" --data "$tmp/evbad.jsonl" --out "$tmp/b13"
expect_fail 'line 1: label "maybe" is neither one of --labels neg,pos' classify "${m[@]}" --adapter "$A" --data "$tmp/evbad.jsonl"
expect_fail 'is a classifier: it predicts labels \(accuracy, macro_f1, exact_match\), not ppl' eval "${m[@]}" --adapter "$A" --data "$tmp/val.jsonl" --metrics ppl --out "$tmp/b14"
# the same texts with other labels: a resume is refused (the labels are part of the data's hash)
sed 's/"label": "pos"/"label": "neg"/' "$tmp/train.jsonl" > "$tmp/relabel.jsonl"
expect_fail 'the training data differs from the checkpoint' "${base[@]}" "${common[@]}" --data "$tmp/relabel.jsonl" --val "$tmp/val.jsonl" --out "$tmp/res" --resume
expect_fail 'is a regression head: takumi eval reports accuracy' eval "${m[@]}" --adapter "$tmp/reg/adapter" --data "$tmp/val.jsonl" --out "$tmp/b15"

rm -rf "$tmp"
if [ $failures -gt 0 ]; then echo "train_classify_cli: $failures of $checks checks FAILED"; exit 1; fi
echo "train_classify_cli: $checks checks passed"
