/* Codepoints, Python white space, token interning and exact n-gram matching (text_tokens.h). */
#include "eval/text_tokens.h"
#include "data/data_internal.h"
#include "tokenizer/unicode.h"

bool tk_py_isspace(uint32_t cp) {
    if (cp >= 0x1C && cp <= 0x1F) return true; /* str.isspace() counts the ASCII separators, \s tables do not */
    return (tk_uni_flags(cp) & TK_UF_WHITESPACE) != 0;
}

tk_status tk_text_check(const char *s, const char *what) {
    if (!s) return tk_fail(TK_ERR_ARG, "%s: no text (NULL)", what);
    size_t len = strlen(s);
    bool nul = false;
    size_t bad = tk_utf8_check(s, len, &nul);
    if (bad != len) return tk_fail(TK_ERR_ARG, "%s: invalid UTF-8 at byte %zu", what, bad);
    return TK_OK;
}

tk_status tk_text_codepoints(const char *s, const char *what, uint32_t **out, size_t *n) {
    *out = NULL; *n = 0;
    tk_status st = tk_text_check(s, what);
    if (st != TK_OK) return st;
    size_t len = strlen(s);
    uint32_t *cp = tk_malloc((len + 1) * sizeof *cp);
    if (!cp) return TK_ERR_NOMEM;
    size_t k = 0;
    for (size_t i = 0; i < len;) {
        i += tk_utf8_decode((const unsigned char *)s + i, len - i, &cp[k]);
        k++;
    }
    *out = cp; *n = k;
    return TK_OK;
}

tk_status tk_tokvec_push(tk_tokvec *t, const char *p, size_t len) {
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        tk_token *v = tk_realloc(t->v, cap * sizeof *v);
        if (!v) return TK_ERR_NOMEM;
        t->v = v; t->cap = cap;
    }
    t->v[t->n++] = (tk_token){p, len};
    return TK_OK;
}

tk_status tk_tokvec_split(tk_tokvec *t, const char *s, size_t n) {
    size_t start = 0; bool in = false;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = tk_utf8_decode((const unsigned char *)s + i, n - i, &cp);
        if (tk_py_isspace(cp)) {
            if (in && tk_tokvec_push(t, s + start, i - start) != TK_OK) return TK_ERR_NOMEM;
            in = false;
        } else if (!in) {
            in = true; start = i;
        }
        i += k;
    }
    if (in) return tk_tokvec_push(t, s + start, n - start);
    return TK_OK;
}

typedef struct tok_at { tk_token t; size_t pos; } tok_at;

static int tok_cmp(const tk_token *x, const tk_token *y) {
    if (!x->p || !y->p) return (x->len > y->len) - (x->len < y->len);
    size_t m = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->p, y->p, m);
    if (c) return c;
    return (x->len > y->len) - (x->len < y->len);
}

