/* --lora-init pissa | olora (src/peft/lora_init.h):
 * - the tiny Llama (q/k biases, permuted q/k rows): a fresh adapter leaves the logits unchanged
 *   (the residual pair cancels the adapter), one linear's backward (with and without dropout,
 *   the residual on the undropped input) against central finite differences, merge = apply, and
 *   the written PEFT folder (PEFT's rank-2r conversion) read back as a plain LoRA on the original
 *   base gives the same logits; the GGUF adapter too;
 * - stories260K against PyTorch + PEFT (tools/make_lora_init_reference.py): the initial A and B
 *   (PiSSA up to the sign of each singular pair, which the SVD leaves open and training does not
 *   see), the residual base W - s B0 A0, the loss, logits and gradients at the initialisation, the
 *   10-step loss curve and the logits after it; the same on the f32 GGUF container (llama.cpp's
 *   q/k row order); after training, the written adapter on the original base gives the trained logits;
 * - a Q4_1 base (stories260K's linears quantized in memory): PiSSA of the dequantized weight (A0/B0
 *   bit-identical to those of the same values as f32), a fresh adapter leaves the logits, and after
 *   training the written adapter on that base gives the trained logits;
 * - adapters PEFT saved without its conversion (init_lora_weights "pissa"/"olora"): read as PEFT reads
 *   them, the initialisation re-run on the given base: PEFT's logits on both containers; the
 *   initialisations PEFT re-runs randomly or from data (pissa_niter_K, corda, loftq, lora_ga) refused;
 * - refusals: DoRA with PiSSA/OLoRA, a rank above min(out, in), an unknown --lora-init. */
#include "test.h"
#include "train_ref.h"
#include "peft_check.h"
#include "peft/lora.h"
#include "peft/lora_init.h"
#include "peft/dora.h"
#include "train/trainer.h"
#include <unistd.h>

static const char *init_name(tk_lora_init i) { return i == TK_LORA_INIT_PISSA ? "PiSSA" : "OLoRA"; }

/* B moved off its initialisation so that every term of the backward matters. */
static void perturb(tk_param_set *ps, uint64_t seed) {
    tk_rng rng;
    tk_rng_seed(&rng, seed);
    for (int64_t i = 0; i < ps->n; i++)
        for (int64_t j = 0; j < ps->p[i].n; j++) ps->p[i].w[j] += 0.2f * tk_rng_normal(&rng);
}

/* The written adapter (path) read back by the registry as a plain rank-2r LoRA with alpha `alpha`,
 * applied on the same, unchanged base: the logits of the live adapter (two rank-r products against one
 * rank-2r product: rounding only). */
static void readback_check(tk_model *m, const tk_peft *p, const char *path, int32_t r, float alpha, const char *what) {
    float a[16 * 40], b[16 * 40];
    tiny_logits(m, p, a);
    tk_adapter *ad = NULL;
    CHECK_OK(tk_adapter_load(path, &ad));
    if (!ad) return;
    tk_adapter_info info = tk_adapter_get_info(ad);
    CHECK(!strcmp(info.method, "lora") && info.r == 2 * r && fabsf(info.alpha - alpha) <= 1e-5f * alpha,
          "%s: a rank-%d LoRA with alpha %g (got %s, r %d, alpha %g)", what, 2 * r, (double)alpha, info.method, info.r, (double)info.alpha);
    tk_param_set ps = {0};
    tk_peft *q = NULL;
    CHECK_OK(tk_adapter_attach_peft(ad, m, &ps, &q));
    if (q) {
        tiny_logits(m, q, b);
        double d = max_abs_diff(a, b, 16 * 40), mx = 0;
        for (int i = 0; i < 16 * 40; i++) mx = fmax(mx, fabs(a[i]));
        printf("%s: written and read back as a rank-%d LoRA: max abs logit diff %.2e (max |logit| %.2f)\n", what, info.r, d, mx);
        CHECK(d <= 1e-5 * mx, "%s: the file read back gives other logits (%.3e)", what, d);
        ad->kind->destroy(q);
    }
    tk_params_free(&ps);
    tk_adapter_free(ad);
}

