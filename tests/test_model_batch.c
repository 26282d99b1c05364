/* Batched forward with padding and packing equals separate unbatched forwards, on the
 * real stories260K (GQA 8/4): row 0 packs two sequences (segments 0 and 1, positions
 * restarting) followed by padding, row 1 holds one sequence and padding; every real
 * token's logits must match its sequence's own forward to 1e-5 relative to max |logit|. Also: selected-row
 * logits equal the same rows of the all-rows logits, tk_forward_nll with weights, an
 * activation-keeping workspace gives the same logits, and an adapter (PEFT method) sees every
 * linear exactly once per layer with the right shapes. */
#include "test.h"

#define NV 512
static const int32_t k_ids[] = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426,
                                338, 401, 396, 267, 337, 410};

static float *forward_one(tk_model *m, const int32_t *ids, int n) {
    float *lg = malloc(sizeof(float) * (size_t)n * NV);
    tk_forward *f = NULL;
    CHECK_OK(tk_forward_new(m, 1, n, 0, &f));
    tk_batch b = {.n_rows = 1, .n_cols = n, .ids = ids};
    if (f) CHECK_OK(tk_forward_run(f, &b, NULL, n, lg));
    tk_forward_free(f);
    return lg;
}

/* A PEFT method that only records its calls: linear and block-output entry points. */
typedef struct { int calls[64][TK_LIN_COUNT], blocks[64][TK_BLOCK_COUNT]; int64_t n; int bad; const tk_model *m; } hook_log;
static tk_status log_linear(void *ctx, const tk_peft_call *c, int32_t layer, tk_linear_id which, const tk_tensor_ref *wf,
                            const float *x, float *y, int64_t n) {
    hook_log *h = ctx;
    if (layer < 0 || layer >= 64 || which >= TK_LIN_COUNT || c->scale != 0.5f || c->training) { h->bad++; return TK_OK; }
    h->calls[layer][which]++;
    h->n = n;
    /* touch the whole input and output to let ASan see any short buffer */
    const tk_tensor_ref *w = tk_model_linear(h->m, layer, which);
    if (wf != w) h->bad++; /* the method sees the frozen weight */
    double s = 0;
    for (int64_t i = 0; i < n * w->ne[0]; i++) s += x[i];
    for (int64_t i = 0; i < n * w->ne[1]; i++) s += y[i];
    if (!isfinite(s)) h->bad++;
    return TK_OK;
}
static bool log_has_block(const void *ctx, int32_t layer, tk_block_site site) { (void)ctx; (void)layer; (void)site; return true; }
static tk_status log_block(void *ctx, const tk_peft_call *c, int32_t layer, tk_block_site site, float *hb, int64_t n) {
    hook_log *h = ctx;
    if (layer < 0 || layer >= 64 || (unsigned)site >= TK_BLOCK_COUNT) { h->bad++; return TK_OK; }
    h->blocks[layer][site]++;
    double s = 0;
    for (int64_t i = 0; i < n * tk_model_get_config(h->m)->dim; i++) s += hb[i];
    if (!isfinite(s)) h->bad++;
    return TK_OK;
}
static const tk_peft_method k_log_method = {.name = "log", .linear_fwd = log_linear, .has_block = log_has_block, .block_fwd = log_block};

