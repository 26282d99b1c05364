/* rapidfuzz's fuzz.WRatio with utils.default_process (OpenAI's text_similarity "fuzzy_match").
 * default_process: every codepoint that is not one of rapidfuzz's letters or digits becomes a
 * space, the rest is lowercased (simple mapping), spaces are trimmed at both ends. WRatio then
 * takes the best of: ratio (Indel similarity, 1 - (|a|+|b|-2 LCS) / (|a|+|b|)); when the
 * lengths differ by less than 1.5x, the token ratios scaled by 0.95; otherwise partial_ratio
 * (the best window of the longer string against the shorter) scaled by 0.9 (0.6 beyond 8x)
 * and the partial token ratio scaled by 0.95 * that. LCS lengths come from the bit-parallel
 * algorithm (Allison-Dix / Hyyrö), 64 pattern positions per word. */
#include "eval/textmetrics.h"
#include "eval/text_tokens.h"
#include "eval/unicode_tables.h"
#include "tokenizer/unicode.h"

typedef struct cps { uint32_t *c; size_t n; } cps;

/* utils.default_process of s into *out. */
static tk_status default_process(const char *s, const char *what, cps *out) {
    tk_status st = tk_text_codepoints(s, what, &out->c, &out->n);
    if (st != TK_OK) return st;
    size_t b = 0, e = out->n;
    for (size_t i = 0; i < out->n; i++) out->c[i] = tk_in_ranges(tk_fuzzy_alnum, tk_fuzzy_alnum_n, out->c[i]) ? tk_uni_tolower(out->c[i]) : ' ';
    while (b < e && out->c[b] == ' ') b++;
    while (e > b && out->c[e - 1] == ' ') e--;
    memmove(out->c, out->c + b, (e - b) * sizeof *out->c);
    out->n = e - b;
    return TK_OK;
}

/* A pattern for bit-parallel LCS: its distinct codepoints (sorted) and, per codepoint, the
 * bit mask of its positions (words per mask). */
typedef struct pattern { uint32_t *chars; size_t nchars, words, m; uint64_t *peq, *v; } pattern;

static int u32_cmp(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static int32_t pattern_index(const pattern *p, uint32_t c) {
    size_t lo = 0, hi = p->nchars;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (p->chars[mid] < c) lo = mid + 1; else hi = mid;
    }
    return lo < p->nchars && p->chars[lo] == c ? (int32_t)lo : -1;
}

static void pattern_free(pattern *p) { free(p->chars); free(p->peq); free(p->v); *p = (pattern){0}; }

static tk_status pattern_make(pattern *p, const uint32_t *s, size_t m) {
    *p = (pattern){0};
    p->m = m;
    p->words = (m + 63) / 64;
    p->chars = tk_malloc((m ? m : 1) * sizeof *p->chars);
    p->v = tk_malloc((p->words ? p->words : 1) * sizeof *p->v);
    if (!p->chars || !p->v) { pattern_free(p); return TK_ERR_NOMEM; }
    if (m) memcpy(p->chars, s, m * sizeof *s);
    qsort(p->chars, m, sizeof *p->chars, u32_cmp);
    size_t k = 0;
    for (size_t i = 0; i < m; i++)
        if (i == 0 || p->chars[i] != p->chars[k - 1]) p->chars[k++] = p->chars[i];
    p->nchars = k;
    p->peq = tk_calloc((k ? k : 1) * (p->words ? p->words : 1), sizeof *p->peq);
    if (!p->peq) { pattern_free(p); return TK_ERR_NOMEM; }
    for (size_t i = 0; i < m; i++) p->peq[(size_t)pattern_index(p, s[i]) * p->words + i / 64] |= 1ull << (i % 64);
    return TK_OK;
}

/* The bit-parallel LCS state: start (V = all ones), one text codepoint (its pattern index, -1 for
 * one the pattern lacks), and the LCS of the pattern and the text so far (zero bits of V). */
