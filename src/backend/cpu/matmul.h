/* Matrix multiplication against weights of any dtype (the CPU backend).
 * Convention (as in PyTorch's nn.Linear): y[T x N] = x[T x K] · W^T, where the weight
 * W is stored row-major [N x K] (tk_tensor_ref ne[0] = K, ne[1] = N) in F32, F16,
 * BF16 or any quantized block type. Quantized/half weights are never expanded whole:
 * they are dequantized block by block inside the product (panels of rows into a
 * per-thread scratch, then sgemm), or, for few rows (decode), dotted directly
 * against an on-the-fly quantized x. */
#ifndef TK_BACKEND_CPU_MATMUL_H
#define TK_BACKEND_CPU_MATMUL_H
#include "takumi/core.h"

/* y = x · W^T (+ y if accumulate). x: [T x K] f32 row-major; y: [T x N]. Returns TK_ERR_UNSUPPORTED for a dtype without kernels. */
tk_status tk_matmul(float *y, const float *x, const tk_tensor_ref *w, int64_t T, bool accumulate);
/* tk_matmul with flags: TK_MATMUL_EXACT never quantizes x (the few-row int8 path is
 * skipped for half/quantized W), so y is a smooth function of x — what training
 * (finite-difference-consistent gradients) wants. tk_matmul = tk_matmul_ex(..., 0). */
#define TK_MATMUL_EXACT 1
tk_status tk_matmul_ex(float *y, const float *x, const tk_tensor_ref *w, int64_t T, bool accumulate, int flags);
/* y[i] = x · W[i]^T for n (1..4) weights sharing x and K, no accumulate: the same results as n
 * tk_matmul_ex calls, but few-row products (decode) run in one parallel region. */
tk_status tk_matmul_multi(float *const *y, const float *x, const tk_tensor_ref *const *w, int n, int64_t T, int flags);
/* dx = dy · W (+ dx if accumulate): the input gradient of y = x·W^T. dy: [T x N], dx: [T x K]. Any weight dtype. */
tk_status tk_matmul_dx(float *dx, const float *dy, const tk_tensor_ref *w, int64_t T, bool accumulate);
/* dW += dy^T · x for an f32 weight gradient dW [N x K]. */
void tk_matmul_dw(float *dw, const float *dy, const float *x, int64_t T, int64_t N, int64_t K);
/* Plain f32 sgemm wrapper: C[M x N] = alpha * op(A) · op(B) + beta * C, row-major (BLAS when built with it, else a blocked kernel). */
void tk_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
              const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
#endif
