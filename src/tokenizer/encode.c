/* Encoding of text fragments (the pieces between special tokens): text transforms of HF
 * normalizers, pre-tokenizer splits (llama.cpp's hand-written GPT-2 / Llama-3 splitters,
 * its std::regex emulation on category-collapsed text, and HF-style PCRE2 splits), then
 * BPE merging per word with a priority queue (O(n log n) per word) and a word cache.
 * Scratch memory lives in a per-thread session so tk_tokenize needs no locks. */
#include "tokenizer/tok_internal.h"
#include "tokenizer/unicode.h"
#include <pthread.h>
#include <stdatomic.h>

static atomic_uint_fast64_t g_serial = 1;
uint64_t tok_next_serial(void) { return atomic_fetch_add(&g_serial, 1); }

/* ---------------------------------------------------------------- session */

static pthread_key_t g_key;
static pthread_once_t g_key_once = PTHREAD_ONCE_INIT;

static void session_free(void *p) {
    tok_session *s = p;
    if (!s) return;
    tk_buf_free(&s->text); tk_buf_free(&s->aux);
    free(s->cp); free(s->boff); free(s->fl); free(s->b2u); free(s->seg); free(s->seg2);
    free(s->coll); free(s->wide); free(s->woff); free(s->wb2u); free(s->piece);
    free(s->sym); free(s->heap); free(s->sheap);
    free(s->wc); free(s->mc); tk_buf_free(&s->wc_keys); tk_ivec_free(&s->word);
    if (s->md) pcre2_match_data_free(s->md);
    if (s->mctx) pcre2_match_context_free(s->mctx);
    if (s->jit) pcre2_jit_stack_free(s->jit);
    free(s);
}
static void make_key(void) { pthread_key_create(&g_key, session_free); }

tok_session *tok_session_get(const tk_tokenizer *t) {
    pthread_once(&g_key_once, make_key);
    tok_session *s = pthread_getspecific(g_key);
    if (!s) {
        s = tk_calloc(1, sizeof *s);
        if (!s) return NULL;
        s->md = pcre2_match_data_create(1, NULL);
        s->mctx = pcre2_match_context_create(NULL);
        s->jit = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, NULL);
        if (!s->md || !s->mctx) { session_free(s); tk_fail(TK_ERR_NOMEM, "out of memory"); return NULL; }
        if (s->jit) pcre2_jit_stack_assign(s->mctx, NULL, s->jit);
        pthread_setspecific(g_key, s);
    }
    if (s->serial != t->serial) {
        s->serial = t->serial;
        s->wc_used = 0;
        if (s->wc) memset(s->wc, 0, (size_t)(s->wc_mask + 1) * sizeof *s->wc);
        s->wc_keys.len = 0;
        if (s->mc) memset(s->mc, 0, TOK_MC_BYTES);
        /* the compact pair cache needs ids + 1 and ranks below 0xFFFF */
        bool small = t->n_total < 0xFFFF;
        for (uint32_t i = 0; small && t->merges.e && i <= t->merges.mask; i++)
            if (t->merges.e[i].key && (t->merges.e[i].rank < 0 || t->merges.e[i].rank >= 0xFFFF)) small = false;
        s->mc_small = small;
    }
    s->t = t;
    return s;
}

#define GROW TOK_GROW

/* ---------------------------------------------------------------- units */

/* Decodes s->text into units (codepoints; an invalid byte is one unit of TK_UNI_INVALID) and their flags. */
static tk_status build_units(tok_session *s) {
    const unsigned char *p = (const unsigned char *)s->text.data;
    size_t n = s->text.len;
    GROW(s->cp, s->cap_u, n + 1);
    if (s->cap_boff < s->cap_u) {
        uint32_t *b = tk_realloc(s->boff, s->cap_u * sizeof *b);
        if (!b) return TK_ERR_NOMEM;
        s->boff = b; s->cap_boff = s->cap_u;
    }
    GROW(s->fl, s->cap_fl, n + 1);
    const uint8_t *tab = tk_uni_flag_table();
    const bool *byte_ok = s->t->byte_ok;
    bool unencodable = false;
    size_t i = 0, u = 0;
    while (i < n) {
        uint32_t cp;
        size_t k = p[i] < 0x80 ? (cp = p[i], 1) : tk_utf8_decode(p + i, n - i, &cp);
        if (k == 1 && p[i] >= 0x80 && !byte_ok[p[i]]) unencodable = true;
        s->cp[u] = cp; s->boff[u] = (uint32_t)i;
        s->fl[u] = tab ? tab[cp] : tk_uni_flags(cp);
        u++; i += k;
    }
    s->boff[u] = (uint32_t)n;
    s->nu = u;
    s->have_coll = s->have_wide = s->have_b2u = false;
    s->unencodable = unencodable;
    return TK_OK;
}

static tk_status build_b2u(tok_session *s) {
    GROW(s->b2u, s->cap_b2u, s->text.len + 1);
    memset(s->b2u, 0xff, (s->text.len + 1) * sizeof *s->b2u);
    for (size_t u = 0; u <= s->nu; u++) s->b2u[s->boff[u]] = (int32_t)u;
    s->have_b2u = true;
    return TK_OK;
}

/* A unit's byte in llama.cpp's collapsed text: ASCII as is, other codepoints one byte per category. */
static inline unsigned char coll_byte(uint32_t c, uint8_t f) {
    if (c < 128) return (unsigned char)c;
    if (f & TK_UF_WHITESPACE) return 0x0B;
    if (f & TK_UF_NUMBER) return 0xD1;
    if (f & TK_UF_LETTER) return 0xD2;
    if (f & TK_UF_PUNCT) return 0xD3;
    if (f & TK_UF_MARK) return 0xD4;
    if (f & TK_UF_SYMBOL) return 0xD5;
    return 0xD0;
}

