/* The preference objectives (src/objective/dpo.c): dpo (sigmoid, ipo, hinge, robust), orpo and
 * simpo on a packed head problem (pairs of different lengths, prompt rows between them):
 * - loss, dh, dW and the TRL metrics against TRL's own loss code (fixture written by
 *   tools/make_dpo_reference.py: trl 1.16 DPOTrainer._compute_loss, ORPOTrainer.odds_ratio_loss,
 *   CPOTrainer.cpo_loss on PyTorch log-probabilities), max relative error printed;
 * - dh and dW against central finite differences of a double full-logits reference written here;
 * - chunk-size invariance, precomputed reference log-probs = reference hidden states;
 * - bad batches and bad parameters fail with a message naming the pair / sequence / option. */
#include "test.h"
#include "core/core.h"
#include "ops/ops.h"
#include "objective/dpo.h"
#include "objective/logp.h"
#include "takumi/safetensors.h"
#include <cjson/cJSON.h>

typedef struct fixture {
    int64_t T, C, V;
    int32_t S, G;
    const float *h, *href, *w, *weight, *value;
    const int32_t *target, *seq, *group;
    tk_tensor_ref wref;
    tk_lm_head head;
} fixture;

static const struct { const char *name, *obj; tk_dpo_loss loss; } k_cases[] = {
    {"dpo_sigmoid", "dpo", TK_DPO_SIGMOID}, {"dpo_ipo", "dpo", TK_DPO_IPO}, {"dpo_hinge", "dpo", TK_DPO_HINGE},
    {"dpo_robust", "dpo", TK_DPO_ROBUST},   {"orpo", "orpo", TK_DPO_SIGMOID}, {"simpo", "simpo", TK_DPO_SIGMOID},
};
#define N_CASES 6

static const void *fx(const tk_safetensors *st, const char *name, tk_dtype dt, int64_t n) {
    const tk_tensor_ref *t = tk_st_find(st, name);
    bool ok = t && t->dtype == dt && tk_tensor_nelems(t) == n;
    CHECK(ok, "fixture tensor %s (%lld elements of %s)", name, (long long)n, tk_dtype_name(dt));
    return ok ? t->data : NULL;
}

static bool load_fixture(const tk_safetensors *st, fixture *f) {
    const tk_tensor_ref *h = tk_st_find(st, "h"), *w = tk_st_find(st, "w"), *g = tk_st_find(st, "seq_group");
    if (!h || !w || !g) return false;
    f->C = h->ne[0]; f->T = h->ne[1]; f->V = w->ne[1]; f->S = (int32_t)g->ne[0]; f->G = f->S / 2;
    f->h = fx(st, "h", TK_F32, f->T * f->C);
    f->href = fx(st, "h_ref", TK_F32, f->T * f->C);
    f->w = fx(st, "w", TK_F32, f->V * f->C);
    f->weight = fx(st, "weight", TK_F32, f->T);
    f->value = fx(st, "seq_value", TK_F32, f->S);
    f->target = fx(st, "target", TK_I32, f->T);
    f->seq = fx(st, "seq", TK_I32, f->T);
    f->group = fx(st, "seq_group", TK_I32, f->S);
    f->wref = *w;
    f->head = (tk_lm_head){&f->wref, 0.0f};
    return f->h && f->href && f->w && f->weight && f->value && f->target && f->seq && f->group;
}

/* The case's parameters from its fixture entry. */
static cJSON *case_meta(const tk_safetensors *st, int k, tk_dpo_params *p) {
    cJSON *j = cJSON_Parse(tk_st_metadata(st, k_cases[k].name) ? tk_st_metadata(st, k_cases[k].name) : "");
    *p = tk_dpo_default_params();
    p->loss = k_cases[k].loss;
    if (j) {
        p->beta = cJSON_GetObjectItem(j, "beta")->valuedouble;
        p->label_smoothing = cJSON_GetObjectItem(j, "label_smoothing")->valuedouble;
    }
    const char *g = tk_st_metadata(st, "simpo_gamma");
    if (g) p->simpo_gamma = strtod(g, NULL);
    return j;
}

static tk_obj_batch batch_of(const fixture *f, bool orpo) {
    return (tk_obj_batch){.T = f->T, .C = f->C, .h = f->h, .head = &f->head, .target = f->target, .weight = orpo ? f->weight : NULL,
                          .seq = f->seq, .n_seq = f->S, .seq_group = f->group, .n_group = f->G, .seq_value = f->value, .ref_h = f->href};
}

static double rel_ff(const float *a, const float *b, int64_t n) {
    double md = 0, mb = 0;
    for (int64_t i = 0; i < n; i++) { md = fmax(md, fabs((double)a[i] - b[i])); mb = fmax(mb, fabs((double)b[i])); }
    return md / (mb > 0 ? mb : 1);
}

