/* Whole-model gradients against central finite differences on a tiny random Llama
 * (tests/tiny_llama.h): LoRA parameters (every element, with and without dropout),
 * full fine-tuning (sampled elements of every tensor; tied and untied heads), freezing
 * (no parameters below N, identical gradients above), in both RoPE conventions, with
 * q/k/v biases, on a batch with packing and padding. Also: gradient accumulation,
 * bit-identical reruns, and evaluation sums against the plain forward's logits. */
#include "test.h"
#include "tiny_llama.h"
#include "train/step.h"

static int g_verbose = 0;

static double loss_at(tk_train_ctx *tc, tiny_batch *tb, uint64_t counter) {
    tk_train_set_counter(tc, counter);
    double ls = 0, ws = 0;
    tk_status st = tk_train_step_fwd_bwd(tc, &tb->b, tb->target, tb->weight, 0.0f, &ls, &ws);
    if (st) fprintf(stderr, "fwd failed: %s\n", tk_last_error());
    return ls;
}

/* Compares analytic gradients (already in p->g) with central differences on up to
 * max_per elements of each parameter (all when max_per <= 0). Returns the worst error
 * ratio max|g - fd| / max|fd| over the tensors. */
static double check_fd(tk_train_ctx *tc, tiny_batch *tb, uint64_t counter, int max_per, const char *what) {
    tk_param_set *ps = tk_train_param_set(tc);
    /* copy the analytic gradients: the FD forwards accumulate (zero) gradients */
    float **g = calloc((size_t)ps->n, sizeof *g);
    for (int64_t i = 0; i < ps->n; i++) {
        g[i] = malloc((size_t)ps->p[i].n * sizeof(float));
        memcpy(g[i], ps->p[i].g, (size_t)ps->p[i].n * sizeof(float));
    }
    double worst = 0;
    const double eps = 4e-3;
    for (int64_t i = 0; i < ps->n; i++) {
        tk_param *p = &ps->p[i];
        int64_t n = p->n, step = 1;
        if (max_per > 0 && n > max_per) step = n / max_per;
        double maxdiff = 0, maxfd = 0, maxg = 0;
        for (int64_t j = (step > 1 ? (i * 7) % step : 0); j < n; j += step) {
            float w0 = p->w[j];
            p->w[j] = (float)(w0 + eps);
            double lp = loss_at(tc, tb, counter);
            p->w[j] = (float)(w0 - eps);
            double lm = loss_at(tc, tb, counter);
            p->w[j] = w0;
            /* the actual perturbation in float */
            double h = (double)(float)(w0 + eps) - (double)(float)(w0 - eps);
            double fd = (lp - lm) / h;
            double d = fabs(fd - g[i][j]);
            if (d > maxdiff) maxdiff = d;
            if (fabs(fd) > maxfd) maxfd = fabs(fd);
            if (fabs(g[i][j]) > maxg) maxg = fabs(g[i][j]);
        }
        double ratio = maxdiff / (maxfd > 1e-6 ? maxfd : 1e-6);
        if (g_verbose || ratio > 2e-2)
            printf("  %-70s max|g| %.3e max|fd| %.3e max diff %.2e (ratio %.2e)\n", p->name, maxg, maxfd, maxdiff, ratio);
        CHECK(ratio <= 5e-3, "%s: %s gradient differs from finite differences (ratio %.3e)", what, p->name, ratio);
        CHECK(maxfd > 1e-6, "%s: %s has no gradient at all (the test would prove nothing)", what, p->name);
        if (ratio > worst) worst = ratio;
    }
    for (int64_t i = 0; i < ps->n; i++) {
        memcpy(ps->p[i].g, g[i], (size_t)ps->p[i].n * sizeof(float));
        free(g[i]);
    }
    free(g);
    return worst;
}

/* Analytic gradients at counter c: zero, one fwd_bwd with grad_scale 1. */
static double grads_at(tk_train_ctx *tc, tiny_batch *tb, uint64_t c) {
    tk_params_zero_grad(tk_train_param_set(tc));
    tk_train_set_counter(tc, c);
    double ls = 0, ws = 0;
    CHECK_OK(tk_train_step_fwd_bwd(tc, &tb->b, tb->target, tb->weight, 1.0f, &ls, &ws));
    return ls;
}

