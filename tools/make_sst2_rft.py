#!/usr/bin/env python3
"""SST-2 as reinforcement fine-tuning prompts (OpenAI's RFT format): the demo and bench data of GRPO.

Usage: make_sst2_rft.py SST2_DIR OUT_DIR [N_TRAIN] [N_HELDOUT]
Writes OUT_DIR/train.jsonl (N_TRAIN sentences of at least 8 words from train.tsv, shuffled with seed 7),
OUT_DIR/heldout.jsonl (N_HELDOUT sentences of test.tsv = GLUE SST-2 dev, shuffled with seed 8) and
OUT_DIR/grader.json (string_check: the answer equals the label). Each record: the question as the user
turn, "label": "positive" | "negative" for the grader. Standard library only.
"""
import csv, json, os, random, sys


def rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        r = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(r)
        return [(s.strip(), "positive" if l == "1" else "negative") for s, l in r]


def rec(s, label):
    q = ("What is the sentiment of this movie review? Answer with one word: positive or negative.\n\n"
         f"Review: {s}")
    return {"messages": [{"role": "user", "content": q}], "label": label}


def main():
    src, out = sys.argv[1], sys.argv[2]
    n_train = int(sys.argv[3]) if len(sys.argv) > 3 else 400
    n_held = int(sys.argv[4]) if len(sys.argv) > 4 else 100
    os.makedirs(out, exist_ok=True)
    train = [x for x in rows(os.path.join(src, "train.tsv")) if len(x[0].split()) >= 8]
    random.Random(7).shuffle(train)
    test = rows(os.path.join(src, "test.tsv"))
    random.Random(8).shuffle(test)
    for name, data in (("train.jsonl", train[:n_train]), ("heldout.jsonl", test[:n_held])):
        with open(os.path.join(out, name), "w", encoding="utf-8") as f:
            for s, l in data:
                f.write(json.dumps(rec(s, l)) + "\n")
    with open(os.path.join(out, "grader.json"), "w") as f:
        json.dump({"type": "string_check", "name": "label", "input": "{{ sample.output_text }}",
                   "reference": "{{ item.label }}", "operation": "eq"}, f)


if __name__ == "__main__":
    main()
