/* The generalised Jensen-Shannon distillation loss (objective/distill.h, TK_DISTILL_JSD):
 * its value and student gradients against a double reference and central finite
 * differences (several beta, temperatures, weights, chunk sizes), against TRL 1.16's
 * GKDTrainer.generalized_jsd_loss on stories260K-sized heads (fixture written by
 * tools/make_distill_jsd_reference.py), beta 0 / 1 as TRL's forward / reverse KL,
 * through the objective table, and its bad inputs. */
#include "test.h"
#include "core/core.h"
#include "ops/ops.h"
#include "objective/objective.h"
#include "objective/teacher.h"
#include "objective/distill.h"
#include "takumi/safetensors.h"

static tk_rng rng;

static float *randv(int64_t n, float scale) {
    float *v = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) v[i] = scale * tk_rng_normal(&rng);
    return v;
}
static double *tod(const float *a, int64_t n) {
    double *d = malloc((size_t)n * sizeof(double));
    for (int64_t i = 0; i < n; i++) d[i] = a[i];
    return d;
}
static tk_tensor_ref ref_f32(const float *w, int64_t C, int64_t V) {
    return (tk_tensor_ref){.name = "head", .dtype = TK_F32, .n_dims = 2, .ne = {C, V, 1, 1}, .data = w,
                           .nbytes = (size_t)(C * V) * sizeof(float)};
}
/* max |a - b| / max |b| */
static double rel_err(const float *a, const double *b, int64_t n) {
    double md = 0, mb = 0;
    for (int64_t i = 0; i < n; i++) { md = fmax(md, fabs(a[i] - b[i])); mb = fmax(mb, fabs(b[i])); }
    return md / (mb > 0 ? mb : 1);
}

/* ---- the double reference, written from TRL's formula ---- */
typedef struct ref {
    int64_t T, C, Ct, V, n;
    double *h, *w, *th, *tw;
    const int64_t *rows;
    const float *wt;
    double beta, tau;
} ref;

static void log_softmax_row(double *out, const double *x, const double *W, int64_t C, int64_t V, double tau) {
    double mx = -INFINITY;
    for (int64_t j = 0; j < V; j++) {
        double z = 0;
        for (int64_t c = 0; c < C; c++) z += x[c] * W[j * C + c];
        out[j] = z / tau;
        mx = fmax(mx, out[j]);
    }
    double se = 0;
    for (int64_t j = 0; j < V; j++) se += exp(out[j] - mx);
    for (int64_t j = 0; j < V; j++) out[j] -= mx + log(se);
}

/* sum_i w_i JSD_beta at rows[i] (beta 0: KL(p || q); 1: KL(q || p), as TRL) */
static double ref_loss(void *v) {
    ref *r = v;
    double *lq = malloc((size_t)r->V * sizeof(double)), *lp = malloc((size_t)r->V * sizeof(double)), L = 0;
    for (int64_t i = 0; i < r->n; i++) {
        int64_t t = r->rows[i];
        log_softmax_row(lq, r->h + t * r->C, r->w, r->C, r->V, r->tau);
        log_softmax_row(lp, r->th + t * r->Ct, r->tw, r->Ct, r->V, r->tau);
        double D = 0;
        for (int64_t j = 0; j < r->V; j++) {
            if (r->beta == 0) { D += exp(lp[j]) * (lp[j] - lq[j]); continue; }
            if (r->beta == 1) { D += exp(lq[j]) * (lq[j] - lp[j]); continue; }
            double m = (1 - r->beta) * exp(lq[j]) + r->beta * exp(lp[j]), lm = log(m);
            D += r->beta * exp(lp[j]) * (lp[j] - lm) + (1 - r->beta) * exp(lq[j]) * (lq[j] - lm);
        }
        L += (r->wt ? r->wt[t] : 1.0) * D;
    }
    free(lq);
    free(lp);
    return L;
}

static void fd_grad(double *g, double *x, int64_t n, ref *r) {
    const double eps = 1e-5;
    for (int64_t i = 0; i < n; i++) {
        double x0 = x[i];
        x[i] = x0 + eps; double a = ref_loss(r);
        x[i] = x0 - eps; double b = ref_loss(r);
        x[i] = x0;
        g[i] = (a - b) / (2 * eps);
    }
}

