/* Generation sessions: one sequence with an f32 KV cache [L x S x KH*D] per K and V that
 * grows (doubling) up to the context, prefill in chunks, single-token decode, and reuse
 * of the cached prefix across chat turns. */
#include "model/llama.h"
#include "backend/backend.h"
#include "core/core.h"
#include <stdio.h>

tk_status tk_kv_init(tk_kv_cache *kv, const tk_model *m, int32_t n_ctx) {
    memset(kv, 0, sizeof *kv);
    kv->n_layers = m->cfg.n_layers;
    kv->kvd = m->cfg.n_kv_heads * m->cfg.head_dim;
    kv->n_ctx = n_ctx;
    return TK_OK;
}

tk_status tk_kv_reserve(tk_kv_cache *kv, int32_t n) {
    if (n <= kv->cap) return TK_OK;
    if (n > kv->n_ctx) return tk_fail(TK_ERR_RANGE, "context full: %d tokens needed, the context holds %d", n, kv->n_ctx);
    int64_t cap = kv->cap ? kv->cap : 256;
    while (cap < n) cap *= 2;
    if (cap > kv->n_ctx) cap = kv->n_ctx;
    size_t per_layer, total, bytes;
    if (!tk_mul_ok((size_t)cap, (size_t)kv->kvd, &per_layer) || !tk_mul_ok(per_layer, (size_t)kv->n_layers, &total) ||
        !tk_mul_ok(total, sizeof(float), &bytes))
        return tk_fail(TK_ERR_NOMEM, "KV cache size overflows");
    float *k = tk_malloc(bytes), *v = tk_malloc(bytes);
    int32_t *tok = tk_malloc((size_t)cap * sizeof(int32_t)), *pos = tk_malloc((size_t)cap * sizeof(int32_t));
    if (!k || !v || !tok || !pos) {
        free(k); free(v); free(tok); free(pos);
        return tk_fail(TK_ERR_NOMEM, "out of memory for a KV cache of %lld tokens (%zu MB)", (long long)cap, (2 * bytes) >> 20);
    }
    /* relayout: each layer's rows move from stride old cap to the new one */
    size_t used = (size_t)kv->n * (size_t)kv->kvd;
    for (int32_t l = 0; l < kv->n_layers && kv->n; l++) {
        memcpy(k + (size_t)l * per_layer, kv->k + (size_t)l * kv->cap * kv->kvd, used * sizeof(float));
        memcpy(v + (size_t)l * per_layer, kv->v + (size_t)l * kv->cap * kv->kvd, used * sizeof(float));
    }
    if (kv->n) {
        memcpy(tok, kv->tokens, (size_t)kv->n * sizeof(int32_t));
        memcpy(pos, kv->pos, (size_t)kv->n * sizeof(int32_t));
    }
    free(kv->k); free(kv->v); free(kv->tokens); free(kv->pos);
    kv->k = k; kv->v = v; kv->tokens = tok; kv->pos = pos;
    kv->cap = (int32_t)cap;
    return TK_OK;
}

tk_status tk_kv_copy_prefix(tk_kv_cache *dst, const tk_kv_cache *src, int32_t n) {
    if (n < 0 || n > src->n || dst->n_layers != src->n_layers || dst->kvd != src->kvd)
        return tk_fail(TK_ERR_ARG, "KV copy: %d tokens of a cache holding %d (or caches of different models)", n, src->n);
    if (dst == src) { dst->n = n; return TK_OK; }
    dst->n = 0;   /* nothing to relayout */
    tk_status st = tk_kv_reserve(dst, n);
    if (st) return st;
    const size_t row = (size_t)src->kvd, used = (size_t)n * row;
    for (int32_t l = 0; l < src->n_layers; l++) {
        memcpy(dst->k + (size_t)l * dst->cap * row, src->k + (size_t)l * src->cap * row, used * sizeof(float));
        memcpy(dst->v + (size_t)l * dst->cap * row, src->v + (size_t)l * src->cap * row, used * sizeof(float));
    }
    memcpy(dst->tokens, src->tokens, (size_t)n * sizeof(int32_t));
    memcpy(dst->pos, src->pos, (size_t)n * sizeof(int32_t));
    dst->n = n;
    return TK_OK;
}

