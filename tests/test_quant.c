/* Dequantization and quantization against the `gguf` Python package.
 *
 * tests/fixtures/gguf/types.gguf (tools/make_gguf_fixtures.py) holds, per dtype, the
 * encoded data T.q, gguf's numpy dequantization T.deq, and, where gguf can quantize T,
 * the f32 input T.src. Checked here:
 *   - tk_dequantize (SIMD dispatch) and the scalar reference equal T.deq bit for bit;
 *   - tk_quantize(T.src) equals T.q byte for byte (ggml's reference rounding);
 *   - every SIMD dequantizer equals the scalar one on random blocks, odd lengths and
 *     unaligned sources;
 *   - Q8_K quantization (no gguf reference) meets its error bound and block sums;
 *   - argument errors; and prints dequantization speed (informational). */
#include "test.h"
#include "core/core.h"
#include "core/quant.h"
#include <cJSON.h>
#include <time.h>

#define FIX "tests/fixtures/gguf/"

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) { free(s); s = NULL; }
    if (s) s[n] = 0;
    fclose(f);
    return s;
}

/* Bitwise equal, or both NaN. */
static int same(float a, float b) {
    uint32_t x, y;
    memcpy(&x, &a, 4);
    memcpy(&y, &b, 4);
    return x == y || (isnan(a) && isnan(b));
}

/* Compares n floats; returns the number that differ and the max |a-b| over finite pairs. */
static int64_t compare(const float *a, const float *b, int64_t n, double *max_err) {
    int64_t bad = 0;
    *max_err = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!same(a[i], b[i])) {
            bad++;
            if (isfinite(a[i]) && isfinite(b[i]) && fabs((double)a[i] - b[i]) > *max_err) *max_err = fabs((double)a[i] - b[i]);
            else if (!(isfinite(a[i]) && isfinite(b[i]))) *max_err = INFINITY;
        }
    }
    return bad;
}

static void check_fixture(void) {
    tk_gguf *g = NULL;
    CHECK_OK(tk_gguf_open(FIX "types.gguf", &g));
    char *js = slurp(FIX "types.json");
    CHECK(js != NULL, "cannot read " FIX "types.json");
    cJSON *root = js ? cJSON_Parse(js) : NULL;
    CHECK(root != NULL, "types.json does not parse");
    if (!g || !root) { tk_gguf_close(g); cJSON_Delete(root); free(js); return; }
    bool covered[TK_DTYPE_COUNT] = {0};
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(root, "types")) {
        const char *name = cJSON_GetObjectItem(e, "name")->valuestring;
        uint32_t ggml = (uint32_t)cJSON_GetObjectItem(e, "ggml_type")->valuedouble;
        bool has_src = cJSON_IsTrue(cJSON_GetObjectItem(e, "has_src"));
        char k[128];
        snprintf(k, sizeof k, "%s.q", name);
        const tk_tensor_ref *q = tk_gguf_find_tensor(g, k);
        snprintf(k, sizeof k, "%s.deq", name);
        const tk_tensor_ref *deq = tk_gguf_find_tensor(g, k);
        snprintf(k, sizeof k, "%s.src", name);
        const tk_tensor_ref *src = tk_gguf_find_tensor(g, k);
        CHECK(q && deq && (!has_src || src), "%s: fixture tensors missing", name);
        if (!q || !deq) continue;
        tk_dtype want;
        CHECK(tk_gguf_dtype_from_ggml(ggml, &want) && want == q->dtype, "%s: dtype %s vs ggml %u", name,
              tk_dtype_name(q->dtype), ggml);
        CHECK(deq->dtype == TK_F32, "%s.deq is not f32", name);
        int64_t n = tk_tensor_nelems(q);
        CHECK(n == tk_tensor_nelems(deq), "%s: element counts differ", name);
        covered[q->dtype] = true;

        float *out = malloc((size_t)n * sizeof(float)), *ref = malloc((size_t)n * sizeof(float));
        memcpy(ref, deq->data, (size_t)n * sizeof(float));
        double err_d, err_s;
        CHECK_OK(tk_dequantize(q->dtype, q->data, out, n));
        int64_t bad_d = compare(out, ref, n, &err_d);
        tk_dequant_row_fn_scalar(q->dtype)(q->data, out, n);
        int64_t bad_s = compare(out, ref, n, &err_s);
        printf("%-9s %5lld values: dequant vs gguf: dispatch %lld differ (max|err| %g), scalar %lld differ (max|err| %g)",
               name, (long long)n, (long long)bad_d, err_d, (long long)bad_s, err_s);
        CHECK(bad_d == 0, "%s: %lld dequantized values differ from gguf (max abs err %g)", name, (long long)bad_d, err_d);
        CHECK(bad_s == 0, "%s: %lld scalar dequantized values differ from gguf (max abs err %g)", name, (long long)bad_s, err_s);
        if (has_src && src) {
            CHECK(tk_quant_row_fn_for(q->dtype) != NULL, "%s: no quantizer", name);
            uint8_t *buf = calloc(1, q->nbytes);
            float *x = malloc((size_t)n * sizeof(float));
            memcpy(x, src->data, (size_t)n * sizeof(float));
            CHECK_OK(tk_quantize(q->dtype, x, buf, n));
            size_t diff = 0;
            for (size_t i = 0; i < q->nbytes; i++) diff += buf[i] != ((const uint8_t *)q->data)[i];
            printf("; quantize vs gguf: %zu of %zu bytes differ", diff, q->nbytes);
            CHECK(diff == 0, "%s: tk_quantize differs from gguf's quantizer in %zu of %zu bytes", name, diff, q->nbytes);
            free(buf);
            free(x);
        }
        printf("\n");
        free(out);
        free(ref);
    }
    for (int t = 0; t < TK_DTYPE_COUNT; t++) /* NF4 is not a GGUF type: tests/test_nf4.c checks it against bitsandbytes */
        if (t != TK_NF4) CHECK(covered[t], "dtype %s has no reference fixture in types.gguf", tk_dtype_name((tk_dtype)t));
    cJSON_Delete(root);
    free(js);
    tk_gguf_close(g);
}