/* Gives B random values so that dA is not trivially zero. */
static void randomize_lora_B(tk_train_ctx *tc, uint64_t seed) {
    tk_rng rng;
    tk_rng_seed(&rng, seed);
    tk_param_set *ps = tk_train_param_set(tc);
    for (int64_t i = 0; i < ps->n; i++)
        if (strstr(ps->p[i].name, "lora_B"))
            for (int64_t j = 0; j < ps->p[i].n; j++) ps->p[i].w[j] = 0.3f * tk_rng_normal(&rng);
}

static void test_lora(tiny_opts o, float dropout, bool rslora, int freeze, bool keep_att) {
    char what[160];
    snprintf(what, sizeof what, "lora(interleaved %d, bias %d, tied %d, dropout %.2f, rslora %d, freeze %d, att %d)", o.interleaved,
             o.bias, o.tied, (double)dropout, rslora, freeze, keep_att);
    tk_model *m = tiny_llama(o);
    CHECK(m != NULL, "tiny model");
    if (!m) return;
    tk_train_params p = tk_train_default_params();
    p.method = TK_TRAIN_LORA;
    p.lora.r = 2;
    p.lora.alpha = 3.0f;
    p.lora.dropout = dropout;
    p.lora.rslora = rslora;
    p.lora.seed = 11;
    p.freeze_layers = freeze;
    p.max_rows = 2;
    p.max_cols = 8;
    p.keep_att_probs = keep_att;
    tk_train_ctx *tc = NULL;
    CHECK_OK(tk_train_ctx_new(m, &p, &tc));
    if (!tc) { tk_model_free(m); return; }
    tk_param_set *ps = tk_train_param_set(tc);
    int nl = m->cfg.n_layers - freeze;
    CHECK(ps->n == (int64_t)nl * 7 * 2, "%s: %lld params, expected %d", what, (long long)ps->n, nl * 14);
    for (int64_t i = 0; i < ps->n; i++) {
        int layer = -1;
        sscanf(ps->p[i].name, "base_model.model.model.layers.%d.", &layer);
        CHECK(layer >= freeze, "%s: adapter %s below the frozen layers", what, ps->p[i].name);
    }
    randomize_lora_B(tc, 5);
    tiny_batch tb;
    tiny_batch_init(&tb, 3);
    grads_at(tc, &tb, 7);
    double worst = check_fd(tc, &tb, 7, 0, what);
    printf("%s: worst FD ratio %.2e\n", what, worst);
    /* the adapter belongs to the training context's workspace, not to the model: another
     * forward on m meanwhile sees the bare base (equal to a fresh model's logits) */
    tk_model *fresh = tiny_llama(o);
    float lm[16 * 40], lf[16 * 40];
    tk_forward *f1 = NULL, *f2 = NULL;
    CHECK_OK(tk_forward_new(m, 2, 8, 0, &f1));
    CHECK_OK(tk_forward_new(fresh, 2, 8, 0, &f2));
    if (f1 && f2) {
        CHECK_OK(tk_forward_run(f1, &tb.b, NULL, 16, lm));
        CHECK_OK(tk_forward_run(f2, &tb.b, NULL, 16, lf));
        CHECK(!memcmp(lm, lf, sizeof lm), "%s: the base model is untouched by the LoRA context", what);
    }
    tk_forward_free(f1);
    tk_forward_free(f2);
    tk_model_free(fresh);
    tk_train_ctx_free(tc);
    tk_model_free(m);
}