static void test_tiny(tk_lora_init init) {
    char what[96];
    tk_model *m = tiny_llama((tiny_opts){.interleaved = 1, .bias = true, .seed = 12});
    if (!m) { CHECK(0, "tiny model"); return; }
    tk_param_set ps = {0};
    tk_lora_config c = tk_lora_default_config();
    c.r = 3;
    c.alpha = 5;
    c.dropout = 0;
    c.init = init;
    tk_lora *l = NULL;
    CHECK_OK(tk_lora_new(m, &c, &ps, &l));
    if (!l) { tk_model_free(m); return; }
    const tk_peft *p = tk_lora_peft(l);
    float a[16 * 40], b[16 * 40];
    tiny_logits(m, NULL, a);
    tiny_logits(m, p, b);
    double d = max_abs_diff(a, b, 16 * 40);
    printf("%s tiny: a fresh adapter changes the logits by %.2e\n", init_name(init), d);
    CHECK(d <= 1e-5, "%s: a fresh adapter changes the logits (%.3e)", init_name(init), d);
    const float *A0, *B0;
    CHECK(tk_lora_init_pair(l, 1, TK_LIN_K, &A0, &B0), "the residual pair is kept");
    tk_param *A, *B;
    CHECK(tk_lora_module(l, 1, TK_LIN_K, &A, &B) && !memcmp(A->w, A0, (size_t)A->n * sizeof(float)) &&
          !memcmp(B->w, B0, (size_t)B->n * sizeof(float)), "A, B start as A0, B0");
    perturb(&ps, 3);
    snprintf(what, sizeof what, "%s tiny linear", init_name(init));
    lin_fd_check(p, &ps, m, 1, TK_LIN_K, NULL, what);
    lin_fd_check(p, &ps, m, 0, TK_LIN_DOWN, NULL, what);
    snprintf(what, sizeof what, "%s tiny (permuted q/k)", init_name(init));
    merge_check(m, p, 2e-5, what);
    char dir[] = "/tmp/takumi_lora_init_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "temp dir");
    CHECK_OK(p->method->save_peft(p->state, m, dir, "tiny"));
    readback_check(m, p, dir, c.r, 2 * c.alpha, what); /* PEFT's conversion: 2 alpha */
    /* the GGUF adapter: llama.cpp's layout (alpha = scale x rank), read back on the same base */
    char gg[96];
    snprintf(gg, sizeof gg, "%s/adapter.gguf", dir);
    CHECK_OK(p->method->save_gguf(p->state, m, gg));
    snprintf(what, sizeof what, "%s tiny GGUF adapter", init_name(init));
    readback_check(m, p, gg, c.r, tk_lora_scale(l) * 2 * (float)c.r, what);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
    tk_lora_free(l);
    tk_params_free(&ps);
    /* with dropout: the adapter sees dropout(x), the residual x itself */
    c.dropout = 0.3f;
    ps = (tk_param_set){0};
    CHECK_OK(tk_lora_new(m, &c, &ps, &l));
    if (l) {
        perturb(&ps, 5);
        snprintf(what, sizeof what, "%s tiny linear, dropout 0.3", init_name(init));
        lin_fd_check(tk_lora_peft(l), &ps, m, 1, TK_LIN_Q, NULL, what);
    }
    tk_lora_free(l);
    tk_params_free(&ps);
    tk_model_free(m);
}

/* ---- stories260K against PEFT -------------------------------------------------------------- */

/* Signs of the rank components (+1/-1) that align A's rows with the reference's (PiSSA); all +1 for OLoRA. */
static void align_signs(const tk_param *A, const float *ref, int64_t r, bool any_sign, float *sg) {
    int64_t K = A->ne[0];
    for (int64_t i = 0; i < r; i++) {
        double dot = 0;
        for (int64_t k = 0; k < K; k++) dot += (double)A->w[i * K + k] * ref[i * K + k];
        sg[i] = any_sign && dot < 0 ? -1.0f : 1.0f;
    }
}

/* rel err of x (with component signs sg: rows of A, columns of B) against ref */
static double signed_err(const float *x, const float *ref, const tk_param *p, bool is_b, const float *sg, int64_t r) {
    double md = 0, mb = 0;
    for (int64_t j = 0; j < p->n; j++) {
        int64_t comp = is_b ? j % r : j / p->ne[0];
        md = fmax(md, fabs((double)sg[comp] * x[j] - ref[j]));
        mb = fmax(mb, fabs(ref[j]));
    }
    return md / (mb > 0 ? mb : 1);
}

static const char *const k_kept[] = {"layers.0.self_attn.q_proj", "layers.0.self_attn.k_proj", "layers.0.mlp.down_proj",
                                     "layers.4.self_attn.q_proj", "layers.4.self_attn.k_proj", "layers.4.mlp.down_proj"};

