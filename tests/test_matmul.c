/* Matmul backend: every strategy of tk_matmul / tk_matmul_dx / tk_matmul_dw and
 * tk_sgemm (BLAS and built-in) against a double-precision reference built from the
 * portable scalar dequantizer, for every weight dtype, on odd shapes. The fused
 * int8 decode kernels are also checked against their scalar reference directly, with
 * a tolerance derived from the activation quantization step (a rigorous bound). */
#include "test.h"
#include "core/core.h"
#include "core/quant.h"
#include "test_backends.h"
#include "random_weight.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/sgemm.h"

static tk_rng rng;

static float randn(void) { return tk_rng_normal(&rng); }

static float *dequant_all(tk_dtype t, const void *w, int64_t N, int64_t K) {
    size_t rb;
    tk_dtype_nbytes(t, K, &rb);
    float *f = malloc((size_t)(N * K) * sizeof(float));
    for (int64_t n = 0; n < N; n++) tk_dequant_row_fn_scalar(t)((const uint8_t *)w + n * rb, f + n * K, K);
    return f;
}

static float *randv(int64_t n) {
    float *v = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) v[i] = randn();
    return v;
}

/* y = x W^T through each forced path, against double reference; returns worst error/tolerance ratio. */
static void check_forward(tk_dtype t, int64_t T, int64_t N, int64_t K) {
    size_t nb;
    void *w = random_weight(&rng, t, N, K, &nb);
    float *wf = dequant_all(t, w, N, K), *x = randv(T * K), *y = malloc((size_t)(T * N) * sizeof(float));
    tk_tensor_ref ref = {.name = "w", .dtype = t, .n_dims = 2, .ne = {K, N, 1, 1}, .data = w, .nbytes = nb};
    /* activation quantization error bound for the fused path: |x - xq| <= d/2 per element */
    int64_t kb = K / 32;
    tk_q8x *xq = malloc((size_t)(T * kb) * sizeof(tk_q8x));
    for (int64_t i = 0; i < T; i++) tk_cpu_quantize_q8x(x + i * K, xq + i * kb, K);
    { /* the SIMD quantizer equals its scalar reference bit for bit (incl. an all-zero block) */
        tk_q8x *xr = malloc((size_t)(T * kb) * sizeof(tk_q8x));
        float *xz = malloc((size_t)K * sizeof(float));
        memcpy(xz, x, (size_t)K * sizeof(float));
        for (int k = 0; k < 32 && k < K; k++) xz[k] = 0.0f;
        for (int64_t i = 0; i < T; i++) tk_cpu_quantize_q8x_ref(x + i * K, xr + i * kb, K);
        bool same = memcmp(xq, xr, (size_t)(T * kb) * sizeof(tk_q8x)) == 0;
        tk_cpu_quantize_q8x(xz, xr, K);
        tk_q8x *xr2 = malloc((size_t)kb * sizeof(tk_q8x));
        tk_cpu_quantize_q8x_ref(xz, xr2, K);
        same = same && memcmp(xr, xr2, (size_t)kb * sizeof(tk_q8x)) == 0;
        CHECK(same, "quantize_q8x differs from its scalar reference (K=%lld)", (long long)K);
        free(xr); free(xr2); free(xz);
    }
    for (int pf = 0; pf <= 5; pf++) { /* paths auto, panels, rows; then auto and rows with TK_MATMUL_EXACT; whole W */
        int path = pf <= 2 ? pf : pf == 3 ? 0 : pf == 4 ? 2 : 4, flags = pf == 3 || pf == 4 ? TK_MATMUL_EXACT : 0;
        tk_cpu_matmul_force_path(path);
        for (int accumulate = 0; accumulate < 2; accumulate++) {
            for (int64_t i = 0; i < T * N; i++) y[i] = accumulate ? 0.5f : -7.0f;
            CHECK_OK(tk_matmul_ex(y, x, &ref, T, accumulate, flags));
            double worst = 0;
            bool fused = !flags && tk_cpu_has_qdot(t) && (path == 2 || (path == 0 && T < 8));
            for (int64_t i = 0; i < T; i++)
                for (int64_t n = 0; n < N; n++) {
                    double s = 0, sa = 0, qb = 0;
                    for (int64_t k = 0; k < K; k++) {
                        s += (double)wf[n * K + k] * x[i * K + k];
                        sa += fabs((double)wf[n * K + k] * x[i * K + k]);
                        qb += fabs((double)wf[n * K + k]) * 0.5 * xq[i * kb + k / 32].d;
                    }
                    double tol = 2e-6 * sa + 1e-6 + (fused ? qb * 1.001 : 0);
                    if (t == TK_BF16 || t == TK_F16) tol += 1e-6 * sa;
                    double got = y[i * N + n] - (accumulate ? 0.5 : 0.0);
                    double r = fabs(got - s) / tol;
                    if (r > worst) worst = r;
                }
            CHECK(worst <= 1.0, "matmul %s T=%lld N=%lld K=%lld path=%d flags=%d acc=%d: error %.3g x tolerance", tk_dtype_name(t),
                  (long long)T, (long long)N, (long long)K, path, flags, accumulate, worst);
        }
    }
    tk_cpu_matmul_force_path(0);
    /* every fused-kernel variant this CPU runs vs the scalar reference on the same quantized activations */
    if (tk_cpu_has_qdot(t)) {
        size_t rb;
        tk_dtype_nbytes(t, K, &rb);
        int nk;
        const tk_qdot_kernel *ks = tk_cpu_qdot_kernels(&nk);
        for (int v = 0; v < nk; v++) {
            if (tk_cpu_qdot_unsupported(&ks[v])) continue; /* reported once, in run_all */
            double worst = 0;
            for (int64_t n = 0; n < N; n++) {
                float a = ks[v].dot(t, (const uint8_t *)w + n * rb, xq, K), b = tk_cpu_qdot_ref(t, (const uint8_t *)w + n * rb, xq, K);
                double sa = 0;
                for (int64_t k = 0; k < K; k++) sa += fabs((double)wf[n * K + k] * x[k]);
                double r = fabs((double)a - b) / (1e-6 * sa + 1e-6);
                if (r > worst) worst = r;
            }
            CHECK(worst <= 1.0, "qdot %s (%s) vs scalar reference K=%lld: %.3g x tolerance", tk_dtype_name(t), ks[v].name,
                  (long long)K, worst);
        }
    }
    /* exact fused kernel vs dequantize + double dot */
    if (tk_cpu_has_fdot(t)) {
        size_t rb;
        tk_dtype_nbytes(t, K, &rb);
        float *xs = malloc((size_t)(K / 32) * sizeof(float)), *xp = malloc((size_t)K * sizeof(float));
        tk_cpu_fdot_prepare(t, x, xp, xs, K);
        double worst = 0;
        for (int64_t n = 0; n < N; n++) {
            double ref_d = 0, sa = 0;
            for (int64_t k = 0; k < K; k++) {
                ref_d += (double)wf[n * K + k] * x[k];
                sa += fabs((double)wf[n * K + k] * x[k]);
            }
            float a = tk_cpu_fdot(t, (const uint8_t *)w + n * rb, xp, xs, K);
            worst = fmax(worst, fabs(a - ref_d) / (1e-6 * sa + 1e-6));
        }
        CHECK(worst <= 1.0, "fdot %s vs dequantize+dot K=%lld: %.3g x tolerance", tk_dtype_name(t), (long long)K, worst);
        free(xs);
        free(xp);
    }
    free(xq);
    free(w); free(wf); free(x); free(y);
}

