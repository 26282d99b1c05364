/* Linear layers y = x W^T + b over weights of any dtype (the matmul lives in
 * backend/cpu/matmul.c), and their backward: dx = dy W, dW += dy^T x, db += sum(dy). */
#include "ops/ops.h"
#include "core/core.h"

tk_status tk_linear_forward(float *y, const float *x, const tk_tensor_ref *w, const float *b, int64_t T) {
    tk_status st = tk_matmul(y, x, w, T, false);
    if (st || !b) return st;
    int64_t N = w->ne[1];
    #pragma omp parallel for schedule(static) if (T * N > 65536)
    for (int64_t t = 0; t < T; t++)
        for (int64_t n = 0; n < N; n++) y[t * N + n] += b[n];
    return TK_OK;
}

tk_status tk_linear_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const tk_tensor_ref *w, int64_t T) {
    int64_t K = w->ne[0], N = w->ne[1];
    if (dx) {
        tk_status st = tk_matmul_dx(dx, dy, w, T, false);
        if (st) return st;
    }
    if (dw) tk_matmul_dw(dw, dy, x, T, N, K);
    if (db) {
        #pragma omp parallel for schedule(static) if (T * N > 65536)
        for (int64_t n = 0; n < N; n++) {
            double s = 0;
            for (int64_t t = 0; t < T; t++) s += dy[t * N + n];
            db[n] += (float)s;
        }
    }
    return TK_OK;
}