static void test_full(tiny_opts o, int freeze, bool keep_att) {
    char what[160];
    snprintf(what, sizeof what, "full(interleaved %d, bias %d, tied %d, freeze %d, att %d)", o.interleaved, o.bias, o.tied, freeze,
             keep_att);
    tk_model *m = tiny_llama(o);
    if (!m) { CHECK(0, "tiny model"); return; }
    const void *orig_q = m->w.layers[0].wq.data;
    tk_train_params p = tk_train_default_params();
    p.method = TK_TRAIN_FULL;
    p.freeze_layers = freeze;
    p.max_rows = 2;
    p.max_cols = 8;
    p.keep_att_probs = keep_att;
    tk_train_ctx *tc = NULL;
    CHECK_OK(tk_train_ctx_new(m, &p, &tc));
    if (!tc) { tk_model_free(m); return; }
    tk_param_set *ps = tk_train_param_set(tc);
    /* expected parameter count: layers >= freeze (9 tensors + 3 biases), final norm, embedding/head */
    int per = 9 + (o.bias ? 3 : 0), nl = m->cfg.n_layers - freeze;
    int expect = nl * per + 1 + (freeze == 0 ? 1 : 0) + (o.tied ? 0 : 1);
    CHECK(ps->n == expect, "%s: %lld params, expected %d", what, (long long)ps->n, expect);
    CHECK(tk_params_find(ps, "model.norm.weight") != NULL, "%s: final norm trainable", what);
    CHECK((tk_params_find(ps, "model.embed_tokens.weight") != NULL) == (freeze == 0), "%s: embedding trainable iff no freeze", what);
    CHECK((tk_params_find(ps, "lm_head.weight") != NULL) == !o.tied, "%s: separate head param iff untied", what);
    CHECK((tk_params_find(ps, "model.layers.0.self_attn.q_proj.weight") != NULL) == (freeze == 0), "%s: layer 0 params iff no freeze", what);
    if (o.bias) CHECK(tk_params_find(ps, "model.layers.1.self_attn.k_proj.bias") != NULL, "%s: biases trainable", what);
    tiny_batch tb;
    tiny_batch_init(&tb, 4);
    grads_at(tc, &tb, 0);
    double worst = check_fd(tc, &tb, 0, 24, what);
    printf("%s: worst FD ratio %.2e\n", what, worst);
    tk_train_ctx_free(tc);
    CHECK(m->w.layers[0].wq.data == orig_q, "%s: weight refs restored at free", what);
    tk_model_free(m);
}

/* freeze N gives exactly the gradients of the unfrozen run for every parameter above N. */
static void test_freeze_equal(void) {
    tiny_opts o = {.interleaved = 1, .bias = true, .tied = false, .layers = 3, .seed = 21};
    tk_model *m = tiny_llama(o);
    if (!m) { CHECK(0, "tiny model"); return; }
    tiny_batch tb;
    tiny_batch_init(&tb, 5);
    tk_train_params p = tk_train_default_params();
    p.method = TK_TRAIN_FULL;
    p.max_rows = 2;
    p.max_cols = 8;
    tk_train_ctx *a = NULL, *b = NULL;
    CHECK_OK(tk_train_ctx_new(m, &p, &a));
    if (!a) { tk_model_free(m); return; }
    double la = grads_at(a, &tb, 0);
    tk_param_set *pa = tk_train_param_set(a);
    int64_t n = pa->n;
    char (*names)[160] = malloc((size_t)n * sizeof *names);
    float **ga = malloc((size_t)n * sizeof *ga);
    for (int64_t i = 0; i < n; i++) {
        memcpy(names[i], pa->p[i].name, 160);
        ga[i] = malloc((size_t)pa->p[i].n * sizeof(float));
        memcpy(ga[i], pa->p[i].g, (size_t)pa->p[i].n * sizeof(float));
    }
    tk_train_ctx_free(a);
    p.freeze_layers = 2;
    CHECK_OK(tk_train_ctx_new(m, &p, &b));
    if (b) {
        double lb = grads_at(b, &tb, 0);
        CHECK(la == lb, "freeze: same loss %.17g vs %.17g", la, lb);
        tk_param_set *pb = tk_train_param_set(b);
        int64_t matched = 0;
        for (int64_t i = 0; i < n; i++) {
            tk_param *q = tk_params_find(pb, names[i]);
            int layer = -1;
            sscanf(names[i], "model.layers.%d.", &layer);
            if (!q) {
                CHECK((layer >= 0 && layer < 2) || !strcmp(names[i], "model.embed_tokens.weight"), "freeze: %s missing", names[i]);
                continue;
            }
            matched++;
            CHECK(!memcmp(q->g, ga[i], (size_t)q->n * sizeof(float)), "freeze: %s gradient differs from the unfrozen run", names[i]);
        }
        CHECK(matched == pb->n, "freeze: %lld of %lld params matched", (long long)matched, (long long)pb->n);
        tk_train_ctx_free(b);
    }
    for (int64_t i = 0; i < n; i++) free(ga[i]);
    free(ga);
    free(names);
    tk_model_free(m);
}

