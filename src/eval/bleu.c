/* BLEU as sacrebleu 2.x computes it: the '13a' tokenizer (mteval-v13a) for words, 'char' for
 * characters; clipped n-gram matches of orders 1-4 summed over the corpus; the brevity
 * penalty; smoothing 'exp' (NIST: the k-th order without a match counts 1 / 2^k matches). */
#include "eval/textmetrics.h"
#include "eval/text_tokens.h"
#include "tokenizer/unicode.h"
#include <math.h>

/* One pass of Python's str.replace(from, to) over in[0..n) into out (cleared first). */
static tk_status replace_all(tk_buf *out, const char *in, size_t n, const char *from, const char *to) {
    out->len = 0;
    if (tk_buf_reserve(out, n + 1) != TK_OK) return TK_ERR_NOMEM;
    size_t fl = strlen(from), tl = strlen(to);
    for (size_t i = 0; i < n;) {
        if (i + fl <= n && memcmp(in + i, from, fl) == 0) {
            if (tk_buf_append(out, to, tl) != TK_OK) return TK_ERR_NOMEM;
            i += fl;
        } else {
            if (tk_buf_append(out, in + i, 1) != TK_OK) return TK_ERR_NOMEM;
            i++;
        }
    }
    return TK_OK;
}

/* The characters mteval-v13a always separates: { | } ~ [ \ ] ^ _ ` space ! " # $ % & ( ) * + : ; < = > ? @ / */
static bool is_13a_symbol(unsigned char c) {
    return (c >= '{' && c <= '~') || (c >= '[' && c <= '`') || (c >= ' ' && c <= '&') ||
           (c >= '(' && c <= '+') || (c >= ':' && c <= '@') || c == '/';
}
static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static bool is_dot_comma(unsigned char c) { return c == '.' || c == ','; }

/* One of the two-character passes of sacrebleu's TokenizerRegexp over in into out, a
 * left-to-right non-overlapping scan like re.sub:
 *   2: ([^0-9])([.,]) -> "\1 \2 "   3: ([.,])([^0-9]) -> " \1 \2"   4: ([0-9])(-) -> "\1 \2 " */
static tk_status pair_pass(const tk_buf *in, tk_buf *out, int pass) {
    out->len = 0;
    size_t i = 0;
    for (; i + 1 < in->len; i++) {
        unsigned char c = (unsigned char)in->data[i], d = (unsigned char)in->data[i + 1];
        bool hit = pass == 2 ? !is_digit(c) && is_dot_comma(d) : pass == 3 ? is_dot_comma(c) && !is_digit(d) : is_digit(c) && d == '-';
        if (!hit) {
            if (tk_buf_append(out, &in->data[i], 1) != TK_OK) return TK_ERR_NOMEM;
            continue;
        }
        char t[4] = {(char)c, ' ', (char)d, ' '};
        if (pass == 3) { t[0] = ' '; t[1] = (char)c; t[2] = ' '; t[3] = (char)d; }
        if (tk_buf_append(out, t, 4) != TK_OK) return TK_ERR_NOMEM;
        i++;
    }
    if (i < in->len && tk_buf_append(out, in->data + i, in->len - i) != TK_OK) return TK_ERR_NOMEM;
    return TK_OK;
}

/* The regular-expression passes of sacrebleu's TokenizerRegexp on *a (the result; *b is scratch),
 * in order. Working on bytes equals working on characters here: every pattern names ASCII only,
 * and a multi-byte character never contains an ASCII byte. */
static tk_status regexp_passes(tk_buf *a, tk_buf *b) {
    /* 1: ([{-~[-` -&(-+:-@/]) -> " \1 " */
    b->len = 0;
    for (size_t i = 0; i < a->len; i++) {
        unsigned char c = (unsigned char)a->data[i];
        char t[3] = {' ', (char)c, ' '};
        tk_status st = is_13a_symbol(c) ? tk_buf_append(b, t, 3) : tk_buf_append(b, &a->data[i], 1);
        if (st != TK_OK) return TK_ERR_NOMEM;
    }
    if (pair_pass(b, a, 2) != TK_OK || pair_pass(a, b, 3) != TK_OK || pair_pass(b, a, 4) != TK_OK) return TK_ERR_NOMEM;
    return TK_OK;
}

/* Byte length of s without its trailing Python white space (str.rstrip()). */
static size_t rstrip_len(const char *s, size_t n) {
    size_t end = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = tk_utf8_decode((const unsigned char *)s + i, n - i, &cp);
        i += k;
        if (!tk_py_isspace(cp)) end = i;
    }
    return end;
}

