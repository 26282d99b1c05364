/* The LM head in chunks of rows (see chunks.h): gather, logits, callback, and the
 * backward of the head product, one chunk at a time. */
#include "objective/chunks.h"
#include "core/core.h"
#include "ops/ops.h"
#include <math.h>

void tk_head_gather(float *out, const float *h, const int64_t *rows, int64_t n, int64_t C) {
    for (int64_t i = 0; i < n; i++) memcpy(out + i * C, h + rows[i] * C, (size_t)C * sizeof(float));
}

tk_status tk_head_check(const tk_lm_head *head, const char *what) {
    if (!head || !head->w) return tk_fail(TK_ERR_ARG, "%s: no head weight", what);
    if (!(head->softcap >= 0) || !isfinite(head->softcap))
        return tk_fail(TK_ERR_ARG, "%s: head soft-cap %g must be finite and >= 0", what, (double)head->softcap);
    const tk_tensor_ref *w = head->w;
    if (!w->data || w->ne[0] <= 0 || w->ne[1] <= 0 || w->ne[2] != 1 || w->ne[3] != 1)
        return tk_fail(TK_ERR_ARG, "%s: head weight must be a 2-D {C, V} tensor with data (got {%lld, %lld, %lld, %lld})",
                       what, (long long)w->ne[0], (long long)w->ne[1], (long long)w->ne[2], (long long)w->ne[3]);
    return TK_OK;
}

tk_status tk_head_chunks(const float *h, const tk_lm_head *head, const int64_t *rows, int64_t n,
                         tk_head_chunk_fn fn, void *ctx, float *dh, float *dw) {
    if (n <= 0) return TK_OK;
    const tk_tensor_ref *w = head->w;
    const bool grad = dh || dw, cap = head->softcap > 0;
    const int64_t C = w->ne[0], V = w->ne[1];
    int64_t R = tk_lmhead_chunk_rows(V);
    if (R > n) R = n;
    float *hc = tk_malloc((size_t)R * C * sizeof(float)), *logits = tk_malloc((size_t)R * V * sizeof(float));
    float *dhc = dh ? tk_malloc((size_t)R * C * sizeof(float)) : NULL;
    float *capped = grad && cap ? tk_malloc((size_t)R * V * sizeof(float)) : NULL; /* the capped logits, for their gradient */
    tk_status st = TK_OK;
    if (!hc || !logits || (dh && !dhc) || (grad && cap && !capped)) { st = tk_fail(TK_ERR_NOMEM, "lm head chunks: out of memory (%lld rows x %lld)", (long long)R, (long long)V); goto done; }
    for (int64_t c0 = 0; c0 < n; c0 += R) {
        int64_t r = n - c0 < R ? n - c0 : R;
        tk_head_gather(hc, h, rows + c0, r, C);
        if ((st = tk_lm_head_logits(logits, hc, head, r, TK_MATMUL_EXACT))) goto done;
        if (capped) memcpy(capped, logits, (size_t)(r * V) * sizeof(float));
        if ((st = fn(ctx, c0, r, logits))) goto done;
        if (capped) tk_softcap_backward(logits, capped, r * V, head->softcap);
        if (dh) {
            if ((st = tk_matmul_dx(dhc, logits, w, r, false))) goto done;
            for (int64_t i = 0; i < r; i++) { /* fixed order: repeated rows add up deterministically */
                float *d = dh + rows[c0 + i] * C;
                const float *s = dhc + i * C;
                for (int64_t j = 0; j < C; j++) d[j] += s[j];
            }
        }
        if (dw) tk_matmul_dw(dw, logits, hc, r, V, C);
    }
done:
    free(hc);
    free(logits);
    free(dhc);
    free(capped);
    return st;
}
