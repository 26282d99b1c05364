/* tk_sgemm on the CPU: OpenBLAS's cblas_sgemm (TK_HAVE_BLAS) or one of the built-in kernels of
 * src/backend/cpu/sgemm.h, chosen once at the first call from CPUID (never from OPENBLAS_CORETYPE):
 * TK_KERNEL=scalar|avx2|avx512|avx512bf16|blas forces one (tests, benches; a variant the CPU cannot
 * run is ignored), otherwise the rule in pick_default(). OpenBLAS's OpenMP build shares takumi's
 * pool and runs single-threaded inside a parallel region; the built-in driver does the same.
 * The driver is GotoBLAS-style blocking: B packed into KC x NR column panels (shared by the
 * threads), A packed per thread into MR x KC row panels, the variant's MR x NR register tile. */
#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/sgemm.h"
#include "core/core.h"
#include <pthread.h>
#ifdef TK_HAVE_BLAS
#include <cblas.h>
#endif
#ifdef TK_HAVE_OPENMP
#include <omp.h>
#define TK_IN_PARALLEL() omp_in_parallel()
#define TK_MAX_THREADS() omp_get_max_threads()
#define TK_THREAD() omp_get_thread_num()
#else
#define TK_IN_PARALLEL() 0
#define TK_MAX_THREADS() 1
#define TK_THREAD() 0
#endif

#define NC 2048 /* columns of B packed at once */

#define AT(i, k) (trans_a ? A[(int64_t)(k) * lda + (i)] : A[(int64_t)(i) * lda + (k)])
#define BT(k, j) (trans_b ? B[(int64_t)(j) * ldb + (k)] : B[(int64_t)(k) * ldb + (j)])

static void scale_c(int64_t M, int64_t N, float beta, float *C, int64_t ldc) {
    for (int64_t i = 0; i < M; i++) {
        float *c = C + i * ldc;
        if (beta == 0.0f) memset(c, 0, (size_t)N * sizeof(float));
        else if (beta != 1.0f) for (int64_t j = 0; j < N; j++) c[j] *= beta;
    }
}

void tk_sgemm_with(const tk_sgemm_kernel *v, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                   const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    scale_c(M, N, beta, C, ldc);
    if (K <= 0 || alpha == 0.0f) return;
    const int MR = v->mr, NR = v->nr, MC = v->mc;
    const int64_t KC = v->kc, esz = v->bf16 ? 2 : 4;
    int64_t ncap = N < NC ? N : NC, npan = (ncap + NR - 1) / NR;
    bool par = !TK_IN_PARALLEL() && (double)M * N * K > 262144.0;
    int nth = par ? TK_MAX_THREADS() : 1;
    char *Bp = malloc((size_t)(npan * NR * KC * esz));
    char *Ap = malloc((size_t)nth * (size_t)(MC * KC * esz));
    if (!Bp || !Ap) { /* out of memory: the unblocked loop rather than a failure */
        free(Bp), free(Ap);
        for (int64_t i = 0; i < M; i++)
            for (int64_t k = 0; k < K; k++) {
                float a = alpha * AT(i, k);
                for (int64_t j = 0; j < N; j++) C[i * ldc + j] += a * BT(k, j);
            }
        return;
    }
    (void)par;
    #pragma omp parallel if (par) num_threads(nth)
    {
        char *ap = Ap + (size_t)TK_THREAD() * (size_t)(MC * KC * esz);
        for (int64_t j0 = 0; j0 < N; j0 += NC) {
            int64_t nc = N - j0 < NC ? N - j0 : NC, np = (nc + NR - 1) / NR;
            for (int64_t k0 = 0; k0 < K; k0 += KC) {
                int64_t kc = K - k0 < KC ? K - k0 : KC, kcp = v->bf16 ? (kc + 1) & ~(int64_t)1 : kc;
                #pragma omp for schedule(static)
                for (int64_t p = 0; p < np; p++) {
                    int64_t w = nc - p * NR < NR ? nc - p * NR : NR;
                    v->pack_b(Bp + p * NR * KC * esz, B, trans_b, ldb, k0, kc, j0 + p * NR, w);
                }
                #pragma omp for schedule(dynamic, 1)
                for (int64_t i0 = 0; i0 < M; i0 += MC) {
                    int64_t mc = M - i0 < MC ? M - i0 : MC;
                    for (int64_t r0 = 0; r0 < mc; r0 += MR) {
                        int64_t h = mc - r0 < MR ? mc - r0 : MR;
                        v->pack_a(ap + r0 * KC * esz, A, trans_a, lda, i0 + r0, k0, kc, h);
                    }
                    for (int64_t p = 0; p < np; p++) {
                        int64_t jb = j0 + p * NR, w = nc - p * NR < NR ? nc - p * NR : NR;
                        for (int64_t r0 = 0; r0 < mc; r0 += MR) {
                            int64_t h = mc - r0 < MR ? mc - r0 : MR;
                            v->micro(kcp, ap + r0 * KC * esz, Bp + p * NR * KC * esz, C + (i0 + r0) * ldc + jb, ldc, alpha, (int)h,
                                     (int)w);
                        }
                    }
                }
            }
        }
    }
    free(Ap);
    free(Bp);
}

