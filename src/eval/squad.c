/* SQuAD's exact match and token F1 (the official v2.0 evaluation script): both texts are
 * normalised (Python str.lower(), ASCII punctuation removed, the words a / an / the removed,
 * white space collapsed), then compared as words, or in CHARS mode as their non-white-space
 * characters. */
#include "eval/textmetrics.h"
#include "eval/text_tokens.h"
#include "tokenizer/unicode.h"

static bool is_word_char(uint32_t cp) { /* Python re's \w */
    return cp == '_' || (tk_uni_flags(cp) & (TK_UF_LETTER | TK_UF_NUMBER)) != 0;
}

/* A letter for the final-sigma rule of str.lower() (marks are skipped over, as case-ignorable). */
static bool sigma_letter(const uint32_t *cp, size_t n, size_t i, int dir) {
    for (size_t j = i;;) {
        if (dir < 0) { if (j == 0) return false; j--; }
        else { if (j + 1 >= n) return false; j++; }
        uint8_t f = tk_uni_flags(cp[j]);
        if (f & TK_UF_MARK) continue;
        return (f & TK_UF_LETTER) != 0;
    }
}

/* str.lower() of cp[0..n) into out (room for 2n): the simple mapping, plus U+0130 -> i U+0307 and
 * capital sigma -> final sigma at the end of a word. */
static size_t py_lower(const uint32_t *cp, size_t n, uint32_t *out) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (cp[i] == 0x0130) { out[k++] = 'i'; out[k++] = 0x0307; }
        else if (cp[i] == 0x03A3) out[k++] = sigma_letter(cp, n, i, -1) && !sigma_letter(cp, n, i, +1) ? 0x03C2 : 0x03C3;
        else out[k++] = tk_uni_tolower(cp[i]);
    }
    return k;
}

static bool is_ascii_punct(uint32_t c) { /* Python's string.punctuation */
    return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E);
}

/* Length of the article (a, an, the) at t[i] as a whole word (re \b(a|an|the)\b), or 0. */
static size_t article_at(const uint32_t *t, size_t n, size_t i) {
    if (i > 0 && is_word_char(t[i - 1])) return 0;
    static const char *const art[3] = {"a", "an", "the"};
    for (int a = 0; a < 3; a++) {
        size_t len = strlen(art[a]), j = 0;
        while (j < len && i + j < n && t[i + j] == (uint32_t)art[a][j]) j++;
        if (j == len && (i + len == n || !is_word_char(t[i + len]))) return len;
    }
    return 0;
}

/* The normalised text's tokens: words (pointing into *keep) or characters. */
static tk_status squad_tokens(const char *s, const char *what, tk_text_lang lang, tk_buf *keep, tk_tokvec *t) {
    uint32_t *cp, *low = NULL, *txt = NULL;
    size_t n;
    tk_status st = tk_text_codepoints(s, what, &cp, &n);
    if (st != TK_OK) return st;
    if (!(low = tk_malloc((2 * n + 1) * sizeof *low)) || !(txt = tk_malloc((2 * n + 1) * sizeof *txt))) st = TK_ERR_NOMEM;
    size_t m = 0;
    if (st == TK_OK) {
        size_t nl = py_lower(cp, n, low), k = 0;
        for (size_t i = 0; i < nl; i++)
            if (!is_ascii_punct(low[i])) low[k++] = low[i];
        for (size_t i = 0; i < k;) {
            size_t a = article_at(low, k, i);
            if (a) { txt[m++] = ' '; i += a; }
            else txt[m++] = low[i++];
        }
    }
    if (st == TK_OK && lang == TK_TEXT_CHARS) {
        for (size_t i = 0; i < m && st == TK_OK; i++)
            if (!tk_py_isspace(txt[i])) st = tk_tokvec_push(t, NULL, txt[i]);
    } else if (st == TK_OK) {
        if (tk_buf_reserve(keep, 4 * m + 1) != TK_OK) st = TK_ERR_NOMEM;
        for (size_t i = 0; i < m && st == TK_OK; i++) keep->len += (size_t)tk_utf8_encode(txt[i], keep->data + keep->len);
        if (st == TK_OK && keep->len) st = tk_tokvec_split(t, keep->data, keep->len);
    }
    free(cp); free(low); free(txt);
    return st;
}

/* Unigram overlap of the normalised texts: *same (common tokens), *nh, *nr, *equal (same token list). */
static tk_status squad_overlap(const char *hyp, const char *ref, tk_text_lang lang, double *same, size_t *nh, size_t *nr, bool *equal) {
    tk_buf kh = {0}, kr = {0};
    tk_tokvec th = {0}, tr = {0};
    tk_tok_pair tp = {0};
    double m[1][3] = {{0, 0, 0}};
    tk_status st = squad_tokens(hyp, "hypothesis", lang, &kh, &th);
    if (st == TK_OK) st = squad_tokens(ref, "reference", lang, &kr, &tr);
    if (st == TK_OK) st = tk_tok_pair_make(&tp, th.v, th.n, tr.v, tr.n);
    if (st == TK_OK) st = tk_ngram_match(&tp, 1, m);
    if (st == TK_OK) {
        *same = m[0][2]; *nh = th.n; *nr = tr.n;
        *equal = th.n == tr.n && (th.n == 0 || memcmp(tp.ids, tp.ids + th.n, th.n * sizeof *tp.ids) == 0);
    }
    tk_tok_pair_free(&tp);
    free(th.v); free(tr.v);
    tk_buf_free(&kh); tk_buf_free(&kr);
    return st;
}

tk_status tk_squad_scores(const char *hyp, const char *ref, tk_text_lang lang, double *em, double *f1) {
    double same = 0; size_t nh = 0, nr = 0; bool eq = false;
    *em = *f1 = 0;
    tk_status st = squad_overlap(hyp, ref, lang, &same, &nh, &nr, &eq);
    if (st == TK_ERR_NOMEM) return tk_fail(TK_ERR_NOMEM, "exact match / F1: out of memory");
    if (st != TK_OK) return st;
    *em = eq ? 1.0 : 0.0;
    if (nh == 0 || nr == 0) *f1 = *em; /* an empty answer is right only against an empty one */
    else if (same > 0) {
        double p = same / (double)nh, r = same / (double)nr;
        *f1 = 2 * p * r / (p + r);
    }
    return TK_OK;
}

double tk_exact_match(const char *hyp, const char *ref, tk_text_lang lang) {
    double em, f1;
    return tk_squad_scores(hyp, ref, lang, &em, &f1) == TK_OK ? em : 0.0;
}

double tk_token_f1(const char *hyp, const char *ref, tk_text_lang lang) {
    double em, f1;
    return tk_squad_scores(hyp, ref, lang, &em, &f1) == TK_OK ? f1 : 0.0;
}
