/* Decoded text of a generation: streaming of complete UTF-8 and stop strings matched
 * across token boundaries (contracts in src/infer/gen_text.h). */
#include "infer/gen_text.h"
#include "core/core.h"

/* Length of the longest suffix of s[0..n) that is a proper prefix of a stop string. */
static size_t held_suffix(const char *s, size_t n, const tk_gen_params *p) {
    size_t best = 0;
    for (int32_t i = 0; i < p->n_stop; i++) {
        size_t sl = strlen(p->stop[i]);
        for (size_t k = (sl - 1 < n ? sl - 1 : n); k > best; k--)
            if (!memcmp(s + n - k, p->stop[i], k)) { best = k; break; }
    }
    return best;
}

/* Earliest occurrence of any stop string in s[0..n) (n if none). */
static size_t find_stop(const char *s, size_t n, const tk_gen_params *p) {
    size_t first = n;
    for (int32_t i = 0; i < p->n_stop; i++) {
        size_t sl = strlen(p->stop[i]);
        if (!sl || sl > n) continue;
        for (size_t at = 0; at + sl <= n && at < first; at++)
            if (!memcmp(s + at, p->stop[i], sl)) { first = at; break; }
    }
    return first;
}

tk_status tk_gen_stops_check(const tk_gen_params *p, const char *who) {
    if (p->n_stop < 0 || (p->n_stop > 0 && !p->stop))
        return tk_fail(TK_ERR_ARG, "%s: %d stop strings without a list", who, p->n_stop);
    for (int32_t i = 0; i < p->n_stop; i++)
        if (!p->stop[i] || !p->stop[i][0]) return tk_fail(TK_ERR_ARG, "%s: empty stop string", who);
    return TK_OK;
}

void tk_gen_text_init(tk_gen_text *g, const tk_tokenizer *tok, int32_t prev, const tk_gen_params *p,
                      tk_gen_text_fn on_text, void *ud) {
    memset(g, 0, sizeof *g);
    g->p = p;
    g->on_text = on_text;
    g->ud = ud;
    tk_detok_stream_init(&g->ds, tok);
    /* SentencePiece strips the leading space of the first piece after BOS only; a
     * continuation starts after the prompt's last token. */
    g->ds.prev = prev;
}

tk_status tk_gen_text_push(tk_gen_text *g, int32_t id, tk_gen_stop *stop) {
    tk_status st;
    g->piece.len = 0;
    if ((st = tk_detok_stream_push(&g->ds, id, &g->piece))) return st;
    if (g->piece.len && (st = tk_buf_append(&g->pend, g->piece.data, g->piece.len))) return st;
    tk_buf *pend = &g->pend;
    size_t at = find_stop(pend->data ? pend->data : "", pend->len, g->p);
    if (at < pend->len) {
        if (at && g->on_text) g->on_text(g->ud, pend->data, at);
        pend->len = 0;
        *stop = TK_GEN_STOP_STRING;
        return TK_OK;
    }
    size_t emit = pend->len - held_suffix(pend->data ? pend->data : "", pend->len, g->p);
    if (emit && g->on_text && !g->on_text(g->ud, pend->data, emit)) {
        pend->len = 0;
        *stop = TK_GEN_STOP_CALLBACK;
        return TK_OK;
    }
    memmove(pend->data, pend->data + emit, pend->len - emit);
    pend->len -= emit;
    return TK_OK;
}

tk_status tk_gen_text_finish(tk_gen_text *g, tk_gen_stop *stop) {
    tk_status st;
    g->piece.len = 0;
    if ((st = tk_detok_stream_flush(&g->ds, &g->piece))) return st;
    if (g->piece.len && (st = tk_buf_append(&g->pend, g->piece.data, g->piece.len))) return st;
    size_t at = find_stop(g->pend.data ? g->pend.data : "", g->pend.len, g->p);
    if (at < g->pend.len) *stop = TK_GEN_STOP_STRING;
    if (at && g->on_text) g->on_text(g->ud, g->pend.data, at);
    g->pend.len = 0;
    return TK_OK;
}

void tk_gen_text_free(tk_gen_text *g) {
    tk_buf_free(&g->pend);
    tk_buf_free(&g->piece);
}