int main(void) {
    const char *path = tk_test_shared("models/stories260K/llama2c/stories260K.bin");
    if (tk_test_require(path, "models/stories260K")) return tk_test_done("test_model_batch");
    tk_model_params mp = tk_model_default_params();
    mp.tokenizer = TK_TOKENIZER_NONE;
    tk_model *m = NULL;
    CHECK_OK(tk_model_load(path, &mp, &m));
    if (!m) return tk_test_done("test_model_batch");

    /* sequences A (7 tokens), B (5), C (9) */
    const int32_t *A = k_ids, *Bq = k_ids + 7, *Cq = k_ids + 12;
    const int nA = 7, nB = 5, nC = 9, Tc = 14;
    float *la = forward_one(m, A, nA), *lb = forward_one(m, Bq, nB), *lc = forward_one(m, Cq, nC);

    int32_t ids[2 * Tc], pos[2 * Tc], seg[2 * Tc];
    for (int t = 0; t < 2 * Tc; t++) { ids[t] = 0; pos[t] = 0; seg[t] = -1; }
    for (int t = 0; t < nA; t++) { ids[t] = A[t]; pos[t] = t; seg[t] = 0; }
    for (int t = 0; t < nB; t++) { ids[nA + t] = Bq[t]; pos[nA + t] = t; seg[nA + t] = 1; }
    for (int t = 0; t < nC; t++) { ids[Tc + t] = Cq[t]; pos[Tc + t] = t; seg[Tc + t] = 0; }
    /* padding tokens carry a real id (BOS) to show they do not leak into real rows */
    for (int t = 0; t < 2 * Tc; t++) if (seg[t] < 0) ids[t] = 1;
    tk_batch b = {.n_rows = 2, .n_cols = Tc, .ids = ids, .pos = pos, .seg = seg};

    float *lg = malloc(sizeof(float) * 2 * Tc * NV);
    tk_forward *f = NULL;
    CHECK_OK(tk_forward_new(m, 2, Tc, 0, &f));
    CHECK_OK(tk_forward_run(f, &b, NULL, 2 * Tc, lg));
    double e = 0;
    for (int t = 0; t < 2 * Tc; t++) {
        const float *ref = NULL;
        if (t < nA) ref = la + t * NV;
        else if (t < nA + nB) ref = lb + (t - nA) * NV;
        else if (t >= Tc && t < Tc + nC) ref = lc + (t - Tc) * NV;
        if (!ref) continue;
        for (int v = 0; v < NV; v++) e = fmax(e, fabs(lg[t * NV + v] - ref[v]));
    }
    /* Tolerance relative to the logits' scale (max |logit| of the reference rows): BLAS
     * picks different kernels for different row counts, so sums are ordered differently
     * (a few ulps), but masks, positions and padding must not change anything else. */
    double mx = 0;
    for (int i = 0; i < nA * NV; i++) mx = fmax(mx, fabs(la[i]));
    for (int i = 0; i < nB * NV; i++) mx = fmax(mx, fabs(lb[i]));
    for (int i = 0; i < nC * NV; i++) mx = fmax(mx, fabs(lc[i]));
    printf("packed+padded batch vs separate forwards: max|logit err| %.3g, relative to max|logit| %.3g: %.3g\n",
           e, mx, e / mx);
    CHECK(e <= 1e-5 * mx, "batched logits differ by %g (relative %g)", e, e / mx);

    /* selected rows (last real token of each sequence) */
    int64_t sel[3] = {nA - 1, nA + nB - 1, Tc + nC - 1};
    float sl[3 * NV];
    CHECK_OK(tk_forward_run(f, &b, sel, 3, sl));
    double es = 0;
    for (int i = 0; i < 3; i++)
        for (int v = 0; v < NV; v++) es = fmax(es, fabs(sl[i * NV + v] - lg[sel[i] * NV + v]));
    CHECK(es <= 1e-5 * mx, "selected rows differ by %g", es);
    int64_t badsel = 2 * Tc;
    CHECK(tk_forward_run(f, &b, &badsel, 1, sl) == TK_ERR_ARG, "out-of-range logits row accepted");

    /* weighted NLL over the real tokens equals the one from full logits */
    int32_t target[2 * Tc];
    float wt[2 * Tc];
    double ref = 0, wref = 0;
    for (int t = 0; t < 2 * Tc; t++) {
        bool has_next = t + 1 < 2 * Tc && seg[t] >= 0 && seg[t + 1] == seg[t] && (t + 1) % Tc != 0;
        target[t] = has_next ? ids[t + 1] : -1;
        wt[t] = (float)(1 + t % 3);
        if (!has_next) continue;
        const float *row = lg + t * NV;
        double mx = row[0], z = 0;
        for (int v = 1; v < NV; v++) mx = fmax(mx, row[v]);
        for (int v = 0; v < NV; v++) z += exp(row[v] - mx);
        ref += wt[t] * (mx + log(z) - row[target[t]]);
        wref += wt[t];
    }
    double ls = 0, ws = 0;
    CHECK_OK(tk_forward_nll(f, &b, target, wt, &ls, &ws));
    CHECK_NEAR(ws, wref, 1e-9);
    CHECK_NEAR(ls, ref, 1e-4 * fabs(ref) + 1e-5);
    tk_forward_free(f);

    /* activation-keeping workspace (for the backward pass) gives identical logits */
    float *lk = malloc(sizeof(float) * 2 * Tc * NV);
    CHECK_OK(tk_forward_new(m, 2, Tc, TK_FWD_KEEP_ACTS | TK_FWD_KEEP_ATT_PROBS, &f));
    CHECK_OK(tk_forward_run(f, &b, NULL, 2 * Tc, lk));
    double ek = 0;
    for (int i = 0; i < 2 * Tc * NV; i++) ek = fmax(ek, fabs(lk[i] - lg[i]));
    CHECK(ek == 0, "keep-acts logits differ by %g", ek);

    /* an adapter method: every linear and both block outputs once per layer, n = all tokens */
    hook_log h;
    memset(&h, 0, sizeof h);
    h.m = m;
    tk_peft logp = {&k_log_method, &h};
    tk_adapter_use u = {&logp, 0.5f};
    CHECK_OK(tk_forward_set_adapters(f, &u, 1));
    CHECK_OK(tk_forward_run(f, &b, NULL, 0, NULL));
    CHECK_OK(tk_forward_set_adapters(f, NULL, 0));
    int L = tk_model_get_config(m)->n_layers, ok = 1;
    for (int l = 0; l < L; l++) {
        for (int w = 0; w < TK_LIN_COUNT; w++) ok &= h.calls[l][w] == 1;
        for (int s = 0; s < TK_BLOCK_COUNT; s++) ok &= h.blocks[l][s] == 1;
    }
    CHECK(ok && !h.bad && h.n == 2 * Tc, "hook calls (n %lld, bad %d)", (long long)h.n, h.bad);
    /* too large a batch is refused, not overrun */
    tk_batch big = b;
    big.n_cols = Tc + 1;
    CHECK(tk_forward_run(f, &big, NULL, 0, NULL) == TK_ERR_ARG, "oversized batch accepted");
    tk_forward_free(f);

    free(la); free(lb); free(lc); free(lg); free(lk);
    tk_model_free(m);
    return tk_test_done("test_model_batch");
}
