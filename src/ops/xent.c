/* LM head + cross-entropy in chunks of rows, so the [T x V] logits never exist whole:
 * only rows with a target (>= 0) and a non-zero weight are gathered, their logits
 * computed chunk by chunk (about 8 MiB at a time), the loss summed in double, and
 * (for training) the logit gradient softmax - onehot pushed straight back through
 * the head into dh and, for a trainable head, dW. A soft-capped head (tk_lm_head.softcap)
 * caps the logits before the softmax and multiplies their gradient by the cap's derivative. */
#include "ops/ops.h"
#include "core/core.h"
#include "backend/backend.h"
#include <math.h>

#define XENT_CHUNK_FLOATS (2 * 1024 * 1024)

static int64_t g_chunk_rows = 0;
void tk_lmhead_xent_chunk_rows(int64_t rows) { g_chunk_rows = rows > 0 ? rows : 0; }
int64_t tk_lmhead_chunk_rows(int64_t V) {
    if (g_chunk_rows) return g_chunk_rows;
    int64_t R = XENT_CHUNK_FLOATS / (V > 0 ? V : 1);
    return R < 8 ? 8 : R;
}

double tk_sum_f64(const float *x, int64_t n) {
    /* eight fixed lanes, combined in a fixed order: the same bits whether or not the compiler
     * vectorizes (an `omp simd` reduction would let each build choose its own order) */
    double l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int k = 0; k < 8; k++) l[k] += x[j + k];
    for (int k = 0; j < n; j++, k++) l[k] += x[j];
    return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}

tk_softmax_at tk_softmax_at_sum(double sum, float et, float lt_mx) {
    tk_softmax_at r = {.sum = sum, .rest = sum - et};
    if (r.rest < 0) r.rest = 0;
    r.logp = r.rest < et ? -log1p(r.rest / et) : (double)lt_mx - log(sum);
    return r;
}

tk_softmax_at tk_softmax_at_target(const float *e, int64_t V, int32_t t, float lt_mx) {
    return tk_softmax_at_sum(tk_sum_f64(e, V), e[t], lt_mx);
}

tk_status tk_lmhead_xent(const float *h, const tk_lm_head *head, const int32_t *target, const float *weight,
                         int64_t T, float grad_scale, double *loss_sum, double *weight_sum, float *dh, float *dw) {
    if (!h || !head || !head->w || !target || !loss_sum || !weight_sum || T < 0) return tk_fail(TK_ERR_ARG, "lmhead_xent: NULL argument");
    const tk_tensor_ref *w_out = head->w;
    const float cap = head->softcap;
    int64_t C = w_out->ne[0], V = w_out->ne[1];
    *loss_sum = 0;
    *weight_sum = 0;
    if (dh) memset(dh, 0, (size_t)(T * C) * sizeof(float));
    int64_t *rows = tk_malloc((size_t)(T ? T : 1) * sizeof(int64_t));
    if (!rows) return TK_ERR_NOMEM;
    int64_t na = 0;
    for (int64_t t = 0; t < T; t++) {
        if (target[t] < 0 || (weight && weight[t] == 0.0f)) continue;
        if (target[t] >= V) {
            free(rows);
            return tk_fail(TK_ERR_RANGE, "lmhead_xent: target %d at row %lld is outside the vocabulary (%lld)",
                           (int)target[t], (long long)t, (long long)V);
        }
        rows[na++] = t;
    }
    if (!na) { free(rows); return TK_OK; }
    int64_t R = tk_lmhead_chunk_rows(V);
    if (R > na) R = na;
    float *hc = tk_malloc((size_t)R * C * sizeof(float)), *logits = tk_malloc((size_t)R * V * sizeof(float));
    float *dhc = dh ? tk_malloc((size_t)R * C * sizeof(float)) : NULL;
    double *rl = tk_malloc((size_t)R * sizeof(double));
    float *capped = cap > 0 && dh ? tk_malloc((size_t)R * V * sizeof(float)) : NULL; /* the capped logits, for their gradient */
    tk_status st = TK_OK;
    if (!hc || !logits || !rl || (dh && !dhc) || (cap > 0 && dh && !capped)) { st = TK_ERR_NOMEM; goto done; }
    double lsum = 0, wsum = 0;
    for (int64_t c0 = 0; c0 < na; c0 += R) {
        int64_t r = na - c0 < R ? na - c0 : R;
        for (int64_t i = 0; i < r; i++) memcpy(hc + i * C, h + rows[c0 + i] * C, (size_t)C * sizeof(float));
        st = tk_lm_head_logits(logits, hc, head, r, TK_MATMUL_EXACT); /* smooth in h: gradients match */
        if (st) goto done;
        if (capped) memcpy(capped, logits, (size_t)(r * V) * sizeof(float));
        #pragma omp parallel for schedule(static) if (r * V > 65536)
        for (int64_t i = 0; i < r; i++) {
            int64_t t = rows[c0 + i];
            float *l = logits + i * V;
            float mx = l[0];
            for (int64_t j = 1; j < V; j++) mx = l[j] > mx ? l[j] : mx;
            float lt_mx = l[target[t]] - mx;
            tk_vexp_sum(l, l, mx, V); /* l now holds exp(logit - max) */
            tk_softmax_at sm = tk_softmax_at_target(l, V, target[t], lt_mx);
            float wt = weight ? weight[t] : 1.0f;
            rl[i] = -sm.logp;
            if (dh) { /* d(loss * wt * grad_scale)/dlogits = (softmax - onehot) * wt * grad_scale */
                double g = (double)wt * grad_scale;
                float f = (float)(g / sm.sum);
                for (int64_t j = 0; j < V; j++) l[j] *= f;
                l[target[t]] = (float)(-g * sm.rest / sm.sum);
                if (capped) tk_softcap_backward(l, capped + i * V, V, cap);
            }
        }
        for (int64_t i = 0; i < r; i++) { /* fixed order: bit-identical for any thread count */
            double wt = weight ? weight[rows[c0 + i]] : 1.0;
            lsum += wt * rl[i];
            wsum += wt;
        }
        if (dh) {
            st = tk_matmul_dx(dhc, logits, w_out, r, false);
            if (st) goto done;
            for (int64_t i = 0; i < r; i++) memcpy(dh + rows[c0 + i] * C, dhc + i * C, (size_t)C * sizeof(float));
            if (dw) tk_matmul_dw(dw, logits, hc, r, V, C);
        }
    }
    *loss_sum = lsum;
    *weight_sum = wsum;
done:
    free(rows);
    free(hc);
    free(logits);
    free(dhc);
    free(rl);
    free(capped);
    if (st == TK_ERR_NOMEM) return tk_fail(st, "lmhead_xent: out of memory");
    return st;
}