static tk_status build_collapsed(tok_session *s) {
    GROW(s->coll, s->cap_coll, s->nu + 1);
    for (size_t u = 0; u < s->nu; u++) s->coll[u] = (char)coll_byte(s->cp[u], s->fl[u]);
    s->have_coll = true;
    return TK_OK;
}

/* llama.cpp's std::wregex input: codepoints with non-ASCII whitespace replaced by VT; as UTF-8. */
static tk_status build_wide(tok_session *s) {
    GROW(s->wide, s->cap_wide, s->nu * 4 + 1);
    GROW(s->woff, s->cap_woff, s->nu + 1);
    size_t w = 0;
    for (size_t u = 0; u < s->nu; u++) {
        uint32_t c = s->cp[u];
        if (c > 0x7F && (s->fl[u] & TK_UF_WHITESPACE)) c = 0x0B;
        s->woff[u] = (uint32_t)w;
        w += (size_t)tk_utf8_encode(c, s->wide + w);
    }
    s->woff[s->nu] = (uint32_t)w;
    s->wlen = w;
    GROW(s->wb2u, s->cap_wb2u, w + 1);
    memset(s->wb2u, 0xff, (w + 1) * sizeof *s->wb2u);
    for (size_t u = 0; u <= s->nu; u++) s->wb2u[s->woff[u]] = (int32_t)u;
    s->have_wide = true;
    return TK_OK;
}

/* ---------------------------------------------------------------- splits */

static tk_status push_seg(tok_session *s, uint32_t start, uint32_t n) {
    if (n == 0) return TK_OK;
    GROW(s->seg2, s->cap_seg2, s->nseg2 + 1);
    s->seg2[s->nseg2++] = (tok_seg){start, n};
    return TK_OK;
}

static inline uint8_t uflags(const tok_session *s, size_t pos, size_t ini, size_t end) {
    return pos >= ini && pos < end ? s->fl[pos] : 0;
}
static inline uint32_t ucp(const tok_session *s, size_t pos, size_t ini, size_t end) {
    return pos >= ini && pos < end ? s->cp[pos] : 0xFFFFFFFFu;
}
#define F_WS(f) ((f) & TK_UF_WHITESPACE)
#define F_L(f) ((f) & TK_UF_LETTER)
#define F_N(f) ((f) & TK_UF_NUMBER)

/* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+  (llama.cpp unicode_regex_split_custom_gpt2) */
static tk_status split_gpt2(tok_session *s, tok_seg g) {
    const size_t ini = g.start, end = g.start + g.n;
    size_t prev = ini;
#define ADD(e) do { size_t e_ = (e); tk_status st_ = push_seg(s, (uint32_t)prev, (uint32_t)(e_ - prev)); if (st_) return st_; prev = e_; } while (0)
    for (size_t pos = ini; pos < end;) {
        uint32_t cpt = ucp(s, pos, ini, end);
        uint8_t flags = uflags(s, pos, ini, end);
        if (cpt == '\'' && pos + 1 < end) {
            uint32_t nx = ucp(s, pos + 1, ini, end);
            if (nx == 's' || nx == 't' || nx == 'm' || nx == 'd') { ADD(pos + 2); pos += 2; continue; }
            if (pos + 2 < end) {
                uint32_t nn = ucp(s, pos + 2, ini, end);
                if ((nx == 'r' && nn == 'e') || (nx == 'v' && nn == 'e') || (nx == 'l' && nn == 'l')) { ADD(pos + 3); pos += 3; continue; }
            }
        }
        uint8_t f2 = cpt == ' ' ? uflags(s, pos + 1, ini, end) : flags;
        if (F_L(f2)) {
            pos += (cpt == ' ');
            while (F_L(f2)) f2 = uflags(s, ++pos, ini, end);
            ADD(pos); continue;
        }
        if (F_N(f2)) {
            pos += (cpt == ' ');
            while (F_N(f2)) f2 = uflags(s, ++pos, ini, end);
            ADD(pos); continue;
        }
        if (!(F_WS(f2) | F_L(f2) | F_N(f2)) && f2) {
            pos += (cpt == ' ');
            while (!(F_WS(f2) | F_L(f2) | F_N(f2)) && f2) f2 = uflags(s, ++pos, ini, end);
            ADD(pos); continue;
        }
        size_t nws = 0;
        while (F_WS(uflags(s, pos + nws, ini, end))) nws++;
        if (nws > 1 && ucp(s, pos + nws, ini, end) != 0xFFFFFFFFu) { pos += nws - 1; ADD(pos); continue; }
        if (nws > 0) { pos += nws; ADD(pos); continue; }
        ADD(pos + 1); pos += 1;
    }
    return TK_OK;
}

