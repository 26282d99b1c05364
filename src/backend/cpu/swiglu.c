/* SwiGLU gate: out = silu(gate) * up, silu(g) = g * sigmoid(g); and its backward.
 * exp runs vectorized (tk_cpu_vexp) over row-sized chunks. */
#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include <math.h>

#define CH 1024

void tk_cpu_swiglu_forward(float *out, const float *gate, const float *up, int64_t n) {
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t c0 = 0; c0 < n; c0 += CH) {
        int64_t m = n - c0 < CH ? n - c0 : CH;
        float e[CH];
        for (int64_t i = 0; i < m; i++) e[i] = -gate[c0 + i];
        tk_cpu_vexp(e, e, m);
        for (int64_t i = 0; i < m; i++) out[c0 + i] = gate[c0 + i] / (1.0f + e[i]) * up[c0 + i];
    }
}

void tk_cpu_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n) {
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t c0 = 0; c0 < n; c0 += CH) {
        int64_t m = n - c0 < CH ? n - c0 : CH;
        float e[CH];
        for (int64_t i = 0; i < m; i++) e[i] = -gate[c0 + i];
        tk_cpu_vexp(e, e, m);
        for (int64_t i = 0; i < m; i++) {
            float g = gate[c0 + i], s = 1.0f / (1.0f + e[i]), d = dout[c0 + i];
            dup[c0 + i] = d * g * s;
            dgate[c0 + i] = d * up[c0 + i] * s * (1.0f + g * (1.0f - s));
        }
    }
}