/* Accumulation (two half-scaled calls = one call), bit-identical reruns, the dropout
 * counter, and tk_train_eval against the plain forward's logits. */
static void test_accum_eval(void) {
    tiny_opts o = {.interleaved = 0, .bias = false, .tied = true, .seed = 31};
    tk_model *m = tiny_llama(o);
    if (!m) { CHECK(0, "tiny model"); return; }
    tk_train_params p = tk_train_default_params();
    p.lora.r = 4;
    p.lora.dropout = 0.1f;
    p.max_rows = 2;
    p.max_cols = 8;
    tk_train_ctx *tc = NULL;
    CHECK_OK(tk_train_ctx_new(m, &p, &tc));
    if (!tc) { tk_model_free(m); return; }
    randomize_lora_B(tc, 9);
    tk_param_set *ps = tk_train_param_set(tc);
    tiny_batch tb;
    tiny_batch_init(&tb, 6);
    /* one call at scale 1 */
    grads_at(tc, &tb, 3);
    CHECK(tk_train_counter(tc) == 4, "counter advances per call");
    int64_t tot = ps->total, k = 0;
    float *g1 = malloc((size_t)tot * sizeof(float));
    for (int64_t i = 0; i < ps->n; i++) { memcpy(g1 + k, ps->p[i].g, (size_t)ps->p[i].n * sizeof(float)); k += ps->p[i].n; }
    /* rerun: bit-identical */
    grads_at(tc, &tb, 3);
    k = 0;
    bool same = true;
    for (int64_t i = 0; i < ps->n; i++) { same = same && !memcmp(g1 + k, ps->p[i].g, (size_t)ps->p[i].n * sizeof(float)); k += ps->p[i].n; }
    CHECK(same, "rerun with the same counter gives bit-identical gradients");
    /* another counter: another dropout mask, other gradients */
    grads_at(tc, &tb, 4);
    k = 0;
    same = true;
    for (int64_t i = 0; i < ps->n; i++) { same = same && !memcmp(g1 + k, ps->p[i].g, (size_t)ps->p[i].n * sizeof(float)); k += ps->p[i].n; }
    CHECK(!same, "a different dropout counter changes the gradients");
    /* two calls at scale 0.5 with the same counter accumulate to the same gradients */
    tk_params_zero_grad(ps);
    double ls = 0, ws = 0;
    for (int r = 0; r < 2; r++) {
        tk_train_set_counter(tc, 3);
        CHECK_OK(tk_train_step_fwd_bwd(tc, &tb.b, tb.target, tb.weight, 0.5f, &ls, &ws));
    }
    k = 0;
    double md = 0;
    for (int64_t i = 0; i < ps->n; i++)
        for (int64_t j = 0; j < ps->p[i].n; j++, k++) md = fmax(md, fabs(ps->p[i].g[j] - g1[k]) / (fabs(g1[k]) + 1e-6));
    CHECK(md < 1e-5, "accumulated half gradients equal the full gradient (max rel %.2e)", md);
    CHECK(ws > 0, "weights summed");
    free(g1);

    /* eval: loss and accuracy from the plain forward's logits (dropout off) */
    tk_eval_sums es = {0};
    CHECK_OK(tk_train_eval(tc, &tb.b, tb.target, tb.weight, &es));
    tk_forward *f = NULL;
    CHECK_OK(tk_forward_new(m, 2, 8, 0, &f));
    tk_adapter_use u = {tk_train_lora(tc) ? tk_lora_peft(tk_train_lora(tc)) : NULL, 1.0f};
    if (f && u.peft) CHECK_OK(tk_forward_set_adapters(f, &u, 1));
    float *logits = malloc(16 * 40 * sizeof(float));
    CHECK_OK(tk_forward_run(f, &tb.b, NULL, 16, logits));
    double lsum = 0, wsum = 0;
    int64_t nc = 0, nt = 0;
    for (int t = 0; t < 16; t++) {
        if (tb.target[t] < 0 || tb.weight[t] == 0) continue;
        const float *l = logits + t * 40;
        int am = 0;
        double mx = l[0], se = 0;
        for (int j = 1; j < 40; j++) { if (l[j] > l[am]) am = j; if (l[j] > mx) mx = l[j]; }
        for (int j = 0; j < 40; j++) se += exp(l[j] - mx);
        lsum += tb.weight[t] * (mx + log(se) - l[tb.target[t]]);
        wsum += tb.weight[t];
        nc += am == tb.target[t];
        nt++;
    }
    CHECK_NEAR(es.loss_sum, lsum, 1e-5 * fabs(lsum));
    CHECK_NEAR(es.weight_sum, wsum, 0);
    CHECK(es.n_correct == nc && es.n_tokens == nt, "eval accuracy %lld/%lld vs %lld/%lld", (long long)es.n_correct,
          (long long)es.n_tokens, (long long)nc, (long long)nt);
    free(logits);
    tk_forward_free(f);
    tk_train_ctx_free(tc);
    tk_model_free(m);
}