/* Every dispatched (SIMD) dequantizer equals the scalar reference on random blocks —
 * random bytes cover every bit pattern, including NaN/inf scales — at unaligned
 * addresses and, for the plain types, odd lengths. */
static void check_simd_vs_scalar(void) {
    tk_rng r;
    tk_rng_seed(&r, 99);
    int n_simd = 0;
    for (int t = 0; t < TK_DTYPE_COUNT; t++) {
        tk_dequant_row_fn fast = tk_dequant_row_fn_for((tk_dtype)t), ref = tk_dequant_row_fn_scalar((tk_dtype)t);
        CHECK(fast && ref, "dtype %s has no dequantizer", tk_dtype_name((tk_dtype)t));
        if (!fast || !ref) continue;
        n_simd += fast != ref;
        int64_t blk = tk_dtype_block_elems((tk_dtype)t);
        size_t bb = tk_dtype_block_bytes((tk_dtype)t);
        int64_t nblocks = blk == 1 ? 1000 : 300;
        uint8_t *raw = malloc(nblocks * bb + 1);
        for (size_t i = 0; i < nblocks * bb + 1; i++) raw[i] = (uint8_t)tk_rng_u64(&r);
        float *a = malloc(nblocks * blk * sizeof(float)), *b = malloc(nblocks * blk * sizeof(float));
        int64_t bad = 0;
        double err;
        for (int off = 0; off < 2; off++) {
            for (int64_t nb = 0; nb <= nblocks; nb += nb < 40 ? 1 : 97) {
                int64_t n = nb * blk;
                fast(raw + off, a, n);
                ref(raw + off, b, n);
                bad += compare(a, b, n, &err);
            }
        }
        CHECK(bad == 0, "%s: SIMD dequantizer differs from scalar in %lld values", tk_dtype_name((tk_dtype)t), (long long)bad);
        free(raw);
        free(a);
        free(b);
    }
    printf("SIMD dequantizers checked against scalar: %d dtypes have a SIMD path on this CPU\n", n_simd);
}

static void check_q8_k(void) {
    tk_rng r;
    tk_rng_seed(&r, 5);
    const int nb = 6, n = nb * 256;
    float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
    for (int i = 0; i < n; i++) x[i] = tk_rng_normal(&r) * (1 + i / 256);
    for (int i = 0; i < 256; i++) x[2 * 256 + i] = 0; /* a zero block */
    uint8_t *q = malloc(nb * 292);
    CHECK_OK(tk_quantize(TK_Q8_K, x, q, n));
    CHECK_OK(tk_dequantize(TK_Q8_K, q, y, n));
    for (int b = 0; b < nb; b++) {
        const tk_block_q8_k *blk = (const tk_block_q8_k *)(q + b * 292);
        float d;
        memcpy(&d, &blk->d, 4);
        float amax = 0;
        for (int i = 0; i < 256; i++) amax = fmaxf(amax, fabsf(x[b * 256 + i]));
        CHECK_NEAR(fabs(d), amax / 127, amax * 1e-6);
        double worst = 0;
        for (int i = 0; i < 256; i++) worst = fmax(worst, fabs(x[b * 256 + i] - y[b * 256 + i]));
        CHECK(worst <= fabs(d) * 0.5 * (1 + 1e-5) + 1e-30, "q8_k block %d: error %g > d/2 = %g", b, worst, fabs(d) / 2);
        for (int j = 0; j < 16; j++) {
            int s = 0;
            for (int i = 0; i < 16; i++) s += blk->qs[16 * j + i];
            int16_t bs;
            memcpy(&bs, &blk->bsums[j], 2);
            CHECK(bs == s, "q8_k block %d: bsums[%d] = %d, sum of qs = %d", b, j, bs, s);
        }
    }
    free(x); free(y); free(q);
}

