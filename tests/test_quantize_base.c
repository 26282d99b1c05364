/* --quantize-base (QLoRA): the three quantizers a frozen base can be given (q8_0, q4_k,
 * nf4) and what a model loaded with them holds.
 *   - each quantizer against its error bound on Gaussian weights (q8_0: half a step plus the
 *     f16 rounding of the scale; q4_k: one step of its sub-block's scale plus the f16/6-bit
 *     rounding of scale and min; nf4: tests/test_nf4.c), and their relative RMS errors;
 *   - the matmul a quantized base takes (forward on the whole-weight, panel and row paths, and
 *     the backward's dx through W) against the f32 product with the dequantized weight;
 *   - tk_model_load with quantize_base on stories260K (HF f32, and bf16 through an f32 conversion):
 *     every matmul weight is the quantizer's output of the file's weight byte for byte, rows that fit no block fall back
 *     (q4_k -> q5_0 for 64-wide rows) or stay as stored (the 172-wide down projection), the tied
 *     head follows the embedding; a base already quantized (GGUF q4_1) and an unsupported
 *     target are refused with the tensor named. */
#include "test.h"
#include "core/core.h"
#include "core/quant.h"
#include "backend/backend.h"

static tk_rng rng;

static float *deq(tk_dtype t, const void *q, int64_t n) {
    float *y = malloc((size_t)n * sizeof(float));
    CHECK_OK(tk_dequantize(t, q, y, n));
    return y;
}

static void *quant(tk_dtype t, const float *x, int64_t n) {
    size_t nb;
    tk_dtype_nbytes(t, n, &nb);
    void *q = malloc(nb);
    CHECK_OK(tk_quantize(t, x, q, n));
    return q;
}

static void error_bounds(void) {
    enum { N = 256 * 64 };
    float *x = malloc(N * sizeof(float));
    for (int i = 0; i < N; i++) x[i] = 0.02f * tk_rng_normal(&rng) + (i % 512 < 32 ? 0.01f : 0.0f); /* some shifted sub-blocks */
    const tk_dtype types[3] = {TK_Q8_0, TK_Q4_K, TK_NF4};
    double rms[3];
    for (int k = 0; k < 3; k++) {
        tk_dtype t = types[k];
        void *q = quant(t, x, N);
        float *y = deq(t, q, N);
        double worst = 0, se = 0, sx = 0;
        int64_t g = t == TK_Q8_0 ? 32 : t == TK_Q4_K ? 32 : 64;
        for (int64_t b = 0; b < N / g; b++) {
            float mn = x[b * g], mx = x[b * g], am = 0;
            for (int64_t i = b * g; i < (b + 1) * g; i++) mn = fminf(mn, x[i]), mx = fmaxf(mx, x[i]), am = fmaxf(am, fabsf(x[i]));
            /* q8_0: d = absmax/127 in f16; q4_k: the fitted scale is at most range/15 * 1.25 (after 6-bit and
             * f16 rounding of scale and min, a generous bound); nf4: half its widest level gap plus the scale error */
            double bound = t == TK_Q8_0 ? 0.5 * am / 127 + am / 2048.0 : t == TK_Q4_K ? 1.25 * (mx - mn) / 15 : 0.16 * am * 1.05;
            for (int64_t i = b * g; i < (b + 1) * g; i++) {
                double e = fabs((double)x[i] - y[i]);
                worst = fmax(worst, e / (bound + 1e-12));
                se += e * e, sx += (double)x[i] * x[i];
            }
        }
        rms[k] = sqrt(se / sx);
        CHECK(worst <= 1.0, "%s: error %.3g x its bound", tk_dtype_name(t), worst);
        printf("%-5s relative RMS error %.4f (worst error %.2f of its bound)\n", tk_dtype_name(t), rms[k], worst);
        free(q); free(y);
    }
    CHECK(rms[0] < 0.01 && rms[1] < 0.12 && rms[2] < 0.12, "relative RMS errors %.4f %.4f %.4f", rms[0], rms[1], rms[2]);
    /* q4_k reproduces a block already on its grid exactly: quantizing its own output is a fixed point */
    void *q = quant(TK_Q4_K, x, 256);
    float *y = deq(TK_Q4_K, q, 256);
    void *q2 = quant(TK_Q4_K, y, 256);
    float *y2 = deq(TK_Q4_K, q2, 256);
    double d = 0;
    for (int i = 0; i < 256; i++) d = fmax(d, fabs((double)y[i] - y2[i]));
    CHECK(d <= 2e-3 * 0.02, "q4_k re-quantizing its own output moves values by %g", d);
    free(q); free(y); free(q2); free(y2); free(x);
}

