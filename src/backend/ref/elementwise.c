/* The reference backend's token embedding, RMSNorm, RoPE rotation and gated activations, each
 * the formula of its contract (src/ops/ops.h) evaluated in double, element by element. */
#include "backend/ref/ref.h"
#include "core/core.h"
#include "core/quant.h"
#include <math.h>

tk_status tk_ref_embedding_forward(float *out, const int32_t *ids, int64_t T, const tk_tensor_ref *table) {
    size_t rb;
    tk_status st = tk_embedding_check(out, ids, T, table, &rb);
    if (st) return st;
    tk_dequant_row_fn deq = tk_dequant_row_fn_scalar(table->dtype);
    if (!deq) return tk_fail(TK_ERR_UNSUPPORTED, "embedding table %s: no dequantizer for dtype %s",
                             table->name ? table->name : "?", tk_dtype_name(table->dtype));
    for (int64_t t = 0; t < T; t++) deq((const uint8_t *)table->data + (size_t)ids[t] * rb, out + t * table->ne[0], table->ne[0]);
    return TK_OK;
}

void tk_ref_embedding_backward(float *dtable, const float *dout, const int32_t *ids, int64_t T, int64_t C) {
    for (int64_t t = 0; t < T; t++)
        for (int64_t c = 0; c < C; c++) dtable[ids[t] * C + c] += dout[t * C + c];
}

/* out = x * r * w, r = 1 / sqrt(mean(x^2) + eps). */
void tk_ref_rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int64_t T, int64_t C, float eps) {
    for (int64_t t = 0; t < T; t++) {
        double ss = 0;
        for (int64_t c = 0; c < C; c++) ss += (double)x[t * C + c] * x[t * C + c];
        double r = 1.0 / sqrt(ss / (double)C + eps);
        if (rstd) rstd[t] = (float)r;
        for (int64_t c = 0; c < C; c++) out[t * C + c] = (float)(x[t * C + c] * r * w[c]);
    }
}

/* With xhat = x r and g = dout w: dx = r (g - xhat mean(g xhat)); dw += sum_t dout xhat. */
void tk_ref_rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w, const float *rstd, int64_t T,
                             int64_t C) {
    for (int64_t c = 0; dw && c < C; c++) {
        double s = dw[c];
        for (int64_t t = 0; t < T; t++) s += (double)dout[t * C + c] * x[t * C + c] * rstd[t];
        dw[c] = (float)s;
    }
    for (int64_t t = 0; dx && t < T; t++) {
        double r = rstd[t], m = 0;
        for (int64_t c = 0; c < C; c++) m += (double)dout[t * C + c] * w[c] * x[t * C + c] * r;
        m /= (double)C;
        for (int64_t c = 0; c < C; c++) dx[t * C + c] = (float)(r * ((double)dout[t * C + c] * w[c] - x[t * C + c] * r * m));
    }
}

/* Each head's pair (a, b) of frequency i turns by sign * angle, angle = float(pos * inv_freq[i]) as the tables hold it:
 * pairs (2i, 2i+1) when interleaved, else (i, i + half). */
static void rotate(float *x, const int32_t *pos, int64_t T, int64_t NH, int64_t D, const tk_rope *r, double sign) {
    for (int64_t t = 0; t < T; t++)
        for (int64_t h = 0; h < NH; h++)
            for (int64_t i = 0; i < r->half; i++) {
                float angle = (float)pos[t] * r->inv_freq[i];
                double c = cos(angle), s = sign * sin(angle);
                float *xa = x + (t * NH + h) * D + (r->interleaved ? 2 * i : i), *xb = xa + (r->interleaved ? 1 : r->half);
                double a = *xa, b = *xb;
                *xa = (float)(a * c - b * s);
                *xb = (float)(a * s + b * c);
            }
}
void tk_ref_rope_forward(float *x, const int32_t *pos, int64_t T, int64_t NH, int64_t D, const tk_rope *r) {
    rotate(x, pos, T, NH, D, r, 1.0);
}
void tk_ref_rope_backward(float *dx, const int32_t *pos, int64_t T, int64_t NH, int64_t D, const tk_rope *r) {
    rotate(dx, pos, T, NH, D, r, -1.0);
}

/* silu(g) = g sigmoid(g); silu'(g) = sigmoid(g) (1 + g (1 - sigmoid(g))). */
void tk_ref_swiglu_forward(float *out, const float *gate, const float *up, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = (float)(gate[i] / (1.0 + exp(-(double)gate[i])) * up[i]);
}
void tk_ref_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        double g = gate[i], sg = 1.0 / (1.0 + exp(-g));
        dup[i] = (float)(dout[i] * g * sg);
        dgate[i] = (float)(dout[i] * (double)up[i] * sg * (1.0 + g * (1.0 - sg)));
    }
}

/* gelu_tanh(g) = g/2 (1 + tanh u), u = sqrt(2/pi) (g + 0.044715 g^3);
 * gelu_tanh'(g) = (1 + tanh u)/2 + g/2 (1 - tanh^2 u) sqrt(2/pi) (1 + 3 * 0.044715 g^2). */
static double tanh_u(double g) { return tanh(sqrt(2.0 / M_PI) * (g + 0.044715 * g * g * g)); }
void tk_ref_geglu_forward(float *out, const float *gate, const float *up, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = (float)(0.5 * gate[i] * (1.0 + tanh_u(gate[i])) * up[i]);
}
void tk_ref_geglu_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        double g = gate[i], th = tanh_u(g);
        double d = 0.5 * (1.0 + th) + 0.5 * g * (1.0 - th * th) * sqrt(2.0 / M_PI) * (1.0 + 3.0 * 0.044715 * g * g);
        dup[i] = (float)(dout[i] * 0.5 * g * (1.0 + th));
        dgate[i] = (float)(dout[i] * (double)up[i] * d);
    }
}
