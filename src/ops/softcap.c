/* Logit soft-capping (c * tanh(x / c)) and the LM head product that applies it. */
#include "ops/ops.h"
#include "backend/backend.h"
#include <math.h>

void tk_softcap_forward(float *x, int64_t n, float c) {
    const float ic = 1.0f / c;
    for (int64_t i = 0; i < n; i++) x[i] = c * tanhf(x[i] * ic);
}

void tk_softcap_backward(float *dx, const float *y, int64_t n, float c) {
    const float ic = 1.0f / c;
    for (int64_t i = 0; i < n; i++) {
        float t = y[i] * ic;
        dx[i] *= 1.0f - t * t;
    }
}

tk_status tk_lm_head_logits(float *logits, const float *h, const tk_lm_head *head, int64_t T, int flags) {
    tk_status st = tk_matmul_ex(logits, h, head->w, T, false, flags);
    if (!st && head->softcap > 0) tk_softcap_forward(logits, T * head->w->ne[1], head->softcap);
    return st;
}
