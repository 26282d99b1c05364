/* Reading what a model wrote: question/answer pairs ("Q: … A: …" in the forms small models
 * produce: numbered, bold, "Question:", Japanese 質問/回答, full-width colons, answers over
 * several lines), list items (paraphrases: one per line, numbering, bullets and quotes removed,
 * preamble lines ending in a colon skipped), and the rules a paraphrase must pass. */
#include "data/docs_internal.h"
#include "data/data_internal.h"
#include "tokenizer/unicode.h"
#include <ctype.h>

static const char *skip_ws(const char *s, const char *e) { while (s < e && (*s == ' ' || *s == '\t' || *s == '\r')) s++; return s; }
static const char *rtrim(const char *s, const char *e) { while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) e--; return e; }

/* Skips list decoration at s: "**", "- ", "* ", "• ", "1. ", "1) ", "(1) ", "#"s. */
static const char *undecorate(const char *s, const char *e) {
    for (;;) {
        s = skip_ws(s, e);
        const char *t = s;
        if (e - t >= 2 && !strncmp(t, "**", 2)) t += 2;
        else if (t < e && (*t == '-' || *t == '*' || *t == '#' || *t == '>') ) t++;
        else if (e - t >= 3 && !strncmp(t, "\xE2\x80\xA2", 3)) t += 3;   /* • */
        else if (t < e && *t == '(' && t + 1 < e && isdigit((unsigned char)t[1])) { t++; while (t < e && isdigit((unsigned char)*t)) t++; if (t < e && *t == ')') t++; else return s; }
        else if (t < e && isdigit((unsigned char)*t)) {
            const char *d = t;
            while (d < e && isdigit((unsigned char)*d)) d++;
            if (d < e && (*d == '.' || *d == ')') && (d + 1 == e || d[1] == ' ')) t = d + 1;
            else return s;
        } else return s;
        if (t == s) return s;
        s = t;
    }
}

/* A marker at s ("Q", "Q1", "Question", "質問", "A", "Answer", "回答", "答え", then ":" "：" "." or ")", "**" around):
 * 'q' or 'a' with *after set past it; 0 when there is none. */
static char marker(const char *s, const char *e, const char **after) {
    static const struct { const char *w; char k; } words[] = {
        {"Question", 'q'}, {"Answer", 'a'}, {"Q", 'q'}, {"A", 'a'}, {"\xE8\xB3\xAA\xE5\x95\x8F", 'q'}, /* 質問 */
        {"\xE5\x9B\x9E\xE7\xAD\x94", 'a'} /* 回答 */, {"\xE7\xAD\x94\xE3\x81\x88", 'a'} /* 答え */, {"\xE5\x95\x8F", 'q'} /* 問 */,
        {"\xE7\xAD\x94", 'a'} /* 答 */};
    for (size_t k = 0; k < sizeof words / sizeof *words; k++) {
        size_t wl = strlen(words[k].w);
        if ((size_t)(e - s) < wl || strncasecmp(s, words[k].w, wl)) continue;
        if (wl == 1 && s[0] != words[k].w[0]) continue;   /* "Q"/"A" only as capitals */
        const char *t = s + wl;
        while (t < e && isdigit((unsigned char)*t)) t++;
        if (e - t >= 2 && !strncmp(t, "**", 2)) t += 2;
        t = skip_ws(t, e);
        if (t < e && (*t == ':' || *t == '.' || *t == ')')) t++;
        else if (e - t >= 3 && !strncmp(t, "\xEF\xBC\x9A", 3)) t += 3;   /* ： */
        else continue;
        if (e - t >= 2 && !strncmp(t, "**", 2)) t += 2;
        *after = skip_ws(t, e);
        return words[k].k;
    }
    return 0;
}

