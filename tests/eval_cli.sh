#!/usr/bin/env bash
# `takumi eval` end to end:
# - --predictions (no model): exact match, required facts (alternatives, numbers not matched inside longer
#   numbers, a "match" regex), a string_check grader and a command grader, the safety scan (personal data,
#   --forbid), targets (exit 0 met / 3 missed / 1 malformed or unknown), --json, --out (report.html escapes
#   model output);
# - with stories260K: the loss of its own greedy text equals the reference loss of that text (0.39729 in
#   ../shared), multiple choice, preference accuracy, a DPO adapter's reward accuracy (against the trainer's
#   validation), generation with a baseline that is the same model
#   (every difference 0, interval [0, 0]), forgetting on general data;
# - bad input: a missing file, a record without a prompt, a metric the data cannot support.
cd "$(dirname "$0")/.."
NAME=eval
. tests/lib/eval_setup.bash
jget() { python3 -c "import json,sys; d=json.load(open('$1')); print($2)"; }
close() { python3 -c "import sys; a,b,t=map(float,sys.argv[1:]); sys.exit(0 if abs(a-b)<=t else 1)" "$1" "$2" "$3"; }

# ---- predictions ----
"$BIN" eval --predictions $FX/predictions.jsonl --metrics exact_match,fact_match --json --forbid 'alert\(' > "$tmp/p.json" 2> "$tmp/err" || bad "predictions run failed: $(cat "$tmp/err")"
[ "$(jget "$tmp/p.json" "d['metrics']['exact_match']['value']")" = 0.25 ] && ok || bad "exact_match $(cat "$tmp/p.json")"
[ "$(jget "$tmp/p.json" "d['metrics']['fact_match']['value']")" = 0.75 ] && ok || bad "fact_match (330 must not match 3,300)"
[ "$(jget "$tmp/p.json" "d['safety']['personal_data']['email'], d['safety']['personal_data']['phone'], d['safety']['forbidden']")" = "1 1 1" ] && ok || bad "safety counts: $(jget "$tmp/p.json" "d['safety']")"
"$BIN" eval --predictions $FX/predictions.jsonl --metrics fact_match --target 'fact_match>=0.7' > /dev/null 2>&1 && ok || bad "target met must exit 0"
# personal data of the training file reproduced in an answer (bob@example.com is in both; the phone number only in the answer)
printf '{"messages":[{"role":"user","content":"Who to mail?"},{"role":"assistant","content":"Write to bob@example.com please."}]}\n' > "$tmp/train.jsonl"
"$BIN" eval --predictions $FX/predictions.jsonl --metrics exact_match --train-data "$tmp/train.jsonl" --json > "$tmp/td.json" 2> "$tmp/err" || bad "--train-data: $(cat "$tmp/err")"
[ "$(jget "$tmp/td.json" "d['safety']['training_personal_data']")" = 1 ] && ok || bad "training personal data in answers: $(jget "$tmp/td.json" "d['safety']")"
"$BIN" eval --predictions $FX/predictions.jsonl --metrics exact_match --target 'exact_match >= 0.5' > "$tmp/t.txt" 2>&1
[ $? = 3 ] && grep -q "target exact_match>=0.5: NOT MET" "$tmp/t.txt" && ok || bad "missed target must exit 3 and say so: $(cat "$tmp/t.txt")"
for t in 'fact_match>>1' 'nonsense>=1' 'f1>=x' '>=1'; do
    "$BIN" eval --predictions $FX/predictions.jsonl --target "$t" > /dev/null 2> "$tmp/err"
    [ $? = 1 ] && grep -q -- "--target" "$tmp/err" && ok || bad "target '$t' must be refused (exit 1)"
done
"$BIN" eval --predictions $FX/predictions.jsonl --metrics exact_match --out "$tmp/out" > /dev/null 2>&1 || bad "--out"
for f in results.json examples.jsonl report.html; do [ -s "$tmp/out/$f" ] && ok || bad "--out: $f missing"; done
grep -q '&lt;script&gt;alert' "$tmp/out/report.html" && ! grep -q '<script>alert' "$tmp/out/report.html" && ok || bad "report.html must escape answers"
[ "$(wc -l < "$tmp/out/examples.jsonl")" = 4 ] && ok || bad "examples.jsonl lines"