/* dx = dy W against the double reference, for every dtype. */
static void check_dx(tk_dtype t, int64_t T, int64_t N, int64_t K) {
    size_t nb;
    void *w = random_weight(&rng, t, N, K, &nb);
    float *wf = dequant_all(t, w, N, K), *dy = randv(T * N), *dx = malloc((size_t)(T * K) * sizeof(float));
    tk_tensor_ref ref = {.name = "w", .dtype = t, .n_dims = 2, .ne = {K, N, 1, 1}, .data = w, .nbytes = nb};
    for (int accumulate = 0; accumulate < 2; accumulate++) {
        for (int64_t i = 0; i < T * K; i++) dx[i] = accumulate ? 0.25f : 99.0f;
        CHECK_OK(tk_matmul_dx(dx, dy, &ref, T, accumulate));
        double worst = 0;
        for (int64_t i = 0; i < T; i++)
            for (int64_t k = 0; k < K; k++) {
                double s = 0, sa = 0;
                for (int64_t n = 0; n < N; n++) {
                    s += (double)dy[i * N + n] * wf[n * K + k];
                    sa += fabs((double)dy[i * N + n] * wf[n * K + k]);
                }
                double r = fabs(dx[i * K + k] - (accumulate ? 0.25 : 0.0) - s) / (2e-6 * sa + 1e-6);
                if (r > worst) worst = r;
            }
        CHECK(worst <= 1.0, "matmul_dx %s T=%lld N=%lld K=%lld acc=%d: %.3g x tolerance", tk_dtype_name(t), (long long)T,
              (long long)N, (long long)K, accumulate, worst);
    }
    free(w); free(wf); free(dy); free(dx);
}