/* Skips further markers and list decoration after a marker: "Q: 1. …", "A: A: …", "A: Q: Q:" (then nothing is left). */
static const char *strip_markers(const char *after, const char *e) {
    for (const char *u, *a2; (u = undecorate(after, e)) && (marker(u, e, &a2) || u != after);)
        after = marker(u, e, &a2) ? a2 : u;
    return after;
}

static tk_status append_line(tk_buf *b, const char *s, const char *e) {
    e = rtrim(s, e);
    while (e - s >= 2 && !strncmp(e - 2, "**", 2)) e = rtrim(s, e - 2);
    if (e == s) return TK_OK;
    tk_status st = b->len ? tk_buf_append(b, " ", 1) : TK_OK;
    return st ? st : tk_buf_append(b, s, (size_t)(e - s));
}

static tk_status push_pair(tk_qa **v, size_t *n, tk_buf *q, tk_buf *a) {
    if (!q->len) { a->len = 0; return TK_OK; }
    tk_qa *nv = tk_realloc(*v, (*n + 1) * sizeof *nv);
    if (!nv) return TK_ERR_NOMEM;
    *v = nv;
    nv[*n].q = tk_strndup(q->data, q->len);
    nv[*n].a = tk_strndup(a->data ? a->data : "", a->len);
    (*n)++;
    q->len = a->len = 0;
    return nv[*n - 1].q && nv[*n - 1].a ? TK_OK : TK_ERR_NOMEM;
}

tk_status tk_synth_parse_qa(const char *text, tk_qa **out, size_t *n) {
    *out = NULL, *n = 0;
    if (!text) return TK_OK;
    tk_buf q = {0}, a = {0};
    int in = 0;   /* 0 outside a pair, 'q' in a question, 'a' in an answer */
    tk_status st = TK_OK;
    for (const char *s = text; *s && !st;) {
        const char *e = strchr(s, '\n');
        if (!e) e = s + strlen(s);
        const char *t = undecorate(s, e), *after;
        char k = marker(t, e, &after);
        if (k) after = strip_markers(after, e);
        if (k == 'q') {   /* "Q: … A: …" on one line: the answer starts at " A:" */
            st = push_pair(out, n, &q, &a);
            in = 'q';
            const char *ia = NULL, *aa = NULL;
            for (const char *p = after; p + 1 < e && !ia; p++)
                if (p[-1] == ' ' && marker(p, e, &aa) == 'a') ia = p;
            if (!st) st = append_line(&q, after, ia ? ia : e);
            if (!st && ia) { in = 'a'; st = append_line(&a, strip_markers(aa, e), e); }
        }
        else if (k == 'a' && in) { in = 'a'; st = append_line(&a, after, e); }
        else if (in == 'q') st = append_line(&q, t, e);
        else if (in == 'a') st = append_line(&a, s, e);
        s = *e ? e + 1 : e;
    }
    if (!st) st = push_pair(out, n, &q, &a);
    tk_buf_free(&q), tk_buf_free(&a);
    if (st) { tk_qa_free(*out, *n); *out = NULL, *n = 0; return tk_fail(st, "parsing the model's pairs: out of memory"); }
    return TK_OK;
}

void tk_qa_free(tk_qa *v, size_t n) {
    for (size_t i = 0; v && i < n; i++) free(v[i].q), free(v[i].a);
    free(v);
}

/* Removes one pair of surrounding quotes ("…", “…”, 「…」, '…'). */
static void unquote(const char **s, const char **e) {
    static const char *const pairs[][2] = {{"\"", "\""}, {"'", "'"}, {"\xE2\x80\x9C", "\xE2\x80\x9D"}, {"\xE3\x80\x8C", "\xE3\x80\x8D"}};
    for (size_t k = 0; k < 4; k++) {
        size_t a = strlen(pairs[k][0]), b = strlen(pairs[k][1]);
        if ((size_t)(*e - *s) >= a + b && !strncmp(*s, pairs[k][0], a) && !strncmp(*e - b, pairs[k][1], b)) { *s += a, *e -= b; return; }
    }
}

