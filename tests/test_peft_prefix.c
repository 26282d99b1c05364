/* The PEFT seam's attention entry point (takumi/peft.h attn_prefix / attn_prefix_bwd) with a
 * prefix-tuning method defined here as a tk_peft_kind: trainable prefix keys and values
 * [P x KH*D] per layer (P = 3, random init), trained through the ordinary training context:
 * - its gradients equal central finite differences of the loss through the whole tiny model
 *   (packing and padding), also with activation recomputation, with kept attention
 *   probabilities requested, and together with full fine-tuning of the base;
 * - a generation session (prefill chunk, then one-token decode steps over the KV cache)
 *   gives the batched forward's logits with the same prefix;
 * - two adapters' prefixes are concatenated in list order (= one adapter holding both);
 * - P = 0 leaves the logits bit-identical. */
#include "test.h"
#include "tiny_llama.h"
#include "train/step.h"
#include "fd_check.h"

typedef struct pfx_cfg { float sd; int64_t P; uint64_t seed; } pfx_cfg;

typedef struct pfx {
    tk_peft peft;
    int32_t L;
    int64_t P, kvd;
    int64_t idx_k[8], idx_v[8]; /* per layer: parameters [P x KH*D] */
    tk_param_set *ps;
} pfx;

static int64_t pf_prefix(void *st, const tk_peft_call *c, int32_t layer, const float **k, const float **v) {
    (void)c;
    pfx *p = st;
    if (layer < 0 || layer >= p->L || p->P == 0) return 0;
    *k = p->ps->p[p->idx_k[layer]].w;
    *v = p->ps->p[p->idx_v[layer]].w;
    return p->P;
}

static tk_status pf_prefix_bwd(void *st, const tk_peft_call *c, int32_t layer, const float *dk, const float *dv) {
    (void)c;
    pfx *p = st;
    float *gk = p->ps->p[p->idx_k[layer]].g, *gv = p->ps->p[p->idx_v[layer]].g;
    for (int64_t i = 0; i < p->P * p->kvd; i++) {
        gk[i] += dk[i];
        gv[i] += dv[i];
    }
    return TK_OK;
}

static const tk_peft_method k_pf = {.name = "prefix-test", .attn_prefix = pf_prefix, .attn_prefix_bwd = pf_prefix_bwd};

static tk_status pf_create(tk_model *m, const void *cfg, int32_t first_layer, tk_param_set *ps, tk_peft **out) {
    (void)first_layer;
    const pfx_cfg *pc = cfg;
    pfx *p = calloc(1, sizeof *p);
    if (!p) return TK_ERR_NOMEM;
    p->peft = (tk_peft){&k_pf, p};
    p->L = m->cfg.n_layers;
    p->P = pc->P;
    p->kvd = (int64_t)m->cfg.n_kv_heads * m->cfg.head_dim;
    p->ps = ps;
    tk_rng rng;
    tk_rng_seed(&rng, pc->seed);
    for (int l = 0; l < p->L && p->P > 0; l++)
        for (int kv = 0; kv < 2; kv++) {
            char name[64];
            int64_t ne[2] = {p->kvd, p->P};
            tk_param *t;
            snprintf(name, sizeof name, "prefix.layers.%d.%s", l, kv ? "value" : "key");
            tk_status st = tk_params_add(ps, name, 2, ne, NULL, true, &t);
            if (st) { free(p); return st; }
            (kv ? p->idx_v : p->idx_k)[l] = ps->n - 1;
            for (int64_t j = 0; j < t->n; j++) t->w[j] = pc->sd * tk_rng_normal(&rng);
        }
    *out = &p->peft;
    return TK_OK;
}

static void pf_destroy(tk_peft *p) {
    if (p) free(p->state);
}

static const tk_peft_kind k_pf_kind = {.name = "prefix-test", .summary = "test-only prefix tuning", .create = pf_create, .destroy = pf_destroy};

static void run(bool recompute, bool full, bool keep_att, const char *what) {
    tk_model *m = tiny_llama((tiny_opts){.interleaved = 1, .bias = true, .seed = 31});
    if (!m) { CHECK(0, "tiny model"); return; }
    tk_train_params p = tk_train_default_params();
    p.method = full ? TK_TRAIN_FULL : TK_TRAIN_LORA;
    pfx_cfg cfg = {.sd = 0.8f, .P = 3, .seed = 5};
    p.peft_kind = &k_pf_kind;
    p.peft_cfg = &cfg;
    p.max_rows = 2;
    p.max_cols = 8;
    p.recompute = recompute;
    p.keep_att_probs = keep_att;
    tk_train_ctx *tc = NULL;
    CHECK_OK(tk_train_ctx_new(m, &p, &tc));
    if (tc) {
        int n_ad = 0;
        tk_train_adapters(tc, &n_ad);
        CHECK(n_ad == 1 && tk_train_lora(tc) == NULL, "%s: one adapter, not LoRA", what);
        tiny_batch tb;
        tiny_batch_init(&tb, 8);
        int n = fd_check_step(tc, &tb, "prefix.", 5e-3, what);
        CHECK(n == 2 * 2, "%s: %d prefix tensors trained", what, n);
    }
    tk_train_ctx_free(tc);
    tk_model_free(m);
}

/* Logits [B*Tc x 40] of a forward of tb with the given adapters. */
static void forward_logits(tk_model *m, const tiny_batch *tb, const tk_adapter_use *ads, int n, float *out) {
    tk_forward *f = NULL;
    CHECK_OK(tk_forward_new(m, tb->b.n_rows, tb->b.n_cols, 0, &f));
    if (!f) return;
    CHECK_OK(tk_forward_set_adapters(f, ads, n));
    CHECK_OK(tk_forward_run(f, &tb->b, NULL, (int64_t)tb->b.n_rows * tb->b.n_cols, out));
    tk_forward_free(f);
}