/* ---- the double reference: full logits, TRL's formulas ---- */
static double lsig(double x) { return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x)); }
static double l1mexp(double x) { return log(-expm1(x)); }

static double ref_loss(const fixture *f, const double *h, const double *w, int k, const tk_dpo_params *p) {
    double *tok = calloc((size_t)f->T, sizeof(double)), *rtok = calloc((size_t)f->T, sizeof(double)), *ls = malloc((size_t)f->V * sizeof(double));
    for (int64_t t = 0; t < f->T; t++) {
        if (f->target[t] < 0) continue;
        for (int pass = 0; pass < 2; pass++) {
            double mx = -INFINITY, se = 0;
            for (int64_t j = 0; j < f->V; j++) {
                double z = 0;
                for (int64_t c = 0; c < f->C; c++) z += (pass ? (double)f->href[t * f->C + c] : h[t * f->C + c]) * (pass ? (double)f->w[j * f->C + c] : w[j * f->C + c]);
                ls[j] = z;
                mx = fmax(mx, z);
            }
            for (int64_t j = 0; j < f->V; j++) se += exp(ls[j] - mx);
            (pass ? rtok : tok)[t] = ls[f->target[t]] - mx - log(se);
        }
    }
    double lp[16] = {0}, rp[16] = {0}, n[16] = {0}, nll = 0, nw = 0, L = 0;
    for (int64_t t = 0; t < f->T; t++) {
        if (f->target[t] < 0) continue;
        if (f->seq[t] >= 0) { lp[f->seq[t]] += tok[t]; rp[f->seq[t]] += rtok[t]; n[f->seq[t]]++; }
        if (f->weight[t] != 0) { nll -= f->weight[t] * tok[t]; nw += f->weight[t]; }
    }
    const double b = p->beta, e = p->label_smoothing;
    for (int32_t g = 0; g < f->G; g++) {
        int c = 2 * g, r = 2 * g + 1; /* the fixture's pairs: chosen, rejected */
        double d = (lp[c] - rp[c]) - (lp[r] - rp[r]), mc = lp[c] / n[c], mr = lp[r] / n[r];
        if (!strcmp(k_cases[k].obj, "orpo")) L -= b * lsig((mc - mr) - (l1mexp(mc) - l1mexp(mr)));
        else if (!strcmp(k_cases[k].obj, "simpo")) {
            double x = b * (mc - mr - p->simpo_gamma / b);
            L += -(1 - e) * lsig(x) - e * lsig(-x);
        } else if (p->loss == TK_DPO_SIGMOID) L -= lsig(b * d);
        else if (p->loss == TK_DPO_HINGE) L += fmax(0, 1 - b * d);
        else if (p->loss == TK_DPO_ROBUST) L += (-(1 - e) * lsig(b * d) + e * lsig(-b * d)) / (1 - 2 * e);
        else { double u = (lp[c] - rp[c]) / n[c] - (lp[r] - rp[r]) / n[r] - 1 / (2 * b); L += u * u; }
    }
    if (!strcmp(k_cases[k].obj, "orpo")) L += f->G * nll / nw;
    free(tok); free(rtok); free(ls);
    return L / f->G;
}

typedef struct fd_ctx { const fixture *f; double *h, *w; int k; const tk_dpo_params *p; } fd_ctx;

static void fd_grad(double *g, double *x, int64_t n, fd_ctx *c) {
    const double eps = 1e-5;
    for (int64_t i = 0; i < n; i++) {
        double x0 = x[i];
        x[i] = x0 + eps; double lp = ref_loss(c->f, c->h, c->w, c->k, c->p);
        x[i] = x0 - eps; double lm = ref_loss(c->f, c->h, c->w, c->k, c->p);
        x[i] = x0;
        g[i] = (lp - lm) / (2 * eps);
    }
}
static double rel_fd(const float *a, const double *b, int64_t n) {
    double md = 0, mb = 0;
    for (int64_t i = 0; i < n; i++) { md = fmax(md, fabs(a[i] - b[i])); mb = fmax(mb, fabs(b[i])); }
    return md / (mb > 0 ? mb : 1);
}