/* Llama-3 pattern (llama.cpp unicode_regex_split_custom_llama3). */
static tk_status split_llama3(tok_session *s, tok_seg g) {
    const size_t ini = g.start, end = g.start + g.n;
    size_t prev = ini;
    for (size_t pos = ini; pos < end;) {
        uint32_t cpt = ucp(s, pos, ini, end);
        uint8_t flags = uflags(s, pos, ini, end);
        if (cpt == '\'' && pos + 1 < end) {
            uint32_t nx = tk_uni_tolower(ucp(s, pos + 1, ini, end));
            if (nx == 's' || nx == 't' || nx == 'm' || nx == 'd') { ADD(pos + 2); pos += 2; continue; }
            if (pos + 2 < end) {
                uint32_t nn = tk_uni_tolower(ucp(s, pos + 2, ini, end));
                if ((nx == 'r' && nn == 'e') || (nx == 'v' && nn == 'e') || (nx == 'l' && nn == 'l')) { ADD(pos + 3); pos += 3; continue; }
            }
        }
        if (!(cpt == '\r' || cpt == '\n' || F_N(flags))) {
            if (F_L(flags) || F_L(uflags(s, pos + 1, ini, end))) {
                pos++;
                while (F_L(uflags(s, pos, ini, end))) pos++;
                ADD(pos); continue;
            }
        }
        if (F_N(flags)) {
            size_t i0 = pos;
            while (F_N(uflags(s, pos, ini, end))) {
                if (++pos - i0 >= 3) { ADD(pos); i0 = pos; }
            }
            ADD(pos); continue;
        }
        uint8_t f2 = cpt == ' ' ? uflags(s, pos + 1, ini, end) : flags;
        if (!(F_WS(f2) | F_L(f2) | F_N(f2)) && flags) {
            pos += (cpt == ' ');
            while (!(F_WS(f2) | F_L(f2) | F_N(f2)) && f2) f2 = uflags(s, ++pos, ini, end);
            uint32_t c2 = ucp(s, pos, ini, end);
            while (c2 == '\r' || c2 == '\n') c2 = ucp(s, ++pos, ini, end);
            ADD(pos); continue;
        }
        size_t nws = 0, last_rn = 0;
        while (F_WS(uflags(s, pos + nws, ini, end))) {
            uint32_t c2 = ucp(s, pos + nws, ini, end);
            if (c2 == '\r' || c2 == '\n') last_rn = pos + nws + 1;
            nws++;
        }
        if (last_rn > 0) { pos = last_rn; ADD(pos); continue; }
        if (nws > 1 && ucp(s, pos + nws, ini, end) != 0xFFFFFFFFu) { pos += nws - 1; ADD(pos); continue; }
        if (nws > 0) { pos += nws; ADD(pos); continue; }
        ADD(pos + 1); pos += 1;
    }
#undef ADD
    return TK_OK;
}

/* One regex match at or after `start` in subj[0..len); 1 found, 0 none, <0 PCRE2 error.
 * opts: PCRE2_NO_UTF_CHECK for text known to be valid (PCRE2 would otherwise re-check the
 * rest of the subject on every call, which is quadratic over a segment). */
static int re_next_opt(tok_session *s, const pcre2_code *re, const char *subj, size_t len, size_t start, uint32_t opts, size_t *ms, size_t *me) {
    int rc = pcre2_match(re, (PCRE2_SPTR)subj, len, start, opts, s->md, s->mctx);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
        rc = pcre2_match(re, (PCRE2_SPTR)subj, len, start, opts | PCRE2_NO_JIT, s->md, s->mctx);
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    if (rc < 0) return rc;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
    *ms = ov[0]; *me = ov[1];
    return 1;
}
static int re_next(tok_session *s, const pcre2_code *re, const char *subj, size_t len, size_t start, size_t *ms, size_t *me) {
    return re_next_opt(s, re, subj, len, start, 0, ms, me);
}

static tk_status add_piece(tok_session *s, uint32_t start, uint32_t n, bool match) {
    GROW(s->piece, s->cap_piece, s->npiece + 1);
    s->piece[s->npiece++] = (tok_piece_t){start, n, match};
    return TK_OK;
}

/* A collapsed-text step matching one character at a time (tok_split.one_char), isolated:
 * runs of other characters and each matching character become pieces, as split_regex does. */
static tk_status split_one_char(tok_session *s, const tok_split *sp, tok_seg g) {
    tk_status st;
    uint32_t prev = g.start, end = g.start + g.n;
    for (uint32_t u = g.start; u < end; u++) {
        unsigned char b = coll_byte(s->cp[u], s->fl[u]);
        if (!(sp->one_set[b >> 6] >> (b & 63) & 1)) continue;
        if ((st = push_seg(s, prev, u - prev)) || (st = push_seg(s, u, 1))) return st;
        prev = u + 1;
    }
    return push_seg(s, prev, end - prev);
}

/* Splits one segment with a regex step; pieces are in units. */
static tk_status split_regex(tok_session *s, const tok_split *sp, tok_seg g) {
    tk_status st;
    const char *subj; size_t len; const int32_t *map; size_t base;
    if (sp->kind == PS_RE_COLLAPSED) {
        if (!s->have_coll && (st = build_collapsed(s))) return st;
        subj = s->coll + g.start; len = g.n; map = NULL; base = 0;
    } else if (sp->kind == PS_RE_WIDE) {
        if (!s->have_wide && (st = build_wide(s))) return st;
        base = s->woff[g.start];
        subj = s->wide + base; len = s->woff[g.start + g.n] - base; map = s->wb2u;
    } else {
        if (!s->have_b2u && (st = build_b2u(s))) return st;
        base = s->boff[g.start];
        subj = s->text.data + base; len = s->boff[g.start + g.n] - base; map = s->b2u;
    }
#define TO_UNIT(off) (map ? (uint32_t)map[base + (off)] : (uint32_t)(g.start + (off)))
    s->npiece = 0;
    size_t at = 0, prev = 0;
    while (at <= len) {
        size_t ms, me;
        int rc = re_next_opt(s, sp->re, subj, len, at, sp->kind == PS_RE_WIDE ? PCRE2_NO_UTF_CHECK : 0, &ms, &me);
        if (rc < 0) {
            /* Resource limit on a pathological input: keep the rest unsplit rather than fail. */
            if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT || rc == PCRE2_ERROR_HEAPLIMIT) break;
            return tk_fail(TK_ERR_INTERNAL, "pre-tokenizer regex match failed (PCRE2 error %d)", rc);
        }
        if (rc == 0) break;
        if (me == ms) { /* empty match: step over one character */
            if (ms >= len) break;
            at = ms + 1;
            while (at < len && map && map[base + at] < 0) at++;
            continue;
        }
        if (ms > prev && (st = add_piece(s, TO_UNIT(prev), TO_UNIT(ms) - TO_UNIT(prev), false))) return st;
        if ((st = add_piece(s, TO_UNIT(ms), TO_UNIT(me) - TO_UNIT(ms), true))) return st;
        prev = at = me;
    }
    if (prev < len && (st = add_piece(s, TO_UNIT(prev), TO_UNIT(len) - TO_UNIT(prev), false))) return st;
