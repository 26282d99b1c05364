/* Text metrics of the evaluation, each equal to its reference tool: BLEU and chrF as
 * sacrebleu 2.x prints them (0-100), ROUGE as Google's rouge-score returns it (0-1),
 * SQuAD-style exact match and token F1, and rapidfuzz's WRatio (OpenAI's text_similarity
 * "fuzzy_match"). Inputs are UTF-8 strings; invalid UTF-8 (or NULL) is TK_ERR_ARG with a
 * message. tools/make_metric_fixtures.py writes the reference values that
 * tests/test_textmetrics.c checks. Every function is thread-safe (no shared state). */
#ifndef TK_EVAL_TEXTMETRICS_H
#define TK_EVAL_TEXTMETRICS_H

#include "core/core.h"
#include <stddef.h>

typedef enum tk_text_lang { TK_TEXT_WORDS = 0, TK_TEXT_CHARS = 1 } tk_text_lang;
/* CHARS when more than half of the n references contain CJK (Han, Hiragana, Katakana, Hangul) characters. Thread-safe. */
tk_text_lang tk_text_lang_guess(const char *const *refs, size_t n);

typedef struct tk_bleu_stats { double match[4], total[4], hyp_len, ref_len; } tk_bleu_stats;
/* Adds one pair's sufficient statistics (sacrebleu: tokenize '13a' for WORDS, 'char' for CHARS). Thread-safe. */
tk_status tk_bleu_add(tk_bleu_stats *acc, const char *hyp, const char *ref, tk_text_lang lang);
/* Corpus BLEU 0-100 from summed stats, as sacrebleu.corpus_bleu with default settings (smooth 'exp'). Thread-safe. */
double tk_bleu_score(const tk_bleu_stats *s);
/* Sentence BLEU 0-100 as sacrebleu.sentence_bleu (default settings: smooth 'exp', effective order). Thread-safe. */
double tk_bleu_sentence(const tk_bleu_stats *one);

typedef struct tk_chrf_stats { double v[6][3]; } tk_chrf_stats; /* per char n-gram order: hyp count, ref count, matches */
/* Adds one pair's character n-gram statistics (sacrebleu chrF: whitespace removed). Thread-safe. */
tk_status tk_chrf_add(tk_chrf_stats *acc, const char *hyp, const char *ref);
/* Corpus chrF 0-100 as sacrebleu.corpus_chrf defaults (char order 6, word order 0, beta 2). Thread-safe. */
double tk_chrf_score(const tk_chrf_stats *s);
/* Sentence chrF 0-100 as sacrebleu.sentence_chrf. Thread-safe. */
double tk_chrf_sentence(const tk_chrf_stats *one);

typedef struct tk_prf { double p, r, f; } tk_prf;
/* ROUGE-N (n 1..9) of one pair as Google's rouge-score (RougeScorer, use_stemmer=False) returns it;
 * CHARS: tokens are the non-space characters (rouge-score with a character tokenizer). Thread-safe. */
tk_status tk_rouge_n(const char *hyp, const char *ref, int n, tk_text_lang lang, tk_prf *out);
/* ROUGE-L (longest common subsequence) of one pair, as tk_rouge_n. Thread-safe. */
tk_status tk_rouge_l(const char *hyp, const char *ref, tk_text_lang lang, tk_prf *out);

/* SQuAD-style normalised exact match (0/1); CHARS: characters instead of words.
 * Invalid UTF-8 or NULL gives 0 (tk_squad_scores tells). Thread-safe. */
double tk_exact_match(const char *hyp, const char *ref, tk_text_lang lang);
/* SQuAD token F1 (0..1) after the same normalisation; CHARS: characters instead of words. Thread-safe. */
double tk_token_f1(const char *hyp, const char *ref, tk_text_lang lang);
/* Both SQuAD values of one pair with a status (TK_ERR_ARG for invalid UTF-8, TK_ERR_NOMEM). Thread-safe. */
tk_status tk_squad_scores(const char *hyp, const char *ref, tk_text_lang lang, double *em, double *f1);
/* rapidfuzz fuzz.WRatio(a, b, processor=utils.default_process) / 100 — OpenAI's text_similarity "fuzzy_match". Thread-safe. */
double tk_fuzzy_match(const char *a, const char *b);
/* tk_fuzzy_match with a status (TK_ERR_ARG for invalid UTF-8, TK_ERR_NOMEM); *out in 0..1. Thread-safe. */
tk_status tk_fuzzy_match_ex(const char *a, const char *b, double *out);

/* TK_OK when s is valid UTF-8 without NUL bytes, else TK_ERR_ARG naming what (e.g. "hypothesis") and the byte offset. Thread-safe. */
tk_status tk_text_check(const char *s, const char *what);

#endif