typedef void (*sgemm_fn)(bool, bool, int64_t, int64_t, int64_t, float, const float *, int64_t, const float *, int64_t,
                         float, float *, int64_t);

static void check_sgemm(sgemm_fn f, const char *name, int64_t M, int64_t N, int64_t K) {
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            int64_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 2;
            float *A = randv((ta ? K : M) * lda), *B = randv((tb ? N : K) * ldb), *C = randv(M * ldc), *C0 = malloc((size_t)(M * ldc) * sizeof(float));
            memcpy(C0, C, (size_t)(M * ldc) * sizeof(float));
            f(ta, tb, M, N, K, 0.75f, A, lda, B, ldb, -0.5f, C, ldc);
            double worst = 0;
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++) {
                    double s = 0, sa = 0;
                    for (int64_t k = 0; k < K; k++) {
                        double p = (double)(ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]);
                        s += p;
                        sa += fabs(p);
                    }
                    double ref = 0.75 * s - 0.5 * C0[i * ldc + j];
                    double r = fabs(C[i * ldc + j] - ref) / (2e-6 * sa + 1e-5);
                    if (r > worst) worst = r;
                }
            for (int64_t i = 0; i < M; i++) /* padding columns untouched */
                for (int64_t j = N; j < ldc; j++) CHECK(C[i * ldc + j] == C0[i * ldc + j], "%s wrote past N", name);
            CHECK(worst <= 1.0, "%s ta=%d tb=%d: %.3g x tolerance", name, ta, tb, worst);
            /* beta = 0 must overwrite (even NaN) */
            for (int64_t i = 0; i < M * ldc; i++) C[i] = NAN;
            f(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc);
            CHECK(C[0] == C[0] && C[(M - 1) * ldc + N - 1] == C[(M - 1) * ldc + N - 1], "%s beta=0 left NaN", name);
            free(A); free(B); free(C); free(C0);
        }
}

/* tk_matmul_multi (one parallel region for several weights sharing x) equals separate
 * tk_matmul_ex calls bit for bit, for each few-row kernel kind and the fallback (T = 9);
 * the three weights have different row counts and, in the mixed case, dtypes. */
static void check_multi(tk_dtype t0, tk_dtype t1, int64_t T, int64_t K, int flags) {
    tk_dtype dts[3] = {t0, t1, t0};
    int64_t Ns[3] = {37, 13, 64};
    void *w[3];
    tk_tensor_ref ref[3];
    const tk_tensor_ref *wp[3];
    float *y[3], *y1[3], *x = randv(T * K);
    for (int i = 0; i < 3; i++) {
        size_t nb;
        w[i] = random_weight(&rng, dts[i], Ns[i], K, &nb);
        ref[i] = (tk_tensor_ref){.name = "w", .dtype = dts[i], .n_dims = 2, .ne = {K, Ns[i], 1, 1}, .data = w[i], .nbytes = nb};
        wp[i] = &ref[i];
        y[i] = malloc((size_t)(T * Ns[i]) * sizeof(float));
        y1[i] = malloc((size_t)(T * Ns[i]) * sizeof(float));
        CHECK_OK(tk_matmul_ex(y1[i], x, &ref[i], T, false, flags));
    }
    CHECK_OK(tk_matmul_multi(y, x, wp, 3, T, flags));
    for (int i = 0; i < 3; i++) {
        CHECK(memcmp(y[i], y1[i], (size_t)(T * Ns[i]) * sizeof(float)) == 0, "matmul_multi %s/%s T=%lld flags=%d: weight %d differs",
              tk_dtype_name(t0), tk_dtype_name(t1), (long long)T, flags, i);
        free(w[i]); free(y[i]); free(y1[i]);
    }
    free(x);
}

/* tk_cpu_qdot_rows of every variant this CPU runs, every int8-kernel dtype: out[t] equals the variant's one-row dot
 * bit for bit (memcmp) for each activation row (T across the group sizes and remainders, activation rows a stride
 * apart with a gap), and is within the one-row check's tolerance of the scalar reference. */
