#!/usr/bin/env python3
"""Writes tests/fixtures/metrics/pairs.jsonl and corpus.jsonl: hypothesis/reference pairs and
the values the reference tools give for them, which tests/test_textmetrics.c checks against
src/eval/ (BLEU, chrF, ROUGE, SQuAD exact match / F1, fuzzy match).

Reference tools (pip): sacrebleu (BLEU, chrF), rouge-score (ROUGE), rapidfuzz (WRatio);
SQuAD's normaliser and F1 are written out below as the official v2.0 script has them.
The text is the project's own (no third-party data is copied), and the pairs are generated
deterministically (fixed seed): English with punctuation, numbers, case, entities and odd
white space; Japanese (scored character by character); empty strings; very long lines;
identical and disjoint pairs.

    python3 tools/make_metric_fixtures.py   # from the repository root

pairs.jsonl, one object per pair:
  hyp, ref, lang ("words" or "chars"),
  bleu, chrf (sentence scores, 0-100: sacrebleu.sentence_bleu / sentence_chrf, defaults;
              tokenize 'char' for chars pairs, '13a' otherwise),
  rouge1, rouge2, rouge4, rougeL ([precision, recall, fmeasure], rouge-score's RougeScorer,
              use_stemmer=False; chars pairs with a tokenizer returning the non-space characters),
  em, f1 (SQuAD v2.0 normalisation; chars pairs compare the non-space characters),
  fuzzy (rapidfuzz fuzz.WRatio(hyp, ref, processor=utils.default_process), 0-100).
corpus.jsonl, one object per group of pairs: group, lang, bleu, chrf (sacrebleu.corpus_bleu /
corpus_chrf over the group's pairs in file order).
"""
import collections
import json
import os
import random
import re
import string

import rapidfuzz
import rouge_score
import sacrebleu
from rapidfuzz import fuzz, utils
from rouge_score import rouge_scorer

SEED = 20261207

ENGLISH = [
    "The quick brown fox jumps over the lazy dog.",
    "It costs $3.50, or 1,000 yen at today's rate (roughly).",
    "Dr. Smith arrived at 10:30 a.m. on 2024-05-17; nobody expected him.",
    "\"Hello,\" she said, \"isn't this the place?\"",
    "Rates rose 2-3% in Q4, then fell by 0.25 points.",
    "Tom & Jerry &amp; friends: &quot;cartoons&quot; are &lt;fun&gt;.",
    "Use the --threads flag, e.g. takumi train --threads 4.",
    "A man, a plan, a canal: Panama!",
    "The answer is 42.",
    "An apple a day keeps the doctor away.",
    "What is the capital of France? Paris.",
    "Water boils at 100 degrees Celsius at sea level.",
    "She sells sea-shells by the sea-shore, doesn't she?",
    "In 1969, Apollo 11 landed on the Moon; Armstrong stepped out first.",
    "Fine-tuning changes the weights; inference only reads them.",
    "E = mc^2 is Einstein's best-known equation.",
    "Call 555-0123 or write to info@example.com before 5 p.m.",
    "The results were: accuracy 91.2%, F1 0.87 and BLEU 27.4.",
    "Please, please, please don't go!",
    "Is it 3.14 or 3,14? It depends on the locale.",
    "The model answered <skipped> and then stopped.",
    "New York-based startups raised $1.2B in 2023.",
    "Über café naïve résumé façade — déjà vu.",
    "ΟΔΟΣ and οδός are the same Greek word; Σίσυφος too.",
    "İstanbul and ISTANBUL differ in the dotted capital İ.",
    "The temperature was 300 \u212a (kelvin sign) in the lab.",
    "Tabs\tand\u00a0non-breaking\u2003spaces\u3000are white space too.",
    "Emoji 🙂 and symbols ★ ♥ should not break anything.",
    "line one-\nline two\nline three",
    "The the the a an AN The.",
    "x_y snake_case and CamelCase identifiers_",
    "Separators\x1cfile\x1dgroup\x1erecord\x1funit.",
    "Hyphen-ated, dash — and en–dash.",
    "Numbers like 1-2, 10-20 and -5 are tricky.",
    "Trailing spaces and tabs   \t ",
    "   leading white space",
    "Hello World",
    "HELLO WORLD!!!",
    "Σ at the end: ΠΑΝΤΑΣ.",
    "Data, data everywhere, and not a byte to spare.",
]

