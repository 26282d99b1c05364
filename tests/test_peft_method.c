/* The PEFT method seam (takumi/peft.h, src/peft/registry.h) with a method that is not LoRA:
 * a bottleneck adapter on both block outputs of every layer, h' = h + s * (h Wd) Wu
 * (Wd [C x r], Wu [r x C]; Houlsby-style, linear for an exact check), defined here as a
 * tk_peft_kind and trained through the ordinary training context (tk_train_params.peft_kind):
 * - its gradients equal central finite differences of the loss (tiny random Llama, packing
 *   and padding), also with activation recomputation, and together with LoRA-free full
 *   fine-tuning of the base (adapter and base weights both trainable);
 * - the model's forward calls it once per block output; a zero Wu leaves the model unchanged;
 * - adapters without block entry points skip the block backward (LoRA runs keep their results). */
#include "test.h"
#include "tiny_llama.h"
#include "train/step.h"
#include "fd_check.h"

enum { R = 3 };

typedef struct bneck {
    tk_peft peft;
    int32_t L, C;
    tk_param *wd[8][2], *wu[8][2];  /* per layer and site */
    int64_t idx_d[8][2], idx_u[8][2];
    tk_param_set *ps;
    float *saved[8][2];             /* training: the block input h [cap x C] per layer and site */
    int64_t cap;
    bool training;
} bneck;

static tk_param *P(bneck *b, int64_t i) { return &b->ps->p[i]; }

static bool bn_has_block(const void *st, int32_t layer, tk_block_site site) {
    const bneck *b = st;
    return layer >= 0 && layer < b->L && site != TK_BLOCK_LAYER;   /* the two block outputs, not the layer output */
}

static tk_status bn_fwd(void *st, const tk_peft_call *c, int32_t layer, tk_block_site site, float *h, int64_t n) {
    bneck *b = st;
    int64_t C = b->C;
    if (c->training) {
        if (n > b->cap) return tk_fail(TK_ERR_ARG, "bottleneck: %lld tokens > %lld", (long long)n, (long long)b->cap);
        memcpy(b->saved[layer][site], h, (size_t)(n * C) * sizeof(float));
    }
    float *u = tk_scratch_get(c->scratch, (size_t)(n * R));
    if (!u) return TK_ERR_NOMEM;
    const float *wd = P(b, b->idx_d[layer][site])->w, *wu = P(b, b->idx_u[layer][site])->w;
    tk_sgemm(false, false, n, R, C, 1.0f, h, C, wd, R, 0.0f, u, R);     /* u = h Wd */
    tk_sgemm(false, false, n, C, R, c->scale, u, R, wu, C, 1.0f, h, C); /* h += s u Wu */
    return TK_OK;
}

static tk_status bn_bwd(void *st, const tk_peft_call *c, int32_t layer, tk_block_site site, float *dh, int64_t n) {
    bneck *b = st;
    int64_t C = b->C;
    tk_param *pd = P(b, b->idx_d[layer][site]), *pu = P(b, b->idx_u[layer][site]);
    const float *h = b->saved[layer][site];
    float *u = malloc((size_t)(n * R) * sizeof(float)), *v = malloc((size_t)(n * R) * sizeof(float));
    if (!u || !v) { free(u); free(v); return TK_ERR_NOMEM; }
    tk_sgemm(false, false, n, R, C, 1.0f, h, C, pd->w, R, 0.0f, u, R);      /* u = h Wd */
    tk_sgemm(false, true, n, R, C, c->scale, dh, C, pu->w, C, 0.0f, v, R);  /* v = s dh Wu^T */
    tk_sgemm(true, false, R, C, n, c->scale, u, R, dh, C, 1.0f, pu->g, C);  /* dWu += s u^T dh */
    tk_sgemm(true, false, C, R, n, 1.0f, h, C, v, R, 1.0f, pd->g, R);       /* dWd += h^T v */
    tk_sgemm(false, true, n, C, R, 1.0f, v, R, pd->w, R, 1.0f, dh, C);      /* dh += v Wd^T */
    free(u);
    free(v);
    return TK_OK;
}

static void bn_set_training(void *st, bool on, uint64_t counter) { (void)counter; ((bneck *)st)->training = on; }

static const tk_peft_method k_bn = {.name = "bottleneck-test", .has_block = bn_has_block, .block_fwd = bn_fwd, .block_bwd = bn_bwd,
                                    .set_training = bn_set_training};