#undef TO_UNIT
    if (sp->invert) for (size_t i = 0; i < s->npiece; i++) s->piece[i].match = !s->piece[i].match;

    /* HF SplitDelimiterBehavior (tokenizers/src/tokenizer/normalizer.rs) */
    tok_piece_t *p = s->piece;
    size_t n = s->npiece, out = 0;
    switch (sp->behavior) {
    case SB_ISOLATED: out = n; break;
    case SB_REMOVED:
        for (size_t i = 0; i < n; i++) if (!p[i].match) p[out++] = p[i];
        break;
    case SB_MERGED_PREV: {
        bool prev_match = false;
        for (size_t i = 0; i < n; i++) {
            if (p[i].match && !prev_match && out > 0) p[out - 1].n += p[i].n;
            else p[out++] = p[i];
            prev_match = p[i].match;
        }
        break;
    }
    case SB_MERGED_NEXT: {
        /* walk backwards: a delimiter joins the piece after it unless that one was a delimiter too */
        bool prev_match = false;
        size_t w = n;
        for (size_t i = n; i-- > 0;) {
            bool m = p[i].match;
            if (m && !prev_match && w < n) { p[w].start = p[i].start; p[w].n += p[i].n; }
            else p[--w] = p[i];
            prev_match = m;
        }
        memmove(p, p + w, (n - w) * sizeof *p);
        out = n - w;
        break;
    }
    case SB_CONTIGUOUS: {
        bool prev_match = false;
        for (size_t i = 0; i < n; i++) {
            if (p[i].match == prev_match && out > 0) p[out - 1].n += p[i].n;
            else p[out++] = p[i];
            prev_match = p[i].match;
        }
        break;
    }
    }
    for (size_t i = 0; i < out; i++) if ((st = push_seg(s, p[i].start, p[i].n))) return st;
    return TK_OK;
}

static tk_status run_splits(tok_session *s) {
    const tk_tokenizer *t = s->t;
    s->nseg = 0;
    GROW(s->seg, s->cap_seg, 1);
    if (s->nu) s->seg[s->nseg++] = (tok_seg){0, (uint32_t)s->nu};
    for (size_t k = 0; k < t->n_splits; k++) {
        const tok_split *sp = &t->splits[k];
        s->nseg2 = 0;
        for (size_t i = 0; i < s->nseg; i++) {
            tk_status st;
            tok_seg g = s->seg[i];
            if (sp->kind == PS_GPT2) st = split_gpt2(s, g);
            else if (sp->kind == PS_LLAMA3) st = split_llama3(s, g);
            else if (sp->one_char && !sp->invert && sp->behavior == SB_ISOLATED) st = split_one_char(s, sp, g);
            else st = split_regex(s, sp, g);
            if (st) return st;
        }
        tok_seg *tmp = s->seg; s->seg = s->seg2; s->seg2 = tmp;
        size_t c = s->cap_seg; s->cap_seg = s->cap_seg2; s->cap_seg2 = c;
        s->nseg = s->nseg2;
    }
    return TK_OK;
}

/* ---------------------------------------------------------------- text transforms (HF) */

static bool starts_with(const tk_buf *b, const char *p, size_t n) { return b->len >= n && memcmp(b->data, p, n) == 0; }

static tk_status prepend(tk_buf *b, tk_buf *aux, const char *p, size_t n) {
    aux->len = 0;
    tk_status st = tk_buf_append(aux, p, n);
    if (!st) st = tk_buf_append(aux, b->data, b->len);
    if (st) return st;
    tk_buf tmp = *b; *b = *aux; *aux = tmp;
    return TK_OK;
}

static tk_status replace_all(tok_session *s, const tok_norm *nm) {
    tk_buf *b = &s->text, *aux = &s->aux;
    aux->len = 0;
    tk_status st = tk_buf_reserve(aux, b->len + 1);
    if (st) return st;
    if (!nm->re) {
        if (nm->alen == 0) return TK_OK;
        size_t i = 0;
        while (i < b->len) {
            if (i + nm->alen <= b->len && memcmp(b->data + i, nm->a, nm->alen) == 0) {
                if ((st = tk_buf_append(aux, nm->b, nm->blen))) return st;
                i += nm->alen;
            } else {
                if ((st = tk_buf_append(aux, b->data + i, 1))) return st;
                i++;
            }
        }
    } else {
        size_t at = 0, prev = 0;
        while (at <= b->len) {
            size_t ms, me;
            int rc = re_next(s, nm->re, b->data, b->len, at, &ms, &me);
            if (rc < 0) return tk_fail(TK_ERR_INTERNAL, "normalizer regex failed (PCRE2 error %d)", rc);
            if (rc == 0) break;
            if ((st = tk_buf_append(aux, b->data + prev, ms - prev))) return st;
            if ((st = tk_buf_append(aux, nm->b, nm->blen))) return st;
            prev = me;
            at = me > ms ? me : me + 1;
            if (me == ms && ms < b->len) { /* keep the character we step over */
                size_t k = 1;
                while (ms + k < b->len && ((unsigned char)b->data[ms + k] & 0xC0) == 0x80) k++;
                if ((st = tk_buf_append(aux, b->data + ms, k))) return st;
                prev = ms + k; at = prev;
            }
        }
        if (prev < b->len && (st = tk_buf_append(aux, b->data + prev, b->len - prev))) return st;
    }
    if (!aux->data && (st = tk_buf_append(aux, "", 0))) return st;
    tk_buf tmp = *b; *b = *aux; *aux = tmp;
    return TK_OK;
}

