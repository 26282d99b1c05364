/* SentencePiece-style encoding (GGUF tokenizer.ggml.model "llama", llama2.c tokenizer.bin),
 * as llama.cpp's llm_tokenizer_spm: spaces become U+2581 (with a dummy prefix before the
 * first fragment and after special tokens), characters start as symbols, and the adjacent
 * pair whose concatenation is the highest-scoring token is merged first (ties: leftmost).
 * Characters that never formed a token fall back to <0xXX> byte tokens. */
#include "tokenizer/tok_internal.h"
#include "tokenizer/unicode.h"

static const char k_ws[] = "\xE2\x96\x81"; /* U+2581 */

static inline bool spm_less(const spm_item *a, const spm_item *b) { /* a has lower priority than b */
    return a->score < b->score || (a->score == b->score && a->left > b->left);
}

static tk_status spm_push(tok_session *s, spm_item it) {
    TOK_GROW(s->sheap, s->cap_sheap, s->nsheap + 1);
    size_t i = s->nsheap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!spm_less(&s->sheap[p], &it)) break;
        s->sheap[i] = s->sheap[p];
        i = p;
    }
    s->sheap[i] = it;
    return TK_OK;
}

static spm_item spm_pop(tok_session *s) {
    spm_item top = s->sheap[0], last = s->sheap[--s->nsheap];
    size_t i = 0, n = s->nsheap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && spm_less(&s->sheap[c], &s->sheap[c + 1])) c++;
        if (!spm_less(&last, &s->sheap[c])) break;
        s->sheap[i] = s->sheap[c];
        i = c;
    }
    if (n) s->sheap[i] = last;
    return top;
}

static tk_status try_add(tok_session *s, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return TK_OK;
    const tk_tokenizer *t = s->t;
    uint32_t size = s->sym[l].n + s->sym[r].n;
    int32_t id = tok_lookup_token(t, s->text.data + s->sym[l].start, size);
    if (id < 0) return TK_OK;
    return spm_push(s, (spm_item){ t->score[id], l, r, size });
}

static tk_status emit_bytes(const tk_tokenizer *t, const char *p, size_t n, tk_ivec *out) {
    for (size_t j = 0; j < n; j++) {
        uint8_t b = (uint8_t)p[j];
        int32_t id = t->byte_tok[b];
        if (id < 0) id = tok_lookup_token(t, p + j, 1);
        if (id < 0) id = t->unk;
        if (id >= 0) { tk_status st = tk_ivec_push(out, id); if (st) return st; }
    }
    return TK_OK;
}

/* Encodes the symbols of p[0..n) (one chunk of the escaped text) with score-ordered merges. */
static tk_status spm_chunk(tok_session *s, const char *p, size_t n, tk_ivec *out) {
    const tk_tokenizer *t = s->t;
    tk_status st;
    if (n == 0) return TK_OK;
    /* One symbol per UTF-8 character. llama.cpp sizes a symbol by its lead byte alone, which
     * on invalid input can swallow the start of the next character; here an invalid byte is a
     * symbol of its own (identical on valid UTF-8, and invalid bytes round-trip as <0xXX>). */
    int32_t nsym = 0;
    size_t base = (size_t)(p - s->text.data);
    for (size_t off = 0; off < n;) {
        uint32_t cp;
        size_t k = tk_utf8_decode((const unsigned char *)p + off, n - off, &cp);
        TOK_GROW(s->sym, s->cap_sym, (size_t)nsym + 1);
        s->sym[nsym] = (bpe_sym){ -1, nsym - 1, off + k == n ? -1 : nsym + 1, (uint32_t)(base + off), (uint32_t)k };
        nsym++;
        off += k;
    }
    s->nsheap = 0;
    for (int32_t i = 1; i < nsym; i++) if ((st = try_add(s, i - 1, i))) return st;
    while (s->nsheap) {
        spm_item b = spm_pop(s);
        bpe_sym *L = &s->sym[b.left], *R = &s->sym[b.right];
        if (L->n == 0 || R->n == 0 || L->n + R->n != b.size) continue;
        L->n += R->n;
        R->n = 0;
        L->next = R->next;
        if (R->next >= 0) s->sym[R->next].prev = b.left;
        if ((st = try_add(s, L->prev, b.left))) return st;
        if ((st = try_add(s, b.left, L->next))) return st;
    }
    const char *txt = s->text.data;
    for (int32_t i = 0; i != -1; i = s->sym[i].next) {
        const bpe_sym *y = &s->sym[i];
        int32_t id = tok_lookup_token(t, txt + y->start, y->n);
        if (id >= 0) { if ((st = tk_ivec_push(out, id))) return st; }
        else if ((st = emit_bytes(t, txt + y->start, y->n, out))) return st;
    }
    return TK_OK;
}

tk_status tok_spm_encode(tok_session *s, const char *text, size_t len, bool prefix, tk_ivec *out) {
    const tk_tokenizer *t = s->t;
    tk_status st;
    if (len > UINT32_MAX / 4) return tk_fail(TK_ERR_RANGE, "text fragment of %zu bytes is too long", len);
    s->text.len = 0;
    if ((st = tk_buf_reserve(&s->text, len * 3 + 4))) return st;
    if (prefix) tk_buf_append(&s->text, k_ws, 3);
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') tk_buf_append(&s->text, k_ws, 3);
        else tk_buf_append(&s->text, text + i, 1);
    }
    const char *p = s->text.data;
    size_t n = s->text.len;
    /* An ASCII byte that occurs in no token longer than one character can never be merged: the
     * text is encoded in independent chunks between such bytes (same result, smaller heaps). */
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x80 || !t->spm_barrier[c]) continue;
        if ((st = spm_chunk(s, p + start, i - start, out))) return st;
        int32_t id = tok_lookup_token(t, p + i, 1);
        if (id >= 0) { if ((st = tk_ivec_push(out, id))) return st; }
        else if ((st = emit_bytes(t, p + i, 1, out))) return st;
        start = i + 1;
    }
    return spm_chunk(s, p + start, n - start, out);
}