/* Q8_1's d and qs are Q8_0's (same reference rounding); s must be f16(d * sum(q)). */
static void check_q8_1_vs_q8_0(void) {
    tk_rng r;
    tk_rng_seed(&r, 11);
    float x[128];
    for (int i = 0; i < 128; i++) x[i] = tk_rng_normal(&r);
    uint8_t a[4 * 34], b[4 * 36];
    CHECK_OK(tk_quantize(TK_Q8_0, x, a, 128));
    CHECK_OK(tk_quantize(TK_Q8_1, x, b, 128));
    for (int k = 0; k < 4; k++) {
        CHECK(!memcmp(a + 34 * k, b + 36 * k, 2) && !memcmp(a + 34 * k + 2, b + 36 * k + 4, 32), "q8_1 block %d != q8_0", k);
        int s = 0;
        for (int i = 0; i < 32; i++) s += (int8_t)b[36 * k + 4 + i];
        float amax = 0;
        for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[32 * k + i]));
        uint16_t sh;
        memcpy(&sh, b + 36 * k + 2, 2);
        CHECK(sh == tk_f32_to_f16((float)s * (amax / 127)), "q8_1 block %d: s = %#x", k, sh);
    }
}

static void check_errors(void) {
    float f[64] = {0};
    uint8_t buf[512] = {0};
    CHECK(tk_dequantize(TK_Q4_0, buf, f, 33) == TK_ERR_ARG, "partial block accepted");
    CHECK(strstr(tk_last_error(), "q4_0") != NULL, "message: %s", tk_last_error());
    CHECK(tk_dequantize(TK_Q4_0, buf, f, -32) == TK_ERR_ARG, "negative count accepted");
    CHECK(tk_dequantize((tk_dtype)99, buf, f, 32) == TK_ERR_UNSUPPORTED, "unknown dtype accepted");
    CHECK(tk_quantize(TK_Q5_K, f, buf, 256) == TK_ERR_UNSUPPORTED, "q5_k quantize claimed");
    CHECK(strstr(tk_last_error(), "q5_k") != NULL, "message: %s", tk_last_error());
    CHECK(tk_quantize(TK_I32, f, buf, 4) == TK_ERR_UNSUPPORTED, "i32 quantize claimed");
    CHECK(tk_quantize(TK_Q8_0, f, buf, 31) == TK_ERR_ARG, "partial q8_0 block accepted");
    CHECK_OK(tk_dequantize(TK_Q6_K, NULL, NULL, 0));
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Informational: dequantization throughput (output floats per ns) on this machine. */
static void bench(void) {
    const tk_dtype types[] = {TK_Q4_0, TK_Q4_1, TK_Q5_0, TK_Q5_1, TK_Q8_0, TK_Q2_K, TK_Q3_K, TK_Q4_K, TK_Q5_K, TK_Q6_K, TK_F16, TK_BF16};
    const int64_t n = 1 << 20;
    float *y = malloc(n * sizeof(float));
    uint8_t *src = malloc(n * 4);
    tk_rng r;
    tk_rng_seed(&r, 3);
    for (int64_t i = 0; i < n * 4; i++) src[i] = (uint8_t)tk_rng_u64(&r);
    printf("dequant speed (1M elements from random bytes):\n");
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        tk_dequant_row_fn f[2] = {tk_dequant_row_fn_for(types[k]), tk_dequant_row_fn_scalar(types[k])};
        double best[2] = {1e9, 1e9};
        for (int w = 0; w < 2; w++)
            for (int rep = 0; rep < 3; rep++) {
                double t0 = now();
                f[w](src, y, n);
                double dt = now() - t0;
                if (dt < best[w]) best[w] = dt;
            }
        printf("  %-5s %6.2f Gelem/s%s  (scalar %5.2f Gelem/s)\n", tk_dtype_name(types[k]), n / best[0] * 1e-9,
               f[0] != f[1] ? " simd" : "     ", n / best[1] * 1e-9);
    }
    free(y);
    free(src);
}

int main(void) {
    check_fixture();
    check_simd_vs_scalar();
    check_q8_k();
    check_q8_1_vs_q8_0();
    check_errors();
#if defined(__SANITIZE_ADDRESS__)
    (void)bench; /* timings under a sanitizer would mean nothing */
#else
    if (!getenv("TK_TEST_QUICK")) bench();
#endif
    return tk_test_done("test_quant");
}
