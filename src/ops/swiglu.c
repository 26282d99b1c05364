/* SwiGLU gate: out = silu(gate) * up, silu(g) = g * sigmoid(g); and its backward. */
#include "ops/ops.h"
#include <math.h>

void tk_swiglu_forward(float *out, const float *gate, const float *up, int64_t n) {
    #pragma omp parallel for simd schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

void tk_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n) {
    #pragma omp parallel for simd schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        float g = gate[i], s = 1.0f / (1.0f + expf(-g)), d = dout[i];
        dup[i] = d * g * s;
        dgate[i] = d * up[i] * s * (1.0f + g * (1.0f - s));
    }
}