static void check_case(const tk_safetensors *st, const fixture *f, int k) {
    tk_dpo_params p;
    cJSON *j = case_meta(st, k, &p);
    CHECK(j != NULL, "fixture entry %s", k_cases[k].name);
    if (!j) return;
    const tk_objective_ops *ops = tk_objective_find(k_cases[k].obj);
    CHECK(ops && !strcmp(ops->name, k_cases[k].obj), "%s is registered", k_cases[k].obj);
    tk_objective *o = NULL;
    CHECK_OK(tk_objective_new(ops, &p, &o));
    const int64_t n = f->T * f->C, nw = f->V * f->C;
    float *dh = malloc(n * sizeof(float)), *dw = calloc(nw, sizeof(float));
    char key[64];
    tk_obj_batch b = batch_of(f, !strcmp(ops->name, "orpo"));
    tk_obj_result r;
    CHECK_OK(tk_objective_loss_and_grad(o, &b, (float)(1.0 / f->G), dh, dw, &r));
    double loss = r.loss_sum / r.norm, tl = cJSON_GetObjectItem(j, "loss")->valuedouble;
    snprintf(key, sizeof key, "%s_dh", k_cases[k].name);
    double eh = rel_ff(dh, fx(st, key, TK_F32, n), n);
    snprintf(key, sizeof key, "%s_dw", k_cases[k].name);
    double ew = rel_ff(dw, fx(st, key, TK_F32, nw), nw);
    const cJSON *met = cJSON_GetObjectItem(j, "metrics");
    double em = 0;
    for (int i = 0; i < ops->n_metrics && i < cJSON_GetArraySize(met); i++) {
        double want = cJSON_GetArrayItem(met, i)->valuedouble, got = r.metrics[i] / r.norm;
        em = fmax(em, fabs(got - want) / fmax(fabs(want), 1e-3));
    }
    printf("%-12s vs TRL: loss %.9f (trl %.9f), dh %.1e, dW %.1e, %d metrics %.1e\n", k_cases[k].name, loss, tl, eh, ew, ops->n_metrics, em);
    CHECK(fabs(loss - tl) <= 1e-5 * fabs(tl), "%s loss %.9g vs TRL %.9g", k_cases[k].name, loss, tl);
    CHECK(eh < 1e-5 && ew < 1e-5, "%s gradients vs TRL: dh %g dW %g", k_cases[k].name, eh, ew);
    CHECK(em < 1e-5 && cJSON_GetArraySize(met) == ops->n_metrics, "%s metrics vs TRL: %g", k_cases[k].name, em);
    /* finite differences of the double reference */
    double *hd = malloc(n * sizeof(double)), *wd = malloc(nw * sizeof(double)), *gh = malloc(n * sizeof(double)), *gw = malloc(nw * sizeof(double));
    for (int64_t i = 0; i < n; i++) hd[i] = f->h[i];
    for (int64_t i = 0; i < nw; i++) wd[i] = f->w[i];
    fd_ctx c = {f, hd, wd, k, &p};
    double rl = ref_loss(f, hd, wd, k, &p);
    fd_grad(gh, hd, n, &c);
    fd_grad(gw, wd, nw, &c);
    double fh = rel_fd(dh, gh, n), fw = rel_fd(dw, gw, nw);
    printf("%-12s vs finite differences: loss %.1e, dh %.1e, dW %.1e\n", k_cases[k].name, fabs(loss - rl) / fabs(rl), fh, fw);
    CHECK(fabs(loss - rl) <= 1e-6 * fabs(rl), "%s loss vs double reference: %.9g vs %.9g", k_cases[k].name, loss, rl);
    CHECK(fh < 1e-5 && fw < 1e-5, "%s gradients vs finite differences: dh %g dW %g", k_cases[k].name, fh, fw);
    /* chunking, and evaluation without gradients */
    float *dh2 = malloc(n * sizeof(float)), *dw2 = calloc(nw, sizeof(float));
    tk_lmhead_xent_chunk_rows(3);
    tk_obj_result r2;
    CHECK_OK(tk_objective_loss_and_grad(o, &b, (float)(1.0 / f->G), dh2, dw2, &r2));
    tk_lmhead_xent_chunk_rows(0);
    CHECK(fabs(r2.loss_sum - r.loss_sum) <= CHUNK_TOL * fabs(r.loss_sum) && rel_ff(dh2, dh, n) < 10 * CHUNK_TOL && rel_ff(dw2, dw, nw) < 10 * CHUNK_TOL,
          "%s: chunks of 3 rows", k_cases[k].name);
    CHECK_OK(tk_objective_loss_and_grad(o, &b, 1.0f, NULL, NULL, &r2));
    CHECK(r2.loss_sum == r.loss_sum, "%s: same loss without gradients", k_cases[k].name);
    free(dh2); free(dw2); free(hd); free(wd); free(gh); free(gw);
    free(dh); free(dw);
    tk_objective_free(o);
    cJSON_Delete(j);
}