/* ---- value and gradient vs the reference and finite differences ---- */
static void check_fd(void) {
    const int64_t T = 11, C = 8, Ct = 6, V = 37;
    float *h = randv(T * C, 1.0f), *w = randv(V * C, 0.6f), *th = randv(T * Ct, 1.0f), *tw = randv(V * Ct, 0.6f);
    float *wt = malloc(T * sizeof(float));
    for (int64_t t = 0; t < T; t++) wt[t] = 0.5f + tk_rng_uniform(&rng);
    wt[4] = 0;
    int64_t rows[] = {10, 0, 3, 4, 7, 8, 10};   /* unsorted, one of weight 0, one repeated */
    const int64_t n = 7;
    tk_tensor_ref hw = ref_f32(w, C, V), thw = ref_f32(tw, Ct, V);
    tk_lm_head head = {&hw, 0.0f}, thead = {&thw, 0.0f};
    tk_teacher teacher = {.h = th, .head = &thead};
    ref r = {T, C, Ct, V, n, tod(h, T * C), tod(w, V * C), tod(th, T * Ct), tod(tw, V * Ct), rows, wt, 0, 0};
    double *gh = malloc(T * C * sizeof(double)), *gw = malloc(V * C * sizeof(double));
    float *dh = malloc(T * C * sizeof(float)), *dw = malloc(V * C * sizeof(float));
    float *dh2 = malloc(T * C * sizeof(float)), *dw2 = malloc(V * C * sizeof(float));
    const double betas[] = {0.5, 0.1, 0.9, 0.0, 1.0};
    const float taus[] = {1.0f, 2.0f, 0.8f, 1.5f, 1.0f};
    for (int k = 0; k < 5; k++) {
        tk_distill_params p = tk_distill_default_params();
        p.kind = TK_DISTILL_JSD;
        p.beta = (float)betas[k];
        p.temperature = taus[k];
        r.beta = p.beta;
        r.tau = p.temperature;
        double ls, ws;
        memset(dh, 0, T * C * sizeof(float));
        memset(dw, 0, V * C * sizeof(float));
        CHECK_OK(tk_distill_p(h, &head, &teacher, rows, n, T, wt, &p, 1.0f, &ls, &ws, dh, dw));
        double rl = ref_loss(&r), rw = 0;
        for (int64_t i = 0; i < n; i++) rw += wt[rows[i]];
        CHECK(fabs(ls - rl) <= 1e-5 * fabs(rl) && rl > 0, "jsd beta %g loss %.9g vs reference %.9g", betas[k], ls, rl);
        CHECK(fabs(ws - rw) <= 1e-6 * rw, "jsd weight sum %g vs %g", ws, rw);
        fd_grad(gh, r.h, T * C, &r);
        fd_grad(gw, r.w, V * C, &r);
        double eh = rel_err(dh, gh, T * C), ew = rel_err(dw, gw, V * C);
        printf("jsd beta %g tau %g vs finite differences: loss %.9f, dh %.2e, dw %.2e\n", betas[k], (double)taus[k], ls, eh, ew);
        CHECK(eh < 1e-5 && ew < 1e-5, "jsd beta %g gradient vs FD: dh %g dw %g", betas[k], eh, ew);
        /* chunks of 1 and 3 rows and grad_scale 0.5: the same sums, half the gradients */
        const int64_t chunks[] = {1, 3};
        for (int ci = 0; ci < 2; ci++) {
            double ls2, ws2;
            memset(dh2, 0, T * C * sizeof(float));
            memset(dw2, 0, V * C * sizeof(float));
            tk_lmhead_xent_chunk_rows(chunks[ci]);
            CHECK_OK(tk_distill_p(h, &head, &teacher, rows, n, T, wt, &p, 0.5f, &ls2, &ws2, dh2, dw2));
            tk_lmhead_xent_chunk_rows(0);
            double e2 = 0;
            for (int64_t i = 0; i < T * C; i++) e2 = fmax(e2, fabs(2 * dh2[i] - dh[i]));
            for (int64_t i = 0; i < V * C; i++) e2 = fmax(e2, fabs(2 * dw2[i] - dw[i]));
            CHECK(fabs(ls2 - ls) <= 1e-6 * fabs(ls) && ws2 == ws && e2 < 1e-6, "jsd chunks of %lld: loss %g vs %g, grads %g",
                  (long long)chunks[ci], ls2, ls, e2);
        }
    }
    /* beta 0 and 1 are exactly TRL's forward and reverse KL (the other kinds' code path) */
    for (int k = 0; k < 2; k++) {
        tk_distill_params p = tk_distill_default_params();
        p.kind = TK_DISTILL_JSD;
        p.beta = (float)k;
        p.temperature = 1.5f;
        double a, b, ws;
        CHECK_OK(tk_distill_p(h, &head, &teacher, rows, n, T, wt, &p, 1.0f, &a, &ws, NULL, NULL));
        CHECK_OK(tk_distill(h, &head, &teacher, rows, n, T, wt, k ? TK_DISTILL_REVERSE_KL : TK_DISTILL_FORWARD_KL, 1.5f, 1.0f, &b, &ws,
                            NULL, NULL));
        CHECK(a == b, "beta %d: %.17g vs the KL kind's %.17g", k, a, b);
    }
    /* the symmetric JSD (beta 0.5) of identical distributions is 0, and it never exceeds log 2 per row */
    {
        tk_distill_params p = tk_distill_default_params();
        p.kind = TK_DISTILL_JSD;
        tk_teacher self = {.h = h, .head = &head};
        double a, ws;
        CHECK_OK(tk_distill_p(h, &head, &self, rows, n, T, NULL, &p, 1.0f, &a, &ws, NULL, NULL));
        CHECK(fabs(a) < 1e-6, "JSD of a distribution with itself: %g", a);
        CHECK_OK(tk_distill_p(h, &head, &teacher, rows, n, T, NULL, &p, 1.0f, &a, &ws, NULL, NULL));
        CHECK(a > 0 && a <= ws * log(2.0), "JSD %g within (0, n log 2 = %g]", a, ws * log(2.0));
    }
    /* bad beta, named */
    tk_distill_params bad = tk_distill_default_params();
    bad.kind = TK_DISTILL_JSD;
    bad.beta = 1.5f;
    double a, ws;
    CHECK(tk_distill_p(h, &head, &teacher, rows, n, T, NULL, &bad, 1.0f, &a, &ws, NULL, NULL) == TK_ERR_ARG &&
          strstr(tk_last_error(), "beta"), "beta 1.5: %s", tk_last_error());
    bad.beta = NAN;
    CHECK(tk_distill_p(h, &head, &teacher, rows, n, T, NULL, &bad, 1.0f, &a, &ws, NULL, NULL) == TK_ERR_ARG, "beta NaN");
    tk_objective *o = NULL;
    CHECK(tk_objective_new(&tk_objective_distill, &bad, &o) == TK_ERR_ARG && !o && strstr(tk_last_error(), "beta"),
          "objective refuses beta NaN: %s", tk_last_error());
    CHECK(tk_distill_kind_from_name("jsd") == TK_DISTILL_JSD && !strcmp(tk_distill_kind_name(TK_DISTILL_JSD), "jsd"), "name");
    free(h); free(w); free(th); free(tw); free(wt); free(gh); free(gw); free(dh); free(dw); free(dh2); free(dw2);
    free(r.h); free(r.w); free(r.th); free(r.tw);
}