static void matmuls(void) {
    const tk_dtype types[3] = {TK_Q8_0, TK_Q4_K, TK_NF4};
    const int64_t N = 48, K = 512;
    for (int k = 0; k < 3; k++) {
        tk_dtype t = types[k];
        float *wf0 = malloc((size_t)(N * K) * sizeof(float));
        for (int64_t i = 0; i < N * K; i++) wf0[i] = 0.05f * tk_rng_normal(&rng);
        void *w = quant(t, wf0, N * K);
        float *wf = deq(t, w, N * K);
        size_t nb;
        tk_dtype_nbytes(t, N * K, &nb);
        tk_tensor_ref ref = {.name = "w", .dtype = t, .n_dims = 2, .ne = {K, N, 1, 1}, .data = w, .nbytes = nb};
        const int64_t Ts[3] = {1, 5, 40};
        for (int ti = 0; ti < 3; ti++) {
            int64_t T = Ts[ti];
            float *x = malloc((size_t)(T * K) * sizeof(float)), *y = malloc((size_t)(T * N) * sizeof(float));
            float *dy = malloc((size_t)(T * N) * sizeof(float)), *dx = malloc((size_t)(T * K) * sizeof(float));
            for (int64_t i = 0; i < T * K; i++) x[i] = tk_rng_normal(&rng);
            for (int64_t i = 0; i < T * N; i++) dy[i] = tk_rng_normal(&rng);
            CHECK_OK(tk_matmul_ex(y, x, &ref, T, false, TK_MATMUL_EXACT));
            CHECK_OK(tk_matmul_dx(dx, dy, &ref, T, false));
            double wy = 0, wx = 0;
            for (int64_t i = 0; i < T; i++)
                for (int64_t n = 0; n < N; n++) {
                    double s = 0, sa = 0;
                    for (int64_t c = 0; c < K; c++) s += (double)x[i * K + c] * wf[n * K + c], sa += fabs((double)x[i * K + c] * wf[n * K + c]);
                    wy = fmax(wy, fabs(y[i * N + n] - s) / (2e-6 * sa + 1e-7));
                }
            for (int64_t i = 0; i < T; i++)
                for (int64_t c = 0; c < K; c++) {
                    double s = 0, sa = 0;
                    for (int64_t n = 0; n < N; n++) s += (double)dy[i * N + n] * wf[n * K + c], sa += fabs((double)dy[i * N + n] * wf[n * K + c]);
                    wx = fmax(wx, fabs(dx[i * K + c] - s) / (2e-6 * sa + 1e-7));
                }
            CHECK(wy <= 1.0, "%s T=%lld: matmul vs the dequantized f32 product %.3g x tolerance", tk_dtype_name(t), (long long)T, wy);
            CHECK(wx <= 1.0, "%s T=%lld: matmul_dx vs the dequantized f32 product %.3g x tolerance", tk_dtype_name(t), (long long)T, wx);
            free(x); free(y); free(dy); free(dx);
        }
        free(wf0); free(w); free(wf);
    }
}

/* got (a weight of the quantized model) = tk_quantize(want) of file (the same weight as stored, any float
 * dtype); want = TK_F32: got stays as stored. */
static void same_as_quantizer(const tk_tensor_ref *file, const tk_tensor_ref *got, tk_dtype want, const char *what) {
    int64_t n = tk_tensor_nelems(file);
    if (want == TK_F32) {
        CHECK(got->dtype == file->dtype && got->nbytes == file->nbytes && memcmp(got->data, file->data, file->nbytes) == 0,
              "%s: should stay as stored (%s)", what, tk_dtype_name(file->dtype));
        return;
    }
    float *src = malloc((size_t)n * sizeof(float));
    CHECK_OK(tk_dequantize(file->dtype, file->data, src, n));
    CHECK(got->dtype == want, "%s: dtype %s, expected %s", what, tk_dtype_name(got->dtype), tk_dtype_name(want));
    if (got->dtype != want) { free(src); return; }
    size_t nb;
    tk_dtype_nbytes(want, n, &nb);
    void *q = malloc(nb);
    if (want == TK_NF4) CHECK_OK(tk_quantize(want, src, q, n)); /* one tensor */
    else
        for (int64_t r = 0; r < n / file->ne[0]; r++)
            CHECK_OK(tk_quantize(want, src + r * file->ne[0], (uint8_t *)q + (size_t)r * (nb / (size_t)(n / file->ne[0])), file->ne[0]));
    CHECK(got->nbytes == nb && memcmp(q, got->data, nb) == 0, "%s: %s bytes differ from tk_quantize of the file's weight", what, tk_dtype_name(want));
    free(q);
    free(src);
}