static void lcs_start(const pattern *p) {
    for (size_t j = 0; j < p->words; j++) p->v[j] = ~0ull;
}
static void lcs_step(const pattern *p, int32_t idx) {
    if (idx < 0) return; /* no match: V stays */
    const uint64_t *mk = p->peq + (size_t)idx * p->words;
    uint64_t carry = 0;
    for (size_t j = 0; j < p->words; j++) {
        uint64_t v = p->v[j], u = v & mk[j];
        uint64_t sum = v + u, c1 = sum < v;
        uint64_t sum2 = sum + carry, c2 = sum2 < sum;
        carry = c1 | c2;
        p->v[j] = sum2 | (v & ~mk[j]);
    }
}
static size_t lcs_now(const pattern *p) {
    size_t zeros = 0;
    for (size_t j = 0; j < p->words; j++) {
        uint64_t v = p->v[j];
        if (j == p->words - 1 && p->m % 64) v |= ~0ull << (p->m % 64);
        zeros += (size_t)(64 - __builtin_popcountll(v));
    }
    return zeros;
}

/* LCS of the pattern and a text given as pattern indices. */
static size_t pattern_lcs(const pattern *p, const int32_t *idx, size_t n) {
    if (!p->words) return 0;
    lcs_start(p);
    for (size_t i = 0; i < n; i++) lcs_step(p, idx[i]);
    return lcs_now(p);
}

/* s2 as indices of p's codepoints. */
static int32_t *pattern_map(const pattern *p, const uint32_t *s, size_t n) {
    int32_t *idx = tk_malloc((n ? n : 1) * sizeof *idx);
    if (idx)
        for (size_t i = 0; i < n; i++) idx[i] = pattern_index(p, s[i]);
    return idx;
}

/* Length of the longest common subsequence of a and b. */
static tk_status lcs_of(const uint32_t *a, size_t na, const uint32_t *b, size_t nb, size_t *lcs) {
    *lcs = 0;
    if (!na || !nb) return TK_OK;
    pattern p;
    if (pattern_make(&p, a, na) != TK_OK) return TK_ERR_NOMEM;
    int32_t *idx = pattern_map(&p, b, nb);
    if (!idx) { pattern_free(&p); return TK_ERR_NOMEM; }
    *lcs = pattern_lcs(&p, idx, nb);
    free(idx);
    pattern_free(&p);
    return TK_OK;
}

/* fuzz.ratio: 100 * normalised Indel similarity. */
static tk_status ratio(const uint32_t *a, size_t na, const uint32_t *b, size_t nb, double *out) {
    *out = 100.0;
    size_t lcs;
    if (lcs_of(a, na, b, nb, &lcs) != TK_OK) return TK_ERR_NOMEM;
    if (na + nb) *out = (1.0 - (double)(na + nb - 2 * lcs) / (double)(na + nb)) * 100;
    return TK_OK;
}

/* Indel similarity (0..1) of a pattern of m codepoints and a window of n with this LCS. */
static double sim(size_t m, size_t n, size_t lcs) {
    return m + n ? 1.0 - (double)(m + n - 2 * lcs) / (double)(m + n) : 1.0;
}

/* rapidfuzz's partial ratio of s1 within s2 (|s1| <= |s2|): the best Indel similarity among the
 * prefixes of s2 shorter than s1, the windows of |s1| codepoints and the suffixes of s2 up to
 * |s1|, as 0..100. rapidfuzz evaluates only windows whose new end codepoint occurs in s1; the
 * others never score higher than a neighbour, so the maximum is the same. Prefixes and
 * suffixes each take one pass of the LCS state (forwards, and backwards with s1 reversed).
 * Windows of |s1|: the LCS of neighbouring windows differs by at most 1, so a range of
 * windows between two evaluated ones (LCS a and b, d apart) holds none above (a + b + d) / 2;
 * ranges that cannot beat the best window are skipped, the others halved (rapidfuzz's search). */
