/* RoPE rotation kernels of the CPU backend (tables: src/ops/rope.c). */
#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include <math.h>

/* Rotates one head vector by the angles of position p; sign -1 rotates backwards.
 * Positions outside the table (never in normal use) are computed on the fly. */
static void rope_one(float *x, const tk_rope *r, int32_t p, float sign) {
    int64_t half = r->half;
    bool in_table = p >= 0 && p < r->n_pos;
    const float *ct = in_table ? r->cos + (int64_t)p * half : NULL, *st = in_table ? r->sin + (int64_t)p * half : NULL;
    int64_t stride = r->interleaved ? 1 : half, step = r->interleaved ? 2 : 1;
    for (int64_t i = 0; i < half; i++) {
        float c, s;
        if (in_table) { c = ct[i]; s = st[i]; }
        else {
            float a = (float)p * r->inv_freq[i];
            c = (float)cos((double)a);
            s = (float)sin((double)a);
        }
        s *= sign;
        float *x0p = x + i * step, *x1p = x0p + stride;
        float x0 = *x0p, x1 = *x1p;
        *x0p = x0 * c - x1 * s;
        *x1p = x0 * s + x1 * c;
    }
}

static void rope_apply(float *x, const int32_t *pos, int64_t T, int64_t NH, int64_t D, const tk_rope *r, float sign) {
    #pragma omp parallel for schedule(static) if (T * NH * D > 65536)
    for (int64_t t = 0; t < T; t++)
        for (int64_t h = 0; h < NH; h++) rope_one(x + (t * NH + h) * D, r, pos[t], sign);
}

void tk_cpu_rope_forward(float *x, const int32_t *pos, int64_t T, int64_t NH, int64_t D, const tk_rope *r) {
    rope_apply(x, pos, T, NH, D, r, 1.0f);
}

void tk_cpu_rope_backward(float *dx, const int32_t *pos, int64_t T, int64_t NH, int64_t D, const tk_rope *r) {
    rope_apply(dx, pos, T, NH, D, r, -1.0f);
}
