/* RMSNorm (Llama): out = x / sqrt(mean(x^2) + eps) * w, with its backward.
 * With xhat = x * rstd: dx = rstd * (dxhat - xhat * mean(dxhat * xhat)), dxhat = dout * w. */
#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include <math.h>

void tk_cpu_rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int64_t T, int64_t C, float eps) {
    #pragma omp parallel for schedule(static) if (T * C > 32768)
    for (int64_t t = 0; t < T; t++) {
        const float *xr = x + t * C;
        float *o = out + t * C;
        double ss = 0;
        for (int64_t c = 0; c < C; c++) ss += (double)xr[c] * xr[c];
        float r = (float)(1.0 / sqrt(ss / (double)C + (double)eps));
        if (rstd) rstd[t] = r;
        for (int64_t c = 0; c < C; c++) o[c] = xr[c] * r * w[c];
    }
}

void tk_cpu_rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w, const float *rstd,
                         int64_t T, int64_t C) {
    if (dw) {
        /* Each thread owns a range of columns and sums over t in order: deterministic for any thread count. */
        #pragma omp parallel for schedule(static) if (T * C > 32768)
        for (int64_t c = 0; c < C; c++) {
            double acc = 0;
            for (int64_t t = 0; t < T; t++) acc += (double)dout[t * C + c] * x[t * C + c] * rstd[t];
            dw[c] += (float)acc;
        }
    }
    if (!dx) return;
    #pragma omp parallel for schedule(static) if (T * C > 32768)
    for (int64_t t = 0; t < T; t++) {
        const float *xr = x + t * C, *g = dout + t * C;
        float r = rstd[t];
        double dot = 0; /* sum(dxhat * xhat) */
        for (int64_t c = 0; c < C; c++) dot += (double)g[c] * w[c] * xr[c] * r;
        float m = (float)(dot / (double)C);
        float *d = dx + t * C;
        for (int64_t c = 0; c < C; c++) d[c] = r * (g[c] * w[c] - xr[c] * r * m);
    }
}