static tk_status partial_impl(const uint32_t *s1, size_t l1, const uint32_t *s2, size_t l2, double *out) {
    *out = 0;
    if (!l1) return TK_OK;
    pattern p, rp;
    uint32_t *r1 = tk_malloc(l1 * sizeof *r1);
    if (!r1) return TK_ERR_NOMEM;
    for (size_t i = 0; i < l1; i++) r1[i] = s1[l1 - 1 - i];
    if (pattern_make(&p, s1, l1) != TK_OK) { free(r1); return TK_ERR_NOMEM; }
    if (pattern_make(&rp, r1, l1) != TK_OK) { free(r1); pattern_free(&p); return TK_ERR_NOMEM; }
    free(r1);
    size_t nm = l2 - l1; /* windows of l1 codepoints starting at 0 .. nm - 1 */
    int32_t *idx = pattern_map(&p, s2, l2); /* the reversed pattern has the same codepoints, so the same indices */
    int64_t *lcs = tk_malloc((nm ? nm : 1) * sizeof *lcs);
    size_t *stack = tk_malloc(2 * (nm + 1) * sizeof *stack);
    tk_status st = idx && lcs && stack ? TK_OK : TK_ERR_NOMEM;
    double best = 0;
    if (st == TK_OK) {
        lcs_start(&p); /* prefixes s2[0..i), i < l1 */
        for (size_t i = 1; i < l1; i++) {
            lcs_step(&p, idx[i - 1]);
            double s = sim(l1, i, lcs_now(&p));
            if (s > best) best = s;
        }
        lcs_start(&rp); /* suffixes s2[i..l2), i >= l2 - l1 */
        for (size_t i = l2; i-- > l2 - l1;) {
            lcs_step(&rp, idx[i]);
            double s = sim(l1, l2 - i, lcs_now(&rp));
            if (s > best) best = s;
        }
    }
    if (st == TK_OK && nm) {
        int64_t top = -1;
        size_t ns = 0;
        for (size_t i = 0; i < nm; i++) lcs[i] = -1;
        size_t ends[2] = {0, nm - 1};
        for (int e = 0; e < 2; e++) {
            lcs[ends[e]] = (int64_t)pattern_lcs(&p, idx + ends[e], l1);
            if (lcs[ends[e]] > top) top = lcs[ends[e]];
        }
        stack[ns++] = 0; stack[ns++] = nm - 1;
        while (ns) {
            size_t hi = stack[--ns], lo = stack[--ns];
            if (hi - lo <= 1 || (lcs[lo] + lcs[hi] + (int64_t)(hi - lo)) / 2 <= top) continue;
            size_t mid = lo + (hi - lo) / 2;
            lcs[mid] = (int64_t)pattern_lcs(&p, idx + mid, l1);
            if (lcs[mid] > top) top = lcs[mid];
            stack[ns++] = lo; stack[ns++] = mid;
            stack[ns++] = mid; stack[ns++] = hi;
        }
        double s = sim(l1, l1, (size_t)top);
        if (s > best) best = s;
    }
    *out = best >= 1 ? 100 : best * 100;
    free(idx); free(lcs); free(stack);
    pattern_free(&p); pattern_free(&rp);
    return st;
}

/* fuzz.partial_ratio (0..100). */
static tk_status partial_ratio(const cps *a, const cps *b, double *out) {
    *out = 100;
    if (!a->n && !b->n) return TK_OK;
    const cps *s = a->n <= b->n ? a : b, *l = a->n <= b->n ? b : a;
    tk_status st = partial_impl(s->c, s->n, l->c, l->n, out);
    if (st == TK_OK && *out != 100 && a->n == b->n) {
        double r2;
        if ((st = partial_impl(l->c, l->n, s->c, s->n, &r2)) == TK_OK && r2 > *out) *out = r2;
    }
    return st;
}

/* ---- tokens: the space-separated words of a processed string ---- */
typedef struct span { const uint32_t *p; size_t n; } span;
typedef struct spans { span *v; size_t n; } spans;

static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    size_t m = x->n < y->n ? x->n : y->n;
    for (size_t i = 0; i < m; i++)
        if (x->p[i] != y->p[i]) return x->p[i] < y->p[i] ? -1 : 1;
    return (x->n > y->n) - (x->n < y->n);
}

