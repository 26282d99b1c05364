/* tk_sgemm: row-major f32 GEMM. With TK_HAVE_BLAS it is OpenBLAS's cblas_sgemm (the
 * OpenMP build shares takumi's OpenMP pool and runs single-threaded when called from
 * inside a parallel region, so callers may parallelise around it without nesting).
 * Without BLAS, a cache-blocked kernel: B packed per block, 4x16 register tiles. */
#include "backend/cpu/matmul.h"
#include "core/core.h"
#ifdef TK_HAVE_BLAS
#include <cblas.h>
#endif
#ifdef TK_HAVE_OPENMP
#include <omp.h>
#define TK_IN_PARALLEL() omp_in_parallel()
#else
#define TK_IN_PARALLEL() 0
#endif

#define KB 256
#define NB 256

/* op(A)[i][k] */
#define AT(i, k) (trans_a ? A[(int64_t)(k) * lda + (i)] : A[(int64_t)(i) * lda + (k)])

static void sgemm_blocked(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                          const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    for (int64_t i = 0; i < M; i++) {
        float *c = C + i * ldc;
        if (beta == 0.0f) memset(c, 0, (size_t)N * sizeof(float));
        else if (beta != 1.0f) for (int64_t j = 0; j < N; j++) c[j] *= beta;
    }
    if (K == 0 || alpha == 0.0f) return;
    float *Bp = malloc((size_t)KB * NB * sizeof(float));
    if (!Bp) { /* out of memory: fall back to the unblocked loop rather than fail */
        for (int64_t i = 0; i < M; i++)
            for (int64_t k = 0; k < K; k++) {
                float a = alpha * AT(i, k);
                for (int64_t j = 0; j < N; j++) C[i * ldc + j] += a * (trans_b ? B[j * ldb + k] : B[k * ldb + j]);
            }
        return;
    }
    bool par = !TK_IN_PARALLEL() && (double)M * N * K > 262144.0;
    (void)par;
    #pragma omp parallel if (par)
    for (int64_t j0 = 0; j0 < N; j0 += NB) {
        int64_t nb = N - j0 < NB ? N - j0 : NB;
        for (int64_t k0 = 0; k0 < K; k0 += KB) {
            int64_t kb = K - k0 < KB ? K - k0 : KB;
            #pragma omp for schedule(static)
            for (int64_t k = 0; k < kb; k++) {
                float *dst = Bp + k * NB;
                if (trans_b) for (int64_t j = 0; j < nb; j++) dst[j] = B[(j0 + j) * ldb + k0 + k];
                else memcpy(dst, B + (k0 + k) * ldb + j0, (size_t)nb * sizeof(float));
            }
            #pragma omp for schedule(static)
            for (int64_t i0 = 0; i0 < M; i0 += 4) {
                int64_t mr = M - i0 < 4 ? M - i0 : 4;
                int64_t j = 0;
                if (mr == 4) {
                    for (; j + 16 <= nb; j += 16) {
                        float acc[4][16] = {{0}};
                        for (int64_t k = 0; k < kb; k++) {
                            const float *b = Bp + k * NB + j;
                            float a0 = AT(i0, k0 + k), a1 = AT(i0 + 1, k0 + k), a2 = AT(i0 + 2, k0 + k), a3 = AT(i0 + 3, k0 + k);
                            #pragma omp simd
                            for (int c = 0; c < 16; c++) {
                                acc[0][c] += a0 * b[c];
                                acc[1][c] += a1 * b[c];
                                acc[2][c] += a2 * b[c];
                                acc[3][c] += a3 * b[c];
                            }
                        }
                        for (int r = 0; r < 4; r++)
                            for (int c = 0; c < 16; c++) C[(i0 + r) * ldc + j0 + j + c] += alpha * acc[r][c];
                    }
                }
                for (int64_t r = 0; r < mr; r++)
                    for (int64_t jj = j; jj < nb; jj++) {
                        float s = 0;
                        for (int64_t k = 0; k < kb; k++) s += AT(i0 + r, k0 + k) * Bp[k * NB + jj];
                        C[(i0 + r) * ldc + j0 + jj] += alpha * s;
                    }
            }
        }
    }
    free(Bp);
}

void tk_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
              const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (M <= 0 || N <= 0) return;
#ifdef TK_HAVE_BLAS
    if (K > 0) {
        cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                    (blasint)M, (blasint)N, (blasint)K, alpha, A, (blasint)lda, B, (blasint)ldb, beta, C, (blasint)ldc);
        return;
    }
#endif
    sgemm_blocked(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* The blocked kernel, exposed for tests and benches even in BLAS builds. */
void tk_sgemm_builtin(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                      const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    sgemm_blocked(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
