#!/usr/bin/env python3
"""Writes tests/fixtures/graders/similarity.jsonl: answer/reference pairs and, for each of
OpenAI's text_similarity metrics that takumi grades, the score the reference tools give, on
the grader's 0..1 scale. tests/test_grader.c grades each pair through a text_similarity grader
({{ sample.output_text }} against {{ item.reference }}) and compares.

    python3 tools/make_grader_fixtures.py   # from the repository root

Metrics and tools (pip):
  fuzzy_match  rapidfuzz fuzz.WRatio(answer, reference, processor=utils.default_process) / 100
  bleu         sacrebleu.sentence_bleu(answer, [reference]).score / 100 (tokenize '13a'; 'char'
               when the reference holds CJK characters)
  rouge_1..5, rouge_l   rouge-score RougeScorer(use_stemmer=False) F-measure; references with
               CJK characters are tokenized into their non-space characters
The text is the project's own.
"""
import json
import os

import rapidfuzz
import sacrebleu
from rapidfuzz import fuzz, utils
from rouge_score import rouge_scorer

PAIRS = [
    ("The capital of France is Paris.", "Paris is the capital of France."),
    ("Paris", "Paris"),
    ("paris!", "Paris"),
    ("It is positive.", "positive"),
    ("negative", "positive"),
    ("The quick brown fox jumps over the lazy dog", "The quick brown fox jumped over the lazy dog."),
    ("Refunds are possible within 30 days with a receipt.", "You can get a refund within 30 days if you have the receipt."),
    ("We ship to Japan, Korea and Taiwan in 3-5 business days.", "Shipping to Japan takes 3 to 5 business days."),
    ("one two three four five six", "one two three four five six"),
    ("one two three four five six", "six five four three two one"),
    ("", "The answer is 42."),
    ("The answer is 42.", ""),
    ("", ""),
    ("Yes, the store opens at 9 a.m. on weekdays and 10 a.m. on weekends.",
     "The store opens at 9 a.m. on weekdays, 10 a.m. on weekends."),
    ("東京は日本の首都です。", "日本の首都は東京です。"),
    ("返品は三十日以内に可能です。", "返品はレシートがあれば三十日以内にできます。"),
    ("猫", "犬"),
    ("Tokyo は東京", "東京 Tokyo"),
]

METRICS = ["fuzzy_match", "bleu", "rouge_1", "rouge_2", "rouge_3", "rouge_4", "rouge_5", "rouge_l"]
ROUGE = {"rouge_%d" % n: "rouge%d" % n for n in range(1, 6)}
ROUGE["rouge_l"] = "rougeL"


def is_cjk(c):
    o = ord(c)
    return (0x3040 <= o <= 0x30FF or 0x31F0 <= o <= 0x31FF or 0xFF66 <= o <= 0xFF9F or 0x3400 <= o <= 0x4DBF
            or 0x4E00 <= o <= 0x9FFF or 0xF900 <= o <= 0xFAFF or 0x20000 <= o <= 0x3134F
            or 0x1100 <= o <= 0x11FF or 0x3130 <= o <= 0x318F or 0xAC00 <= o <= 0xD7AF)


class CharTokenizer:
    def tokenize(self, text):
        return [c for c in text if not c.isspace()]


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    out = os.path.join(root, "tests", "fixtures", "graders", "similarity.jsonl")
    types = sorted(set(ROUGE.values()))
    words = rouge_scorer.RougeScorer(types, use_stemmer=False)
    chars = rouge_scorer.RougeScorer(types, use_stemmer=False, tokenizer=CharTokenizer())
    with open(out, "w", encoding="utf-8") as f:
        for answer, ref in PAIRS:
            cjk = any(is_cjk(c) for c in ref)
            rs = (chars if cjk else words).score(ref, answer)
            for m in METRICS:
                if m == "fuzzy_match":
                    v = fuzz.WRatio(answer, ref, processor=utils.default_process) / 100
                elif m == "bleu":
                    v = sacrebleu.sentence_bleu(answer, [ref], tokenize="char" if cjk else "13a").score / 100
                else:
                    v = rs[ROUGE[m]].fmeasure
                f.write(json.dumps({"metric": m, "answer": answer, "reference": ref, "score": v}, ensure_ascii=False) + "\n")
    print("wrote %d rows to %s (sacrebleu %s, rapidfuzz %s)" % (len(PAIRS) * len(METRICS), out, sacrebleu.__version__,
                                                              rapidfuzz.__version__))


if __name__ == "__main__":
    main()