static void check_qdot_rows(tk_dtype t, int64_t K) {
    const int64_t N = 3, kb = K / 32, xs = kb + 1, Ts[] = {1, 2, 3, 4, 5, 6, 7, 8, 16, 17}, TMAX = 17;
    size_t nb, rb;
    void *w = random_weight(&rng, t, N, K, &nb);
    tk_dtype_nbytes(t, K, &rb);
    float *wf = dequant_all(t, w, N, K), *x = randv(TMAX * K), *out = malloc((size_t)TMAX * sizeof(float));
    tk_q8x *xq = calloc((size_t)(TMAX * xs), sizeof(tk_q8x));
    for (int64_t r = 0; r < TMAX; r++) tk_cpu_quantize_q8x(x + r * K, xq + r * xs, K);
    int nk;
    const tk_qdot_kernel *ks = tk_cpu_qdot_kernels(&nk);
    for (int v = 0; v < nk; v++) {
        if (tk_cpu_qdot_unsupported(&ks[v])) continue; /* reported once, in run_all */
        int64_t differ = 0;
        double worst = 0;
        for (size_t ti = 0; ti < sizeof Ts / sizeof Ts[0]; ti++)
            for (int64_t n = 0; n < N; n++) {
                const uint8_t *wr = (const uint8_t *)w + n * rb;
                for (int64_t r = 0; r < TMAX; r++) out[r] = -1234.5f; /* rows past T must stay untouched */
                ks[v].dot_rows(t, wr, xq, xs, K, Ts[ti], out);
                for (int64_t r = 0; r < Ts[ti]; r++) {
                    float one = ks[v].dot(t, wr, xq + r * xs, K);
                    differ += memcmp(&one, &out[r], sizeof one) != 0;
                    double sa = 0;
                    for (int64_t k = 0; k < K; k++) sa += fabs((double)wf[n * K + k] * x[r * K + k]);
                    worst = fmax(worst, fabs((double)out[r] - tk_cpu_qdot_ref(t, wr, xq + r * xs, K)) / (1e-6 * sa + 1e-6));
                }
                for (int64_t r = Ts[ti]; r < TMAX; r++) differ += out[r] != -1234.5f;
            }
        CHECK(differ == 0, "qdot_rows %s (%s) K=%lld: %lld values differ from the one-row dot", tk_dtype_name(t), ks[v].name,
              (long long)K, (long long)differ);
        CHECK(worst <= 1.0, "qdot_rows %s (%s) vs scalar reference K=%lld: %.3g x tolerance", tk_dtype_name(t), ks[v].name,
              (long long)K, worst);
    }
    free(w); free(wf); free(x); free(out); free(xq);
}

/* Every check, on the active backend. */
/* TK_MATMUL_BF16 on the CPU backend: many-row products (whole-weight and panel paths) of a quantized weight within
 * the bf16 bound of the double product and not equal to the fp32 result where the CPU has AVX512-BF16; with
 * TK_MATMUL_EXACT, for other dtypes (f32, f16) or where the CPU lacks it, bit-identical to the fp32 product.
 * Few-row products ignore it. */
static void check_bf16_flag(tk_dtype t, int64_t T, int64_t N, int64_t K) {
    size_t nb;
    void *w = random_weight(&rng, t, N, K, &nb);
    float *wf = dequant_all(t, w, N, K), *x = randv(T * K), *y = malloc((size_t)(T * N) * sizeof(float)),
          *ye = malloc((size_t)(T * N) * sizeof(float));
    tk_tensor_ref ref = {.name = "w", .dtype = t, .n_dims = 2, .ne = {K, N, 1, 1}, .data = w, .nbytes = nb};
    bool avail = tk_sgemm_bf16_available() && tk_cpu_has_qdot(t);
    for (int path = 0; path <= 1; path++) { /* auto (whole W for T >= 32), panels */
        tk_cpu_matmul_force_path(path);
        CHECK_OK(tk_cpu_matmul(ye, x, &ref, T, false, TK_MATMUL_EXACT));
        CHECK_OK(tk_cpu_matmul(y, x, &ref, T, false, TK_MATMUL_EXACT | TK_MATMUL_BF16));
        CHECK(!memcmp(y, ye, (size_t)(T * N) * sizeof(float)), "TK_MATMUL_EXACT | TK_MATMUL_BF16 must be the fp32 product");
        CHECK_OK(tk_cpu_matmul(y, x, &ref, T, false, TK_MATMUL_BF16));
        double worst = 0;
        for (int64_t i = 0; i < T; i++)
            for (int64_t n = 0; n < N; n++) {
                double s = 0, sa = 0;
                for (int64_t k = 0; k < K; k++) {
                    s += (double)wf[n * K + k] * x[i * K + k];
                    sa += fabs((double)wf[n * K + k] * x[i * K + k]);
                }
                worst = fmax(worst, fabs(y[i * N + n] - s) / (sa * 0x1p-7 + 1e-6)); /* two bf16 roundings: 2 * 2^-8 */
            }
        bool same = !memcmp(y, ye, (size_t)(T * N) * sizeof(float));
        CHECK(worst <= 1.0, "TK_MATMUL_BF16 %s T=%lld path=%d: error %.3g x the bf16 bound", tk_dtype_name(t), (long long)T, path, worst);
        CHECK(avail ? !same : same, "TK_MATMUL_BF16 %s path=%d: %s", tk_dtype_name(t), path,
              avail ? "equals the fp32 product (bf16 not used)" : "differs from fp32 on a CPU without AVX512-BF16");
    }
    tk_cpu_matmul_force_path(0);
    /* few rows: the int8 / fused dots or sgemm (an f32 W from 2 rows), never bf16 */
    {
    CHECK_OK(tk_cpu_matmul(ye, x, &ref, 3, false, 0));
    CHECK_OK(tk_cpu_matmul(y, x, &ref, 3, false, TK_MATMUL_BF16));
    CHECK(!memcmp(y, ye, (size_t)(3 * N) * sizeof(float)), "TK_MATMUL_BF16 changed a few-row product");
    }
    free(w); free(wf); free(x); free(y); free(ye);
}

