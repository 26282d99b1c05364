/* LoRA adapters (src/peft/lora.c) on the tiny random Llama: PEFT names and shapes,
 * kaiming-uniform A / zero B initialisation, B = 0 leaves the model unchanged, the
 * adapted forward equals the merged weights W + scale * B A (alpha/r and rsLoRA, subsets
 * of targets, first_layer), dropout masks (rate, scaling, determinism per counter, off in
 * evaluation), the q/k order flag, generation sessions seeing the adapter, bad configs. */
#include "test.h"
#include "tiny_llama.h"
#include "peft/lora.h"

static const char *LIN[TK_LIN_COUNT] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                                        "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};

static void forward_logits(tk_model *m, const tk_peft *ad, tiny_batch *tb, float *logits) {
    tk_forward *f = NULL;
    CHECK_OK(tk_forward_new(m, 2, 8, 0, &f));
    if (f && ad) { tk_adapter_use u = {ad, 1.0f}; CHECK_OK(tk_forward_set_adapters(f, &u, 1)); }
    if (f) CHECK_OK(tk_forward_run(f, &tb->b, NULL, 16, logits));
    tk_forward_free(f);
}

static void test_names_init(void) {
    tk_model *m = tiny_llama((tiny_opts){.interleaved = 1, .seed = 1});
    if (!m) { CHECK(0, "tiny model"); return; }
    tk_param_set ps = {0};
    tk_lora_config c = tk_lora_default_config();
    CHECK(c.r == 8 && c.alpha == 16 && c.targets == 0 && !c.rslora, "defaults");
    c.seed = 42;
    tk_lora *l = NULL;
    CHECK_OK(tk_lora_new(m, &c, &ps, &l));
    if (!l) { tk_model_free(m); return; }
    CHECK(tk_lora_get_config(l)->targets == TK_LORA_ALL_TARGETS, "targets 0 resolves to all seven");
    CHECK_NEAR(tk_lora_scale(l), 2.0, 0);
    CHECK(tk_lora_qk_permuted(l), "interleaved model: q/k rows in llama.cpp order");
    CHECK(ps.n == 2 * 7 * 2, "%lld params", (long long)ps.n);
    for (int layer = 0; layer < 2; layer++)
        for (int w = 0; w < TK_LIN_COUNT; w++) {
            char na[200], nb[200];
            snprintf(na, sizeof na, "base_model.model.model.layers.%d.%s.lora_A.weight", layer, LIN[w]);
            snprintf(nb, sizeof nb, "base_model.model.model.layers.%d.%s.lora_B.weight", layer, LIN[w]);
            tk_param *A = tk_params_find(&ps, na), *B = tk_params_find(&ps, nb), *A2 = NULL, *B2 = NULL;
            CHECK(A && B, "%s / %s present", na, nb);
            if (!A || !B) continue;
            CHECK(tk_lora_module(l, layer, (tk_linear_id)w, &A2, &B2) && A2 == A && B2 == B, "module lookup %s", na);
            const tk_tensor_ref *wt = tk_model_linear(m, layer, (tk_linear_id)w);
            CHECK(A->n_dims == 2 && A->ne[0] == wt->ne[0] && A->ne[1] == 8, "%s shape {in, r}", na);
            CHECK(B->n_dims == 2 && B->ne[0] == 8 && B->ne[1] == wt->ne[1], "%s shape {r, out}", nb);
            CHECK(A->decay && B->decay, "LoRA weights decay");
            float bound = 1.0f / sqrtf((float)wt->ne[0]), mx = 0;
            double mean = 0;
            for (int64_t j = 0; j < A->n; j++) { mx = fmaxf(mx, fabsf(A->w[j])); mean += A->w[j]; }
            mean /= (double)A->n;
            CHECK(mx <= bound && mx > 0.7f * bound, "%s: |A| max %g within the kaiming bound %g", na, (double)mx, (double)bound);
            CHECK(fabs(mean) < 0.25 * bound, "%s: A mean %g near 0", na, mean);
            bool zero = true;
            for (int64_t j = 0; j < B->n; j++) zero = zero && B->w[j] == 0.0f;
            CHECK(zero, "%s starts at zero", nb);
        }
    /* same seed: same A; other seed: other A */
    tk_param_set ps2 = {0}, ps3 = {0};
    tk_lora *l2 = NULL, *l3 = NULL;
    CHECK_OK(tk_lora_new(m, &c, &ps2, &l2));
    c.seed = 43;
    CHECK_OK(tk_lora_new(m, &c, &ps3, &l3));
    if (l2 && l3) {
        CHECK(!memcmp(ps.p[0].w, ps2.p[0].w, (size_t)ps.p[0].n * sizeof(float)), "same seed, same A");
        CHECK(memcmp(ps.p[0].w, ps3.p[0].w, (size_t)ps.p[0].n * sizeof(float)) != 0, "other seed, other A");
    }
    tk_lora_free(l2); tk_lora_free(l3); tk_lora_free(l);
    tk_params_free(&ps2); tk_params_free(&ps3); tk_params_free(&ps);
    tk_model_free(m);
}