/* ---- against TRL's GKDTrainer.generalized_jsd_loss, through the objective table ---- */
static double meta_num(const tk_safetensors *st, const char *key) {
    const char *s = tk_st_metadata(st, key);
    CHECK(s != NULL, "fixture metadata %s", key);
    return s ? strtod(s, NULL) : NAN;
}
static const void *fx(const tk_safetensors *st, const char *name, tk_dtype dt, int64_t n) {
    const tk_tensor_ref *t = tk_st_find(st, name);
    CHECK(t && t->dtype == dt && tk_tensor_nelems(t) == n, "fixture tensor %s", name);
    return t && t->dtype == dt && tk_tensor_nelems(t) == n ? t->data : NULL;
}
static double rel_ff(const float *a, const float *b, int64_t n) {
    if (!b) return INFINITY;
    double md = 0, mb = 0;
    for (int64_t i = 0; i < n; i++) { md = fmax(md, fabs((double)a[i] - b[i])); mb = fmax(mb, fabs((double)b[i])); }
    return md / (mb > 0 ? mb : 1);
}

static void check_trl(void) {
    tk_safetensors *st = NULL;
    CHECK_OK(tk_st_open("tests/fixtures/distill/jsd_ref.safetensors", &st));
    if (!st) return;
    const tk_tensor_ref *wr = tk_st_find(st, "w"), *hr = tk_st_find(st, "h");
    CHECK(wr && hr && wr->n_dims == 2 && hr->n_dims == 2, "fixture shapes");
    if (!wr || !hr) { tk_st_close(st); return; }
    const int64_t C = wr->ne[0], V = wr->ne[1], T = hr->ne[1];
    const float *h = fx(st, "h", TK_F32, T * C), *w = fx(st, "w", TK_F32, V * C), *th = fx(st, "th", TK_F32, T * C),
                *tw = fx(st, "tw", TK_F32, V * C);
    const int32_t *labels = fx(st, "labels", TK_I32, T);
    if (!h || !w || !th || !tw || !labels) { tk_st_close(st); return; }
    tk_tensor_ref hw = ref_f32(w, C, V), thw = ref_f32(tw, C, V);
    tk_lm_head head = {&hw, 0.0f}, thead = {&thw, 0.0f};
    tk_teacher teacher = {.h = th, .head = &thead};
    /* TRL masks labels == -100; the objective trains rows with target >= 0 */
    int32_t *target = malloc(T * sizeof(int32_t));
    for (int64_t t = 0; t < T; t++) target[t] = labels[t] == -100 ? -1 : labels[t];
    float *dh = malloc(T * C * sizeof(float)), *dw = malloc(V * C * sizeof(float));
    int n_cases = (int)meta_num(st, "n_cases");
    for (int k = 0; k < n_cases; k++) {
        char key[64];
        tk_distill_params p = tk_distill_default_params();
        p.kind = TK_DISTILL_JSD;
        snprintf(key, sizeof key, "jsd%d_beta", k);
        p.beta = (float)meta_num(st, key);
        snprintf(key, sizeof key, "jsd%d_tau", k);
        p.temperature = (float)meta_num(st, key);
        snprintf(key, sizeof key, "jsd%d_loss", k);
        double rl = meta_num(st, key);
        tk_objective *o = NULL;
        CHECK_OK(tk_objective_new(&tk_objective_distill, &p, &o));
        if (!o) continue;
        memset(dw, 0, V * C * sizeof(float));
        tk_obj_batch b = {.T = T, .C = C, .h = h, .head = &head, .target = target, .teacher = &teacher};
        tk_obj_result res;
        /* TRL's loss is the mean over trained tokens: grad_scale 1 / count gives its gradient */
        int64_t cnt = 0;
        for (int64_t t = 0; t < T; t++) cnt += target[t] >= 0;
        CHECK_OK(tk_objective_loss_and_grad(o, &b, 1.0f / (float)cnt, dh, dw, &res));
        double loss = res.loss_sum / res.norm;
        snprintf(key, sizeof key, "jsd%d_dh", k);
        double eh = rel_ff(dh, fx(st, key, TK_F32, T * C), T * C);
        snprintf(key, sizeof key, "jsd%d_dw", k);
        double ew = rel_ff(dw, fx(st, key, TK_F32, V * C), V * C);
        printf("vs TRL GKDTrainer.generalized_jsd_loss: beta %g tau %g: loss %.9f (TRL %.9f), dh %.1e, dw %.1e\n", (double)p.beta,
               (double)p.temperature, loss, rl, eh, ew);
        CHECK(res.norm == (double)cnt, "norm = trained tokens");
        CHECK(fabs(loss - rl) <= 1e-5 * fabs(rl), "jsd beta %g loss %.9g vs TRL %.9g", (double)p.beta, loss, rl);
        CHECK(eh < 1e-5 && ew < 1e-5, "jsd beta %g gradients vs TRL: dh %g dw %g", (double)p.beta, eh, ew);
        tk_objective_free(o);
    }
    CHECK(n_cases >= 4, "fixture cases");
    free(target); free(dh); free(dw);
    tk_st_close(st);
}

int main(void) {
    tk_rng_seed(&rng, 20261207);
    check_fd();
    check_trl();
    return tk_test_done("test_distill_jsd");
}