static void run_all(void) {
    tk_rng_seed(&rng, 1234);
    for (int flags = 0; flags <= TK_MATMUL_EXACT; flags++)
        for (int64_t T = 1; T <= 9; T += 2) {
            check_multi(TK_Q4_1, TK_Q4_1, T, 96, flags);
            check_multi(TK_Q4_0, TK_Q8_0, T, 64, flags);
            check_multi(TK_F16, TK_Q4_1, T, 96, flags);
            check_multi(TK_Q5_0, TK_Q4_K, T, 256, flags); /* no exact fused kernel: the fallback */
        }
    for (int i = 0; i < N_WEIGHT_TYPES; i++) { /* K: one block, odd block counts, the decode shapes (576, 1536) */
        tk_dtype t = k_weight_types[i];
        if (!tk_cpu_has_qdot(t)) continue;
        static const int64_t k32[] = {32, 96, 160, 576, 1536}, k256[] = {256, 768, 1536, 2560};
        bool sb = tk_dtype_block_elems(t) == 256;
        for (int j = 0; j < (sb ? 4 : 5); j++) check_qdot_rows(t, sb ? k256[j] : k32[j]);
    }
    check_sgemm(tk_sgemm, "tk_sgemm", 37, 29, 300);
    check_sgemm(tk_sgemm_builtin, "tk_sgemm_builtin", 37, 29, 300);
    check_sgemm(tk_sgemm_builtin, "tk_sgemm_builtin", 103, 2100, 20); /* several row blocks, N past one column block */
    for (int i = 0; i < N_WEIGHT_TYPES; i++) {
        tk_dtype t = k_weight_types[i];
        int64_t bk = tk_dtype_block_elems(t) == 256 ? 512 : tk_dtype_block_elems(t) == 64 ? 192 : 96;
        check_forward(t, 1, 37, bk);
        check_forward(t, 3, 19, bk);
        check_forward(t, 13, 67, bk);
        check_forward(t, 9, 5, bk * 3);
        check_dx(t, 1, 19, bk);
        check_dx(t, 7, 67, bk * 2);
    }
    /* dW += dy^T x */
    {
        int64_t T = 11, N = 13, K = 17;
        float *dy = randv(T * N), *x = randv(T * K), *dw = randv(N * K), *dw0 = malloc((size_t)(N * K) * sizeof(float));
        memcpy(dw0, dw, (size_t)(N * K) * sizeof(float));
        tk_matmul_dw(dw, dy, x, T, N, K);
        double worst = 0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t k = 0; k < K; k++) {
                double s = dw0[n * K + k];
                for (int64_t t = 0; t < T; t++) s += (double)dy[t * N + n] * x[t * K + k];
                worst = fmax(worst, fabs(s - dw[n * K + k]));
            }
        CHECK(worst < 1e-4, "matmul_dw max error %g", worst);
        free(dy); free(x); free(dw); free(dw0);
    }
    /* errors: unsupported dtype, truncated data, K not a whole number of blocks */
    {
        float x[64] = {0}, y[64];
        uint8_t data[64] = {0};
        tk_tensor_ref bad = {.name = "w", .dtype = TK_I32, .n_dims = 2, .ne = {4, 2, 1, 1}, .data = data, .nbytes = 32};
        CHECK(tk_matmul(y, x, &bad, 1, false) == TK_ERR_UNSUPPORTED, "i32 weight must be unsupported");
        tk_tensor_ref shortw = {.name = "w", .dtype = TK_Q4_0, .n_dims = 2, .ne = {32, 4, 1, 1}, .data = data, .nbytes = 36};
        CHECK(tk_matmul(y, x, &shortw, 1, false) == TK_ERR_FORMAT, "truncated weight must fail");
        CHECK(strstr(tk_last_error(), "w") != NULL, "message names the tensor: %s", tk_last_error());
        tk_tensor_ref partial = {.name = "w", .dtype = TK_Q4_0, .n_dims = 2, .ne = {16, 1, 1, 1}, .data = data, .nbytes = 18};
        CHECK(tk_matmul(y, x, &partial, 1, false) != TK_OK, "partial block must fail");
    }
    /* vectorized exp vs libm (double) over the float range, specials, and the sum variant */
    {
        int64_t n = 100003;
        float *x = malloc((size_t)n * 4), *y = malloc((size_t)n * 4);
        for (int64_t i = 0; i < n; i++) x[i] = -95.0f + 190.0f * (float)i / (float)n;
        x[0] = -INFINITY; x[1] = INFINITY; x[2] = 0.0f; x[3] = -87.33f; x[4] = 88.7f; x[5] = -87.34f;
        tk_cpu_vexp(y, x, n);
        double worst = 0;
        for (int64_t i = 2; i < n; i++) {
            double ref = exp((double)x[i]);
            if (ref < 1.1754944e-38) { CHECK(y[i] == 0.0f || fabs(y[i] - ref) < 1e-44, "exp(%g) tiny = %g", x[i], y[i]); continue; }
            if (ref > 3.40282346e38) { CHECK(isinf(y[i]), "exp(%g) = %g, want inf", x[i], y[i]); continue; }
            worst = fmax(worst, fabs(y[i] - ref) / ref);
        }
        CHECK(y[0] == 0.0f && isinf(y[1]) && y[2] == 1.0f, "exp specials: %g %g %g", y[0], y[1], y[2]);
        CHECK(worst < 5e-7, "vexp max relative error %g", worst);
        float nanv = NAN, ny;
        tk_cpu_vexp(&ny, &nanv, 1);
        CHECK(ny != ny, "exp(NaN) must be NaN");
        for (int64_t i = 0; i < 1000; i++) x[i] = (float)i * 0.01f - 3;
        double ref = 0;
        for (int64_t i = 0; i < 1000; i++) ref += exp((double)x[i] - 1.5);
        float s = tk_cpu_vexp_sum(y, x, 1.5f, 1000);
        CHECK(fabs(s - ref) < 1e-5 * ref, "vexp_sum %g vs %g", s, ref);
        CHECK(fabs(y[999] - exp(x[999] - 1.5)) < 1e-6 * exp(x[999] - 1.5), "vexp_sum stores exp");
        free(x); free(y);
    }
    { /* which int8 decode kernels ran against the scalar reference above, which could not and why */
        int nk;
        const tk_qdot_kernel *ks = tk_cpu_qdot_kernels(&nk);
        for (int v = 0; v < nk; v++) {
            const char *why = tk_cpu_qdot_unsupported(&ks[v]);
            if (why) printf("qdot %s: SKIP (%s), its multi-row form too\n", ks[v].name, why);
            else printf("qdot %s: checked, its multi-row form bit for bit\n", ks[v].name);
        }
        printf("qdot active: %s\n", tk_cpu_qdot_isa());
    }
}

int main(void) {
    tk_test_each_backend(run_all); /* the op tests run against every backend this build has */
    tk_rng_seed(&rng, 99);
    printf("TK_MATMUL_BF16: %s\n", tk_sgemm_bf16_available() ? "bf16 products checked" : "SKIP bf16 (CPU lacks avx512f+avx512bf16): checked it changes nothing");
    check_bf16_flag(TK_Q4_1, 40, 67, 96);
    check_bf16_flag(TK_Q4_K, 33, 21, 512);
    check_bf16_flag(TK_F32, 12, 19, 64);
    check_bf16_flag(TK_F16, 40, 19, 64);
    return tk_test_done("test_matmul");
}