static tk_status lowercase(tok_session *s) {
    tk_buf *b = &s->text, *aux = &s->aux;
    aux->len = 0;
    tk_status st = tk_buf_reserve(aux, b->len + 1);
    if (st) return st;
    const unsigned char *p = (const unsigned char *)b->data;
    for (size_t i = 0; i < b->len;) {
        uint32_t cp; size_t k = tk_utf8_decode(p + i, b->len - i, &cp);
        if (k == 1 && p[i] >= 0x80) { if ((st = tk_buf_append(aux, p + i, 1))) return st; i++; continue; } /* invalid byte */
        char u[4]; int m = tk_utf8_encode(tk_uni_tolower(cp), u);
        if ((st = tk_buf_append(aux, u, (size_t)m))) return st;
        i += k;
    }
    tk_buf tmp = *b; *b = *aux; *aux = tmp;
    return TK_OK;
}

static tk_status apply_norms(tok_session *s, bool first) {
    const tk_tokenizer *t = s->t;
    tk_status st = TK_OK;
    for (size_t k = 0; k < t->n_norms && !st; k++) {
        const tok_norm *nm = &t->norms[k];
        switch (nm->kind) {
        case TN_PREPEND:
            if (s->text.len) st = prepend(&s->text, &s->aux, nm->a, nm->alen);
            break;
        case TN_REPLACE: st = replace_all(s, nm); break;
        case TN_LOWERCASE: st = lowercase(s); break;
        case TN_METASPACE: {
            tok_norm r = { .kind = TN_REPLACE, .a = " ", .alen = 1, .b = nm->a, .blen = nm->alen };
            st = replace_all(s, &r);
            if (!st && (nm->scheme == 0 || (nm->scheme == 1 && first)) && !starts_with(&s->text, nm->a, nm->alen))
                st = prepend(&s->text, &s->aux, nm->a, nm->alen);
            break;
        }
        case TN_NFC:
            st = (tk_status)tk_uni_nfc(s->text.data, s->text.len, &s->aux);
            if (!st) { tk_buf tmp = s->text; s->text = s->aux; s->aux = tmp; }
            break;
        case TN_PREFIX_SPACE:
            if (!starts_with(&s->text, " ", 1)) st = prepend(&s->text, &s->aux, " ", 1);
            break;
        }
    }
    return st;
}

/* ---------------------------------------------------------------- BPE */

static inline bool heap_less(const bpe_item *a, const bpe_item *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static bpe_item heap_pop(tok_session *s) {
    bpe_item top = s->heap[0], last = s->heap[--s->nheap];
    size_t i = 0, n = s->nheap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && heap_less(&s->heap[c + 1], &s->heap[c])) c++;
        if (!heap_less(&s->heap[c], &last)) break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (n) s->heap[i] = last;
    return top;
}

/* Merge lookup through a small direct-mapped per-thread cache: the merge table of a real
 * vocabulary (~50k merges, 2 MB) does not fit in L2, and BPE over text looks up the same few
 * thousand pairs again and again, so most lookups are served from this 128 KB copy. Misses
 * (including "no such merge") are filled from tok_find_merge; results are identical. */
static inline uint32_t mc16_key(int32_t a, int32_t b) { return (uint32_t)(a + 1) << 16 | (uint32_t)(b + 1); }
static inline uint32_t mc16_slot(uint32_t key) { return (key * 0x9E3779B1u) >> (32 - TOK_MC16_BITS); }
static inline uint64_t mc_key(int32_t a, int32_t b) { return ((uint64_t)(uint32_t)(a + 1) << 32) | (uint32_t)(b + 1); }
static inline uint64_t mc_slot(uint64_t key) { return (key * 0x9E3779B97F4A7C15ULL) >> (64 - TOK_MC_BITS); }

static inline void merge_prefetch(const tok_session *s, int32_t a, int32_t b) {
    if (s->mc_small) __builtin_prefetch(&s->mc16[mc16_slot(mc16_key(a, b))]);
    else __builtin_prefetch(&s->mc[mc_slot(mc_key(a, b))]);
}

static inline bool merge_lookup(tok_session *s, int32_t a, int32_t b, int32_t *rank, int32_t *id) {
    if (a < 0 || b < 0) return false;
    if (s->mc && s->mc_small) { /* ids < n_total < 0xFFFF, so the 16-bit key halves cannot overflow */
        uint32_t key = mc16_key(a, b);
        mc16_ent *e = &s->mc16[mc16_slot(key)];
        if (e->key != key) {
            const tok_merge *m = tok_find_merge(s->t, a, b);
            *e = m ? (mc16_ent){ key, (uint16_t)m->rank, (uint16_t)m->id } : (mc16_ent){ key, 0xFFFF, 0 };
        }
        if (e->rank == 0xFFFF) return false;
        *rank = e->rank; *id = e->id;
        return true;
    }
    uint64_t key = mc_key(a, b);
    if (s->mc) {
        mc_ent *e = &s->mc[mc_slot(key)];
        if (e->key != key) {
            const tok_merge *m = tok_find_merge(s->t, a, b);
            *e = m ? (mc_ent){ key, m->rank, m->id } : (mc_ent){ key, -1, -1 };
        }
        if (e->rank < 0) return false;
        *rank = e->rank; *id = e->id;
        return true;
    }
    const tok_merge *m = tok_find_merge(s->t, a, b);
    if (!m) return false;
    *rank = m->rank; *id = m->id;
    return true;
}