static void load_stories(const char *folder) {
    const char *hf = tk_test_shared(folder);
    const char *tokp = tk_test_shared("models/stories260K/llama2c/tok512.bin");
    if (tk_test_require(hf && tokp ? hf : NULL, folder)) return;
    char hfp[4096], tk[4096];
    snprintf(hfp, sizeof hfp, "%s", hf);
    snprintf(tk, sizeof tk, "%s", tokp);
    tk_model_params mp = tk_model_default_params();
    mp.tokenizer_path = tk;
    tk_model *base = NULL;
    CHECK_OK(tk_model_load(hfp, &mp, &base));
    if (!base) return;
    const tk_weights *bw = tk_model_weights(base);
    const tk_dtype types[3] = {TK_Q8_0, TK_Q4_K, TK_NF4};
    for (int k = 0; k < 3; k++) {
        mp.quantize_base = types[k];
        tk_model *m = NULL;
        CHECK_OK(tk_model_load(hfp, &mp, &m));
        if (!m) continue;
        const tk_weights *w = tk_model_weights(m);
        tk_dtype small = types[k] == TK_Q4_K ? TK_Q5_0 : types[k]; /* 64-wide rows: q4_k falls back to q5_0 */
        char what[96];
        snprintf(what, sizeof what, "%s %s token_embd", folder, tk_dtype_name(types[k]));
        same_as_quantizer(&bw->tok_embd, &w->tok_embd, small, what);
        CHECK(w->output.data == w->tok_embd.data && w->output.dtype == w->tok_embd.dtype, "%s: the tied head follows the embedding", what);
        for (int l = 0; l < 5; l++) {
            const tk_layer_weights *a = &bw->layers[l], *b = &w->layers[l];
            snprintf(what, sizeof what, "%s layer %d wq", tk_dtype_name(types[k]), l);
            same_as_quantizer(&a->wq, &b->wq, small, what);
            snprintf(what, sizeof what, "%s layer %d w_up", tk_dtype_name(types[k]), l);
            same_as_quantizer(&a->w_up, &b->w_up, small, what);
            snprintf(what, sizeof what, "%s layer %d w_down (172-wide rows)", tk_dtype_name(types[k]), l);
            same_as_quantizer(&a->w_down, &b->w_down, TK_F32, what); /* 172 fits no block: stays as stored */
        }
        tk_model_free(m);
    }
    mp.quantize_base = TK_Q5_0;
    tk_model *m = NULL;
    CHECK(tk_model_load(hfp, &mp, &m) == TK_ERR_ARG && strstr(tk_last_error(), "q5_0"), "q5_0 refused: %s", tk_last_error());
    tk_model_free(base);
    /* a base that is already quantized */
    const char *gg = access("models/SmolLM2-135M-Instruct.Q4_1.gguf", R_OK) == 0 ? "models/SmolLM2-135M-Instruct.Q4_1.gguf" : NULL;
    if (gg) {
        mp = tk_model_default_params();
        mp.quantize_base = TK_NF4;
        m = NULL;
        CHECK(tk_model_load(gg, &mp, &m) == TK_ERR_ARG && strstr(tk_last_error(), "already stored as") && strstr(tk_last_error(), "q"),
              "a quantized GGUF refused: %s", tk_last_error());
        tk_model_free(m);
    } else printf("SKIP: models/SmolLM2-135M-Instruct.Q4_1.gguf absent (the refusal of quantized bases)\n");
}

int main(void) {
    tk_rng_seed(&rng, 2024);
    error_bounds();
    matmuls();
    load_stories("models/stories260K/hf");      /* f32: quantized straight from the mapped file */
    load_stories("models/stories260K/hf-bf16"); /* bf16: through an f32 conversion */
    return tk_test_done("test_quantize_base");
}
