/* The run-time dispatched GEMM variants (src/backend/cpu/sgemm.h): every variant this CPU runs
 * against a double-precision reference on odd shapes (M, N, K not multiples of any tile or block),
 * both transposes, leading dimensions wider than the matrix, alpha != 1, beta 0 / 1 / other;
 * variants the CPU cannot run are reported as SKIP with the reason.
 * Tolerances, per element, relative to S = sum_k |alpha a_ik b_kj| (the scale of the rounding):
 *   fp32 variants: 1e-5 (K <= 700: K * 2^-24 is 4e-5 in the worst case; summation in blocks
 *                  keeps it well under);
 *   avx512bf16:    1e-2 (each input rounded to bf16, relative error 2^-9 each, so a product is
 *                  off by up to ~2^-8 = 3.9e-3 of |a b|; fp32 accumulation adds little).
 * Threaded and single-threaded (inside a parallel region) results are bit-identical.
 * Also: tk_sgemm_bf16's error really is of bf16 size (larger than fp32's: the inputs are rounded,
 * checked exactly against a reference on bf16-rounded inputs), and the active choice is runnable. */
#include "test.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/sgemm.h"
#ifdef _OPENMP
#include <omp.h>
#endif

static uint64_t rng = 88172645463325252ull;
static float frand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

/* max over elements of |C - ref| / (S + tiny), ref and S in double; bf16in rounds A, B first. */
static double check_one(const tk_sgemm_kernel *k, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, float beta,
                        bool bf16in) {
    int64_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 7;
    int64_t ar = ta ? K : M, br = tb ? N : K;
    float *A = malloc(sizeof(float) * (size_t)(ar * lda)), *B = malloc(sizeof(float) * (size_t)(br * ldb));
    float *C = malloc(sizeof(float) * (size_t)(M * ldc)), *C0 = malloc(sizeof(float) * (size_t)(M * ldc));
    for (int64_t i = 0; i < ar * lda; i++) A[i] = frand();
    for (int64_t i = 0; i < br * ldb; i++) B[i] = frand();
    for (int64_t i = 0; i < M * ldc; i++) C[i] = C0[i] = frand();
    if (k) tk_sgemm_with(k, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else CHECK_OK(tk_sgemm_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc));
    double worst = 0;
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0, sa = 0;
            for (int64_t p = 0; p < K; p++) {
                float a = ta ? A[p * lda + i] : A[i * lda + p], b = tb ? B[j * ldb + p] : B[p * ldb + j];
                if (bf16in) a = tk_bf16_to_f32(tk_f32_to_bf16(a)), b = tk_bf16_to_f32(tk_f32_to_bf16(b));
                s += (double)a * b, sa += fabs((double)a * b);
            }
            double ref = alpha * s + (beta == 0.0f ? 0.0 : (double)beta * C0[i * ldc + j]);
            double scale = fabs(alpha) * sa + fabs((double)beta * C0[i * ldc + j]) + 1e-30;
            double e = fabs(C[i * ldc + j] - ref) / scale;
            if (e > worst) worst = e;
        }
    /* the padding columns of C stay untouched */
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = N; j < ldc && i * ldc + j < M * ldc; j++) CHECK(C[i * ldc + j] == C0[i * ldc + j], "C[%lld][%lld] written", (long long)i, (long long)j);
    free(A), free(B), free(C), free(C0);
    return worst;
}

/* The same product threaded (the driver's own OpenMP threads) and single-threaded (called inside a
 * parallel region, as attention's per-head products are) is bit-identical: each C tile is summed by
 * one thread in the same order. */
static void check_threads(const tk_sgemm_kernel *k) {
    const int64_t M = 131, N = 75, K = 700;
    float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N), *C1 = calloc((size_t)(M * N), sizeof(float));
    float *C2 = calloc((size_t)(2 * M * N), sizeof(float));
    for (int64_t i = 0; i < M * K; i++) A[i] = frand();
    for (int64_t i = 0; i < K * N; i++) B[i] = frand();
    tk_sgemm_with(k, false, true, M, N, K, 1.0f, A, K, B, K, 0.0f, C1, N);
    #pragma omp parallel num_threads(2)
    {
#ifdef _OPENMP
        int t = omp_get_thread_num();
#else
        int t = 0;
#endif
        tk_sgemm_with(k, false, true, M, N, K, 1.0f, A, K, B, K, 0.0f, C2 + t * M * N, N);
    }
    CHECK(memcmp(C1, C2, sizeof(float) * M * N) == 0, "%s: threaded and in-region results differ", k->name);
    free(A), free(B), free(C1), free(C2);
}