/* What tk_cpu_sgemm runs: NULL = OpenBLAS. */
static const tk_sgemm_kernel *active;
static pthread_once_t active_once = PTHREAD_ONCE_INIT;

/* The best fp32 variant the CPU runs (bf16 is never picked for fp32 work). */
static const tk_sgemm_kernel *best_fp32(void) {
    int n;
    const tk_sgemm_kernel *ks = tk_sgemm_kernels(&n), *best = &ks[0];
    for (int i = 0; i < n; i++)
        if (!ks[i].bf16 && !tk_sgemm_kernel_unsupported(&ks[i])) best = &ks[i];
    return best;
}

static const tk_sgemm_kernel *pick_default(void) {
#ifdef TK_HAVE_BLAS
    return NULL;
#else
    return best_fp32();
#endif
}

static void choose(void) {
    const char *e = getenv("TK_KERNEL");
    active = pick_default();
    if (!e || !*e) return;
#ifdef TK_HAVE_BLAS
    if (!strcmp(e, "blas")) { active = NULL; return; }
#endif
    const tk_sgemm_kernel *k = tk_sgemm_kernel_find(e);
    if (k && !tk_sgemm_kernel_unsupported(k)) active = k;
}

const tk_sgemm_kernel *tk_sgemm_kernel_active(void) {
    pthread_once(&active_once, choose);
    return active;
}

const char *tk_sgemm_active_name(void) {
    const tk_sgemm_kernel *k = tk_sgemm_kernel_active();
    return k ? k->name : "openblas";
}

void tk_cpu_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                  const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    const tk_sgemm_kernel *k = tk_sgemm_kernel_active();
#ifdef TK_HAVE_BLAS
    if (!k && K > 0) {
        cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                    (blasint)M, (blasint)N, (blasint)K, alpha, A, (blasint)lda, B, (blasint)ldb, beta, C, (blasint)ldc);
        return;
    }
#endif
    tk_sgemm_with(k ? k : best_fp32(), trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* The best built-in fp32 variant, exposed for tests and benches even in BLAS builds. */
void tk_sgemm_builtin(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                      const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    tk_sgemm_with(best_fp32(), trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

bool tk_sgemm_bf16_available(void) {
    return tk_sgemm_kernel_unsupported(tk_sgemm_kernel_find("avx512bf16")) == NULL;
}

tk_status tk_sgemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                        int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    const tk_sgemm_kernel *k = tk_sgemm_kernel_find("avx512bf16");
    const char *why = tk_sgemm_kernel_unsupported(k);
    if (why) return tk_fail(TK_ERR_UNSUPPORTED, "bf16 GEMM: %s", why);
    tk_sgemm_with(k, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return TK_OK;
}