/* Inference: P = 0 changes nothing; a prefix moves the logits; a session (prefill + decode over the
 * KV cache) equals the batched forward; two adapters' prefixes concatenate in list order. */
static void test_inference(void) {
    tk_model *m = tiny_llama((tiny_opts){.interleaved = 0, .seed = 4});
    if (!m) { CHECK(0, "tiny model"); return; }
    tk_param_set ps = {0};
    pfx_cfg c0 = {.sd = 0.8f, .P = 0, .seed = 1}, c3 = {.sd = 0.8f, .P = 3, .seed = 2}, c2 = {.sd = 0.8f, .P = 2, .seed = 3};
    tk_peft *a0 = NULL, *a3 = NULL, *a2 = NULL, *a5 = NULL;
    CHECK_OK(k_pf_kind.create(m, &c0, 0, &ps, &a0));
    CHECK_OK(k_pf_kind.create(m, &c3, 0, &ps, &a3));
    CHECK_OK(k_pf_kind.create(m, &c2, 0, &ps, &a2));
    pfx_cfg c5 = {.sd = 0.0f, .P = 5, .seed = 1};
    CHECK_OK(k_pf_kind.create(m, &c5, 0, &ps, &a5));
    if (!a0 || !a3 || !a2 || !a5) goto done;
    /* a5 holds a3's prefix then a2's, per layer */
    pfx *p3 = a3->state, *p2 = a2->state, *p5 = a5->state;
    for (int l = 0; l < p5->L; l++) {
        int64_t kvd = p5->kvd;
        memcpy(ps.p[p5->idx_k[l]].w, ps.p[p3->idx_k[l]].w, (size_t)(3 * kvd) * sizeof(float));
        memcpy(ps.p[p5->idx_k[l]].w + 3 * kvd, ps.p[p2->idx_k[l]].w, (size_t)(2 * kvd) * sizeof(float));
        memcpy(ps.p[p5->idx_v[l]].w, ps.p[p3->idx_v[l]].w, (size_t)(3 * kvd) * sizeof(float));
        memcpy(ps.p[p5->idx_v[l]].w + 3 * kvd, ps.p[p2->idx_v[l]].w, (size_t)(2 * kvd) * sizeof(float));
    }
    tiny_batch tb;
    tiny_batch_init(&tb, 2);
    static float base[16 * 40], with0[16 * 40], with3[16 * 40], both[16 * 40], one5[16 * 40];
    forward_logits(m, &tb, NULL, 0, base);
    tk_adapter_use u0 = {a0, 1.0f}, u3 = {a3, 1.0f}, u32[2] = {{a3, 1.0f}, {a2, 1.0f}}, u5 = {a5, 1.0f};
    forward_logits(m, &tb, &u0, 1, with0);
    CHECK(!memcmp(base, with0, sizeof base), "P = 0 leaves the logits bit-identical");
    forward_logits(m, &tb, &u3, 1, with3);
    double moved = 0;
    for (int i = 0; i < 16 * 40; i++) moved = fmax(moved, fabs(with3[i] - base[i]));
    CHECK(moved > 1e-2, "a prefix changes the logits (%.3e)", moved);
    forward_logits(m, &tb, u32, 2, both);
    forward_logits(m, &tb, &u5, 1, one5);
    CHECK(!memcmp(both, one5, sizeof both), "two adapters' prefixes = one adapter holding them in list order");

    /* session: row 1's 6 real tokens, 3 as one prefill chunk then 3 decode steps; vs a 1 x 6 forward */
    tiny_batch one = tb;
    one.b.n_rows = 1;
    one.b.n_cols = 6;
    one.b.ids = one.ids + 8;
    one.b.pos = NULL;
    one.b.seg = NULL;
    for (int pass = 0; pass < 2; pass++) { /* the single prefix, then the concatenated pair */
        float full[6 * 40];
        forward_logits(m, &one, pass ? u32 : &u3, pass ? 2 : 1, full);
        tk_session *s = NULL;
        CHECK_OK(tk_session_new(m, 16, &s));
        if (!s) break;
        CHECK_OK(tk_session_set_adapters(s, pass ? u32 : &u3, pass ? 2 : 1));
        tk_session_set_exact(s, true);
        float lg[40];
        double d = 0;
        CHECK_OK(tk_session_eval(s, one.b.ids, 3, lg));
        for (int j = 0; j < 40; j++) d = fmax(d, fabs(lg[j] - full[2 * 40 + j]));
        for (int t = 3; t < 6; t++) {
            CHECK_OK(tk_session_eval(s, one.b.ids + t, 1, lg));
            for (int j = 0; j < 40; j++) d = fmax(d, fabs(lg[j] - full[t * 40 + j]));
        }
        CHECK(d < 1e-4, "session decode with %s vs batched forward: %.3e", pass ? "two prefixes" : "a prefix", d);
        printf("session with %s vs batched forward: max diff %.2e\n", pass ? "two prefixes" : "a prefix", d);
        tk_session_free(s);
    }
done:
    k_pf_kind.destroy(a0);
    k_pf_kind.destroy(a3);
    k_pf_kind.destroy(a2);
    k_pf_kind.destroy(a5);
    tk_params_free(&ps);
    tk_model_free(m);
}

int main(void) {
    tk_set_threads(1);
    test_inference();
    run(false, false, false, "prefix tuning");
    run(true, false, false, "prefix tuning, recompute");
    run(false, false, true, "prefix tuning, kept attention probabilities requested");
    run(false, true, false, "prefix tuning + full fine-tuning");
    return tk_test_done("test_peft_prefix");
}
