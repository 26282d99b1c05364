/* GELU-tanh-gated MLP (Gemma): out = gelu_tanh(gate) * up with
 * gelu_tanh(g) = g/2 (1 + tanh(u)), u = sqrt(2/pi) (g + 0.044715 g^3) — PyTorch's
 * gelu(approximate="tanh"), computed in float as it does; and its backward:
 * d gelu/dg = (1 + tanh u)/2 + g/2 (1 - tanh^2 u) sqrt(2/pi) (1 + 3 * 0.044715 g^2). */
#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include <math.h>

#define K0 0.7978845608028654f /* sqrt(2/pi) */
#define K1 0.044715f

void tk_cpu_geglu_forward(float *out, const float *gate, const float *up, int64_t n) {
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        float g = gate[i], th = tanhf(K0 * (g + K1 * g * g * g));
        out[i] = 0.5f * g * (1.0f + th) * up[i];
    }
}

void tk_cpu_geglu_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n) {
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        float g = gate[i], d = dout[i], th = tanhf(K0 * (g + K1 * g * g * g));
        float gelu = 0.5f * g * (1.0f + th);
        float dgelu = 0.5f * (1.0f + th) + 0.5f * g * (1.0f - th * th) * K0 * (1.0f + 3.0f * K1 * g * g);
        dup[i] = d * gelu;
        dgate[i] = d * up[i] * dgelu;
    }
}