/* initial A, B and their gradients at the initialisation against PEFT's (kept modules) */
static void check_init_grads(tk_train_ctx *tc, const tk_safetensors *st, const char *method, bool pissa, bool grads) {
    tk_param_set *ps = tk_train_param_set(tc);
    double wi = 0, wg = 0;
    int n = 0;
    for (size_t k = 0; k < sizeof k_kept / sizeof k_kept[0]; k++) {
        char na[200], nb[200], key[256];
        snprintf(na, sizeof na, "base_model.model.model.%s.lora_A.weight", k_kept[k]);
        snprintf(nb, sizeof nb, "base_model.model.model.%s.lora_B.weight", k_kept[k]);
        tk_param *A = tk_params_find(ps, na), *B = tk_params_find(ps, nb);
        CHECK(A && B, "%s: module %s", method, k_kept[k]);
        if (!A || !B) continue;
        int64_t r = A->ne[1];
        float sg[64];
        snprintf(key, sizeof key, "%s.init.%s", method, na);
        const float *ra = fx_f32(st, key, A->n);
        snprintf(key, sizeof key, "%s.init.%s", method, nb);
        const float *rbv = fx_f32(st, key, B->n);
        if (!ra || !rbv || r > 64) continue;
        align_signs(A, ra, r, pissa, sg);
        wi = fmax(wi, fmax(signed_err(A->w, ra, A, false, sg, r), signed_err(B->w, rbv, B, true, sg, r)));
        if (grads) {
            snprintf(key, sizeof key, "%s.grad.%s", method, na);
            const float *ga = fx_f32(st, key, A->n);
            snprintf(key, sizeof key, "%s.grad.%s", method, nb);
            const float *gb = fx_f32(st, key, B->n);
            if (ga && gb) wg = fmax(wg, fmax(signed_err(A->g, ga, A, false, sg, r), signed_err(B->g, gb, B, true, sg, r)));
        }
        n++;
    }
    printf("  %s: initial A, B of %d modules: max rel err %.2e%s", method, n, wi, grads ? "" : "\n");
    if (grads) printf("; their gradients: max rel err %.2e\n", wg);
    CHECK(n == 6, "%s: %d modules compared", method, n);
    CHECK(wi <= 1e-4, "%s: the initial A/B differ from PEFT's (%.3e)", method, wi);
    CHECK(!grads || wg <= 1e-4, "%s: gradients differ from PEFT's (%.3e)", method, wg);
}

/* the residual base of layer 0 k_proj: W - s B0 A0 (HF row order) against PEFT's rewritten weight */
static void check_residual(tk_train_ctx *tc, const tk_safetensors *st, const char *method) {
    tk_lora *l = tk_train_lora(tc);
    tk_model *m = tk_train_model(tc);
    const tk_tensor_ref *w = tk_model_linear(m, 0, TK_LIN_K);
    const float *A0, *B0;
    CHECK(l && tk_lora_init_pair(l, 0, TK_LIN_K, &A0, &B0), "%s: residual pair", method);
    if (!l || !tk_lora_init_pair(l, 0, TK_LIN_K, &A0, &B0) || w->dtype != TK_F32) return;
    int64_t K = w->ne[0], N = w->ne[1], r = tk_lora_get_config(l)->r;
    char key[128];
    snprintf(key, sizeof key, "%s.residual.layers.0.self_attn.k_proj", method);
    const float *ref = fx_f32(st, key, N * K);
    float *res = malloc((size_t)(N * K) * sizeof(float));
    if (!ref || !res) { free(res); return; }
    memcpy(res, w->data, (size_t)(N * K) * sizeof(float));
    tk_sgemm(false, false, N, K, r, -tk_lora_scale(l), B0, r, A0, K, 1.0f, res, K);
    double e = rel_err(res, ref, N, K, 1);
    printf("  %s: residual base of layer 0 k_proj: max rel err %.2e\n", method, e);
    CHECK(e <= 1e-5, "%s: the residual base differs from PEFT's (%.3e)", method, e);
    free(res);
}

