/* The reference backend's table (see ref.h): host memory, and products written as their
 * definitions — each output element one double sum over its inputs. Weights of any dtype are
 * read a row at a time through the portable scalar dequantizer (core/quant.h); x is never
 * quantized, so every product is exact whatever the flags (TK_MATMUL_EXACT changes nothing). */
#include "backend/ref/ref.h"
#include "core/core.h"
#include "core/quant.h"
#include <math.h>

static void *ref_alloc(size_t bytes) { return malloc(bytes ? bytes : 1); }
static void ref_copy(void *dst, const void *src, size_t bytes) { memcpy(dst, src, bytes); }

/* Row n of W as f32 into row[K]. */
static void weight_row(const tk_tensor_ref *w, size_t row_bytes, int64_t n, float *row) {
    tk_dequant_row_fn_scalar(w->dtype)((const uint8_t *)w->data + (size_t)n * row_bytes, row, w->ne[0]);
}

/* y[t][n] = sum_k x[t][k] W[n][k] (+ y[t][n]). */
static tk_status ref_matmul(float *y, const float *x, const tk_tensor_ref *w, int64_t T, bool accumulate, int flags) {
    (void)flags;
    size_t rb;
    tk_status st = tk_matmul_check(w, T, &rb);
    if (st) return st;
    int64_t K = w->ne[0], N = w->ne[1];
    float *row = tk_malloc((size_t)K * sizeof(float));
    if (!row) return TK_ERR_NOMEM;
    for (int64_t n = 0; n < N; n++) {
        weight_row(w, rb, n, row);
        for (int64_t t = 0; t < T; t++) {
            double s = accumulate ? y[t * N + n] : 0.0;
            for (int64_t k = 0; k < K; k++) s += (double)x[t * K + k] * row[k];
            y[t * N + n] = (float)s;
        }
    }
    free(row);
    return TK_OK;
}

static tk_status ref_matmul_multi(float *const *y, const float *x, const tk_tensor_ref *const *w, int n, int64_t T, int flags) {
    if (n < 1 || n > 4) return tk_fail(TK_ERR_ARG, "matmul_multi: %d weights (1..4)", n);
    for (int i = 0; i < n; i++) {
        tk_status st = ref_matmul(y[i], x, w[i], T, false, flags);
        if (st) return st;
    }
    return TK_OK;
}

/* dx[t][k] = sum_n dy[t][n] W[n][k] (+ dx[t][k]); W is read by rows, so the sums build up in a double [T x K]. */
static tk_status ref_matmul_dx(float *dx, const float *dy, const tk_tensor_ref *w, int64_t T, bool accumulate) {
    size_t rb;
    tk_status st = tk_matmul_check(w, T, &rb);
    if (st) return st;
    int64_t K = w->ne[0], N = w->ne[1];
    float *row = tk_malloc((size_t)K * sizeof(float));
    double *sum = tk_calloc((size_t)(T * K), sizeof(double));
    if (!row || !sum) {
        free(row);
        free(sum);
        return TK_ERR_NOMEM;
    }
    for (int64_t n = 0; n < N; n++) {
        weight_row(w, rb, n, row);
        for (int64_t t = 0; t < T; t++)
            for (int64_t k = 0; k < K; k++) sum[t * K + k] += (double)dy[t * N + n] * row[k];
    }
    for (int64_t i = 0; i < T * K; i++) dx[i] = (float)(accumulate ? dx[i] + sum[i] : sum[i]);
    free(row);
    free(sum);
    return TK_OK;
}

/* dw[n][k] += sum_t dy[t][n] x[t][k]. */
static void ref_matmul_dw(float *dw, const float *dy, const float *x, int64_t T, int64_t N, int64_t K) {
    for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < K; k++) {
            double s = dw[n * K + k];
            for (int64_t t = 0; t < T; t++) s += (double)dy[t * N + n] * x[t * K + k];
            dw[n * K + k] = (float)s;
        }
}

/* C[i][j] = alpha * sum_k op(A)[i][k] op(B)[k][j] + beta * C[i][j]; beta = 0 ignores C (NaN included). */
static void ref_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                      const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++)
                s += (double)(trans_a ? A[k * lda + i] : A[i * lda + k]) * (trans_b ? B[j * ldb + k] : B[k * ldb + j]);
            C[i * ldc + j] = (float)(alpha * s + (beta != 0.0f ? (double)beta * C[i * ldc + j] : 0.0));
        }
}

static float ref_vexp_sum(float *y, const float *x, float shift, int64_t n) {
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        y[i] = (float)exp((double)x[i] - shift);
        sum += y[i];
    }
    return (float)sum;
}

const tk_backend tk_ref_backend = {
    .name = "ref",
    .detail = "host memory, portable reference: one thread, double sums, scalar dequantizer",
    .alloc = ref_alloc,
    .free = free,
    .to_device = ref_copy,
    .to_host = ref_copy,
    .matmul = ref_matmul,
    .matmul_multi = ref_matmul_multi,
    .matmul_dx = ref_matmul_dx,
    .matmul_dw = ref_matmul_dw,
    .sgemm = ref_sgemm,
    .vexp_sum = ref_vexp_sum,
    .embedding_fwd = tk_ref_embedding_forward,
    .embedding_bwd = tk_ref_embedding_backward,
    .rmsnorm_fwd = tk_ref_rmsnorm_forward,
    .rmsnorm_bwd = tk_ref_rmsnorm_backward,
    .rope_fwd = tk_ref_rope_forward,
    .rope_bwd = tk_ref_rope_backward,
    .attention_fwd = tk_ref_attention_forward,
    .attention_bwd = tk_ref_attention_backward,
    .swiglu_fwd = tk_ref_swiglu_forward,
    .swiglu_bwd = tk_ref_swiglu_backward,
    .geglu_fwd = tk_ref_geglu_forward,
    .geglu_bwd = tk_ref_geglu_backward,
};