/* Precomputed reference log-probs give the DPO loss of the reference hidden states. */
static void check_ref_logp(const fixture *f) {
    tk_objective *o = NULL;
    CHECK_OK(tk_objective_new(&tk_objective_dpo, NULL, &o));
    double ref[16];
    CHECK_OK(tk_seq_logp_forward(f->href, &f->head, f->T, f->target, f->seq, f->S, ref, NULL, NULL, NULL));
    tk_obj_batch b = batch_of(f, false), b2 = b;
    b2.ref_h = NULL;
    b2.ref_logp = ref;
    tk_obj_result r1, r2;
    CHECK_OK(tk_objective_loss_and_grad(o, &b, 1.0f, NULL, NULL, &r1));
    CHECK_OK(tk_objective_loss_and_grad(o, &b2, 1.0f, NULL, NULL, &r2));
    CHECK(r1.loss_sum == r2.loss_sum && r1.norm == f->G, "ref_logp = ref_h: %.17g vs %.17g", r1.loss_sum, r2.loss_sum);
    tk_objective_free(o);
}

static void check_errors(const fixture *f) {
    tk_objective *o = NULL;
    tk_dpo_params p = tk_dpo_default_params();
    p.beta = 0;
    CHECK(tk_objective_new(&tk_objective_dpo, &p, &o) == TK_ERR_ARG && strstr(tk_last_error(), "beta"), "beta 0: %s", tk_last_error());
    p = tk_dpo_default_params();
    p.label_smoothing = 0.1;
    CHECK(tk_objective_new(&tk_objective_dpo, &p, &o) == TK_ERR_ARG && strstr(tk_last_error(), "robust"), "smoothing on sigmoid: %s", tk_last_error());
    p.loss = TK_DPO_ROBUST;
    p.label_smoothing = 0.5;
    CHECK(tk_objective_new(&tk_objective_dpo, &p, &o) == TK_ERR_ARG && strstr(tk_last_error(), "0.5"), "robust 0.5: %s", tk_last_error());
    p = tk_dpo_default_params();
    p.label_smoothing = 0.1;
    CHECK(tk_objective_new(&tk_objective_orpo, &p, &o) == TK_ERR_ARG && strstr(tk_last_error(), "orpo"), "orpo smoothing: %s", tk_last_error());
    CHECK(tk_dpo_loss_from_name("ipo") == TK_DPO_IPO && tk_dpo_loss_from_name("x") == TK_DPO_LOSS_COUNT && !strcmp(tk_dpo_loss_name(TK_DPO_HINGE), "hinge"),
          "loss names");
    CHECK_OK(tk_objective_new(&tk_objective_simpo, NULL, &o));
    tk_obj_result r;
    tk_obj_batch b = batch_of(f, false);
    b.seq_value = NULL;
    CHECK(tk_objective_loss_and_grad(o, &b, 1.0f, NULL, NULL, &r) == TK_ERR_ARG && strstr(tk_last_error(), "seq_value"), "no values: %s", tk_last_error());
    float v[16];
    memcpy(v, f->value, (size_t)f->S * sizeof(float));
    b = batch_of(f, false);
    b.seq_value = v;
    v[1] = 1.0f; /* pair 0: two chosen */
    CHECK(tk_objective_loss_and_grad(o, &b, 1.0f, NULL, NULL, &r) == TK_ERR_ARG && strstr(tk_last_error(), "pair 0 has two chosen"), "two chosen: %s", tk_last_error());
    v[1] = 0.5f;
    CHECK(tk_objective_loss_and_grad(o, &b, 1.0f, NULL, NULL, &r) == TK_ERR_ARG && strstr(tk_last_error(), "sequence 1 has value 0.5"), "value: %s", tk_last_error());
    v[1] = 0.0f;
    int32_t *seq = malloc((size_t)f->T * sizeof(int32_t));
    for (int64_t t = 0; t < f->T; t++) seq[t] = f->seq[t] == 3 ? -1 : f->seq[t];
    b.seq = seq;
    CHECK(tk_objective_loss_and_grad(o, &b, 1.0f, NULL, NULL, &r) == TK_ERR_ARG && strstr(tk_last_error(), "sequence 3 (pair 1) has no completion"),
          "empty sequence: %s", tk_last_error());
    free(seq);
    tk_objective_free(o);
    CHECK_OK(tk_objective_new(&tk_objective_dpo, NULL, &o));
    b = batch_of(f, false);
    b.ref_h = NULL;
    CHECK(tk_objective_loss_and_grad(o, &b, 1.0f, NULL, NULL, &r) == TK_ERR_ARG && strstr(tk_last_error(), "batch.ref_h"), "no reference: %s", tk_last_error());
    tk_objective_free(o);
}

int main(void) {
    tk_safetensors *st = NULL;
    CHECK_OK(tk_st_open("tests/fixtures/objective/dpo_ref.safetensors", &st));
    fixture f;
    if (st && load_fixture(st, &f)) {
        CHECK(f.S <= 16 && f.G * 2 == f.S, "fixture: %d sequences", f.S);
        for (int k = 0; k < N_CASES; k++) check_case(st, &f, k);
        check_ref_logp(&f);
        check_errors(&f);
    } else CHECK(0, "fixture tensors");
    tk_st_close(st);
    return tk_test_done("test_dpo");
}