int main(void) {
    int n;
    const tk_sgemm_kernel *ks = tk_sgemm_kernels(&n);
    /* odd shapes: below one tile, one tile plus one, several row/K blocks, N past one NC block */
    const int64_t shapes[][3] = {{1, 1, 1}, {5, 7, 3}, {13, 33, 17}, {25, 65, 385}, {97, 31, 257}, {37, 2100, 9}, {131, 47, 700}};
    const int nshapes = (int)(sizeof shapes / sizeof shapes[0]);
    const float betas[] = {0.0f, 1.0f, -0.5f};
    int ran = 0;
    for (int v = 0; v < n; v++) {
        const char *why = tk_sgemm_kernel_unsupported(&ks[v]);
        if (why) { printf("SKIP %s: %s\n", ks[v].name, why); continue; }
        double tol = ks[v].bf16 ? 1e-2 : 1e-5, worst = 0;
        for (int s = 0; s < nshapes; s++)
            for (int t = 0; t < 4; t++) {
                float beta = betas[(s + t) % 3], alpha = (t & 1) ? 1.0f : -0.75f;
                double e = check_one(&ks[v], t & 1, t & 2, shapes[s][0], shapes[s][1], shapes[s][2], alpha, beta, false);
                CHECK(e <= tol, "%s M=%lld N=%lld K=%lld ta=%d tb=%d beta=%g: relative error %g > %g", ks[v].name,
                      (long long)shapes[s][0], (long long)shapes[s][1], (long long)shapes[s][2], t & 1, (t & 2) != 0, beta, e, tol);
                if (e > worst) worst = e;
            }
        check_threads(&ks[v]);
        printf("%-10s (%2dx%-2d tile): worst relative error %.2e (tolerance %.0e)\n", ks[v].name, ks[v].mr, ks[v].nr, worst, tol);
        ran++;
    }
    CHECK(ran >= 1, "no variant ran");
    /* tk_sgemm_bf16: exactly bf16-rounded inputs with fp32 accumulation (1e-5 against the rounded-input
     * reference), and measurably coarser than fp32 against the unrounded one */
    if (tk_sgemm_bf16_available()) {
        double e_round = check_one(NULL, false, true, 29, 45, 300, 1.0f, 0.0f, true);
        double e_plain = check_one(NULL, false, true, 29, 45, 300, 1.0f, 0.0f, false);
        CHECK(e_round <= 1e-5, "tk_sgemm_bf16 vs bf16-rounded inputs: %g", e_round);
        CHECK(e_plain > 1e-5 && e_plain <= 1e-2, "tk_sgemm_bf16 vs fp32 inputs: %g (expected bf16-sized)", e_plain);
        printf("tk_sgemm_bf16: %.1e vs bf16-rounded inputs, %.1e vs fp32 inputs\n", e_round, e_plain);
    } else {
        CHECK(tk_sgemm_bf16(false, false, 1, 1, 1, 1.0f, (float[]){1}, 1, (float[]){1}, 1, 0.0f, (float[]){0}, 1) == TK_ERR_UNSUPPORTED,
              "tk_sgemm_bf16 without AVX512-BF16 must refuse");
        printf("SKIP tk_sgemm_bf16: %s\n", tk_last_error());
    }
    /* the active choice is runnable, never bf16 unless asked for, and tk_cpu_sgemm agrees with it */
    const tk_sgemm_kernel *act = tk_sgemm_kernel_active();
    const char *env = getenv("TK_KERNEL");
    printf("tk_sgemm runs: %s (TK_KERNEL=%s)\n", tk_sgemm_active_name(), env ? env : "");
    if (act) {
        CHECK(tk_sgemm_kernel_unsupported(act) == NULL, "active kernel %s not runnable", act->name);
        CHECK(!act->bf16 || (env && !strcmp(env, act->name)), "bf16 kernel active without TK_KERNEL");
    }
    float A[6] = {1, 2, 3, 4, 5, 6}, B[6] = {1, 0, -1, 2, 0.5f, 1}, C[4] = {0};
    tk_cpu_sgemm(false, false, 2, 2, 3, 1.0f, A, 3, B, 2, 0.0f, C, 2); /* [1 2 3;4 5 6] [1 0;-1 2;.5 1] */
    CHECK_NEAR(C[0], 0.5, 1e-6); CHECK_NEAR(C[1], 7.0, 1e-6); CHECK_NEAR(C[2], 2.0, 1e-6); CHECK_NEAR(C[3], 16.0, 1e-6);
    CHECK(tk_sgemm_kernel_find("avx2") != NULL && tk_sgemm_kernel_find("nope") == NULL, "find");
    return tk_test_done("test_kernels");
}
