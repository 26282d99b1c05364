/* tk_sgemm: row-major f32 GEMM. With TK_HAVE_BLAS it is OpenBLAS's cblas_sgemm (the
 * OpenMP build shares takumi's OpenMP pool and runs single-threaded when called from
 * inside a parallel region, so callers may parallelise around it without nesting).
 * Without BLAS, a cache-blocked kernel (packed panels, 6x16 AVX2/FMA register tile). */
#include "backend/backend.h"
#include "backend/cpu/kernels.h"
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

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define TK_SGEMM_AVX2 1
#endif

/* GotoBLAS-style blocking: B packed into KC x 16 column panels (shared), A packed per
 * thread into 6 x KC row panels, a 6x16 register tile (12 ymm accumulators). */
#define MR 6
#define NR 16
#define KC 256
#define MC 96
#define NC 2048

/* op(A)[i][k], op(B)[k][j] */
#define AT(i, k) (trans_a ? A[(int64_t)(k) * lda + (i)] : A[(int64_t)(i) * lda + (k)])
#define BT(k, j) (trans_b ? B[(int64_t)(j) * ldb + (k)] : B[(int64_t)(k) * ldb + (j)])

/* acc[MR x NR] = sum_k a[k][r] * b[k][c] over kc steps of packed panels. */
static void micro_kernel(int64_t kc, const float *a, const float *b, float *acc) {
#ifdef TK_SGEMM_AVX2
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (int64_t k = 0; k < kc; k++, a += MR, b += NR) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8), x;
        x = _mm256_broadcast_ss(a + 0); c00 = _mm256_fmadd_ps(x, b0, c00); c01 = _mm256_fmadd_ps(x, b1, c01);
        x = _mm256_broadcast_ss(a + 1); c10 = _mm256_fmadd_ps(x, b0, c10); c11 = _mm256_fmadd_ps(x, b1, c11);
        x = _mm256_broadcast_ss(a + 2); c20 = _mm256_fmadd_ps(x, b0, c20); c21 = _mm256_fmadd_ps(x, b1, c21);
        x = _mm256_broadcast_ss(a + 3); c30 = _mm256_fmadd_ps(x, b0, c30); c31 = _mm256_fmadd_ps(x, b1, c31);
        x = _mm256_broadcast_ss(a + 4); c40 = _mm256_fmadd_ps(x, b0, c40); c41 = _mm256_fmadd_ps(x, b1, c41);
        x = _mm256_broadcast_ss(a + 5); c50 = _mm256_fmadd_ps(x, b0, c50); c51 = _mm256_fmadd_ps(x, b1, c51);
    }
    _mm256_storeu_ps(acc + 0, c00); _mm256_storeu_ps(acc + 8, c01);
    _mm256_storeu_ps(acc + 16, c10); _mm256_storeu_ps(acc + 24, c11);
    _mm256_storeu_ps(acc + 32, c20); _mm256_storeu_ps(acc + 40, c21);
    _mm256_storeu_ps(acc + 48, c30); _mm256_storeu_ps(acc + 56, c31);
    _mm256_storeu_ps(acc + 64, c40); _mm256_storeu_ps(acc + 72, c41);
    _mm256_storeu_ps(acc + 80, c50); _mm256_storeu_ps(acc + 88, c51);
#else
    for (int i = 0; i < MR * NR; i++) acc[i] = 0;
    for (int64_t k = 0; k < kc; k++, a += MR, b += NR)
        for (int r = 0; r < MR; r++) {
            float x = a[r];
            #pragma omp simd
            for (int c = 0; c < NR; c++) acc[r * NR + c] += x * b[c];
        }
#endif
}

static void sgemm_blocked(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                          const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    for (int64_t i = 0; i < M; i++) {
        float *c = C + i * ldc;
        if (beta == 0.0f) memset(c, 0, (size_t)N * sizeof(float));
        else if (beta != 1.0f) for (int64_t j = 0; j < N; j++) c[j] *= beta;
    }
    if (K == 0 || alpha == 0.0f) return;
    int64_t ncap = N < NC ? N : NC, npan = (ncap + NR - 1) / NR;
    float *Bp = malloc((size_t)(npan * NR * KC) * sizeof(float));
    if (!Bp) { /* out of memory: the unblocked loop rather than a failure */
        for (int64_t i = 0; i < M; i++)
            for (int64_t k = 0; k < K; k++) {
                float a = alpha * AT(i, k);
                for (int64_t j = 0; j < N; j++) C[i * ldc + j] += a * BT(k, j);
            }
        return;
    }
    bool par = !TK_IN_PARALLEL() && (double)M * N * K > 262144.0;
    (void)par;
    #pragma omp parallel if (par)
    {
        float *Ap = malloc((size_t)(MC * KC) * sizeof(float)), acc[MR * NR];
        for (int64_t j0 = 0; j0 < N; j0 += NC) {
            int64_t nc = N - j0 < NC ? N - j0 : NC, np = (nc + NR - 1) / NR;
            for (int64_t k0 = 0; k0 < K; k0 += KC) {
                int64_t kc = K - k0 < KC ? K - k0 : KC;
                #pragma omp for schedule(static)
                for (int64_t p = 0; p < np; p++) { /* pack B panel p: [kc][NR], zero-padded */
                    float *dst = Bp + p * NR * KC;
                    int64_t jb = j0 + p * NR, w = nc - p * NR < NR ? nc - p * NR : NR;
                    for (int64_t k = 0; k < kc; k++) {
                        for (int64_t c = 0; c < w; c++) dst[k * NR + c] = BT(k0 + k, jb + c);
                        for (int64_t c = w; c < NR; c++) dst[k * NR + c] = 0;
                    }
                }
                #pragma omp for schedule(dynamic, 1)
                for (int64_t i0 = 0; i0 < M; i0 += MC) {
                    if (!Ap) continue; /* (no memory: that block is skipped; cannot happen for 96 KiB in practice) */
                    int64_t mc = M - i0 < MC ? M - i0 : MC;
                    for (int64_t r0 = 0; r0 < mc; r0 += MR) { /* pack A rows [i0+r0, +MR) x [k0, +kc) as [kc][MR] */
                        float *dst = Ap + r0 * KC;
                        int64_t h = mc - r0 < MR ? mc - r0 : MR;
                        for (int64_t k = 0; k < kc; k++) {
                            for (int64_t r = 0; r < h; r++) dst[k * MR + r] = AT(i0 + r0 + r, k0 + k);
                            for (int64_t r = h; r < MR; r++) dst[k * MR + r] = 0;
                        }
                    }
                    for (int64_t p = 0; p < np; p++) {
                        int64_t jb = j0 + p * NR, w = nc - p * NR < NR ? nc - p * NR : NR;
                        for (int64_t r0 = 0; r0 < mc; r0 += MR) {
                            int64_t h = mc - r0 < MR ? mc - r0 : MR;
                            micro_kernel(kc, Ap + r0 * KC, Bp + p * NR * KC, acc);
                            for (int64_t r = 0; r < h; r++) {
                                float *c = C + (i0 + r0 + r) * ldc + jb;
                                for (int64_t q = 0; q < w; q++) c[q] += alpha * acc[r * NR + q];
                            }
                        }
                    }
                }
            }
        }
        free(Ap);
    }
    free(Bp);
}

void tk_cpu_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
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