/* Adapted forward == forward of merged weights; B = 0 == base exactly. */
static void test_merged(bool rslora, uint32_t targets, int first_layer, int interleaved) {
    tiny_opts o = {.interleaved = interleaved, .bias = true, .seed = 5};
    tk_model *m = tiny_llama(o), *mm = tiny_llama(o);
    if (!m || !mm) { CHECK(0, "tiny model"); tk_model_free(m); tk_model_free(mm); return; }
    tiny_batch tb;
    tiny_batch_init(&tb, 2);
    float base[16 * 40], ad[16 * 40], merged[16 * 40];
    forward_logits(m, NULL, &tb, base);
    tk_param_set ps = {0};
    tk_lora_config c = tk_lora_default_config();
    c.r = 3;
    c.alpha = 5;
    c.rslora = rslora;
    c.targets = targets;
    c.first_layer = first_layer;
    c.dropout = 0.3f; /* no effect outside training */
    tk_lora *l = NULL;
    CHECK_OK(tk_lora_new(m, &c, &ps, &l));
    if (!l) { tk_model_free(m); tk_model_free(mm); return; }
    forward_logits(m, tk_lora_peft(l), &tb, ad);
    CHECK(!memcmp(base, ad, sizeof base), "B = 0: the adapted model equals the base bit for bit");
    /* random B, then merge W' = W + scale * B A into the second model's f32 weights */
    tk_rng rng;
    tk_rng_seed(&rng, 77);
    for (int64_t i = 0; i < ps.n; i++)
        if (strstr(ps.p[i].name, "lora_B"))
            for (int64_t j = 0; j < ps.p[i].n; j++) ps.p[i].w[j] = 0.2f * tk_rng_normal(&rng);
    float scale = tk_lora_scale(l);
    CHECK_NEAR(scale, rslora ? 5.0 / sqrt(3.0) : 5.0 / 3.0, 1e-6);
    int n_mod = 0;
    for (int layer = 0; layer < 2; layer++)
        for (int w = 0; w < TK_LIN_COUNT; w++) {
            tk_param *A, *B;
            bool has = tk_lora_module(l, layer, (tk_linear_id)w, &A, &B);
            bool want = layer >= first_layer && (targets == 0 || (targets & (1u << w)));
            CHECK(has == want, "layer %d %s: adapter %d, expected %d", layer, LIN[w], has, want);
            if (!has) continue;
            n_mod++;
            float *W = (float *)tk_model_linear(mm, layer, (tk_linear_id)w)->data;
            int64_t K = A->ne[0], N = B->ne[1], r = A->ne[1];
            for (int64_t nn = 0; nn < N; nn++)
                for (int64_t k = 0; k < K; k++) {
                    double s = 0;
                    for (int64_t j = 0; j < r; j++) s += (double)B->w[nn * r + j] * A->w[j * K + k];
                    W[nn * K + k] += (float)(scale * s);
                }
        }
    CHECK(ps.n == 2 * n_mod, "two params per adapted linear");
    forward_logits(m, tk_lora_peft(l), &tb, ad);
    forward_logits(mm, NULL, &tb, merged);
    double md = 0, mb = 0, moved = 0;
    for (int i = 0; i < 16 * 40; i++) {
        md = fmax(md, fabs(ad[i] - merged[i]));
        mb = fmax(mb, fabs(merged[i]));
        moved = fmax(moved, fabs(ad[i] - base[i]));
    }
    CHECK(md <= 1e-5 * mb, "adapted vs merged logits: max diff %.3e (max %.3f)", md, mb);
    CHECK(moved > 1e-3, "the adapter changes the logits (%.3e)", moved);
    /* a generation session sees the adapter too: last-token logits of row 1's 6 real tokens */
    tk_session *s = NULL;
    CHECK_OK(tk_session_new(m, 16, &s));
    if (s) {
        tk_adapter_use u = {tk_lora_peft(l), 1.0f};
        CHECK_OK(tk_session_set_adapters(s, &u, 1));
        tk_session_set_exact(s, true);
        float lg[40];
        CHECK_OK(tk_session_eval(s, tb.ids + 8, 6, lg));
        tiny_batch one = tb;
        one.b.n_rows = 1;
        one.b.n_cols = 6;
        one.b.ids = tb.ids + 8;
        one.b.pos = NULL;
        one.b.seg = NULL;
        tk_forward *f = NULL;
        float full[6 * 40];
        CHECK_OK(tk_forward_new(m, 1, 6, 0, &f));
        if (f) { tk_adapter_use u = {tk_lora_peft(l), 1.0f}; CHECK_OK(tk_forward_set_adapters(f, &u, 1)); }
        if (f) CHECK_OK(tk_forward_run(f, &one.b, NULL, 6, full));
        tk_forward_free(f);
        double d = 0;
        for (int j = 0; j < 40; j++) d = fmax(d, fabs(lg[j] - full[5 * 40 + j]));
        CHECK(d < 1e-4, "session with adapter vs batched forward: %.3e", d);
        tk_session_free(s);
    }
    tk_lora_free(l);
    tk_params_free(&ps);
    tk_model_free(m);
    tk_model_free(mm);
}

