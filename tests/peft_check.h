/* Checks shared by the tests of PEFT methods that act on linears (DoRA, IA3) on the tiny
 * in-memory Llama (tiny_llama.h): one linear's backward against central finite differences
 * (dropout masks fixed by the step counter), identity of a fresh adapter, merge = apply, and
 * a PEFT folder written and read back giving the same logits. */
#ifndef TK_TESTS_PEFT_CHECK_H
#define TK_TESTS_PEFT_CHECK_H
#include "test.h"
#include "tiny_llama.h"
#include "takumi/peft.h"
#include "peft/adapter_io.h"
#include "backend/backend.h"

#define CHECK_ERR(expr, code) do { tk_status e_ = (expr); CHECK(e_ == (code), "%s returned %s, expected %s (%s)", #expr, \
                                         tk_status_str(e_), tk_status_str(code), tk_last_error()); } while (0)

typedef struct lin_ctx {
    const tk_peft *p;
    tk_model *m;
    int32_t layer;
    tk_linear_id which;
    const float *x, *c;   /* input [n x K], loss weights [n x N] */
    int64_t n;
    tk_scratch s;
    float *y;
} lin_ctx;

/* L = sum c ⊙ (x W^T + b, then the adapter's training forward). */
static double lin_loss(void *ctx) {
    lin_ctx *l = ctx;
    const tk_tensor_ref *w = tk_model_linear(l->m, l->layer, l->which);
    int64_t N = w->ne[1];
    tk_matmul_ex(l->y, l->x, w, l->n, false, TK_MATMUL_EXACT);
    const tk_layer_weights *lw = &tk_model_weights(l->m)->layers[l->layer];
    const tk_tensor_ref *b = l->which == TK_LIN_Q ? &lw->bq : l->which == TK_LIN_K ? &lw->bk : l->which == TK_LIN_V ? &lw->bv : NULL;
    if (b && b->data)
        for (int64_t t = 0; t < l->n; t++)
            for (int64_t j = 0; j < N; j++) l->y[t * N + j] += ((const float *)b->data)[j];
    tk_peft_call call = {.scale = 1.0f, .training = true, .scratch = &l->s};
    CHECK_OK(l->p->method->linear_fwd(l->p->state, &call, l->layer, l->which, w, l->x, l->y, l->n));
    double s = 0;
    for (int64_t i = 0; i < l->n * N; i++) s += (double)l->c[i] * l->y[i];
    return s;
}

/* The adapter's gradients on (layer, which) — its parameters (every tensor in ps whose values
 * change the loss) and the input — against central differences, in training mode with step
 * counter 7 (the same dropout masks every evaluation). hold (may be NULL) is called with true
 * after the first forward and with false at the end (DoRA: the norms held as PEFT detaches them). */
static void lin_fd_check(const tk_peft *p, tk_param_set *ps, tk_model *m, int32_t layer, tk_linear_id which, void (*hold)(const tk_peft *, bool),
                         const char *what) {
    const tk_tensor_ref *w = tk_model_linear(m, layer, which);
    int64_t K = w->ne[0], N = w->ne[1], n = 5;
    tk_rng rng;
    tk_rng_seed(&rng, 99);
    float *x = malloc((size_t)(n * K) * sizeof(float)), *c = malloc((size_t)(n * N) * sizeof(float));
    float *dx = calloc((size_t)(n * K), sizeof(float)), *y = malloc((size_t)(n * N) * sizeof(float));
    for (int64_t i = 0; i < n * K; i++) x[i] = tk_rng_normal(&rng);
    for (int64_t i = 0; i < n * N; i++) c[i] = tk_rng_normal(&rng);
    lin_ctx l = {.p = p, .m = m, .layer = layer, .which = which, .x = x, .c = c, .n = n, .y = y};
    p->method->set_training(p->state, true, 7);
    tk_params_zero_grad(ps);
    lin_loss(&l);
    if (hold) hold(p, true);
    tk_peft_call call = {.scale = 1.0f, .training = true, .scratch = &l.s};
    CHECK_OK(p->method->linear_bwd(p->state, &call, layer, which, w, x, c, dx, n));
    CHECK_OK(tk_matmul_dx(dx, c, w, n, true)); /* the base product's part */
    double worst = 0;
    /* the input */
    {
        double md = 0, mf = 0;
        for (int64_t i = 0; i < n * K; i += 3) {
            float x0 = x[i];
            x[i] = x0 + 1e-2f;
            double lp = lin_loss(&l);
            x[i] = x0 - 1e-2f;
            double lm = lin_loss(&l);
            x[i] = x0;
            double fd = (lp - lm) / ((double)(float)(x0 + 1e-2f) - (double)(float)(x0 - 1e-2f));
            md = fmax(md, fabs(fd - dx[i]));
            mf = fmax(mf, fabs(fd));
        }
        CHECK(md <= 2e-3 * mf, "%s: dx differs from finite differences (%.3e of %.3e)", what, md, mf);
        worst = fmax(worst, md / mf);
    }
    int n_checked = 0;
    for (int64_t i = 0; i < ps->n; i++) {
        tk_param *q = &ps->p[i];
        double md = 0, mf = 0;
        for (int64_t j = 0; j < q->n; j++) {
            float w0 = q->w[j];
            q->w[j] = w0 + 1e-2f;
            double lp = lin_loss(&l);
            q->w[j] = w0 - 1e-2f;
            double lm = lin_loss(&l);
            q->w[j] = w0;
            double fd = (lp - lm) / ((double)(float)(w0 + 1e-2f) - (double)(float)(w0 - 1e-2f));
            md = fmax(md, fabs(fd - q->g[j]));
            mf = fmax(mf, fabs(fd));
        }
        if (mf == 0) { CHECK(md == 0, "%s: %s has a gradient but no effect", what, q->name); continue; }
        n_checked++;
        CHECK(md <= 2e-3 * mf, "%s: %s gradient differs from finite differences (%.3e of %.3e)", what, q->name, md, mf);
        worst = fmax(worst, md / mf);
    }
    CHECK(n_checked >= 1, "%s: some parameter acts on layer %d %s", what, layer, tk_linear_name(which));
    printf("%s: layer %d %s, dx and %d parameter tensors, worst FD ratio %.2e\n", what, layer, tk_linear_name(which), n_checked, worst);
    if (hold) hold(p, false);
    p->method->set_training(p->state, false, 0);
    tk_scratch_free(&l.s);
    free(x); free(c); free(dx); free(y);
}

