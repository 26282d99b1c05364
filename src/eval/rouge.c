/* ROUGE-N and ROUGE-L of one pair as Google's rouge-score returns them (RougeScorer without
 * stemming). Its tokenizer lowercases (Python str.lower()), keeps the runs of [a-z0-9] and drops
 * everything else, so text without Latin letters or digits has no tokens; for such text the
 * CHARS mode takes every non-white-space character as a token instead, as rouge-score does with
 * a tokenizer object whose tokenize(text) returns [c for c in text if not c.isspace()]. */
#include "eval/textmetrics.h"
#include "eval/text_tokens.h"

/* ASCII letter or digit of the lowercased text that codepoint cp starts (0: none); *brk set when
 * the lowercase form continues with a character that ends the run (U+0130 -> "i" U+0307). */
static char rouge_alnum(uint32_t cp, bool *brk) {
    *brk = false;
    if (cp >= 'A' && cp <= 'Z') return (char)(cp - 'A' + 'a');
    if ((cp >= 'a' && cp <= 'z') || (cp >= '0' && cp <= '9')) return (char)cp;
    if (cp == 0x212A) return 'k';                 /* KELVIN SIGN lowercases to k */
    if (cp == 0x0130) { *brk = true; return 'i'; } /* I WITH DOT ABOVE lowercases to i + U+0307 */
    return 0;
}

/* Tokens of s: in WORDS mode they point into *keep (the lowercased runs, NUL-separated). */
static tk_status rouge_tokens(const char *s, const char *what, tk_text_lang lang, tk_buf *keep, tk_tokvec *t) {
    uint32_t *cp; size_t n;
    tk_status st = tk_text_codepoints(s, what, &cp, &n);
    if (st != TK_OK) return st;
    if (lang == TK_TEXT_CHARS) {
        for (size_t i = 0; i < n && st == TK_OK; i++)
            if (!tk_py_isspace(cp[i])) st = tk_tokvec_push(t, NULL, cp[i]);
        free(cp);
        return st;
    }
    /* first the text of all tokens, then the tokens (the buffer no longer moves) */
    size_t *start = NULL, ns = 0;
    if (tk_buf_reserve(keep, 2 * n + 1) != TK_OK || !(start = tk_malloc((n + 1) * sizeof *start))) st = TK_ERR_NOMEM;
    bool in = false;
    for (size_t i = 0; i < n && st == TK_OK; i++) {
        bool brk;
        char c = rouge_alnum(cp[i], &brk);
        if (c) {
            if (!in) { start[ns++] = keep->len; in = true; }
            keep->data[keep->len++] = c;
        }
        if (!c || brk) {
            if (in) keep->data[keep->len++] = 0;
            in = false;
        }
    }
    if (st == TK_OK) {
        if (in) keep->data[keep->len++] = 0;
        for (size_t k = 0; k < ns && st == TK_OK; k++)
            st = tk_tokvec_push(t, keep->data + start[k], strlen(keep->data + start[k]));
    }
    free(start);
    free(cp);
    return st;
}

static double fmeasure(double p, double r) { return p + r > 0 ? 2 * p * r / (p + r) : 0.0; }

/* Tokens of both texts as one interned pair (hypothesis first). */
static tk_status rouge_pair(const char *hyp, const char *ref, tk_text_lang lang, tk_tok_pair *tp) {
    tk_buf kh = {0}, kr = {0};
    tk_tokvec th = {0}, tr = {0};
    tk_status st = rouge_tokens(hyp, "ROUGE hypothesis", lang, &kh, &th);
    if (st == TK_OK) st = rouge_tokens(ref, "ROUGE reference", lang, &kr, &tr);
    if (st == TK_OK) st = tk_tok_pair_make(tp, th.v, th.n, tr.v, tr.n);
    free(th.v); free(tr.v);
    tk_buf_free(&kh); tk_buf_free(&kr);
    return st;
}

tk_status tk_rouge_n(const char *hyp, const char *ref, int n, tk_text_lang lang, tk_prf *out) {
    *out = (tk_prf){0};
    if (n < 1 || n > 9) return tk_fail(TK_ERR_ARG, "ROUGE-N: n is %d, not 1..9", n);
    tk_tok_pair tp = {0};
    tk_status st = rouge_pair(hyp, ref, lang, &tp);
    double m[9][3];
    if (st == TK_OK) st = tk_ngram_match(&tp, n, m);
    if (st == TK_OK) {
        double pred = m[n - 1][0], target = m[n - 1][1], inter = m[n - 1][2];
        out->p = inter / (pred > 1 ? pred : 1);
        out->r = inter / (target > 1 ? target : 1);
        out->f = fmeasure(out->p, out->r);
    }
    tk_tok_pair_free(&tp);
    return st;
}

tk_status tk_rouge_l(const char *hyp, const char *ref, tk_text_lang lang, tk_prf *out) {
    *out = (tk_prf){0};
    tk_tok_pair tp = {0};
    tk_status st = rouge_pair(hyp, ref, lang, &tp);
    size_t lcs = 0;
    if (st == TK_OK && tp.na && tp.nb) st = tk_tok_lcs(&tp, &lcs);
    if (st == TK_OK && tp.na && tp.nb) {
        out->p = (double)lcs / (double)tp.na;
        out->r = (double)lcs / (double)tp.nb;
        out->f = fmeasure(out->p, out->r);
    }
    tk_tok_pair_free(&tp);
    return st;
}