void tk_kv_free(tk_kv_cache *kv) {
    free(kv->k); free(kv->v); free(kv->tokens); free(kv->pos);
    memset(kv, 0, sizeof *kv);
}

tk_status tk_session_new(tk_model *m, int32_t n_ctx, tk_session **out) {
    *out = NULL;
    if (n_ctx < 0) return tk_fail(TK_ERR_ARG, "session: negative context %d", n_ctx);
    if (n_ctx == 0) n_ctx = m->cfg.max_seq;
    tk_session *s = tk_calloc(1, sizeof *s);
    if (!s) return TK_ERR_NOMEM;
    s->m = m;
    tk_status st = tk_kv_init(&s->kv, m, n_ctx);
    if (!st) st = tk_acts_init(&s->a, m, 1, n_ctx < TK_PREFILL_CHUNK ? n_ctx : TK_PREFILL_CHUNK, 0);
    if (st) { tk_session_free(s); return st; }
    s->a.mm_flags = TK_MATMUL_EXACT; /* f32 activations unless the caller opts into int8 (tk_session_set_exact) */
    *out = s;
    return TK_OK;
}

void tk_session_free(tk_session *s) {
    if (!s) return;
    tk_kv_free(&s->kv);
    tk_acts_free(&s->a);
    free(s);
}

tk_status tk_session_set_adapters(tk_session *s, const tk_adapter_use *ads, int n) {
    if (tk_acts_same_adapters(&s->a, ads, n)) return TK_OK;
    tk_status st = tk_acts_set_adapters(&s->a, ads, n);
    if (!st) s->kv.n = 0; /* cached keys/values belong to the previous adapters */
    return st;
}

void tk_session_set_exact(tk_session *s, bool exact) { s->a.mm_flags = exact ? TK_MATMUL_EXACT : TK_MATMUL_BF16; }

int32_t tk_session_n_past(const tk_session *s) { return s->kv.n; }
const int32_t *tk_session_tokens(const tk_session *s) { return s->kv.tokens; }
int32_t tk_session_n_ctx(const tk_session *s) { return s->kv.n_ctx; }
void tk_session_truncate(tk_session *s, int32_t n) {
    if (n >= 0 && n < s->kv.n) s->kv.n = n;
}

tk_status tk_kv_eval(tk_model *m, tk_acts *a, tk_kv_cache *kv, const int32_t *ids, int64_t n, float *logits) {
    if (n <= 0) return tk_fail(TK_ERR_ARG, "session: nothing to evaluate");
    if (n > kv->n_ctx - kv->n)
        return tk_fail(TK_ERR_RANGE, "context full: %d cached + %lld new tokens exceed the context of %d",
                       kv->n, (long long)n, kv->n_ctx);
    tk_status st = tk_kv_reserve(kv, kv->n + (int32_t)n);
    if (st) return st;
    int32_t n0 = kv->n;
    for (int64_t i = 0; i < n; i += a->max_cols) {
        int64_t len = n - i < a->max_cols ? n - i : a->max_cols;
        tk_batch b = {.n_rows = 1, .n_cols = (int32_t)len, .ids = ids + i};
        bool last = i + len == n;
        int64_t idx = len - 1;
        st = tk_llama_forward(m, a, &b, kv, last && logits ? &idx : NULL, last && logits ? 1 : 0, logits);
        if (st) { kv->n = n0; return st; } /* no partial state: the cache is as before */
    }
    return TK_OK;
}

tk_status tk_session_eval(tk_session *s, const int32_t *ids, int64_t n, float *logits) {
    return tk_kv_eval(s->m, &s->a, &s->kv, ids, n, logits);
}

tk_status tk_session_eval_reuse(tk_session *s, const int32_t *ids, int64_t n, float *logits, int64_t *n_reused) {
    if (n <= 0) return tk_fail(TK_ERR_ARG, "session: nothing to evaluate");
    int64_t common = 0;
    while (common < s->kv.n && common < n && s->kv.tokens[common] == ids[common]) common++;
    /* at least the last token is evaluated again, for its logits */
    if (common == n) common = n - 1;
    tk_session_truncate(s, (int32_t)common);
    if (n_reused) *n_reused = common;
    return tk_session_eval(s, ids + common, n - common, logits);
}