/* After training: the adapter written to a folder, applied on the original base, gives the trained logits. */
static void check_written(tk_train_ctx *tc, ref_batch *rb, const char *what) {
    int n_ads = 0;
    const tk_adapter_use *ads = tk_train_adapters(tc, &n_ads);
    tk_model *m = tk_train_model(tc);
    if (n_ads != 1) { CHECK(0, "one adapter"); return; }
    char dir[] = "/tmp/takumi_lora_init_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "temp dir");
    CHECK_OK(ads[0].peft->method->save_peft(ads[0].peft->state, m, dir, NULL));
    tk_adapter_handle *h = NULL;
    CHECK_OK(tk_adapter_apply(m, dir, &h));
    int64_t T = (int64_t)rb->B * rb->T, V = tk_model_get_config(m)->n_vocab;
    float *a = malloc((size_t)(T * V) * sizeof(float)), *b = malloc((size_t)(T * V) * sizeof(float));
    tk_forward *f = NULL;
    CHECK_OK(tk_forward_new(m, rb->B, rb->T, 0, &f));
    if (h && f && a && b) {
        CHECK_OK(tk_forward_set_adapters(f, ads, 1));
        CHECK_OK(tk_forward_run(f, &rb->b, NULL, T, a));
        tk_adapter_use u = {tk_adapter_handle_peft(h), 1.0f};
        CHECK_OK(tk_forward_set_adapters(f, &u, 1));
        CHECK_OK(tk_forward_run(f, &rb->b, NULL, T, b));
        double d = 0, mx = 0;
        for (int64_t i = 0; i < T * V; i++) { d = fmax(d, fabs(a[i] - b[i])); mx = fmax(mx, fabs(a[i])); }
        printf("  %s: written adapter (rank %d) on the original base vs the trained model: max abs logit diff %.2e (max |logit| %.2f)\n",
               what, tk_adapter_handle_rank(h), d, mx);
        CHECK(tk_adapter_handle_rank(h) == 2 * tk_lora_get_config(tk_train_lora(tc))->r, "%s: rank 2r", what);
        CHECK(d <= 1e-5 * mx, "%s: the written adapter gives other logits (%.3e)", what, d);
    }
    tk_forward_free(f);
    free(a); free(b);
    tk_adapter_detach(m, h);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
}

static void test_stories(ref_stories *s, tk_lora_init init, bool rslora) {
    const char *method = init == TK_LORA_INIT_PISSA ? "pissa" : "olora";
    char key[64], what[96];
    bool pissa = init == TK_LORA_INIT_PISSA;
    tk_train_ctx *tc = ref_lora_ctx(s->m, &s->rb, init, rslora, 0);
    if (!tc) return;
    snprintf(key, sizeof key, "%s_loss", method);
    double loss = mean_loss_grads(tc, &s->rb), ref = meta_num(s->st, key);
    printf("stories260K %s: loss at the initialisation %.7f (torch %.7f)\n", init_name(init), loss, ref);
    CHECK_NEAR(loss, ref, 1e-5 * ref);
    snprintf(key, sizeof key, "%s.logits", method);
    check_logits_key(tc, s->st, key, &s->rb, 64, 1e-5, init_name(init));
    check_init_grads(tc, s->st, method, pissa, true);
    check_residual(tc, s->st, method);
    double rl[32], gl[32];
    snprintf(key, sizeof key, "%s_losses", method);
    int n = meta_list(s->st, key, rl, 32);
    CHECK(n == (int)meta_num(s->st, "steps") + 1, "%s count %d", key, n);
    if (n > 1) {
        run_steps(tc, &s->rb, s->st, n - 1, gl);
        snprintf(what, sizeof what, "stories260K %s", init_name(init));
        check_curve(gl, rl, n, 2e-3, what);
        snprintf(key, sizeof key, "%s.final_logits", method);
        check_logits_key(tc, s->st, key, &s->rb, 64, 1e-3, "after 10 steps");
        check_written(tc, &s->rb, what);
    }
    tk_train_ctx_free(tc);
    /* the f32 GGUF container (llama.cpp's q/k row order): the same start, curve and trained logits */
    if (s->mg) {
        tk_train_ctx *tg = ref_lora_ctx(s->mg, &s->rb, init, rslora, 0);
        if (!tg) return;
        snprintf(key, sizeof key, "%s.logits", method);
        snprintf(what, sizeof what, "%s GGUF container", init_name(init));
        check_logits_key(tg, s->st, key, &s->rb, 64, 1e-5, what);
        if (n > 1) {
            run_steps(tg, &s->rb, s->st, n - 1, gl);
            check_curve(gl, rl, n, 2e-3, what);
            snprintf(key, sizeof key, "%s.final_logits", method);
            check_logits_key(tg, s->st, key, &s->rb, 64, 1e-3, "GGUF container after 10 steps");
            check_written(tg, &s->rb, what);
        }
        tk_train_ctx_free(tg);
    }
}

/* A quantized base: stories260K's linears of 64 inputs (q, k, v, o, gate, up) turned into Q4_1 in
 * memory (mq), and the same values dequantized as f32 weights (md). PiSSA on mq decomposes the
 * dequantized weight: A0/B0 bit-identical to those of md; a fresh adapter leaves mq's logits; after
 * 3 steps the written adapter on mq gives the trained logits. */