static int tok_at_cmp(const void *a, const void *b) {
    const tok_at *x = a, *y = b;
    int c = tok_cmp(&x->t, &y->t);
    if (c) return c;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

tk_status tk_tok_pair_make(tk_tok_pair *tp, const tk_token *a, size_t na, const tk_token *b, size_t nb) {
    *tp = (tk_tok_pair){0};
    size_t L = na + nb;
    if (L > INT32_MAX) return tk_fail(TK_ERR_RANGE, "text metrics: %zu tokens is too many", L);
    tok_at *all = tk_malloc((L ? L : 1) * sizeof *all);
    int32_t *ids = tk_malloc((L ? L : 1) * sizeof *ids);
    if (!all || !ids) { free(all); free(ids); return TK_ERR_NOMEM; }
    for (size_t i = 0; i < na; i++) all[i] = (tok_at){a[i], i};
    for (size_t i = 0; i < nb; i++) all[na + i] = (tok_at){b[i], na + i};
    qsort(all, L, sizeof *all, tok_at_cmp);
    int32_t id = -1;
    for (size_t i = 0; i < L; i++) {
        if (i == 0 || tok_cmp(&all[i - 1].t, &all[i].t) != 0) id++;
        ids[all[i].pos] = id;
    }
    free(all);
    *tp = (tk_tok_pair){ids, na, nb, id + 1};
    return TK_OK;
}

void tk_tok_pair_free(tk_tok_pair *tp) {
    free(tp->ids);
    *tp = (tk_tok_pair){0};
}

typedef struct pair_at { int32_t a, b; uint32_t pos; } pair_at;

static int pair_at_cmp(const void *p, const void *q) {
    const pair_at *x = p, *y = q;
    if (x->a != y->a) return x->a < y->a ? -1 : 1;
    if (x->b != y->b) return x->b < y->b ? -1 : 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

/* Number of n-grams in a sequence of len tokens. */
static size_t n_grams(size_t len, int n) { return len >= (size_t)n ? len - (size_t)n + 1 : 0; }

tk_status tk_ngram_match(const tk_tok_pair *tp, int max_n, double (*out)[3]) {
    size_t na = tp->na, nb = tp->nb, L = na + nb;
    for (int n = 0; n < max_n; n++) out[n][0] = out[n][1] = out[n][2] = 0;
    int32_t *level = tk_malloc((L ? L : 1) * sizeof *level);
    pair_at *pairs = tk_malloc((L ? L : 1) * sizeof *pairs);
    size_t cap = (size_t)tp->n_ids > L ? (size_t)tp->n_ids : L;
    int64_t *cnt = tk_calloc(2 * (cap ? cap : 1), sizeof *cnt);
    if (!level || !pairs || !cnt) { free(level); free(pairs); free(cnt); return TK_ERR_NOMEM; }
    if (L) memcpy(level, tp->ids, L * sizeof *level);
    int32_t k = tp->n_ids; /* distinct n-grams of the current order */
    for (int n = 1; n <= max_n; n++) {
        size_t ga = n_grams(na, n), gb = n_grams(nb, n);
        if (ga + gb == 0) break;
        if (n > 1) { /* an n-gram is its (n-1)-gram prefix and its last token */
            size_t m = 0;
            for (size_t i = 0; i < ga; i++) pairs[m++] = (pair_at){level[i], tp->ids[i + n - 1], (uint32_t)i};
            for (size_t i = 0; i < gb; i++) pairs[m++] = (pair_at){level[na + i], tp->ids[na + i + n - 1], (uint32_t)(na + i)};
            qsort(pairs, m, sizeof *pairs, pair_at_cmp);
            k = -1;
            for (size_t i = 0; i < m; i++) {
                if (i == 0 || pairs[i].a != pairs[i - 1].a || pairs[i].b != pairs[i - 1].b) k++;
                level[pairs[i].pos] = k;
            }
            k++;
        }
        int64_t *ca = cnt, *cb = cnt + k;
        memset(cnt, 0, 2 * (size_t)k * sizeof *cnt);
        for (size_t i = 0; i < ga; i++) ca[level[i]]++;
        for (size_t i = 0; i < gb; i++) cb[level[na + i]]++;
        int64_t match = 0;
        for (int32_t j = 0; j < k; j++) match += ca[j] < cb[j] ? ca[j] : cb[j];
        out[n - 1][0] = (double)ga; out[n - 1][1] = (double)gb; out[n - 1][2] = (double)match;
    }
    free(level); free(pairs); free(cnt);
    return TK_OK;
}

tk_status tk_tok_lcs(const tk_tok_pair *tp, size_t *out) {
    *out = 0;
    size_t na = tp->na, nb = tp->nb;
    if (!na || !nb) return TK_OK;
    const int32_t *a = tp->ids, *b = tp->ids + na;
    uint32_t *row = tk_calloc(nb + 1, sizeof *row);
    if (!row) return TK_ERR_NOMEM;
    for (size_t i = 0; i < na; i++) {
        uint32_t diag = 0; /* row[j] of the previous i, for j - 1 */
        for (size_t j = 1; j <= nb; j++) {
            uint32_t up = row[j];
            if (a[i] == b[j - 1]) row[j] = diag + 1;
            else if (row[j - 1] > up) row[j] = row[j - 1];
            diag = up;
        }
    }
    *out = row[nb];
    free(row);
    return TK_OK;
}