/* The words of s, sorted (str.split() then sorted()). */
static tk_status split_sorted(const cps *s, spans *out) {
    out->n = 0;
    out->v = tk_malloc((s->n / 2 + 1) * sizeof *out->v);
    if (!out->v) return TK_ERR_NOMEM;
    for (size_t i = 0; i < s->n;) {
        while (i < s->n && s->c[i] == ' ') i++;
        size_t b = i;
        while (i < s->n && s->c[i] != ' ') i++;
        if (i > b) out->v[out->n++] = (span){s->c + b, i - b};
    }
    qsort(out->v, out->n, sizeof *out->v, span_cmp);
    return TK_OK;
}

/* Removes repeated words from a sorted list (a set, in sorted order). */
static void unique(spans *s) {
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++)
        if (k == 0 || span_cmp(&s->v[k - 1], &s->v[i]) != 0) s->v[k++] = s->v[i];
    s->n = k;
}

/* " ".join(words) into *out. */
static tk_status join(const span *w, size_t n, cps *out) {
    size_t len = 0;
    for (size_t i = 0; i < n; i++) len += w[i].n + (i > 0);
    out->n = len;
    out->c = tk_malloc((len ? len : 1) * sizeof *out->c);
    if (!out->c) return TK_ERR_NOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (i) out->c[k++] = ' ';
        memcpy(out->c + k, w[i].p, w[i].n * sizeof *w[i].p);
        k += w[i].n;
    }
    return TK_OK;
}

/* Set differences and intersection of two sorted unique word lists. */
typedef struct setops { spans ab, ba, both; } setops;
static tk_status set_ops(const spans *a, const spans *b, setops *o) {
    o->ab.v = tk_malloc((a->n + 1) * sizeof(span));
    o->ba.v = tk_malloc((b->n + 1) * sizeof(span));
    o->both.v = tk_malloc((a->n + 1) * sizeof(span));
    o->ab.n = o->ba.n = o->both.n = 0;
    if (!o->ab.v || !o->ba.v || !o->both.v) return TK_ERR_NOMEM;
    size_t i = 0, j = 0;
    while (i < a->n || j < b->n) {
        int c = i == a->n ? 1 : j == b->n ? -1 : span_cmp(&a->v[i], &b->v[j]);
        if (c < 0) o->ab.v[o->ab.n++] = a->v[i++];
        else if (c > 0) o->ba.v[o->ba.n++] = b->v[j++];
        else { o->both.v[o->both.n++] = a->v[i++]; j++; }
    }
    return TK_OK;
}
static void set_ops_free(setops *o) { free(o->ab.v); free(o->ba.v); free(o->both.v); }

static double norm_distance(size_t dist, size_t lensum) {
    return lensum ? 100 - 100 * (double)dist / (double)lensum : 100;
}

/* max(token_set_ratio, token_sort_ratio). */
static tk_status token_ratio(const spans *wa, const spans *wb, const spans *ua, const spans *ub, double *out) {
    cps ja = {0}, jb = {0}, da = {0}, db = {0};
    setops o;
    memset(&o, 0, sizeof o);
    double sort_r = 0, set_r = 0;
    tk_status st = join(wa->v, wa->n, &ja);
    if (st == TK_OK) st = join(wb->v, wb->n, &jb);
    if (st == TK_OK) st = ratio(ja.c, ja.n, jb.c, jb.n, &sort_r);
    if (st == TK_OK && ua->n && ub->n) {
        if ((st = set_ops(ua, ub, &o)) != TK_OK) goto done;
        if (o.both.n && (!o.ab.n || !o.ba.n)) { set_r = 100; goto done; }
        if ((st = join(o.ab.v, o.ab.n, &da)) != TK_OK || (st = join(o.ba.v, o.ba.n, &db)) != TK_OK) goto done;
        size_t sect = 0;
        for (size_t i = 0; i < o.both.n; i++) sect += o.both.v[i].n + (i > 0);
        size_t sab = sect + (sect != 0) + da.n, sba = sect + (sect != 0) + db.n;
        size_t lcs;
        if ((st = lcs_of(da.c, da.n, db.c, db.n, &lcs)) != TK_OK) goto done;
        set_r = norm_distance(da.n + db.n - 2 * lcs, sab + sba); /* Indel distance of the differences */
        if (sect) {
            double r_ab = norm_distance((sect != 0) + da.n, sect + sab);
            double r_ba = norm_distance((sect != 0) + db.n, sect + sba);
            if (r_ab > set_r) set_r = r_ab;
            if (r_ba > set_r) set_r = r_ba;
        }
    }
done:
    *out = set_r > sort_r ? set_r : sort_r;
    free(ja.c); free(jb.c); free(da.c); free(db.c);
    set_ops_free(&o);
    return st;
}