tk_status tk_synth_parse_list(const char *text, char ***out, size_t *n) {
    *out = NULL, *n = 0;
    tk_status st = TK_OK;
    for (const char *s = text ? text : ""; *s && !st;) {
        const char *e = strchr(s, '\n');
        if (!e) e = s + strlen(s);
        const char *t = undecorate(s, e), *te = rtrim(t, e), *after;
        while (te - t >= 2 && !strncmp(te - 2, "**", 2)) te = rtrim(t, te - 2);
        if (marker(t, te, &after) == 'q') t = after;   /* "Q1: …" items */

        unquote(&t, &te);
        /* "It can be rephrased as: "Is it …?"", "Rewrite: …": a label of up to 6 words before ": " (or "：") goes */
        for (const char *c = t, *lim = te - t > 60 ? t + 60 : te; c + 1 < lim; c++) {
            size_t ml = c[0] == ':' && c[1] == ' ' ? 2 : (lim - c >= 3 && !strncmp(c, "\xEF\xBC\x9A", 3)) ? 3 : 0;
            if (!ml) continue;
            int words = 1;
            bool q = false;
            for (const char *w = t; w < c; w++) words += *w == ' ', q = q || *w == '?';
            if (words <= 6 && !q && c + ml < te) { t = skip_ws(c + ml, te); unquote(&t, &te); }
            break;
        }
        const char *tq = te;   /* "I'm ready. Here's a rewritten version: What …?": the question after the last ": " */
        while (tq > t && (tq[-1] == '"' || tq[-1] == ' ')) tq--;
        for (const char *c = tq - 1; tq > t && tq[-1] == '?' && c > t + 1; c--)
            if (c[-1] == '?') break;
            else if (c[-1] == ':' && c[0] == ' ') { t = skip_ws(c, te); unquote(&t, &te); break; }
        t = skip_ws(t, te), te = rtrim(t, te);
        bool preamble = te > t && (te[-1] == ':' || (te - t >= 3 && !strncmp(te - 3, "\xEF\xBC\x9A", 3)));
        if (te > t && !preamble) {
            char **v = tk_realloc(*out, (*n + 1) * sizeof *v);
            if (!v) { st = TK_ERR_NOMEM; break; }
            *out = v;
            if (!(v[*n] = tk_strndup(t, (size_t)(te - t)))) { st = TK_ERR_NOMEM; break; }
            (*n)++;
        }
        s = *e ? e + 1 : e;
    }
    if (st) { tk_strings_free(*out, *n); *out = NULL, *n = 0; return tk_fail(st, "parsing the model's list: out of memory"); }
    return TK_OK;
}

void tk_strings_free(char **v, size_t n) {
    for (size_t i = 0; v && i < n; i++) free(v[i]);
    free(v);
}

const char *tk_para_name(tk_para r) {
    static const char *const n[] = {"ok", "empty", "identical", "too_long", "duplicate", "not_a_question", "changed_fact", "other_script"};
    return (unsigned)r < TK_PARA_COUNT ? n[r] : "unknown";
}

/* s without case (ASCII), spaces and punctuation (ASCII and the CJK/full-width marks) into b. */
static tk_status norm(const char *s, tk_buf *b) {
    b->len = 0;
    size_t n = strlen(s);
    tk_status st = TK_OK;
    for (size_t i = 0; i < n && !st;) {
        uint32_t c;
        size_t l = tk_utf8_decode((const unsigned char *)s + i, n - i, &c);
        bool drop = (c < 128 && (isspace((int)c) || ispunct((int)c))) || (c >= 0x3000 && c <= 0x303F) || (c >= 0xFF01 && c <= 0xFF0F) ||
                    c == 0xFF1A || c == 0xFF1F || (c >= 0x2010 && c <= 0x201F);
        if (!drop) {
            char lc = c < 128 ? (char)tolower((int)c) : 0;
            st = lc ? tk_buf_append(b, &lc, 1) : tk_buf_append(b, s + i, l);
        }
        i += l;
    }
    return st ? st : tk_buf_append(b, "", 1);
}