/* Pushes onto a heap whose capacity was reserved by bpe_merge. */
static inline void heap_push_nogrow(tok_session *s, bpe_item it) {
    size_t i = s->nheap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&it, &s->heap[p])) break;
        s->heap[i] = s->heap[p];
        i = p;
    }
    s->heap[i] = it;
}

static inline void try_bigram_nogrow(tok_session *s, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    int32_t rank, id;
    if (merge_lookup(s, s->sym[l].id, s->sym[r].id, &rank, &id))
        heap_push_nogrow(s, (bpe_item){ rank, l, r, id, s->sym[l].n, s->sym[r].n });
}

/* Merges s->sym[0..nsym) in place (linked list through prev/next). The heap never holds more
 * than nsym - 1 initial pairs plus two per merge (at most nsym - 1 merges), so it is reserved
 * once; the initial pairs are heapified in O(n). Items equal in (rank, left) are identical (a
 * rank names one pair, and a valid item's right is left's next), so the pop order, and the
 * result, is that of pushing them one by one. */
static tk_status bpe_merge(tok_session *s, int32_t nsym) {
    s->nheap = 0;
    if (nsym < 2) return TK_OK;
    if (!s->mc) s->mc = calloc(1, TOK_MC_BYTES); /* optional: NULL means no cache */
    GROW(s->heap, s->cap_heap, 3 * (size_t)nsym);
    if (s->mc) /* start loading every pair's cache slot before the first is needed */
        for (int32_t i = 1; i < nsym; i++) merge_prefetch(s, s->sym[i - 1].id, s->sym[i].id);
    for (int32_t i = 1; i < nsym; i++) {
        int32_t rank, id;
        if (merge_lookup(s, s->sym[i - 1].id, s->sym[i].id, &rank, &id))
            s->heap[s->nheap++] = (bpe_item){ rank, i - 1, i, id, s->sym[i - 1].n, s->sym[i].n };
    }
    for (size_t k = s->nheap / 2; k-- > 0;) { /* heapify: sift down */
        bpe_item it = s->heap[k];
        size_t i = k, n = s->nheap;
        for (;;) {
            size_t c = 2 * i + 1;
            if (c >= n) break;
            if (c + 1 < n && heap_less(&s->heap[c + 1], &s->heap[c])) c++;
            if (!heap_less(&s->heap[c], &it)) break;
            s->heap[i] = s->heap[c];
            i = c;
        }
        s->heap[i] = it;
    }
    while (s->nheap) {
        bpe_item b = heap_pop(s);
        bpe_sym *L = &s->sym[b.left], *R = &s->sym[b.right];
        if (L->n == 0 || R->n == 0 || L->n != b.ln || R->n != b.rn || L->next != b.right) continue;
        L->id = b.id;
        L->n += R->n;
        R->n = 0;
        L->next = R->next;
        if (R->next >= 0) s->sym[R->next].prev = b.left;
        try_bigram_nogrow(s, L->prev, b.left);
        try_bigram_nogrow(s, b.left, L->next);
    }
    return TK_OK;
}

static tk_status add_sym(tok_session *s, int32_t *nsym, int32_t id, uint32_t start, uint32_t n) {
    GROW(s->sym, s->cap_sym, (size_t)*nsym + 1);
    int32_t i = (*nsym)++;
    s->sym[i] = (bpe_sym){ id, i - 1, -1, start, n };
    if (i > 0) s->sym[i - 1].next = i;
    return TK_OK;
}