/* Logits of the tiny batch with the adapters given (n 0: the base). */
static void tiny_logits(tk_model *m, const tk_peft *p, float *out) {
    tiny_batch tb;
    tiny_batch_init(&tb, 2);
    tk_forward *f = NULL;
    CHECK_OK(tk_forward_new(m, 2, 8, 0, &f));
    tk_adapter_use u = {p, 1.0f};
    if (f && p) CHECK_OK(tk_forward_set_adapters(f, &u, 1));
    if (f) CHECK_OK(tk_forward_run(f, &tb.b, NULL, 16, out));
    tk_forward_free(f);
}

static double max_abs_diff(const float *a, const float *b, int64_t n) {
    double d = 0;
    for (int64_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

/* The adapter merged into a copy of every adapted f32 weight of m gives the logits of applying it. */
static void merge_check(tk_model *m, const tk_peft *p, double tol, const char *what) {
    float a[16 * 40], b[16 * 40];
    tiny_logits(m, p, a);
    const tk_model_config *c = tk_model_get_config(m);
    float *saved[8][TK_LIN_COUNT] = {{0}};
    for (int32_t l = 0; l < c->n_layers && l < 8; l++)
        for (int w = 0; w < TK_LIN_COUNT; w++) {
            tk_tensor_ref *t = (tk_tensor_ref *)tk_model_linear(m, l, (tk_linear_id)w);
            if (!p->method->has_linear(p->state, l, (tk_linear_id)w)) continue;
            size_t nb = (size_t)(t->ne[0] * t->ne[1]) * sizeof(float);
            saved[l][w] = malloc(nb);
            memcpy(saved[l][w], t->data, nb);
            CHECK_OK(p->method->merge_linear(p->state, l, (tk_linear_id)w, (float *)t->data, t->ne[1], t->ne[0], 1.0f));
        }
    tiny_logits(m, NULL, b);
    double d = max_abs_diff(a, b, 16 * 40);
    printf("%s: merged vs applied logits: max abs diff %.2e\n", what, d);
    CHECK(d <= tol, "%s: merged weights give other logits (%.3e)", what, d);
    for (int32_t l = 0; l < c->n_layers && l < 8; l++)
        for (int w = 0; w < TK_LIN_COUNT; w++)
            if (saved[l][w]) {
                tk_tensor_ref *t = (tk_tensor_ref *)tk_model_linear(m, l, (tk_linear_id)w);
                memcpy((float *)t->data, saved[l][w], (size_t)(t->ne[0] * t->ne[1]) * sizeof(float));
                free(saved[l][w]);
            }
}

/* save_peft into dir, read back through tk_adapter_load (the registry picks the kind), attached
 * to m: the same logits, and the kind's name is `kind`. */
static void roundtrip_check(tk_model *m, const tk_peft *p, const char *dir, const char *kind, const char *what) {
    float a[16 * 40], b[16 * 40];
    tiny_logits(m, p, a);
    CHECK_OK(p->method->save_peft(p->state, m, dir, "tiny"));
    tk_adapter *ad = NULL;
    CHECK_OK(tk_adapter_load(dir, &ad));
    if (!ad) return;
    tk_adapter_info info = tk_adapter_get_info(ad);
    CHECK(!strcmp(info.method, kind), "%s: the folder reads as %s (got %s)", what, kind, info.method);
    tk_param_set ps = {0};
    tk_peft *q = NULL;
    CHECK_OK(tk_adapter_attach_peft(ad, m, &ps, &q));
    if (q) {
        tiny_logits(m, q, b);
        double d = max_abs_diff(a, b, 16 * 40);
        printf("%s: written and read back: max abs logit diff %.2e\n", what, d);
        CHECK(d <= 1e-6, "%s: the PEFT folder read back gives other logits (%.3e)", what, d);
        ad->kind->destroy(q);
    }
    tk_params_free(&ps);
    tk_adapter_free(ad);
}
#endif
