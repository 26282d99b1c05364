/* tk_matmul_set_precision (backend.h): with bf16 on, the CPU backend's many-row products of
 * tk_matmul_ex (f32 W: one sgemm; f16 and Q4_1 W: the whole-weight and the panel strategies),
 * tk_matmul_dx (f32 W and the column stripes of a quantized W) and tk_matmul_dw equal a double
 * reference on bf16-rounded inputs within 1e-5 of S = sum |a b| per element (fp32 sums), while
 * they differ from the fp32 product by more than 1e-6 of S somewhere (the inputs really were
 * rounded); switched back to fp32, every product is bit-identical to the one before bf16 was on.
 * Without AVX512-BF16: set_precision(true) fails with TK_ERR_UNSUPPORTED naming the reason (SKIP). */
#include "test.h"
#include "core/core.h"
#include "core/quant.h"
#include "random_weight.h"
#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/sgemm.h"

static tk_rng rng;

static float *randv(int64_t n) {
    float *v = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) v[i] = tk_rng_normal(&rng);
    return v;
}
static float bf(float v) { return tk_bf16_to_f32(tk_f32_to_bf16(v)); }

/* worst |C - ref| / S for C[M x N] = A[M x K] · B, B[k][n] = b[n * sn + k * sk], inputs rounded to bf16 */
static double err_bf16(const float *C, const float *A, const float *b, int64_t M, int64_t N, int64_t K, int64_t sn, int64_t sk,
                       const float *C0) {
    double worst = 0;
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = C0 ? C0[i * N + j] : 0, sa = C0 ? fabs(C0[i * N + j]) : 0;
            for (int64_t k = 0; k < K; k++) {
                double p = (double)bf(A[i * K + k]) * bf(b[j * sn + k * sk]);
                s += p, sa += fabs(p);
            }
            double e = fabs(C[i * N + j] - s) / (sa + 1e-30);
            if (e > worst) worst = e;
        }
    return worst;
}
static double diff_rel(const float *a, const float *b, int64_t n) {
    double w = 0, m = 0;
    for (int64_t i = 0; i < n; i++) w = fmax(w, fabs(a[i] - b[i])), m = fmax(m, fabs(a[i]));
    return w / (m + 1e-30);
}

/* forward and dx through W (dtype t, [N x K]) with T rows; `path` forces the strategy (0 auto) */
static void check_w(tk_dtype t, int64_t T, int64_t N, int64_t K, int path, const char *what) {
    size_t nb, rb;
    void *w = random_weight(&rng, t, N, K, &nb);
    tk_dtype_nbytes(t, K, &rb);
    float *wf = malloc((size_t)(N * K) * sizeof(float));
    for (int64_t n = 0; n < N; n++) CHECK_OK(tk_cpu_dequant_row(t, (const uint8_t *)w + n * rb, wf + n * K, K));
    tk_tensor_ref ref = {.name = "w", .dtype = t, .n_dims = 2, .ne = {K, N, 1, 1}, .data = w, .nbytes = nb};
    float *x = randv(T * K), *dy = randv(T * N);
    float *y32 = calloc((size_t)(T * N), sizeof(float)), *y16 = calloc((size_t)(T * N), sizeof(float)), *yb = calloc((size_t)(T * N), sizeof(float));
    float *d32 = calloc((size_t)(T * K), sizeof(float)), *d16 = calloc((size_t)(T * K), sizeof(float)), *db = calloc((size_t)(T * K), sizeof(float));
    tk_cpu_matmul_force_path(path);
    CHECK_OK(tk_matmul_ex(y32, x, &ref, T, false, TK_MATMUL_EXACT));
    CHECK_OK(tk_matmul_dx(d32, dy, &ref, T, false));
    CHECK_OK(tk_matmul_set_precision(true));
    CHECK_OK(tk_matmul_ex(y16, x, &ref, T, false, TK_MATMUL_EXACT));
    CHECK_OK(tk_matmul_dx(d16, dy, &ref, T, false));
    CHECK_OK(tk_matmul_set_precision(false));
    CHECK_OK(tk_matmul_ex(yb, x, &ref, T, false, TK_MATMUL_EXACT));
    CHECK_OK(tk_matmul_dx(db, dy, &ref, T, false));
    tk_cpu_matmul_force_path(0);
    double ey = err_bf16(y16, x, wf, T, N, K, K, 1, NULL), ed = err_bf16(d16, dy, wf, T, K, N, 1, K, NULL);
    CHECK(ey <= 1e-5, "%s forward bf16 vs bf16-rounded reference: %g", what, ey);
    CHECK(ed <= 1e-5, "%s dx bf16 vs bf16-rounded reference: %g", what, ed);
    CHECK(diff_rel(y32, y16, T * N) > 1e-6 && diff_rel(d32, d16, T * K) > 1e-6, "%s: bf16 products equal the fp32 ones", what);
    CHECK(!memcmp(y32, yb, (size_t)(T * N) * sizeof(float)) && !memcmp(d32, db, (size_t)(T * K) * sizeof(float)),
          "%s: fp32 again is not bit-identical", what);
    printf("%-28s forward %.2g, dx %.2g of S from the bf16 reference\n", what, ey, ed);
    free(w), free(wf), free(x), free(dy), free(y32), free(y16), free(yb), free(d32), free(d16), free(db);
}

int main(void) {
    tk_rng_seed(&rng, 1234);
    if (!tk_sgemm_bf16_available()) {
        tk_status st = tk_matmul_set_precision(true);
        CHECK(st == TK_ERR_UNSUPPORTED && strstr(tk_last_error(), "bf16"), "set_precision(bf16) without AVX512-BF16: %d %s", st, tk_last_error());
        printf("SKIP: bf16 products (%s)\n", tk_last_error());
        return tk_test_done("test_matmul_precision");
    }
    check_w(TK_F32, 37, 70, 96, 0, "f32 W (one sgemm)");
    check_w(TK_F16, 37, 70, 96, 4, "f16 W (whole, dequantized)");
    check_w(TK_Q4_1, 37, 70, 96, 1, "Q4_1 W (panels)");
    check_w(TK_Q4_1, 19, 600, 128, 1, "Q4_1 W (many panels)");
    /* dW = dy^T x accumulates into dw */
    int64_t T = 29, N = 45, K = 67;
    float *dy = randv(T * N), *x = randv(T * K), *dw0 = randv(N * K), *dw = malloc((size_t)(N * K) * sizeof(float));
    float *dyt = malloc((size_t)(N * T) * sizeof(float));
    for (int64_t t = 0; t < T; t++)
        for (int64_t n = 0; n < N; n++) dyt[n * T + t] = dy[t * N + n];
    memcpy(dw, dw0, (size_t)(N * K) * sizeof(float));
    CHECK_OK(tk_matmul_set_precision(true));
    tk_matmul_dw(dw, dy, x, T, N, K);
    CHECK_OK(tk_matmul_set_precision(false));
    double e = err_bf16(dw, dyt, x, N, K, T, 1, K, dw0);
    CHECK(e <= 1e-5, "dw bf16 vs bf16-rounded reference: %g", e);
    printf("%-28s %.2g of S from the bf16 reference\n", "dw", e);
    free(dy), free(x), free(dw0), free(dw), free(dyt);
    return tk_test_done("test_matmul_precision");
}