/* Encodes one word w[0..n) (already pre-tokenized) with BPE, appending ids to out. */
static tk_status bpe_word(tok_session *s, const char *w, size_t n, tk_ivec *out) {
    const tk_tokenizer *t = s->t;
    tk_status st;
    char enc[4];
    if (t->ignore_merges) {
        int32_t id;
        if (t->byte_level) {
            tk_buf *a = &s->aux;
            a->len = 0;
            for (size_t i = 0; i < n; i++) {
                int k = tk_utf8_encode(tk_byte_to_cp((uint8_t)w[i]), enc);
                if ((st = tk_buf_append(a, enc, (size_t)k))) return st;
            }
            id = tok_lookup_token(t, a->data ? a->data : "", a->len);
        } else id = tok_lookup_token(t, w, n);
        if (id >= 0) return tk_ivec_push(out, id);
    }
    int32_t nsym = 0;
    if (t->byte_level) {
        GROW(s->sym, s->cap_sym, n);
        for (size_t i = 0; i < n; i++)
            s->sym[i] = (bpe_sym){ t->byte_sym[(uint8_t)w[i]], (int32_t)i - 1, i + 1 < n ? (int32_t)i + 1 : -1, (uint32_t)i, 1 };
        nsym = (int32_t)n;
    } else {
        const unsigned char *p = (const unsigned char *)w;
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            size_t k = tk_utf8_decode(p + i, n - i, &cp);
            int32_t id = tok_lookup_token(t, w + i, k);
            if (id >= 0) { if ((st = add_sym(s, &nsym, id, (uint32_t)i, (uint32_t)k))) return st; }
            else {
                bool fb = t->byte_fallback;
                for (size_t j = 0; fb && j < k; j++) if (t->byte_tok[p[i + j]] < 0) fb = false;
                if (fb) {
                    for (size_t j = 0; j < k; j++)
                        if ((st = add_sym(s, &nsym, t->byte_tok[p[i + j]], (uint32_t)(i + j), 1))) return st;
                } else if (t->unk >= 0) {
                    if (t->fuse_unk && nsym > 0 && s->sym[nsym - 1].id == t->unk) s->sym[nsym - 1].n += (uint32_t)k;
                    else if ((st = add_sym(s, &nsym, t->unk, (uint32_t)i, (uint32_t)k))) return st;
                }
                /* no unknown token: HF drops the character */
            }
            i += k;
        }
    }
    if ((st = bpe_merge(s, nsym))) return st;
    for (int32_t i = 0; i < nsym; i++) {
        const bpe_sym *y = &s->sym[i];
        if (y->n == 0) continue;
        if (y->id >= 0 && y->id < t->n_vocab) { if ((st = tk_ivec_push(out, y->id))) return st; continue; }
        /* A symbol that is no token (vocabularies without some byte characters). */
        if (t->hf) { if (t->unk >= 0 && (st = tk_ivec_push(out, t->unk))) return st; continue; }
        /* llama.cpp: look up each byte of the symbol's (byte-encoded) text on its own */
        for (uint32_t j = 0; j < y->n; j++) {
            uint8_t b = (uint8_t)w[y->start + j];
            int k = t->byte_level ? tk_utf8_encode(tk_byte_to_cp(b), enc) : (enc[0] = (char)b, 1);
            for (int q = 0; q < k; q++) {
                int32_t id = tok_lookup_token(t, enc + q, 1);
                if (id >= 0 && (st = tk_ivec_push(out, id))) return st;
            }
        }
    }
    return TK_OK;
}

/* ---- word cache: word bytes -> ids, kept per thread across calls for one tokenizer ---- */

#define WC_MAX_WORD 128
/* Up to 512k words per thread (a 16 MB table at most, plus at most 64 MB of ids and words):
 * Japanese and Chinese text makes many one-off "words", and a smaller cache that is cleared
 * when full also loses the frequent ones (measured on bench/data_check.sh: 2^17 -> 2^19 entries
 * cut the CPU time of `data check` by about a third). */
#define WC_MAX_ENTRIES (1u << 19)

static uint64_t wc_hash(const char *p, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ n;
    while (n >= 8) {
        uint64_t v; memcpy(&v, p, 8);
        h = (h ^ v) * 0xff51afd7ed558ccdULL; h ^= h >> 32;
        p += 8; n -= 8;
    }
    /* the tail: words lie in s->text, which has 8 readable bytes past its end (tok_encode_fragment) */
    uint64_t v;
    memcpy(&v, p, 8);
    v = n ? v & (~0ULL >> (64 - 8 * n)) : 0;
    h = (h ^ v) * 0xc4ceb9fe1a85ec53ULL; h ^= h >> 29;
    return h | 1; /* 0 marks an empty slot */
}

static void wc_clear(tok_session *s) {
    if (s->wc) memset(s->wc, 0, (size_t)(s->wc_mask + 1) * sizeof *s->wc);
    s->wc_used = 0; s->wc_keys.len = 0;
}

static const wc_ent *wc_find(const tok_session *s, const char *w, size_t n, uint64_t h) {
    if (!s->wc) return NULL;
    for (uint32_t i = (uint32_t)(h >> 32) & s->wc_mask;; i = (i + 1) & s->wc_mask) {
        const wc_ent *e = &s->wc[i];
        if (!e->h) return NULL;
        if (e->h == h && e->klen == n && memcmp(s->wc_keys.data + e->voff + (size_t)e->vn * sizeof(int32_t), w, n) == 0) return e;
    }
}

static void wc_put(tok_session *s, const char *w, size_t n, uint64_t h, const int32_t *ids, size_t nid) {
    if (s->wc_used >= WC_MAX_ENTRIES) wc_clear(s);
    if (!s->wc || (s->wc_used + 1) * 2 > s->wc_mask + 1) {
        uint32_t cap = s->wc ? (s->wc_mask + 1) * 2 : 4096;
        wc_ent *ne = calloc(cap, sizeof *ne);
        if (!ne) return; /* the cache is an optimisation only */
        if (s->wc) for (uint32_t i = 0; i <= s->wc_mask; i++) {
            if (!s->wc[i].h) continue;
            uint32_t j = (uint32_t)(s->wc[i].h >> 32) & (cap - 1);
            while (ne[j].h) j = (j + 1) & (cap - 1);
            ne[j] = s->wc[i];
        }
        free(s->wc); s->wc = ne; s->wc_mask = cap - 1;
    }
    /* ids, then the word, side by side in one arena: a hit reads both from one place */
    if (n > UINT16_MAX || nid > UINT16_MAX) return;
    size_t voff = s->wc_keys.len;
    if ((nid && tk_buf_append(&s->wc_keys, ids, nid * sizeof *ids)) || tk_buf_append(&s->wc_keys, w, n)) {
        tk_clear_error(); s->wc_keys.len = voff; return;
    }
    uint32_t i = (uint32_t)(h >> 32) & s->wc_mask;
    while (s->wc[i].h) i = (i + 1) & s->wc_mask;
    s->wc[i] = (wc_ent){ h, (uint32_t)voff, (uint16_t)n, (uint16_t)nid };
    s->wc_used++;
}