/* Any letter (ASCII or not: a non-ASCII byte left by norm is a letter or a symbol of a script). */
static bool letters(const char *s) {
    for (; *s; s++)
        if (isalpha((unsigned char)*s) || ((unsigned char)*s & 0x80)) return true;
    return false;
}

/* Ends in "?" or "？" (spaces, quotes and closing brackets after it aside). */
static bool is_question(const char *s) {
    size_t n = strlen(s ? s : "");
    while (n && strchr(" \t\n\"')", s[n - 1])) n--;
    return (n && s[n - 1] == '?') || (n >= 3 && !memcmp(s + n - 3, "\xEF\xBC\x9F", 3));
}

tk_para tk_para_check(const char *original, const char *para, char *const *keep, size_t n_keep, double max_ratio) {
    tk_buf a = {0}, b = {0};
    tk_para r = TK_PARA_OK;
    if (norm(para ? para : "", &b) || norm(original ? original : "", &a)) r = TK_PARA_EMPTY;   /* no memory: refuse */
    else if (b.len <= 1 || !letters(b.data)) r = TK_PARA_EMPTY;
    else if (!strcmp(a.data, b.data)) r = TK_PARA_IDENTICAL;
    else if ((double)tk_utf8_count(para, strlen(para)) > max_ratio * (double)tk_utf8_count(original, strlen(original)) + 40) r = TK_PARA_TOO_LONG;
    for (size_t k = 0; k < n_keep && r == TK_PARA_OK; k++) {
        if (norm(keep[k], &a)) { r = TK_PARA_EMPTY; break; }
        if (!strcmp(a.data, b.data)) r = TK_PARA_DUPLICATE;
    }
    if (r == TK_PARA_OK && is_question(original) && !is_question(para)) r = TK_PARA_NOT_QUESTION;
    if (r == TK_PARA_OK && tk_text_is_cjk(original) != tk_text_is_cjk(para)) r = TK_PARA_LANGUAGE;
    if (r == TK_PARA_OK) {
        tk_ground g = tk_ground_check(para, original, NULL, 0);
        if (g != TK_GROUND_OK && g != TK_GROUND_UNSUPPORTED) r = TK_PARA_CHANGED;
    }
    tk_buf_free(&a), tk_buf_free(&b);
    return r;
}

/* Character 5-gram Jaccard of the normalised texts (tk_text_normalize, tk_shingle_set); -1 without memory. */
static double jaccard(const char *a, const char *b) {
    tk_buf na = {0}, nb = {0};
    tk_shingles sa = {0}, sb = {0};
    double j = -1;
    if (!tk_text_normalize(a, strlen(a), &na) && !tk_text_normalize(b, strlen(b), &nb) && !tk_shingle_set(na.data ? na.data : "", na.len, &sa) &&
        !tk_shingle_set(nb.data ? nb.data : "", nb.len, &sb))
        j = tk_shingle_jaccard(sa.h, sa.n, sb.h, sb.n);
    tk_buf_free(&na), tk_buf_free(&nb);
    free(sa.h), free(sb.h);
    return j;
}

bool tk_synth_near_question(const char *a, const char *b) {
    tk_buf x = {0}, y = {0};
    bool near = false;
    if (!norm(a ? a : "", &x) && !norm(b ? b : "", &y) && x.len > 1 && y.len > 1) {
        const tk_buf *s = x.len <= y.len ? &x : &y, *l = x.len <= y.len ? &y : &x;   /* lengths include the NUL */
        near = l->len - s->len <= 2 && !memcmp(s->data, l->data, s->len - 1);
    }
    tk_buf_free(&x), tk_buf_free(&y);
    return near || jaccard(a ? a : "", b ? b : "") >= 0.8;
}