static void quantize_linears(tk_model *m, bool keep_q) {
    const tk_model_config *mc = tk_model_get_config(m);
    for (int32_t i = 0; i < mc->n_layers; i++)
        for (int w = 0; w < TK_LIN_COUNT; w++) {
            tk_tensor_ref *t = (tk_tensor_ref *)tk_model_linear(m, i, (tk_linear_id)w);
            if (!t->data || t->dtype != TK_F32 || t->ne[0] % 32) continue;
            int64_t n = t->ne[0] * t->ne[1];
            size_t nb = 0;
            CHECK_OK(tk_dtype_nbytes(TK_Q4_1, n, &nb));
            void *q = malloc(nb);
            float *f = malloc((size_t)n * sizeof(float));
            if (!q || !f) { free(q); free(f); CHECK(0, "memory"); return; }
            CHECK_OK(tk_quantize(TK_Q4_1, t->data, q, n));
            CHECK_OK(tk_dequantize(TK_Q4_1, q, f, n));
            if (keep_q) {
                free(f);
                CHECK_OK(tk_model_own(m, q, nb));
                t->data = q;
                t->dtype = TK_Q4_1;
                t->nbytes = nb;
            } else {
                free(q);
                CHECK_OK(tk_model_own(m, f, (size_t)n * sizeof(float)));
                t->data = f;
            }
        }
}

static void test_quantized(ref_stories *s) {
    const char *mp = tk_test_shared("models/stories260K/hf");
    tk_model_params mpar = tk_model_default_params();
    mpar.tokenizer = TK_TOKENIZER_NONE;
    tk_model *mq = NULL, *md = NULL;
    CHECK_OK(tk_model_load(mp, &mpar, &mq));
    CHECK_OK(tk_model_load(mp, &mpar, &md));
    if (!mq || !md) { tk_model_free(mq); tk_model_free(md); return; }
    quantize_linears(mq, true);
    quantize_linears(md, false);
    CHECK(tk_model_linear(mq, 2, TK_LIN_Q)->dtype == TK_Q4_1 && tk_model_linear(mq, 2, TK_LIN_DOWN)->dtype == TK_F32, "Q4_1 linears");
    tk_train_ctx *tq = ref_lora_ctx(mq, &s->rb, TK_LORA_INIT_PISSA, false, 0), *td = ref_lora_ctx(md, &s->rb, TK_LORA_INIT_PISSA, false, 0);
    if (tq && td) {
        tk_param_set *pq = tk_train_param_set(tq), *pd = tk_train_param_set(td);
        bool same = pq->n == pd->n;
        for (int64_t i = 0; same && i < pq->n; i++) same = !memcmp(pq->p[i].w, pd->p[i].w, (size_t)pq->p[i].n * sizeof(float));
        CHECK(same, "PiSSA on the Q4_1 base differs from PiSSA on its dequantized weights");
        /* a fresh adapter: the quantized base's own logits (its residual is Q(W) - s B0 A0, the adapter s B0 A0) */
        int64_t T = (int64_t)s->rb.B * s->rb.T, V = tk_model_get_config(mq)->n_vocab;
        float *a = malloc((size_t)(T * V) * sizeof(float)), *b = malloc((size_t)(T * V) * sizeof(float));
        tk_forward *f = NULL;
        CHECK_OK(tk_forward_new(mq, s->rb.B, s->rb.T, 0, &f));
        int n_ads = 0;
        const tk_adapter_use *ads = tk_train_adapters(tq, &n_ads);
        if (f && a && b && n_ads == 1) {
            CHECK_OK(tk_forward_run(f, &s->rb.b, NULL, T, a));
            CHECK_OK(tk_forward_set_adapters(f, ads, 1));
            CHECK_OK(tk_forward_run(f, &s->rb.b, NULL, T, b));
            double d = 0, mx = 0;
            for (int64_t i = 0; i < T * V; i++) { d = fmax(d, fabs(a[i] - b[i])); mx = fmax(mx, fabs(a[i])); }
            printf("PiSSA on a Q4_1 base: A0/B0 equal those of its dequantized f32 weights; a fresh adapter moves the logits by %.2e "
                   "(max |logit| %.2f)\n", d, mx);
            CHECK(d <= 1e-5 * mx, "Q4_1: a fresh adapter changes the logits (%.3e)", d);
        }
        tk_forward_free(f);
        free(a); free(b);
        double l[4];
        run_steps(tq, &s->rb, s->st, 3, l);
        CHECK(l[3] < l[0], "Q4_1 PiSSA: 3 steps did not lower the loss (%.4f -> %.4f)", l[0], l[3]);
        check_written(tq, &s->rb, "PiSSA on a Q4_1 base");
    }
    tk_train_ctx_free(tq);
    tk_train_ctx_free(td);
    tk_model_free(mq);
    tk_model_free(md);
}