static tk_status bn_create(tk_model *m, const void *cfg, int32_t first_layer, tk_param_set *ps, tk_peft **out) {
    (void)first_layer;
    const float *wu_sd = cfg;
    bneck *b = calloc(1, sizeof *b);
    if (!b) return TK_ERR_NOMEM;
    b->peft = (tk_peft){&k_bn, b};
    b->L = m->cfg.n_layers;
    b->C = m->cfg.dim;
    b->ps = ps;
    b->cap = 64;
    tk_rng rng;
    tk_rng_seed(&rng, 17);
    for (int l = 0; l < b->L; l++)
        for (int s = 0; s < 2; s++) {
            char name[96];
            int64_t ned[2] = {R, b->C}, neu[2] = {b->C, R};
            tk_param *p;
            snprintf(name, sizeof name, "bn.layers.%d.%s.down", l, s ? "mlp" : "attn");
            CHECK_OK(tk_params_add(ps, name, 2, ned, NULL, true, &p));
            b->idx_d[l][s] = ps->n - 1;
            for (int64_t j = 0; j < p->n; j++) p->w[j] = 0.3f * tk_rng_normal(&rng);
            snprintf(name, sizeof name, "bn.layers.%d.%s.up", l, s ? "mlp" : "attn");
            CHECK_OK(tk_params_add(ps, name, 2, neu, NULL, true, &p));
            b->idx_u[l][s] = ps->n - 1;
            for (int64_t j = 0; j < p->n; j++) p->w[j] = *wu_sd * tk_rng_normal(&rng);
            b->saved[l][s] = malloc((size_t)(b->cap * b->C) * sizeof(float));
        }
    *out = &b->peft;
    return TK_OK;
}

static void bn_destroy(tk_peft *p) {
    if (!p) return;
    bneck *b = p->state;
    for (int l = 0; l < b->L; l++)
        for (int s = 0; s < 2; s++) free(b->saved[l][s]);
    free(b);
}

static const tk_peft_kind k_bn_kind = {.name = "bottleneck-test", .summary = "test-only bottleneck adapter", .create = bn_create, .destroy = bn_destroy};

static void run(bool recompute, bool full, const char *what) {
    tiny_opts o = {.interleaved = 1, .bias = true, .seed = 31};
    tk_model *m = tiny_llama(o);
    if (!m) { CHECK(0, "tiny model"); return; }
    tk_train_params p = tk_train_default_params();
    p.method = full ? TK_TRAIN_FULL : TK_TRAIN_LORA;
    float sd = 0.3f;
    p.peft_kind = &k_bn_kind;
    p.peft_cfg = &sd;
    p.max_rows = 2;
    p.max_cols = 8;
    p.recompute = recompute;
    tk_train_ctx *tc = NULL;
    CHECK_OK(tk_train_ctx_new(m, &p, &tc));
    if (tc) {
        int n_ad = 0;
        tk_train_adapters(tc, &n_ad);
        CHECK(n_ad == 1 && tk_train_lora(tc) == NULL, "%s: one adapter, not LoRA", what);
        tiny_batch tb;
        tiny_batch_init(&tb, 8);
        int n = fd_check_step(tc, &tb, "bn.", 5e-3, what);
        CHECK(n == 2 * 2 * 2, "%s: %d bottleneck tensors trained", what, n);
    }
    tk_train_ctx_free(tc);
    tk_model_free(m);
}

/* Wu = 0: the adapted model equals the base (the block entry points change nothing else). */
static void test_identity(void) {
    tk_model *m = tiny_llama((tiny_opts){.interleaved = 0, .seed = 4});
    if (!m) { CHECK(0, "tiny model"); return; }
    tk_param_set ps = {0};
    float zero = 0.0f;
    tk_peft *ad = NULL;
    CHECK_OK(k_bn_kind.create(m, &zero, 0, &ps, &ad));
    tiny_batch tb;
    tiny_batch_init(&tb, 2);
    float a[16 * 40], b[16 * 40];
    tk_forward *f = NULL;
    CHECK_OK(tk_forward_new(m, 2, 8, 0, &f));
    if (f && ad) {
        CHECK_OK(tk_forward_run(f, &tb.b, NULL, 16, a));
        tk_adapter_use u = {ad, 1.0f};
        CHECK_OK(tk_forward_set_adapters(f, &u, 1));
        CHECK_OK(tk_forward_run(f, &tb.b, NULL, 16, b));
        CHECK(!memcmp(a, b, sizeof a), "a zero bottleneck leaves the logits bit-identical");
    }
    tk_forward_free(f);
    k_bn_kind.destroy(ad);
    tk_params_free(&ps);
    tk_model_free(m);
}

int main(void) {
    tk_set_threads(1);
    test_identity();
    run(false, false, "bottleneck adapter");
    run(true, false, "bottleneck adapter, recompute");
    run(false, true, "bottleneck adapter + full fine-tuning");
    return tk_test_done("test_peft_method");
}