/* partial_token_ratio: 100 when a word is shared, else the partial ratio of the sorted words,
 * and of the sorted distinct words where words repeat. */
static tk_status partial_token_ratio(const spans *wa, const spans *wb, const spans *ua, const spans *ub, double *out) {
    setops o;
    memset(&o, 0, sizeof o);
    cps ja = {0}, jb = {0};
    *out = 0;
    tk_status st = set_ops(ua, ub, &o);
    if (st == TK_OK && o.both.n) { *out = 100; goto done; }
    if (st == TK_OK) st = join(wa->v, wa->n, &ja);
    if (st == TK_OK) st = join(wb->v, wb->n, &jb);
    if (st == TK_OK) st = partial_ratio(&ja, &jb, out);
    if (st == TK_OK && !(wa->n == o.ab.n && wb->n == o.ba.n)) {
        free(ja.c); free(jb.c); ja = jb = (cps){0};
        double r2;
        if ((st = join(o.ab.v, o.ab.n, &ja)) == TK_OK && (st = join(o.ba.v, o.ba.n, &jb)) == TK_OK &&
            (st = partial_ratio(&ja, &jb, &r2)) == TK_OK && r2 > *out)
            *out = r2;
    }
done:
    free(ja.c); free(jb.c);
    set_ops_free(&o);
    return st;
}

/* WRatio of two processed strings (0..100). */
static tk_status wratio(const cps *a, const cps *b, double *out) {
    *out = 0;
    if (!a->n || !b->n) return TK_OK;
    const double unbase = 0.95;
    double len_ratio = a->n > b->n ? (double)a->n / (double)b->n : (double)b->n / (double)a->n;
    double end, r;
    spans wa = {0}, wb = {0}, ua = {0}, ub = {0};
    tk_status st = ratio(a->c, a->n, b->c, b->n, &end);
    if (st == TK_OK) st = split_sorted(a, &wa);
    if (st == TK_OK) st = split_sorted(b, &wb);
    if (st == TK_OK) st = split_sorted(a, &ua);
    if (st == TK_OK) st = split_sorted(b, &ub);
    if (st == TK_OK) { unique(&ua); unique(&ub); }
    if (st == TK_OK && len_ratio < 1.5) {
        if ((st = token_ratio(&wa, &wb, &ua, &ub, &r)) == TK_OK && r * unbase > end) end = r * unbase;
    } else if (st == TK_OK) {
        double scale = len_ratio <= 8.0 ? 0.9 : 0.6;
        if ((st = partial_ratio(a, b, &r)) == TK_OK && r * scale > end) end = r * scale;
        if (st == TK_OK && (st = partial_token_ratio(&wa, &wb, &ua, &ub, &r)) == TK_OK && r * unbase * scale > end)
            end = r * unbase * scale;
    }
    free(wa.v); free(wb.v); free(ua.v); free(ub.v);
    *out = end;
    return st;
}

tk_status tk_fuzzy_match_ex(const char *a, const char *b, double *out) {
    *out = 0;
    cps pa = {0}, pb = {0};
    tk_status st = default_process(a, "fuzzy_match first text", &pa);
    if (st == TK_OK) st = default_process(b, "fuzzy_match second text", &pb);
    double r = 0;
    if (st == TK_OK) st = wratio(&pa, &pb, &r);
    if (st == TK_OK) *out = r / 100;
    else if (st == TK_ERR_NOMEM) st = tk_fail(TK_ERR_NOMEM, "fuzzy_match: out of memory");
    free(pa.c); free(pb.c);
    return st;
}

double tk_fuzzy_match(const char *a, const char *b) {
    double r;
    return tk_fuzzy_match_ex(a, b, &r) == TK_OK ? r : 0.0;
}