/* The LoRA method's linear forward on q, as the model calls it. */
static tk_status lora_fwd(tk_lora *l, tk_scratch *sc, bool training, int32_t layer, const float *x, float *y, int64_t n) {
    const tk_peft *p = tk_lora_peft(l);
    tk_peft_call c = {.scale = 1.0f, .training = training, .scratch = sc};
    return p->method->linear_fwd(p->state, &c, layer, TK_LIN_Q, NULL, x, y, n);
}

/* Dropout through the method's forward: A = B = I (r = K = 16, alpha = r) makes y = dropout(x). */
static void test_dropout(void) {
    tk_model *m = tiny_llama((tiny_opts){.interleaved = 0, .seed = 9});
    if (!m) { CHECK(0, "tiny model"); return; }
    CHECK(!m->cfg.rope_interleaved, "halves model");
    tk_param_set ps = {0};
    tk_lora_config c = tk_lora_default_config();
    c.r = 16;
    c.alpha = 16;
    c.dropout = 0.25f;
    c.targets = 1u << TK_LIN_Q;
    tk_lora *l = NULL;
    CHECK_OK(tk_lora_new(m, &c, &ps, &l));
    if (!l) { tk_model_free(m); return; }
    CHECK(!tk_lora_qk_permuted(l), "HF-order model: no permutation");
    for (int layer = 0; layer < 2; layer++) {
        tk_param *A, *B;
        if (!tk_lora_module(l, layer, TK_LIN_Q, &A, &B)) { CHECK(0, "q adapter"); continue; }
        memset(A->w, 0, (size_t)A->n * sizeof(float));
        memset(B->w, 0, (size_t)B->n * sizeof(float));
        for (int i = 0; i < 16; i++) { A->w[i * 16 + i] = 1; B->w[i * 16 + i] = 1; }
    }
    tk_scratch sc = {0};
    enum { N = 1000, K = 16 };
    float *x = malloc(N * K * sizeof(float)), *y = malloc(N * K * sizeof(float)), *y2 = malloc(N * K * sizeof(float));
    for (int i = 0; i < N * K; i++) x[i] = 1.0f + (float)(i % 7);
    /* evaluation: identity */
    memset(y, 0, N * K * sizeof(float));
    CHECK_OK(lora_fwd(l, &sc, false, 0, x, y, N));
    bool same = true;
    for (int i = 0; i < N * K; i++) same = same && fabsf(y[i] - x[i]) <= 1e-6f * x[i];
    CHECK(same, "no dropout outside training");
    /* training: about a quarter dropped, the rest scaled by 1/(1-p) */
    tk_lora_set_training(l, true, 5);
    memset(y, 0, N * K * sizeof(float));
    CHECK_OK(lora_fwd(l, &sc, true, 0, x, y, N));
    int dropped = 0, bad = 0;
    for (int i = 0; i < N * K; i++) {
        if (y[i] == 0) dropped++;
        else if (fabsf(y[i] - x[i] / 0.75f) > 1e-5f * x[i]) bad++;
    }
    double frac = (double)dropped / (N * K);
    CHECK(fabs(frac - 0.25) < 0.02, "dropped fraction %.4f (expected 0.25)", frac);
    CHECK(bad == 0, "%d kept values not scaled by 1/(1-p)", bad);
    /* same counter: same mask; other counter / layer: other masks */
    memset(y2, 0, N * K * sizeof(float));
    CHECK_OK(lora_fwd(l, &sc, true, 0, x, y2, N));
    CHECK(!memcmp(y, y2, N * K * sizeof(float)), "same counter, same mask");
    tk_lora_set_training(l, true, 6);
    memset(y2, 0, N * K * sizeof(float));
    CHECK_OK(lora_fwd(l, &sc, true, 0, x, y2, N));
    CHECK(memcmp(y, y2, N * K * sizeof(float)) != 0, "next counter, other mask");
    tk_lora_set_training(l, true, 5);
    memset(y2, 0, N * K * sizeof(float));
    CHECK_OK(lora_fwd(l, &sc, true, 1, x, y2, N));
    CHECK(memcmp(y, y2, N * K * sizeof(float)) != 0, "other layer, other mask");
    /* the backward's input gradient uses the forward's mask: dx = mask/(1-p) ⊙ dy here */
    for (int i = 0; i < N * K; i++) y2[i] = 0;
    CHECK_OK(lora_fwd(l, &sc, true, 1, x, y2, N)); /* forward of layer 1 saved */
    float *dy = malloc(N * K * sizeof(float)), *dx = calloc(N * K, sizeof(float));
    for (int i = 0; i < N * K; i++) dy[i] = 1.0f;
    CHECK_OK(tk_lora_backward_linear(l, 1, TK_LIN_Q, x, dy, dx, N));
    int mism = 0;
    for (int i = 0; i < N * K; i++) mism += (dx[i] == 0) != (y2[i] == 0);
    CHECK(mism == 0, "backward mask equals the forward mask (%d mismatches)", mism);
    tk_lora_set_training(l, false, 0);
    CHECK(tk_lora_backward_linear(l, 1, TK_LIN_Q, x, dy, dx, N) != TK_OK, "backward outside training is refused");
    free(dy); free(dx);
    free(x); free(y); free(y2);
    tk_scratch_free(&sc);
    tk_lora_free(l);
    tk_params_free(&ps);
    tk_model_free(m);
}