/* sacrebleu's Tokenizer13a on s.rstrip(): the tokenized line in *out (split it on white space). */
static tk_status tokenize_13a(const char *s, tk_buf *out) {
    tk_buf a = {0}, b = {0};
    size_t n = rstrip_len(s, strlen(s));
    tk_status st = replace_all(&a, s, n, "<skipped>", "");
    if (st == TK_OK) st = replace_all(&b, a.data, a.len, "-\n", "");
    if (st == TK_OK) st = replace_all(&a, b.data, b.len, "\n", " ");
    if (st == TK_OK && a.len && memchr(a.data, '&', a.len)) {
        static const char *const ent[4][2] = {{"&quot;", "\""}, {"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}};
        for (int e = 0; e < 4 && st == TK_OK; e++) {
            st = replace_all(&b, a.data, a.len, ent[e][0], ent[e][1]);
            tk_buf t = a; a = b; b = t;
        }
    }
    if (st == TK_OK) { /* f' {line} ' */
        b.len = 0;
        st = tk_buf_append(&b, " ", 1);
        if (st == TK_OK && a.len) st = tk_buf_append(&b, a.data, a.len);
        if (st == TK_OK) st = tk_buf_append(&b, " ", 1);
    }
    if (st == TK_OK) st = regexp_passes(&b, &a); /* the result is in b */
    tk_buf_free(&a);
    if (st != TK_OK) { tk_buf_free(&b); return TK_ERR_NOMEM; }
    *out = b;
    return TK_OK;
}

/* The tokens of one segment: 13a words (in *keep, which the tokens point into) or characters. */
static tk_status bleu_tokens(const char *s, const char *what, tk_text_lang lang, tk_buf *keep, tk_tokvec *t) {
    tk_status st = tk_text_check(s, what);
    if (st != TK_OK) return st;
    if (lang == TK_TEXT_WORDS) {
        if ((st = tokenize_13a(s, keep)) != TK_OK) return st;
        return keep->len ? tk_tokvec_split(t, keep->data, keep->len) : TK_OK;
    }
    uint32_t *cp; size_t n;
    if ((st = tk_text_codepoints(s, what, &cp, &n)) != TK_OK) return st;
    for (size_t i = 0; i < n && st == TK_OK; i++)
        if (!tk_py_isspace(cp[i])) st = tk_tokvec_push(t, NULL, cp[i]);
    free(cp);
    return st;
}

tk_status tk_bleu_add(tk_bleu_stats *acc, const char *hyp, const char *ref, tk_text_lang lang) {
    tk_buf kh = {0}, kr = {0};
    tk_tokvec th = {0}, tr = {0};
    tk_tok_pair tp = {0};
    double m[4][3];
    tk_status st = bleu_tokens(hyp, "BLEU hypothesis", lang, &kh, &th);
    if (st == TK_OK) st = bleu_tokens(ref, "BLEU reference", lang, &kr, &tr);
    if (st == TK_OK) st = tk_tok_pair_make(&tp, th.v, th.n, tr.v, tr.n);
    if (st == TK_OK) st = tk_ngram_match(&tp, 4, m);
    if (st == TK_OK) {
        for (int n = 0; n < 4; n++) { acc->match[n] += m[n][2]; acc->total[n] += m[n][0]; }
        acc->hyp_len += (double)th.n;
        acc->ref_len += (double)tr.n;
    }
    tk_tok_pair_free(&tp);
    free(th.v); free(tr.v);
    tk_buf_free(&kh); tk_buf_free(&kr);
    return st;
}

/* sacrebleu's my_log: log with log(0) floored to -9999999999. */
static double floored_log(double x) { return x == 0.0 ? -9999999999.0 : log(x); }

/* sacrebleu BLEU.compute_bleu with smooth_method 'exp'. */
static double bleu_compute(const tk_bleu_stats *s, bool effective_order) {
    double bp = 1.0;
    if (s->hyp_len < s->ref_len) bp = s->hyp_len > 0 ? exp(1.0 - s->ref_len / s->hyp_len) : 0.0;
    bool any = false;
    for (int n = 0; n < 4; n++) any |= s->match[n] != 0;
    if (!any) return 0.0;
    double prec[4] = {0}, smooth = 1.0;
    int eff = 4;
    for (int n = 1; n <= 4; n++) {
        if (s->total[n - 1] == 0) break;
        if (effective_order) eff = n;
        if (s->match[n - 1] == 0) {
            smooth *= 2;
            prec[n - 1] = 100.0 / (smooth * s->total[n - 1]);
        } else {
            prec[n - 1] = 100.0 * s->match[n - 1] / s->total[n - 1];
        }
    }
    double sum = 0.0;
    for (int n = 0; n < eff; n++) sum += floored_log(prec[n]);
    return bp * exp(sum / eff);
}

double tk_bleu_score(const tk_bleu_stats *s) { return bleu_compute(s, false); }
double tk_bleu_sentence(const tk_bleu_stats *one) { return bleu_compute(one, true); }
