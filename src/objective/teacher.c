/* Teacher logits in chunks (see teacher.h): per chunk, the raw logits (from hidden states
 * through the teacher head, or from the callback), optionally temperature-scaled,
 * log-softmaxed and reduced to the top k, then handed to the consumer. */
#include "objective/teacher.h"
#include "objective/chunks.h"
#include "core/core.h"
#include "ops/ops.h"
#include "backend/backend.h"
#include <math.h>

int64_t tk_teacher_vocab(const tk_teacher *t) {
    if (!t) return 0;
    if (t->h) return t->head && t->head->w ? t->head->w->ne[1] : 0;
    return t->V;
}

tk_status tk_teacher_check(const tk_teacher *t, const int64_t *rows, int64_t n, int64_t T) {
    if (!t) return tk_fail(TK_ERR_ARG, "teacher: NULL");
    if (t->h) {
        tk_status st = tk_head_check(t->head, "teacher");
        if (st) return st;
    } else if (!t->logits || t->V <= 0) {
        return tk_fail(TK_ERR_ARG, "teacher: neither hidden states + head nor a logits callback with V > 0");
    }
    if (n < 0 || T < 0 || (n > 0 && !rows)) return tk_fail(TK_ERR_ARG, "teacher: NULL row list or a negative count");
    for (int64_t i = 0; i < n; i++)
        if (rows[i] < 0 || rows[i] >= T)
            return tk_fail(TK_ERR_RANGE, "teacher: selected row %lld (entry %lld) is outside the batch [0, %lld)",
                           (long long)rows[i], (long long)i, (long long)T);
    return TK_OK;
}

tk_status tk_teacher_chunk(const tk_teacher *t, const int64_t *rows, int64_t r, float *out, float *hbuf) {
    if (!t->h) {
        tk_status st = t->logits(t->ctx, rows, r, out);
        return st ? tk_fail_ctx(st, "teacher logits callback: ") : TK_OK;
    }
    tk_head_gather(hbuf, t->h, rows, r, t->head->w->ne[0]);
    return tk_lm_head_logits(out, hbuf, t->head, r, TK_MATMUL_EXACT);
}

/* Row i of a chunk: values = logits/temp (and log-softmax); top-k by partial selection. */
static void view_row(float *l, int64_t V, const tk_teacher_view *v, float *kv, int32_t *ki) {
    if (v->temperature != 1.0f) {
        float it = 1.0f / v->temperature;
        for (int64_t j = 0; j < V; j++) l[j] *= it;
    }
    if (v->log_softmax) {
        double mx = l[0];
        for (int64_t j = 1; j < V; j++) mx = l[j] > mx ? l[j] : mx;
        double se = 0;
        for (int64_t j = 0; j < V; j++) se += exp((double)l[j] - mx);
        double lse = mx + log(se);
        for (int64_t j = 0; j < V; j++) l[j] = (float)((double)l[j] - lse);
    }
    if (!kv) return;
    /* top k: insertion into a sorted list of k (k is small); strict > keeps the lower id on ties */
    int64_t k = v->top_k, m = 0;
    for (int64_t j = 0; j < V; j++) {
        float x = l[j];
        if (m == k && !(x > kv[k - 1])) continue;
        int64_t p = m < k ? m++ : k - 1;
        while (p > 0 && x > kv[p - 1]) { kv[p] = kv[p - 1]; ki[p] = ki[p - 1]; p--; }
        kv[p] = x;
        ki[p] = (int32_t)j;
    }
}

tk_status tk_teacher_logits(const tk_teacher *t, const int64_t *rows, int64_t n, int64_t T, const tk_teacher_view *v,
                            tk_logit_consumer consume, void *ctx) {
    static const tk_teacher_view raw = {1.0f, false, 0};
    if (!v) v = &raw;
    tk_status st = tk_teacher_check(t, rows, n, T);
    if (st) return st;
    if (!consume) return tk_fail(TK_ERR_ARG, "teacher logits: no consumer");
    const int64_t V = tk_teacher_vocab(t);
    if (!(v->temperature > 0.0f) || !isfinite(v->temperature))
        return tk_fail(TK_ERR_ARG, "teacher logits: temperature %g must be a positive number", (double)v->temperature);
    if (v->top_k < 0 || v->top_k > V)
        return tk_fail(TK_ERR_ARG, "teacher logits: top_k %d is outside [0, V = %lld]", (int)v->top_k, (long long)V);
    if (n == 0) return TK_OK;
    const int64_t K = v->top_k ? v->top_k : V;
    int64_t R = tk_lmhead_chunk_rows(V);
    if (R > n) R = n;
    float *buf = tk_malloc((size_t)R * V * sizeof(float));
    float *hbuf = t->h ? tk_malloc((size_t)R * t->head->w->ne[0] * sizeof(float)) : NULL;
    float *kv = v->top_k ? tk_malloc((size_t)R * K * sizeof(float)) : NULL;
    int32_t *ki = v->top_k ? tk_malloc((size_t)R * K * sizeof(int32_t)) : NULL;
    if (!buf || (t->h && !hbuf) || (v->top_k && (!kv || !ki))) { st = tk_fail(TK_ERR_NOMEM, "teacher logits: out of memory"); goto done; }
    for (int64_t c0 = 0; c0 < n; c0 += R) {
        int64_t r = n - c0 < R ? n - c0 : R;
        if ((st = tk_teacher_chunk(t, rows + c0, r, buf, hbuf))) goto done;
        #pragma omp parallel for schedule(static) if (r * V > 65536)
        for (int64_t i = 0; i < r; i++) view_row(buf + i * V, V, v, kv ? kv + i * K : NULL, ki ? ki + i * K : NULL);
        tk_logit_chunk ch = {c0, r, rows + c0, V, K, kv ? kv : buf, ki};
        if ((st = consume(ctx, &ch))) goto done;
    }
done:
    free(buf);
    free(hbuf);
    free(kv);
    free(ki);
    return st;
}
