/* The score head of sequence classification, regression and reward models (see classify.h):
 * parameters, pooled features, logits and their backward. */
#include "objective/classify.h"
#include "core/core.h"
#include <math.h>
#include <stdio.h>

tk_status tk_score_head_add(tk_score_head *sh, int64_t C, int32_t K, tk_pooling pooling, double init_std, uint64_t seed,
                            const char *prefix, tk_param_set *ps) {
    if (sh->w) return tk_fail(TK_ERR_ARG, "the score head's parameters were already added");
    if (C <= 0 || K <= 0) return tk_fail(TK_ERR_ARG, "score head: model width %lld, %d outputs", (long long)C, (int)K);
    if (!(init_std > 0) || !isfinite(init_std)) return tk_fail(TK_ERR_ARG, "score head: init_std %g must be > 0", init_std);
    if (pooling != TK_POOL_LAST && pooling != TK_POOL_MEAN) return tk_fail(TK_ERR_ARG, "score head: unknown pooling %d", (int)pooling);
    char name[160];
    snprintf(name, sizeof name, "%s%s", prefix ? prefix : "", TK_SCORE_HEAD_NAME);
    int64_t ne[2] = {C, K};
    tk_param *p;
    tk_status st = tk_params_add(ps, name, 2, ne, NULL, true, &p);
    if (st) return st;
    tk_rng rng;
    tk_rng_seed(&rng, seed ^ 0x5c0de5c0de5c0deULL);
    for (int64_t i = 0; i < C * K; i++) p->w[i] = (float)(init_std * tk_rng_normal(&rng));
    *sh = (tk_score_head){.C = C, .K = K, .pooling = pooling, .w = p->w, .g = p->g};
    return TK_OK;
}

/* Rows of sequence q: last[q] = its last row, cnt[q] = how many. */
static tk_status seq_rows(const tk_obj_batch *b, int64_t *last, int64_t *cnt) {
    for (int32_t q = 0; q < b->n_seq; q++) last[q] = -1, cnt[q] = 0;
    for (int64_t t = 0; t < b->T; t++)
        if (b->seq[t] >= 0) last[b->seq[t]] = t, cnt[b->seq[t]]++;
    for (int32_t q = 0; q < b->n_seq; q++)
        if (last[q] < 0) return tk_fail(TK_ERR_ARG, "sequence %d has no row (batch.seq marks none)", (int)q);
    return TK_OK;
}

/* Features of sequence q into x [C] (double). */
static void pool(const tk_score_head *sh, const tk_obj_batch *b, int32_t q, int64_t last, int64_t cnt, double *x) {
    const int64_t C = b->C;
    if (sh->pooling == TK_POOL_LAST) {
        const float *h = b->h + last * C;
        for (int64_t c = 0; c < C; c++) x[c] = h[c];
        return;
    }
    for (int64_t c = 0; c < C; c++) x[c] = 0;
    for (int64_t t = 0; t <= last; t++) {   /* row order: deterministic */
        if (b->seq[t] != q) continue;
        const float *h = b->h + t * C;
        for (int64_t c = 0; c < C; c++) x[c] += h[c];
    }
    for (int64_t c = 0; c < C; c++) x[c] /= (double)cnt;
}

static tk_status check(const tk_score_head *sh, const tk_obj_batch *b) {
    if (!sh->w) return tk_fail(TK_ERR_ARG, "the score head has no parameters (add_params was not called)");
    if (b->C != sh->C) return tk_fail(TK_ERR_ARG, "hidden size %lld differs from the score head's %lld", (long long)b->C, (long long)sh->C);
    if (!b->seq || !b->h) return tk_fail(TK_ERR_ARG, "score head: the batch has no sequences or hidden states");
    return TK_OK;
}

tk_status tk_score_head_forward(const tk_score_head *sh, const tk_obj_batch *b, double *x, double *z) {
    tk_status st = check(sh, b);
    if (st) return st;
    const int32_t S = b->n_seq;
    const int64_t C = b->C;
    int64_t *last = tk_malloc(2 * (size_t)(S ? S : 1) * sizeof *last), *cnt = last ? last + (S ? S : 1) : NULL;
    double *own = x ? NULL : tk_malloc((size_t)C * sizeof *own);
    if (!last || (!x && !own)) { free(last); free(own); return TK_ERR_NOMEM; }
    if (!(st = seq_rows(b, last, cnt)))
        for (int32_t q = 0; q < S; q++) {
            double *xq = x ? x + q * C : own;
            pool(sh, b, q, last[q], cnt[q], xq);
            for (int32_t k = 0; k < sh->K; k++) {
                const float *w = sh->w + k * C;
                double acc = 0;
                for (int64_t c = 0; c < C; c++) acc += (double)w[c] * xq[c];
                z[q * sh->K + k] = acc;
            }
        }
    free(last);
    free(own);
    return st;
}

tk_status tk_score_head_backward(const tk_score_head *sh, const tk_obj_batch *b, const double *x, const double *dz, float *dh) {
    const int64_t C = b->C, T = b->T;
    const int32_t S = b->n_seq, K = sh->K;
    memset(dh, 0, (size_t)(T * C) * sizeof(float));
    int64_t *last = tk_malloc(2 * (size_t)(S ? S : 1) * sizeof *last), *cnt = last ? last + (S ? S : 1) : NULL;
    double *dx = tk_malloc((size_t)C * sizeof *dx);
    tk_status st = last && dx ? seq_rows(b, last, cnt) : TK_ERR_NOMEM;
    if (!st)
        for (int32_t q = 0; q < S; q++) {   /* sequence order: deterministic */
            const double *d = dz + q * K;
            for (int64_t c = 0; c < C; c++) dx[c] = 0;
            for (int32_t k = 0; k < K; k++) {
                const float *w = sh->w + k * C;
                for (int64_t c = 0; c < C; c++) dx[c] += d[k] * w[c];
                if (sh->g) {
                    float *g = sh->g + k * C;
                    for (int64_t c = 0; c < C; c++) g[c] += (float)(d[k] * x[q * C + c]);
                }
            }
            if (sh->pooling == TK_POOL_LAST) {
                float *o = dh + last[q] * C;
                for (int64_t c = 0; c < C; c++) o[c] += (float)dx[c];
                continue;
            }
            for (int64_t t = 0; t <= last[q]; t++) {
                if (b->seq[t] != q) continue;
                float *o = dh + t * C;
                for (int64_t c = 0; c < C; c++) o[c] += (float)(dx[c] / (double)cnt[q]);
            }
        }
    free(last);
    free(dx);
    return st;
}
