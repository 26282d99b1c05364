/* The generation loop: prompt evaluation reusing the session's cached prefix, sampling,
 * single-token decode, streaming of complete UTF-8 text, stop strings matched on the
 * decoded text across token boundaries (never emitted: text that could still begin a
 * stop string is held back until it cannot), EOS / end-of-turn stops. */
#include "model/llama.h"
#include "core/core.h"

tk_gen_params tk_gen_default_params(void) {
    tk_gen_params p;
    memset(&p, 0, sizeof p);
    p.sampler = tk_sampler_default_params();
    p.max_tokens = 256;
    p.stop_at_eos = true;
    return p;
}

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

tk_status tk_generate(tk_session *s, const tk_tokenizer *tok, const int32_t *prompt, int64_t n,
                      const tk_gen_params *gp, tk_gen_text_fn on_text, void *ud,
                      tk_ivec *out_ids, tk_gen_stats *stats) {
    tk_gen_params p = gp ? *gp : tk_gen_default_params();
    tk_gen_stats local;
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);
    if (!tok) return tk_fail(TK_ERR_ARG, "generate: the model has no tokenizer");
    for (int32_t i = 0; i < p.n_stop; i++)
        if (!p.stop[i] || !p.stop[i][0]) return tk_fail(TK_ERR_ARG, "generate: empty stop string");
    const int32_t V = s->m->cfg.n_vocab;
    float *logits = tk_malloc((size_t)V * sizeof(float));
    tk_sampler *smp = NULL;
    tk_buf pend = {0}, piece = {0};
    if (!logits) return TK_ERR_NOMEM;
    tk_status st = tk_sampler_new(&p.sampler, V, &smp);
    if (st) goto done;

    double t0 = tk_time_s();
    int64_t reused = 0;
    if ((st = tk_session_eval_reuse(s, prompt, n, logits, &reused))) goto done;
    double t1 = tk_time_s();
    stats->n_reused = reused;
    stats->n_prompt = n - reused;
    stats->prefill_s = t1 - t0;

    tk_detok_stream ds;
    tk_detok_stream_init(&ds, tok);
    /* SentencePiece strips the leading space of the first piece after BOS only; a
     * continuation starts after the prompt's last token. */
    ds.prev = n > 0 ? prompt[n - 1] : -1;
    stats->stop = TK_GEN_STOP_MAX_TOKENS;
    for (int64_t i = 0; p.max_tokens <= 0 || i < p.max_tokens; i++) {
        int32_t id = tk_sampler_sample(smp, logits, V, s->kv.tokens, (size_t)s->kv.n);
        stats->n_generated++;
        if (out_ids && (st = tk_ivec_push(out_ids, id))) goto done;
        if (p.stop_at_eos && tk_tokenizer_is_eog(tok, id)) { stats->stop = TK_GEN_STOP_EOS; break; }
        piece.len = 0;
        if ((st = tk_detok_stream_push(&ds, id, &piece))) goto done;
        if (piece.len && (st = tk_buf_append(&pend, piece.data, piece.len))) goto done;
        size_t at = find_stop(pend.data ? pend.data : "", pend.len, &p);
        if (at < pend.len) {
            if (at && on_text) on_text(ud, pend.data, at);
            pend.len = 0;
            stats->stop = TK_GEN_STOP_STRING;
            break;
        }
        size_t emit = pend.len - held_suffix(pend.data ? pend.data : "", pend.len, &p);
        if (emit && on_text && !on_text(ud, pend.data, emit)) {
            stats->stop = TK_GEN_STOP_CALLBACK;
            memmove(pend.data, pend.data + emit, pend.len - emit);
            pend.len = 0;
            break;
        }
        memmove(pend.data, pend.data + emit, pend.len - emit);
        pend.len -= emit;
        if (p.max_tokens > 0 && i + 1 >= p.max_tokens) break;
        if (s->kv.n >= s->kv.n_ctx) { stats->stop = TK_GEN_STOP_CONTEXT; break; }
        if ((st = tk_session_eval(s, &id, 1, logits))) goto done;
    }
    /* flush what is left: incomplete UTF-8 and text held for a stop string that never came */
    if (stats->stop != TK_GEN_STOP_STRING && stats->stop != TK_GEN_STOP_CALLBACK) {
        piece.len = 0;
        if ((st = tk_detok_stream_flush(&ds, &piece))) goto done;
        if (piece.len && (st = tk_buf_append(&pend, piece.data, piece.len))) goto done;
        size_t at = find_stop(pend.data ? pend.data : "", pend.len, &p);
        if (at < pend.len) stats->stop = TK_GEN_STOP_STRING;
        if (at && on_text) on_text(ud, pend.data, at);
    }
    stats->decode_s = tk_time_s() - t1;
done:
    tk_sampler_free(smp);
    tk_buf_free(&pend);
    tk_buf_free(&piece);
    free(logits);
    return st;
}