/* A resume recomputes A0/B0: the decompositions of a SmolLM2-sized weight (576 x 1536, the threaded
 * LAPACK/BLAS paths) are bit-identical from call to call; and they are what they claim: PiSSA's
 * s B0 A0 is the best rank-r approximation (the residual's norm^2 = the sum of the other singular
 * values^2 = ||W||^2 - sum of the top r), OLoRA's B0 has orthonormal columns. */
static void test_decompositions(void) {
    const int64_t N = 576, K = 1536, r = 8;
    float *W = malloc((size_t)(N * K) * sizeof(float)), *A[2], *B[2];
    for (int i = 0; i < 2; i++) { A[i] = malloc((size_t)(r * K) * sizeof(float)); B[i] = malloc((size_t)(N * r) * sizeof(float)); }
    tk_rng rng;
    tk_rng_seed(&rng, 77);
    for (int64_t i = 0; i < N * K; i++) W[i] = tk_rng_normal(&rng) * 0.02f;
    for (int64_t i = 0; i < r; i++) W[i * K + 3 * i] += 10.0f / (float)(1 + i); /* strong, distinct directions */
    const float s = 2.0f;
    for (int m = 0; m < 2; m++) {
        tk_lora_init init = m ? TK_LORA_INIT_OLORA : TK_LORA_INIT_PISSA;
        if (!tk_lora_init_available(init)) continue;
        for (int i = 0; i < 2; i++)
            CHECK_OK(m ? tk_lora_olora(W, N, K, r, s, A[i], B[i]) : tk_lora_pissa(W, N, K, r, s, A[i], B[i]));
        CHECK(!memcmp(A[0], A[1], (size_t)(r * K) * sizeof(float)) && !memcmp(B[0], B[1], (size_t)(N * r) * sizeof(float)),
              "%s of a 576 x 1536 weight is not bit-identical from call to call", init_name(init));
        if (!m) {
            /* ||W - s B0 A0||^2 = ||W||^2 - ||s B0 A0||^2 for the best rank-r approximation (orthogonal parts) */
            double w2 = 0, a2 = 0, r2 = 0;
            float *P = calloc((size_t)(N * K), sizeof(float));
            tk_sgemm(false, false, N, K, r, s, B[0], r, A[0], K, 0.0f, P, K);
            for (int64_t i = 0; i < N * K; i++) { w2 += (double)W[i] * W[i]; a2 += (double)P[i] * P[i]; r2 += ((double)W[i] - P[i]) * ((double)W[i] - P[i]); }
            printf("PiSSA 576 x 1536: ||W||^2 %.4f = ||s B0 A0||^2 %.4f + ||residual||^2 %.4f (off by %.1e)\n", w2, a2, r2, fabs(w2 - a2 - r2));
            CHECK(fabs(w2 - a2 - r2) <= 1e-4 * w2, "PiSSA: the residual is not orthogonal to the rank-r part");
            free(P);
            /* sigma_i = s ||A0 row i||^2, descending, and sigma_1 = the largest singular value (power iteration) */
            double sg[8], prev = INFINITY;
            bool desc = true;
            for (int64_t i = 0; i < r; i++) {
                double q = 0;
                for (int64_t k = 0; k < K; k++) q += (double)A[0][i * K + k] * A[0][i * K + k];
                sg[i] = s * q;
                desc = desc && sg[i] <= prev;
                prev = sg[i];
            }
            double *v = malloc((size_t)K * sizeof(double)), *u = malloc((size_t)N * sizeof(double)), lam = 0;
            for (int64_t k = 0; k < K; k++) v[k] = 1.0 / sqrt((double)K);
            for (int it = 0; it < 300; it++) {
                for (int64_t n = 0; n < N; n++) { double d = 0; for (int64_t k = 0; k < K; k++) d += (double)W[n * K + k] * v[k]; u[n] = d; }
                double nv = 0;
                for (int64_t k = 0; k < K; k++) { double d = 0; for (int64_t n = 0; n < N; n++) d += (double)W[n * K + k] * u[n]; v[k] = d; nv += d * d; }
                nv = sqrt(nv);
                lam = sqrt(nv);
                for (int64_t k = 0; k < K; k++) v[k] /= nv;
            }
            printf("PiSSA 576 x 1536: singular values %.4f %.4f ... %.4f (descending: %s), power iteration %.4f\n", sg[0], sg[1], sg[r - 1],
                   desc ? "yes" : "no", lam);
            CHECK(desc && fabs(sg[0] - lam) <= 1e-5 * lam, "PiSSA: A0 does not hold the top singular values");
            free(v); free(u);
        } else {
            double worst = 0;
            for (int64_t i = 0; i < r; i++)
                for (int64_t j = 0; j < r; j++) {
                    double d = 0;
                    for (int64_t n = 0; n < N; n++) d += (double)B[0][n * r + i] * B[0][n * r + j];
                    worst = fmax(worst, fabs(d - (i == j)));
                }
            printf("OLoRA 576 x 1536: Q_r's columns orthonormal within %.1e\n", worst);
            CHECK(worst <= 1e-5, "OLoRA: B0 = Q[:, :r] is not orthonormal (%.2e)", worst);
        }
    }
    free(W);
    for (int i = 0; i < 2; i++) { free(A[i]); free(B[i]); }
}

