/* chrF as sacrebleu 2.x computes it with its defaults: character n-grams of orders 1-6 of the
 * text with all white space removed, no word n-grams, beta 2, and sacrebleu's averaging of
 * precision and recall over the orders both sides have (its "effective order"). */
#include "eval/textmetrics.h"
#include "eval/text_tokens.h"

enum { CHRF_ORDER = 6 };

tk_status tk_chrf_add(tk_chrf_stats *acc, const char *hyp, const char *ref) {
    const char *s[2] = {hyp, ref};
    const char *what[2] = {"chrF hypothesis", "chrF reference"};
    tk_tokvec t[2] = {{0}, {0}};
    tk_tok_pair tp = {0};
    double m[CHRF_ORDER][3];
    tk_status st = TK_OK;
    for (int k = 0; k < 2 && st == TK_OK; k++) {
        uint32_t *cp; size_t n;
        if ((st = tk_text_codepoints(s[k], what[k], &cp, &n)) != TK_OK) break;
        for (size_t i = 0; i < n && st == TK_OK; i++)
            if (!tk_py_isspace(cp[i])) st = tk_tokvec_push(&t[k], NULL, cp[i]);
        free(cp);
    }
    if (st == TK_OK) st = tk_tok_pair_make(&tp, t[0].v, t[0].n, t[1].v, t[1].n);
    if (st == TK_OK) st = tk_ngram_match(&tp, CHRF_ORDER, m);
    if (st == TK_OK)
        for (int n = 0; n < CHRF_ORDER; n++) {
            acc->v[n][0] += m[n][1] > 0 ? m[n][0] : 0; /* hypothesis n-grams count only where the reference has some */
            acc->v[n][1] += m[n][1];
            acc->v[n][2] += m[n][2];
        }
    tk_tok_pair_free(&tp);
    free(t[0].v); free(t[1].v);
    return st;
}

double tk_chrf_score(const tk_chrf_stats *s) {
    const double factor = 4.0; /* beta^2 */
    double avg_prec = 0.0, avg_rec = 0.0;
    int eff = 0;
    for (int n = 0; n < CHRF_ORDER; n++) {
        double hyp = s->v[n][0], ref = s->v[n][1], match = s->v[n][2];
        if (hyp > 0 && ref > 0) {
            avg_prec += match / hyp;
            avg_rec += match / ref;
            eff++;
        }
    }
    if (eff == 0) return 0.0;
    avg_prec /= eff;
    avg_rec /= eff;
    if (avg_prec + avg_rec == 0) return 0.0;
    double score = (1 + factor) * avg_prec * avg_rec;
    score /= factor * avg_prec + avg_rec;
    return 100 * score;
}

double tk_chrf_sentence(const tk_chrf_stats *one) { return tk_chrf_score(one); }