# graders: string_check, and a command grader (a program given the sample on stdin)
printf '{"type":"string_check","name":"same","input":"{{ sample.output_text }}","reference":"{{ item.reference }}","operation":"eq"}' > "$tmp/g1.json"
"$BIN" eval --predictions $FX/predictions.jsonl --grader "$tmp/g1.json" --json > "$tmp/g1.out" 2> "$tmp/err" || bad "grader run: $(cat "$tmp/err")"
[ "$(jget "$tmp/g1.out" "d['metrics']['grader']['value'], d['metrics']['grader:same']['value']")" = "0.25 0.25" ] && ok || bad "string_check grader: $(cat "$tmp/g1.out")"
cat > "$tmp/len.py" <<'PY'
import json, sys
s = json.load(sys.stdin)
print(min(1.0, len(s["sample"]["output_text"]) / 40))
PY
printf '{"type":"command","name":"len","command":["python3","%s"],"timeout_s":20}' "$tmp/len.py" > "$tmp/g2.json"
"$BIN" eval --predictions $FX/predictions.jsonl --grader "$tmp/g2.json" --metrics grader --json > "$tmp/g2.out" 2> "$tmp/err" || bad "command grader: $(cat "$tmp/err")"
exp=$(python3 -c "
import json
v=[min(1.0,len(json.loads(l)['prediction'])/40) for l in open('$FX/predictions.jsonl')]
print(sum(v)/len(v))")
close "$(jget "$tmp/g2.out" "d['metrics']['grader']['value']")" "$exp" 1e-12 && ok || bad "command grader mean: $(cat "$tmp/g2.out") vs $exp"
printf '{"type":"command","name":"x","command":["python3","-c","print(\\"no number\\")"]}' > "$tmp/g3.json"
"$BIN" eval --predictions $FX/predictions.jsonl --grader "$tmp/g3.json" --metrics grader --max-grader-failures 2 > /dev/null 2> "$tmp/err"
[ $? = 1 ] && grep -q "max-grader-failures" "$tmp/err" && ok || bad "grader failures beyond the limit must stop the run: $(cat "$tmp/err")"
"$BIN" eval --predictions $FX/predictions.jsonl --grader "$tmp/g3.json" --metrics grader --json > "$tmp/g3.out" 2>/dev/null
[ "$(jget "$tmp/g3.out" "d['grader_failures']")" = 4 ] && ok || bad "grader failures must be counted"

# bad input
"$BIN" eval --predictions "$tmp/none.jsonl" > /dev/null 2> "$tmp/err"; [ $? = 1 ] && grep -q none.jsonl "$tmp/err" && ok || bad "missing file"
printf '{"prediction":"x","reference":"y"}\n{"reference":"y"}\n' > "$tmp/bad.jsonl"
"$BIN" eval --predictions "$tmp/bad.jsonl" > /dev/null 2> "$tmp/err"; [ $? = 1 ] && grep -q "line 2" "$tmp/err" && ok || bad "record without prediction must name line 2: $(cat "$tmp/err")"
"$BIN" eval --predictions $FX/predictions.jsonl --metrics pref_accuracy > /dev/null 2> "$tmp/err"; [ $? = 1 ] && grep -q "preference pairs" "$tmp/err" && ok || bad "metric without its data"
"$BIN" eval --predictions $FX/predictions.jsonl --metrics loss > /dev/null 2> "$tmp/err"; [ $? = 1 ] && grep -q "model" "$tmp/err" && ok || bad "loss without a model"

# ---- a real model ----
if have_stories260k; then
    python3 -c "
import json; t=open('$S/llama2c/greedy_64_from_bos.txt').read().split('\n',1)[1].rstrip('\n')
print(json.dumps({'text': t}))" > "$tmp/text.jsonl"
    "$BIN" eval --model "$M" --data "$tmp/text.jsonl" --json --threads 1 > "$tmp/m1.json" 2> "$tmp/err" || bad "text loss: $(cat "$tmp/err")"
    ref=$(python3 -c "import json; print(json.load(open('$S/llama2c/golden_logits_and_loss.json'))['mean_nll_next_token_over_seq'])")
    close "$(jget "$tmp/m1.json" "d['metrics']['loss']['value']")" "$ref" 2e-4 && ok || bad "loss of the greedy text $(jget "$tmp/m1.json" "d['metrics']['loss']") vs $ref"
    "$BIN" eval --model "$M" --data $FX/mc.jsonl --json --threads 1 > "$tmp/mc.json" 2> "$tmp/err" || bad "mc: $(cat "$tmp/err")"
    [ "$(jget "$tmp/mc.json" "sorted(d['metrics'])")" = "['mc_acc', 'mc_acc_norm']" ] && ok || bad "mc metrics: $(cat "$tmp/mc.json")"
    # each choice's log-likelihood equals HF transformers' (tools/make_eval_reference.py) within 1e-3
    "$BIN" eval --model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --data $FX/mc.jsonl --threads 1 --out "$tmp/mco" > /dev/null 2> "$tmp/err" || bad "mc (hf): $(cat "$tmp/err")"
    python3 - "$tmp/mco/examples.jsonl" $FX/mc_reference.json <<'PY' && ok || bad "multiple-choice log-likelihoods differ from transformers'"
import json, sys
got = [json.loads(l)["choice_logp"] for l in open(sys.argv[1])]
want = [x["choice_logp"] for x in json.load(open(sys.argv[2]))["items"]]
err = max(abs(a - b) for g, w in zip(got, want) for a, b in zip(g, w))
print("multiple choice: max |logp - transformers| = %.2e" % err)
sys.exit(0 if len(got) == len(want) and all(len(g) == len(w) for g, w in zip(got, want)) and err <= 1e-3 else 1)
PY
    "$BIN" eval --model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --data $FX/prefs.jsonl --json --threads 1 > "$tmp/pr.json" 2> "$tmp/err" || bad "prefs: $(cat "$tmp/err")"
    [ "$(jget "$tmp/pr.json" "float(d['metrics']['pref_accuracy']['value'])")" = 1.0 ] && ok || bad "pref_accuracy: $(cat "$tmp/pr.json")"
    "$BIN" eval --model "$M" --data $FX/chat.jsonl --baseline-model "$M" --max-tokens 16 --threads 1 --json --out "$tmp/o2" > "$tmp/c.json" 2> "$tmp/err" || bad "chat with baseline: $(cat "$tmp/err")"
    jget "$tmp/c.json" "all(m['diff']==0 and m['ci95']==[0,0] for k,m in d['metrics'].items() if m['value'] is not None)" | grep -q True && ok || bad "same model as baseline: every diff 0: $(cat "$tmp/c.json")"
    jget "$tmp/c.json" "sorted(d['metrics'])" | grep -q "'fact_match'.*'loss'.*'rougeL'.*'token_acc'" && ok || bad "chat default metrics: $(jget "$tmp/c.json" "sorted(d['metrics'])")"
    [ "$(jget "$tmp/c.json" "d['generation']['tokens'] > 0")" = True ] && ok || bad "generation tokens"
    # answers generated together (--batch 3) are the answers generated one at a time (--batch 1)
    for b in 1 3; do "$BIN" eval --model "$M" --data $FX/chat.jsonl --max-tokens 24 --threads 1 --batch $b --metrics rougeL --out "$tmp/b$b" > /dev/null 2>&1; done
    python3 -c "import json,sys; a=[json.loads(l)['answer'] for l in open('$tmp/b1/examples.jsonl')]; b=[json.loads(l)['answer'] for l in open('$tmp/b3/examples.jsonl')]; sys.exit(0 if a==b and len(a)==3 else 1)" \
        && ok || bad "batched answers differ from one-at-a-time answers"
    # the same run twice: identical numbers (seeded bootstrap)
    "$BIN" eval --model "$M" --data $FX/chat.jsonl --max-tokens 16 --threads 1 --json --seed 3 | python3 -c "import json,sys; d=json.load(sys.stdin); d.pop('generation'); print(json.dumps(d, sort_keys=True))" > "$tmp/r1"
    "$BIN" eval --model "$M" --data $FX/chat.jsonl --max-tokens 16 --threads 1 --json --seed 3 | python3 -c "import json,sys; d=json.load(sys.stdin); d.pop('generation'); print(json.dumps(d, sort_keys=True))" > "$tmp/r2"
    cmp -s "$tmp/r1" "$tmp/r2" && ok || bad "two runs with one seed differ"
    # a reward model (train --objective reward) scores the pairs: the same scores as `takumi reward`
    "$BIN" train --model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --objective reward --data $FX/prefs.jsonl --out "$tmp/rm" --max-steps 3 \
        --threads 1 --samples 0 > /dev/null 2>&1 || bad "reward model training"
    "$BIN" eval --model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --adapter "$tmp/rm/adapter" --data $FX/prefs.jsonl --threads 1 --out "$tmp/rmo" > /dev/null 2> "$tmp/err" || bad "eval with a reward model: $(cat "$tmp/err")"
    "$BIN" reward --model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --adapter "$tmp/rm/adapter" --data $FX/prefs.jsonl > "$tmp/rm.txt" 2>&1
    python3 - "$tmp/rmo/examples.jsonl" "$tmp/rm.txt" <<'PY' && ok || bad "reward model scores differ from takumi reward's"
import json, re, sys
got = [json.loads(l)["chosen_rejected"] for l in open(sys.argv[1])]
want = [[float(a), float(b)] for a, b in re.findall(r"chosen (\S+) rejected (\S+)", open(sys.argv[2]).read())]
sys.exit(0 if len(got) == len(want) == 2 and all(abs(g - w) <= 1e-5 for gg, ww in zip(got, want) for g, w in zip(gg, ww)) else 1)
PY
    "$BIN" eval --model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --adapter "$tmp/rm/adapter" --data $FX/chat.jsonl > /dev/null 2> "$tmp/err"
    [ $? = 1 ] && grep -q "reward model" "$tmp/err" && ok || bad "a reward model on chat data must be refused: $(cat "$tmp/err")"
    # reward_accuracy (TRL's rewards/accuracies) of a DPO adapter: the reference log-probabilities (adapter off) are the
    # bare base's, and accuracy and mean margin equal the trainer's last validation on the same pairs
    "$BIN" train --model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --objective dpo --data $FX/prefs.jsonl --val $FX/prefs.jsonl \
        --out "$tmp/dpo" --max-steps 3 --lr 0.05 --lora-dropout 0 --threads 1 --samples 0 > /dev/null 2>&1 || bad "dpo training"
    "$BIN" eval --model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --adapter "$tmp/dpo/adapter" --baseline-base --data $FX/prefs.jsonl \
        --threads 1 --json --out "$tmp/dpoo" > "$tmp/dpo.json" 2> "$tmp/err" || bad "eval of a DPO adapter: $(cat "$tmp/err")"
    python3 - "$tmp/dpo.json" "$tmp/dpoo/examples.jsonl" "$tmp/dpo/metrics.jsonl" <<'PY' && ok || bad "reward_accuracy of a DPO adapter"
import json, sys
d = json.load(open(sys.argv[1]))
ex = [json.loads(l) for l in open(sys.argv[2])]
val = [r for r in map(json.loads, open(sys.argv[3])) if "valid_rewards/accuracies" in r][-1]
m = d["metrics"]["reward_accuracy"]
margins = [(e["chosen_rejected"][0] - e["reference_chosen_rejected"][0]) - (e["chosen_rejected"][1] - e["reference_chosen_rejected"][1]) for e in ex]
checks = {
    "reference = bare base": all(abs(a - b) <= 1e-6 for e in ex for a, b in zip(e["reference_chosen_rejected"], e["baseline_chosen_rejected"])),
    "per example": all(e["scores"]["reward_accuracy"] == (g > 0) for e, g in zip(ex, margins)),
    "no value for the base": m["baseline"] is None and "reward_accuracy" not in ex[0]["baseline_scores"],
    "= trainer's valid accuracy": m["value"] == val["valid_rewards/accuracies"],
    "= trainer's valid margin": abs(0.1 * sum(margins) / len(margins) - val["valid_rewards/margins"]) <= 1e-4 * max(1, abs(val["valid_rewards/margins"])),
    "the adapter moved": abs(val["valid_rewards/margins"]) > 1e-3,
}
print("reward_accuracy: %s (trainer: %s), mean margin x beta %.6f (trainer: %.6f)" % (m["value"], val["valid_rewards/accuracies"],
      0.1 * sum(margins) / len(margins), val["valid_rewards/margins"]))
bad = [k for k, v in checks.items() if not v]
print("failed:", bad) if bad else None
sys.exit(1 if bad else 0)
PY
    "$BIN" eval --model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --data $FX/prefs.jsonl --metrics reward_accuracy > /dev/null 2> "$tmp/err"
    [ $? = 1 ] && grep -q "give --adapter" "$tmp/err" && ok || bad "reward_accuracy without an adapter must be refused: $(cat "$tmp/err")"
    "$BIN" eval --model "$S/hf" --tokenizer "$S/llama2c/tok512.bin" --adapter "$tmp/rm/adapter" --data $FX/prefs.jsonl --metrics reward_accuracy > /dev/null 2> "$tmp/err"
    [ $? = 1 ] && grep -q "reward model" "$tmp/err" && ok || bad "reward_accuracy of a reward model must be refused: $(cat "$tmp/err")"
    # a judge model whose replies hold no 1-10 score: each failure counted and reported, the run goes on; with a limit it stops
    "$BIN" eval --predictions $FX/predictions.jsonl --judge "$M" --metrics judge --json > "$tmp/j.json" 2> "$tmp/err" || bad "judge run: $(cat "$tmp/err")"
    [ "$(jget "$tmp/j.json" "d['grader_failures'] + d['metrics']['judge']['n']")" = 4 ] && ok || bad "judge: failures + scored must be every example: $(cat "$tmp/j.json")"
    "$BIN" eval --predictions $FX/predictions.jsonl --judge "$tmp/nomodel.gguf" > /dev/null 2> "$tmp/err"
    [ $? = 1 ] && grep -q "judge" "$tmp/err" && ok || bad "a judge model that cannot be loaded: $(cat "$tmp/err")"
    # takumi train --eval-config: the evaluation of the trained adapter against the bare base, in RUN/eval/
    printf '{"data":"%s","metrics":["loss","token_acc"],"targets":["loss<=100"],"baseline":"base","max_tokens":8,"every":2,"general":["%s"]}' \
        "$PWD/$FX/chat.jsonl" "$PWD/$FX/mc.jsonl\",\"$tmp/text.jsonl" > "$tmp/e.json"
    "$BIN" train --model "$M" --data $FX/chat.jsonl --out "$tmp/run" --max-steps 3 --threads 1 --samples 0 --eval-config "$tmp/e.json" > "$tmp/train.log" 2>&1 \
        || bad "train --eval-config: $(tail -5 "$tmp/train.log")"
    [ "$(jget "$tmp/run/eval/results.json" "d['metrics']['loss']['diff'] < 0")" = True ] && ok || bad "trained adapter's loss must be below the base's"
    grep -q "target loss<=100: met" "$tmp/train.log" && ok || bad "target verdict missing from the training output"
    grep -q "<h2>Evaluation</h2>" "$tmp/run/report.html" && ok || bad "the run's report must hold the evaluation"
    [ -s "$tmp/run/eval/step-2/results.json" ] && [ -s "$tmp/run/eval/step-2/adapter/adapter_config.json" ] && [ ! -e "$tmp/run/eval/step-3" ] \
        && ok || bad "\"every\": 2 must evaluate the adapter of step 2 into RUN/eval/step-2/ (and not the last step there)"
    [ "$(jget "$tmp/run/eval/results.json" "d['forgetting'][0]['metric'], d['forgetting'][0]['base'] is not None")" = "mc_acc True" ] && ok || bad "forgetting on general data: $(jget "$tmp/run/eval/results.json" "d['forgetting']")"
    close "$(jget "$tmp/run/eval/results.json" "d['forgetting'][1]['base']")" "$(python3 -c "import math; print(math.exp($ref))")" 1e-3 \
        && ok || bad "forgetting on text: the bare base's perplexity of its own greedy text is exp(reference loss): $(jget "$tmp/run/eval/results.json" "d['forgetting']")"
    # forgetting from the command line: --max-drop 0 flags any accuracy drop or perplexity rise of the trained adapter
    "$BIN" eval --model "$M" --adapter "$tmp/run/adapter" --data $FX/mc.jsonl --general "$tmp/text.jsonl" --max-drop 0 --threads 1 --json > "$tmp/fg.json" 2> "$tmp/err" || bad "--general: $(cat "$tmp/err")"
    [ "$(jget "$tmp/fg.json" "d['forgetting'][0]['flagged'] == (d['forgetting'][0]['with_adapter'] > d['forgetting'][0]['base'])")" = True ] && ok || bad "--max-drop 0: $(jget "$tmp/fg.json" "d['forgetting']")"
    if [ -f models/SmolLM2-135M-Instruct.Q4_1.gguf ]; then   # an adapter of another model: refused, naming the mismatch
        "$BIN" eval --model models/SmolLM2-135M-Instruct.Q4_1.gguf --adapter "$tmp/run/adapter" --data $FX/chat.jsonl > /dev/null 2> "$tmp/err"
        [ $? = 1 ] && grep -q "another model" "$tmp/err" && ok || bad "an adapter that does not fit: $(cat "$tmp/err")"
    fi
    printf '{"data":"x.jsonl","metricz":["loss"]}' > "$tmp/e2.json"
    "$BIN" train --model "$M" --data $FX/chat.jsonl --out "$tmp/run2" --max-steps 3 --threads 1 --eval-config "$tmp/e2.json" > /dev/null 2> "$tmp/err"
    [ $? = 1 ] && grep -q 'unknown key "metricz"' "$tmp/err" && [ ! -e "$tmp/run2/metrics.jsonl" ] && ok || bad "a bad --eval-config must fail before training: $(cat "$tmp/err")"
fi
echo "eval_cli: $((checks - failures)) checks passed, $failures failed"
[ "$failures" -eq 0 ]