/* An adapter PEFT saved without its conversion (init_lora_weights "pissa"/"olora" in the config): PEFT loads
 * it by re-running the initialisation on the base it is given, and so does takumi (A0, B0 from the
 * model's weights, the file's A and B): the logits of PeftModel.from_pretrained on the original base,
 * on the HF folder and on the GGUF container (permuted q/k rows). */
static void test_unconverted(ref_stories *s, const char *method) {
    char dir[128], key[64], what[96];
    snprintf(dir, sizeof dir, "tests/fixtures/train/peft_%s_unconverted", method);
    snprintf(key, sizeof key, "%s.unconverted_logits", method);
    tk_model *ms[2] = {s->m, s->mg};
    for (int i = 0; i < 2; i++) {
        if (!ms[i]) continue;
        tk_adapter_handle *h = NULL;
        CHECK_OK(tk_adapter_apply(ms[i], dir, &h));
        if (!h) continue;
        int64_t T = (int64_t)s->rb.B * s->rb.T, V = tk_model_get_config(ms[i])->n_vocab;
        const float *ref = fx_f32(s->st, key, T * 64);
        float *lg = malloc((size_t)(T * V) * sizeof(float));
        tk_forward *f = NULL;
        CHECK_OK(tk_forward_new(ms[i], s->rb.B, s->rb.T, 0, &f));
        tk_adapter_use u = {tk_adapter_handle_peft(h), 1.0f};
        if (f && ref && lg && tk_forward_set_adapters(f, &u, 1) == TK_OK && tk_forward_run(f, &s->rb.b, NULL, T, lg) == TK_OK) {
            double md = 0, mb = 0;
            for (int64_t t = 0; t < T; t++)
                for (int64_t j = 0; j < 64; j++) { md = fmax(md, fabs(lg[t * V + j] - ref[t * 64 + j])); mb = fmax(mb, fabs(ref[t * 64 + j])); }
            snprintf(what, sizeof what, "PEFT's unconverted %s folder on the %s", method, i ? "GGUF container" : "HF folder");
            printf("%s: max abs logit diff %.2e vs PeftModel.from_pretrained (max |logit| %.2f)\n", what, md, mb);
            CHECK(md <= 1e-5 * mb, "%s: logits differ from PEFT's (%.3e)", what, md);
        }
        tk_forward_free(f);
        free(lg);
        tk_adapter_detach(ms[i], h);
    }
}

/* init_lora_weights that PEFT re-runs randomly or from data on loading ("pissa_niter_4", "corda", "loftq"): refused, naming the conversion */
static void test_unconverted_refused(void) {
    static const char *const bad[] = {"pissa_niter_4", "corda", "loftq", "lora_ga"};
    FILE *f = fopen("tests/fixtures/train/peft_pissa_unconverted/adapter_config.json", "rb");
    CHECK(f != NULL, "unconverted fixture");
    if (!f) return;
    static char text[8192];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    char *at = strstr(text, "\"pissa\"");
    CHECK(at != NULL, "the fixture's init_lora_weights");
    if (!at) return;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char dir[] = "/tmp/takumi_lora_init_XXXXXX", path[96];
        CHECK(mkdtemp(dir) != NULL, "temp dir");
        snprintf(path, sizeof path, "%s/adapter_config.json", dir);
        FILE *o = fopen(path, "wb");
        if (!o) { CHECK(0, "write %s", path); continue; }
        fprintf(o, "%.*s\"%s\"%s", (int)(at - text), text, bad[i], at + strlen("\"pissa\""));
        fclose(o);
        tk_adapter *ad = NULL;
        CHECK_ERR(tk_adapter_load(dir, &ad), TK_ERR_UNSUPPORTED);
        CHECK(!ad && strstr(tk_last_error(), bad[i]) && strstr(tk_last_error(), "path_initial_model_for_weight_conversion"),
              "init_lora_weights %s: %s", bad[i], tk_last_error());
        tk_adapter_free(ad);
        remove(path);
        rmdir(dir);
    }
}