static void test_bad_config(void) {
    tk_model *m = tiny_llama((tiny_opts){.seed = 3});
    if (!m) { CHECK(0, "tiny model"); return; }
    tk_param_set ps = {0};
    tk_lora *l = NULL;
    struct { const char *what; tk_lora_config c; } bad[5];
    for (int i = 0; i < 5; i++) bad[i].c = tk_lora_default_config();
    bad[0].what = "rank 0"; bad[0].c.r = 0;
    bad[1].what = "dropout 1"; bad[1].c.dropout = 1.0f;
    bad[2].what = "alpha 0"; bad[2].c.alpha = 0;
    bad[3].what = "unknown target bit"; bad[3].c.targets = 1u << 9;
    bad[4].what = "first layer past the model"; bad[4].c.first_layer = 2;
    for (int i = 0; i < 5; i++) {
        tk_status st = tk_lora_new(m, &bad[i].c, &ps, &l);
        CHECK(st == TK_ERR_ARG && l == NULL, "%s refused", bad[i].what);
        CHECK(strstr(tk_last_error(), "lora") != NULL, "%s: message names lora: %s", bad[i].what, tk_last_error());
    }
    CHECK(ps.n == 0, "nothing added on failure");
    tk_params_free(&ps);
    tk_model_free(m);
}

int main(void) {
    test_names_init();
    test_merged(false, 0, 0, 1);
    test_merged(true, (1u << TK_LIN_Q) | (1u << TK_LIN_V) | (1u << TK_LIN_DOWN), 0, 0);
    test_merged(false, (1u << TK_LIN_K) | (1u << TK_LIN_O) | (1u << TK_LIN_GATE) | (1u << TK_LIN_UP), 1, 1);
    test_dropout();
    test_bad_config();
    return tk_test_done("test_lora");
}