/* Activation recomputation gives bit-identical losses and gradients (LoRA with dropout, full). */
static void test_recompute(tk_train_method method, tiny_opts o) {
    tk_model *m = tiny_llama(o);
    if (!m) { CHECK(0, "tiny model"); return; }
    tiny_batch tb;
    tiny_batch_init(&tb, 12);
    tk_train_params p = tk_train_default_params();
    p.method = method;
    p.lora.r = 2;
    p.lora.alpha = 2;
    p.lora.dropout = 0.2f;
    p.max_rows = 2;
    p.max_cols = 8;
    float *g[2] = {NULL, NULL};
    double loss[2] = {0, 0};
    int64_t total = 0;
    for (int rc = 0; rc < 2; rc++) {
        p.recompute = rc == 1;
        tk_train_ctx *tc = NULL;
        CHECK_OK(tk_train_ctx_new(m, &p, &tc));
        if (!tc) break;
        if (method == TK_TRAIN_LORA) randomize_lora_B(tc, 3);
        loss[rc] = grads_at(tc, &tb, 5);
        tk_param_set *ps = tk_train_param_set(tc);
        total = ps->total;
        g[rc] = malloc((size_t)total * sizeof(float));
        int64_t k = 0;
        for (int64_t i = 0; i < ps->n; i++) { memcpy(g[rc] + k, ps->p[i].g, (size_t)ps->p[i].n * sizeof(float)); k += ps->p[i].n; }
        if (rc == 1) printf("recompute (%s): FD worst ratio %.2e\n", method == TK_TRAIN_LORA ? "lora" : "full",
                            check_fd(tc, &tb, 5, method == TK_TRAIN_LORA ? 0 : 8, "recompute"));
        tk_train_ctx_free(tc);
    }
    CHECK(loss[0] == loss[1], "recompute: same loss (%.17g vs %.17g)", loss[0], loss[1]);
    CHECK(g[0] && g[1] && !memcmp(g[0], g[1], (size_t)total * sizeof(float)), "recompute: bit-identical gradients");
    free(g[0]);
    free(g[1]);
    tk_model_free(m);
}

int main(int argc, char **argv) {
    g_verbose = argc > 1 && !strcmp(argv[1], "-v");
    for (int il = 0; il <= 1; il++) {
        tiny_opts o = {.interleaved = il, .bias = il == 0, .tied = il == 1, .seed = 100 + (uint64_t)il};
        test_lora(o, 0.0f, false, 0, false);
        test_full(o, 0, il == 1);
    }
    tiny_opts ob = {.interleaved = 1, .bias = true, .tied = false, .seed = 7};
    test_lora(ob, 0.2f, true, 0, true);
    test_lora(ob, 0.0f, false, 1, false);
    test_full(ob, 1, false);
    tiny_opts ot = {.interleaved = 0, .bias = false, .tied = true, .seed = 8};
    test_full(ot, 1, false);
    test_freeze_equal();
    test_accum_eval();
    test_recompute(TK_TRAIN_LORA, (tiny_opts){.interleaved = 1, .bias = true, .layers = 3, .seed = 41});
    test_recompute(TK_TRAIN_FULL, (tiny_opts){.interleaved = 0, .tied = true, .layers = 3, .seed = 42});
    return tk_test_done("test_backward");
}