static void refusals(void) {
    tk_model *m = tiny_llama((tiny_opts){.interleaved = 1, .seed = 2});
    if (!m) { CHECK(0, "tiny model"); return; }
    tk_param_set ps = {0};
    tk_lora_config c = tk_lora_default_config();
    c.init = TK_LORA_INIT_OLORA;
    c.r = 9; /* k_proj is 8 x 16 */
    tk_lora *l = NULL;
    CHECK_ERR(tk_lora_new(m, &c, &ps, &l), TK_ERR_ARG);
    CHECK(!l && strstr(tk_last_error(), "rank") && strstr(tk_last_error(), "k_proj"), "message: %s", tk_last_error());
    tk_params_free(&ps);
    if (!tk_lora_init_available(TK_LORA_INIT_PISSA)) { /* a build without LAPACK says so */
        c.init = TK_LORA_INIT_PISSA;
        c.r = 2;
        ps = (tk_param_set){0};
        CHECK_ERR(tk_lora_new(m, &c, &ps, &l), TK_ERR_UNSUPPORTED);
        CHECK(!l && strstr(tk_last_error(), "OpenBLAS"), "message: %s", tk_last_error());
        tk_params_free(&ps);
    }
    c.r = 2;
    c.init = TK_LORA_INIT_OLORA;
    tk_dora *d = NULL;
    ps = (tk_param_set){0};
    CHECK_ERR(tk_dora_new(m, &c, &ps, &d), TK_ERR_UNSUPPORTED);
    CHECK(!d && strstr(tk_last_error(), "PiSSA/OLoRA"), "message: %s", tk_last_error());
    tk_params_free(&ps);
    tk_model_free(m);
    /* options: pissa/olora accepted for LoRA, refused for DoRA naming the option; unknown names refused */
    tk_trainer_config tc = tk_trainer_config_default();
    CHECK_OK(tk_trainer_config_set(&tc, "lora-init", "pissa"));
    CHECK(tc.lora_init == TK_LORA_INIT_PISSA, "pissa stored");
    CHECK_OK(tk_trainer_config_check_method(&tc));
    CHECK_OK(tk_trainer_config_set(&tc, "lora-init", "olora"));
    CHECK(tc.lora_init == TK_LORA_INIT_OLORA, "olora stored");
    CHECK_OK(tk_trainer_config_set(&tc, "method", "dora"));
    CHECK(tk_trainer_config_check_method(&tc) != TK_OK && strstr(tk_last_error(), "--lora-init olora"), "dora + olora: %s", tk_last_error());
    CHECK(tk_trainer_config_set(&tc, "lora-init", "svd") != TK_OK, "--lora-init svd accepted");
    tk_trainer_config_free(&tc);
}

int main(int argc, char **argv) {
    g_verbose = argc > 1 && !strcmp(argv[1], "-v");
    tk_set_threads(2);
    (void)roundtrip_check; /* peft_check.h's exact round trip: the converted file differs by rounding (readback_check) */
    refusals();
    test_unconverted_refused();
    test_decompositions();
    test_tiny(TK_LORA_INIT_OLORA);
    if (tk_lora_init_available(TK_LORA_INIT_PISSA)) test_tiny(TK_LORA_INIT_PISSA);
    else printf("SKIP PiSSA: built without LAPACK (BLAS=0)\n");
    ref_stories s;
    if (ref_stories_open("tests/fixtures/train/stories260k_lora_init.safetensors", &s)) {
        if (tk_lora_init_available(TK_LORA_INIT_PISSA)) test_stories(&s, TK_LORA_INIT_PISSA, false);
        test_stories(&s, TK_LORA_INIT_OLORA, true);
        if (tk_lora_init_available(TK_LORA_INIT_PISSA)) test_quantized(&s);
        if (tk_lora_init_available(TK_LORA_INIT_PISSA)) test_unconverted(&s, "pissa");
        test_unconverted(&s, "olora");
        ref_stories_close(&s);
    }
    return tk_test_done("test_lora_init");
}
