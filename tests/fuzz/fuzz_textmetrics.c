/* libFuzzer target for the text metrics (src/eval/textmetrics.h): the first byte picks the
 * tokenisation (words or characters), the rest is a hypothesis and a reference separated by
 * the first NUL byte (none: the reference is empty). Properties: never a crash or sanitizer
 * report; a metric fails exactly when a text is not valid UTF-8, and then with a message;
 * every value is within its scale; a text scored against itself gets the top value where it
 * has anything to score; fuzzy match is symmetric. */
#include "takumi.h"
#include "eval/textmetrics.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void in_range(double v, double hi) { if (!(v >= 0 && v <= hi + 1e-9)) abort(); }

/* Every metric on (h, r); returns true when they succeeded (both valid). */
static bool score(const char *h, const char *r, tk_text_lang lang, bool valid) {
    tk_bleu_stats b = {0};
    tk_chrf_stats c = {{{0}}};
    tk_prf p;
    double em, f1, fz;
    tk_status st[6] = {tk_bleu_add(&b, h, r, lang), tk_chrf_add(&c, h, r), tk_rouge_n(h, r, 2, lang, &p), TK_OK,
                       tk_squad_scores(h, r, lang, &em, &f1), tk_fuzzy_match_ex(h, r, &fz)};
    if (st[2] == TK_OK) in_range(p.f, 1), in_range(p.p, 1), in_range(p.r, 1);
    st[3] = tk_rouge_l(h, r, lang, &p);
    for (int i = 0; i < 6; i++) {
        if ((st[i] == TK_OK) != valid) abort();
        if (st[i] != TK_OK && (st[i] != TK_ERR_ARG || !tk_last_error()[0])) abort();
    }
    if (!valid) return false;
    in_range(tk_bleu_sentence(&b), 100); in_range(tk_bleu_score(&b), 100);
    in_range(tk_chrf_sentence(&c), 100);
    in_range(p.f, 1); in_range(em, 1); in_range(f1, 1); in_range(fz, 1);
    double fz2;
    if (tk_fuzzy_match_ex(r, h, &fz2) != TK_OK || fabs(fz - fz2) > 1e-9) abort();
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    tk_text_lang lang = (data[0] & 1) ? TK_TEXT_CHARS : TK_TEXT_WORDS;
    const uint8_t *s = data + 1;
    size_t n = size - 1;
    const uint8_t *z = memchr(s, 0, n);
    size_t nh = z ? (size_t)(z - s) : n;
    char *h = malloc(nh + 1), *r = malloc(n - nh + 1);
    if (!h || !r) { free(h); free(r); return 0; }
    memcpy(h, s, nh); h[nh] = 0;
    size_t nr = z ? n - nh - 1 : 0;
    memcpy(r, z ? z + 1 : s, nr); r[nr] = 0;   /* a second NUL ends the reference early */
    bool valid = tk_text_check(h, "h") == TK_OK && tk_text_check(r, "r") == TK_OK;
    score(h, r, lang, valid);
    if (tk_text_check(h, "h") == TK_OK && score(h, h, lang, true)) {
        tk_chrf_stats c = {{{0}}};
        tk_prf p;
        double em, f1;
        if (tk_chrf_add(&c, h, h) != TK_OK || (c.v[0][1] > 0 && fabs(tk_chrf_sentence(&c) - 100) > 1e-9)) abort();
        if (tk_rouge_l(h, h, lang, &p) != TK_OK || (p.p != 0 && p.f != 1)) abort();
        if (tk_squad_scores(h, h, lang, &em, &f1) != TK_OK || em != 1 || f1 != 1) abort();
    }
    free(h); free(r);
    return 0;
}