/* Hashes word w[0..n) and starts loading its word-cache slot: the table (megabytes) is mostly
 * not in cache, so a fragment's words are looked up a few words after their slots were
 * prefetched. Returns the hash (0 for a word too long to be cached). */
static inline uint64_t wc_prefetch(const tok_session *s, const char *w, size_t n) {
    if (n > WC_MAX_WORD) return 0;
    uint64_t h = wc_hash(w, n);
    if (s->wc) __builtin_prefetch(&s->wc[(uint32_t)(h >> 32) & s->wc_mask]);
    return h;
}

/* h: wc_hash(w, n), or 0 for a word longer than WC_MAX_WORD. */
static tk_status bpe_word_cached(tok_session *s, const char *w, size_t n, uint64_t h, tk_ivec *out) {
    if (!h) return bpe_word(s, w, n, out);
    const wc_ent *e = wc_find(s, w, n, h);
    if (e) {
        if (e->vn == 0) return TK_OK;
        tk_status st = tk_ivec_reserve(out, e->vn);
        if (st) return st;
        memcpy(out->data + out->len, s->wc_keys.data + e->voff, e->vn * sizeof(int32_t));
        out->len += e->vn;
        return TK_OK;
    }
    s->word.len = 0;
    tk_status st = bpe_word(s, w, n, &s->word);
    if (st) return st;
    if (s->wc_keys.len < (64u << 20)) wc_put(s, w, n, h, s->word.data, s->word.len);
    if ((st = tk_ivec_reserve(out, s->word.len))) return st;
    if (s->word.len) memcpy(out->data + out->len, s->word.data, s->word.len * sizeof(int32_t));
    out->len += s->word.len;
    return TK_OK;
}

/* ---------------------------------------------------------------- fragment */

/* Invalid UTF-8 is encoded byte-wise, but some byte-level vocabularies (trained on valid
 * text) have no token for bytes such as 0xC0 or 0xF5..0xFF. Such a byte, when it is part of
 * an invalid sequence, is encoded as U+FFFD instead -- what llama.cpp does for every invalid
 * byte -- rather than being dropped. */
static tk_status replace_unencodable(tok_session *s) {
    const tk_tokenizer *t = s->t;
    const unsigned char *p = (const unsigned char *)s->text.data;
    size_t n = s->text.len, i = 0;
    bool any = false;
    while (i < n) {
        uint32_t cp;
        size_t k = p[i] < 0x80 ? 1 : tk_utf8_decode(p + i, n - i, &cp);
        if (k == 1 && p[i] >= 0x80 && !t->byte_ok[p[i]]) { any = true; break; }
        i += k;
    }
    if (!any) return TK_OK;
    tk_buf *a = &s->aux;
    a->len = 0;
    tk_status st = tk_buf_reserve(a, n + 16);
    if (st) return st;
    for (i = 0; i < n;) {
        uint32_t cp;
        size_t k = p[i] < 0x80 ? 1 : tk_utf8_decode(p + i, n - i, &cp);
        if (k == 1 && p[i] >= 0x80 && !t->byte_ok[p[i]]) st = tk_buf_append(a, "\xEF\xBF\xBD", 3);
        else st = tk_buf_append(a, p + i, k);
        if (st) return st;
        i += k;
    }
    tk_buf tmp = s->text; s->text = *a; *a = tmp;
    return TK_OK;
}

tk_status tok_encode_fragment(tok_session *s, const char *text, size_t len, bool first, bool after_special, tk_ivec *out) {
    const tk_tokenizer *t = s->t;
    if (t->model == TOKM_SPM) return tok_spm_encode(s, text, len, t->add_space_prefix && (first || after_special), out);
    if (t->model == TOKM_WPM) return tok_wpm_encode(s, text, len, out);
    if (len > UINT32_MAX / 2) return tk_fail(TK_ERR_RANGE, "text fragment of %zu bytes is too long", len);
    s->text.len = 0;
    tk_status st = tk_buf_append(&s->text, text, len);
    if (st) return st;
    if (t->n_norms) {
        if (t->byte_level && t->bytes_incomplete && (st = replace_unencodable(s))) return st;
        if ((st = apply_norms(s, first))) return st;
    }
    if ((st = build_units(s))) return st;
    /* Without normalizers the unit decoding finds whether any byte needs replace_unencodable,
     * which saves it a decoding pass over every (almost always valid) fragment. */
    if (!t->n_norms && t->byte_level && t->bytes_incomplete && s->unencodable)
        if ((st = replace_unencodable(s)) || (st = build_units(s))) return st;
    if ((st = tk_buf_reserve(&s->text, 8))) return st; /* wc_hash reads whole 8-byte words */
    if ((st = run_splits(s))) return st;
    enum { PF = 8 }; /* words hashed (and their slots prefetched) ahead of the one encoded */
    uint64_t hq[PF];
    size_t nseg = s->nseg;
    for (size_t i = 0; i < nseg && i < PF; i++) {
        tok_seg g = s->seg[i];
        hq[i] = wc_prefetch(s, s->text.data + s->boff[g.start], s->boff[g.start + g.n] - s->boff[g.start]);
    }
    for (size_t i = 0; i < nseg; i++) {
        uint64_t h = hq[i % PF];
        if (i + PF < nseg) {
            tok_seg g = s->seg[i + PF];
            hq[i % PF] = wc_prefetch(s, s->text.data + s->boff[g.start], s->boff[g.start + g.n] - s->boff[g.start]);
        }
        tok_seg g = s->seg[i];
        uint32_t b0 = s->boff[g.start], b1 = s->boff[g.start + g.n];
        if ((st = bpe_word_cached(s, s->text.data + b0, b1 - b0, h, out))) return st;
    }
    return TK_OK;
}
