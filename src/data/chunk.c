/* Documents into chunks: a heading starts a chunk and sets its heading path, paragraphs under one
 * heading are packed while they fit, and a paragraph larger than a chunk is cut at sentence ends
 * (., !, ?, 。, ！, ？ followed by space or end), else at a space, else at a character boundary.
 * Sizes are code points, or tokens of a given tokenizer. Spans of cut pieces are exact for
 * Markdown and text (whose paragraphs are source bytes); for HTML and PDF a piece's span is its
 * paragraph's start plus its offset in the extracted text, clamped to the paragraph. */
#include "data/docs_internal.h"

tk_chunk_params tk_chunk_default_params(void) { return (tk_chunk_params){.max_size = 1500, .tok = NULL}; }

typedef struct chunker {
    const tk_chunk_params *p;
    tk_chunk *v; size_t n;
    tk_buf text, path;
    size_t size, start, end;
    int page;
    tk_ivec ids;
} chunker;

static tk_status measure(chunker *c, const char *s, size_t n, size_t *out) {
    if (!c->p->tok) { *out = tk_utf8_count(s, n); return TK_OK; }
    c->ids.len = 0;
    tk_status st = tk_tokenize(c->p->tok, s, n, 0, &c->ids);
    *out = c->ids.len;
    return st;
}

static tk_status flush(chunker *c) {
    if (!c->text.len) return TK_OK;
    tk_chunk *v = tk_realloc(c->v, (c->n + 1) * sizeof *v);
    if (!v) return TK_ERR_NOMEM;
    c->v = v;
    char *t = tk_strndup(c->text.data, c->text.len), *h = tk_strndup(c->path.data ? c->path.data : "", c->path.len);
    if (!t || !h) { free(t); free(h); return TK_ERR_NOMEM; }
    v[c->n++] = (tk_chunk){t, h, c->start, c->end, c->page};
    c->text.len = 0, c->size = 0;
    return TK_OK;
}

static tk_status add(chunker *c, const char *s, size_t n, size_t size, size_t start, size_t end, int page) {
    tk_status st = TK_OK;
    if (c->text.len && c->size + 2 + size > c->p->max_size && (st = flush(c))) return st;   /* 2: the "\n\n" between */
    if (!c->text.len) c->start = start, c->page = page;
    else if ((st = tk_buf_append(&c->text, "\n\n", 2))) return st;
    c->end = end;
    c->size += size + (c->text.len ? 2 : 0);
    return tk_buf_append(&c->text, s, n);
}

/* The end of the longest prefix of s[0..n) (cut at a UTF-8 boundary) that fits max_size, preferring a sentence end. */
static tk_status cut(chunker *c, const char *s, size_t n, size_t *at) {
    size_t lo = 1, hi = n, best = 0, sz;
    while (lo <= hi) {   /* the longest fitting prefix: sizes grow with the prefix */
        size_t m0 = lo + (hi - lo) / 2, mid = m0;
        while (mid < n && ((unsigned char)s[mid] & 0xC0) == 0x80) mid++;   /* a whole character */
        tk_status st = measure(c, s, mid, &sz);
        if (st) return st;
        if (sz <= c->p->max_size) { best = mid; lo = mid + 1; } else hi = m0 - 1;
    }
    if (!best) {   /* not even one character fits (a tiny token budget): take one */
        best = 1;
        while (best < n && ((unsigned char)s[best] & 0xC0) == 0x80) best++;
        *at = best;
        return TK_OK;
    }
    size_t sentence = 0, space = 0;
    for (size_t i = 1; i < best; i++) {
        bool end_ascii = (s[i - 1] == '.' || s[i - 1] == '!' || s[i - 1] == '?') && (s[i] == ' ' || s[i] == '\n');
        bool end_cjk = i >= 3 && (!memcmp(s + i - 3, "\xE3\x80\x82", 3) || !memcmp(s + i - 3, "\xEF\xBC\x81", 3) ||
                                  !memcmp(s + i - 3, "\xEF\xBC\x9F", 3));
        if (end_ascii || end_cjk) sentence = i;
        if (s[i] == ' ' || s[i] == '\n') space = i;
    }
    *at = best == n ? n : sentence > best / 4 ? sentence : space > best / 4 ? space : best;
    return TK_OK;
}

static tk_status paragraph(chunker *c, const tk_doc_block *b) {
    const char *s = b->text;
    size_t n = strlen(s), size;
    tk_status st = measure(c, s, n, &size);
    if (st || size <= c->p->max_size) return st ? st : add(c, s, n, size, b->start, b->end, b->page);
    if ((st = flush(c))) return st;
    size_t off = 0;
    while (off < n && !st) {
        while (off < n && (s[off] == ' ' || s[off] == '\n')) off++;
        if (off >= n) break;
        size_t at;
        if ((st = cut(c, s + off, n - off, &at))) break;
        size_t a = b->start + off, e = b->start + off + at;
        if (a > b->end) a = b->end;
        if (e > b->end) e = b->end;
        if (!(st = measure(c, s + off, at, &size))) st = add(c, s + off, at, size, a, e, b->page);
        if (!st) st = flush(c);
        off += at;
    }
    return st;
}

tk_status tk_doc_chunk(const tk_doc *d, const tk_chunk_params *p, tk_chunk **out, size_t *n) {
    tk_chunk_params def = tk_chunk_default_params();
    if (!p) p = &def;
    *out = NULL, *n = 0;
    if (!d || p->max_size < 1) return tk_fail(TK_ERR_ARG, "tk_doc_chunk: no document, or a chunk size below 1");
    chunker c = {.p = p};
    const char *heads[7] = {0};
    tk_status st = TK_OK;
    for (size_t i = 0; i < d->n_blocks && !st; i++) {
        const tk_doc_block *b = &d->blocks[i];
        if (b->level < 1) { st = paragraph(&c, b); continue; }
        if ((st = flush(&c))) break;
        int lv = b->level > 6 ? 6 : b->level;
        heads[lv] = b->text;
        for (int k = lv + 1; k <= 6; k++) heads[k] = NULL;
        c.path.len = 0;
        for (int k = 1; k <= 6 && !st; k++)
            if (heads[k]) st = tk_buf_printf(&c.path, "%s%s", c.path.len ? " > " : "", heads[k]);
    }
    if (!st) st = flush(&c);
    tk_buf_free(&c.text);
    tk_buf_free(&c.path);
    tk_ivec_free(&c.ids);
    if (st) {
        tk_chunks_free(c.v, c.n);
        return st == TK_ERR_NOMEM ? tk_fail(st, "chunking: out of memory") : st;
    }
    *out = c.v, *n = c.n;
    return TK_OK;
}

void tk_chunks_free(tk_chunk *c, size_t n) {
    for (size_t i = 0; c && i < n; i++) free(c[i].text), free(c[i].heading);
    free(c);
}