JAPANESE = [
    "東京は日本の首都です。",
    "今日はとても暑いですね。",
    "猫が窓のそばで寝ている。",
    "機械学習のモデルを微調整します。",
    "富士山の高さは3776メートルです。",
    "明日の会議は午後二時からです。",
    "この本はとても面白かった！",
    "カタカナとひらがなと漢字を使います。",
    "ＡＩの評価には人の確認も必要です。",
    "彼は駅まで歩いて行きました。",
    "雨が降ったら試合は中止です。",
    "日本語には単語の間に空白がありません。",
    "コーヒーを一杯ください。",
    "京都の紅葉は十一月が見頃です。",
    "質問：日本で一番長い川は？ 答え：信濃川。",
    "半角ｶﾀｶﾅも 全角スペース　も含む文。",
    "학습 데이터를 확인하세요.",
    "中文句子也应该按字符计算。",
]

WORD_POOL = ("alpha beta gamma delta model data train test value answer river mountain city "
             "quickly slowly 7 13 2024 the a an of and").split()


def perturb_words(rng, s):
    w = s.split(" ")
    op = rng.randrange(8)
    if op == 0 and len(w) > 1:
        del w[rng.randrange(len(w))]
    elif op == 1 and len(w) > 1:
        i = rng.randrange(len(w) - 1)
        w[i], w[i + 1] = w[i + 1], w[i]
    elif op == 2:
        w[rng.randrange(len(w))] = rng.choice(WORD_POOL)
    elif op == 3:
        w.insert(rng.randrange(len(w) + 1), rng.choice(WORD_POOL))
    elif op == 4:
        return s.upper() if rng.random() < 0.5 else s.lower()
    elif op == 5:
        return s.rstrip(".!?") + rng.choice(["", " .", "!", "?", "..."])
    elif op == 6:
        return " ".join(w[: max(1, len(w) // 2)])
    else:
        rng.shuffle(w)
    return " ".join(w)


def perturb_chars(rng, s):
    c = list(s)
    for _ in range(rng.randrange(1, 4)):
        op = rng.randrange(4)
        if op == 0 and len(c) > 1:
            del c[rng.randrange(len(c))]
        elif op == 1:
            c.insert(rng.randrange(len(c) + 1), rng.choice("のはをにがでとも一二三 、。"))
        elif op == 2 and len(c) > 1:
            i = rng.randrange(len(c) - 1)
            c[i], c[i + 1] = c[i + 1], c[i]
        elif c:
            c[rng.randrange(len(c))] = rng.choice("あいうえおカキクケコ日月火水木")
    return "".join(c)


def make_pairs():
    rng = random.Random(SEED)
    en, ja = [], []
    for s in ENGLISH:                      # identical, lightly and heavily perturbed
        en.append((s, s))
        en.append((perturb_words(rng, s), s))
        t = s
        for _ in range(3):
            t = perturb_words(rng, t)
        en.append((t, s))
    for _ in range(60):                    # mixtures of two sentences
        a, b = rng.sample(ENGLISH, 2)
        en.append((a + " " + b, perturb_words(rng, b)))
    for i in range(len(ENGLISH)):          # disjoint
        en.append((ENGLISH[i], ENGLISH[(i + 7) % len(ENGLISH)]))
    en += [("", ""), ("", "The answer is 42."), ("The answer is 42.", ""), ("   ", "  \t"),
           ("!!!", "?"), ("a", "a"), ("a", "b"), ("The", "the"), ("Paris.", "paris"),
           ("42", "The answer is 42."), ("1,000", "1000"), ("x" * 70, "x" * 69 + "y"),
           ("the cat the cat the cat", "the cat"), ("abc abc abd", "abd abc"),
           ("&amp;lt;", "<"), ("<skipped><skipped>", ""), ("a-\nb", "ab")]
    long_en = " ".join(ENGLISH) * 3        # very long lines
    for k in range(3):
        h = " ".join(perturb_words(rng, s) for s in (ENGLISH * 3)[k:])
        en.append((h, long_en))
    en.append((long_en, long_en))
    en.append((ENGLISH[0] * 40, long_en[:500]))  # long vs short (partial ratios)
    en.append((ENGLISH[8], long_en))
    for s in JAPANESE:
        ja.append((s, s))
        ja.append((perturb_chars(rng, s), s))
        ja.append((perturb_chars(rng, perturb_chars(rng, s)), s))
    for _ in range(20):
        a, b = rng.sample(JAPANESE, 2)
        ja.append((a + b, perturb_chars(rng, b)))
    for i in range(len(JAPANESE)):
        ja.append((JAPANESE[i], JAPANESE[(i + 5) % len(JAPANESE)]))
    ja += [("", ""), ("", "東京"), ("東京", ""), ("東 京", "東京"), ("Tokyo は東京", "東京 Tokyo")]
    long_ja = "".join(JAPANESE) * 8
    ja.append((perturb_chars(rng, long_ja), long_ja))
    ja.append((JAPANESE[0], long_ja))
    return en, ja


class CharTokenizer:
    """rouge-score tokenizer for text without spaces between words: every non-space character."""

    def tokenize(self, text):
        return [c for c in text if not c.isspace()]


# ---- SQuAD v2.0 official evaluation: normalisation, exact match, F1 ----
def normalize_answer(s):
    def remove_articles(text):
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


def squad_tokens(s, chars):
    if not s:
        return []
    n = normalize_answer(s)
    return [c for c in n if not c.isspace()] if chars else n.split()


def squad_em_f1(hyp, ref, chars):
    pred, gold = squad_tokens(hyp, chars), squad_tokens(ref, chars)
    em = int(pred == gold) if chars else int(normalize_answer(ref) == normalize_answer(hyp))
    common = collections.Counter(gold) & collections.Counter(pred)
    num_same = sum(common.values())
    if len(gold) == 0 or len(pred) == 0:
        return em, float(gold == pred)
    if num_same == 0:
        return em, 0.0
    p = 1.0 * num_same / len(pred)
    r = 1.0 * num_same / len(gold)
    return em, (2 * p * r) / (p + r)


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    out_dir = os.path.join(root, "tests", "fixtures", "metrics")
    os.makedirs(out_dir, exist_ok=True)
    en, ja = make_pairs()
    types = ["rouge1", "rouge2", "rouge4", "rougeL"]
    scorers = {"words": rouge_scorer.RougeScorer(types, use_stemmer=False),
               "chars": rouge_scorer.RougeScorer(types, use_stemmer=False, tokenizer=CharTokenizer())}
    rows = []
    for lang, pairs in (("words", en), ("chars", ja)):
        tok = "char" if lang == "chars" else "13a"
        for hyp, ref in pairs:
            rs = scorers[lang].score(ref, hyp)
            em, f1 = squad_em_f1(hyp, ref, lang == "chars")
            row = {"hyp": hyp, "ref": ref, "lang": lang,
                   "bleu": sacrebleu.sentence_bleu(hyp, [ref], tokenize=tok).score,
                   "chrf": sacrebleu.sentence_chrf(hyp, [ref]).score}
            for t in types:
                row[t] = [rs[t].precision, rs[t].recall, rs[t].fmeasure]
            row.update(em=em, f1=f1, fuzzy=fuzz.WRatio(hyp, ref, processor=utils.default_process))
            rows.append(row)
    with open(os.path.join(out_dir, "pairs.jsonl"), "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    groups = [("en", "words", en), ("ja", "chars", ja), ("en_first_40", "words", en[:40])]
    with open(os.path.join(out_dir, "corpus.jsonl"), "w", encoding="utf-8") as f:
        for name, lang, pairs in groups:
            hyps, refs = [p[0] for p in pairs], [p[1] for p in pairs]
            tok = "char" if lang == "chars" else "13a"
            f.write(json.dumps({"group": name, "lang": lang, "n": len(pairs),
                                "bleu": sacrebleu.corpus_bleu(hyps, [refs], tokenize=tok).score,
                                "chrf": sacrebleu.corpus_chrf(hyps, [refs]).score}) + "\n")
    with open(os.path.join(out_dir, "SOURCE.txt"), "w") as f:
        f.write("Written by tools/make_metric_fixtures.py (seed %d) with sacrebleu %s, rouge-score %s, "
                "rapidfuzz %s.\n" % (SEED, sacrebleu.__version__, getattr(rouge_score, "__version__", "0.1.2"),
                                     rapidfuzz.__version__))
    print("wrote %d pairs, %d corpus groups to %s" % (len(rows), len(groups), out_dir))


if __name__ == "__main__":
    main()
