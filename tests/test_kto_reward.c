/* The KTO and reward-model objectives (src/objective/kto.c, reward.c) on small head problems:
 * - loss, dh, dW (KTO) / the score head's gradient (reward) and the TRL metrics against TRL's
 *   own loss code (fixture written by tools/make_kto_reward_reference.py: trl 1.16
 *   KTOTrainer._compute_loss, RewardTrainer.compute_loss), max relative error printed;
 * - the same gradients against central finite differences of a double reference written here
 *   (KTO's KL estimate held fixed: TRL detaches it);
 * - chunk-size invariance, precomputed reference log-probs = reference hidden states, the KL clamp;
 * - bad batches and parameters fail with a message naming the sequence / option. */
#include "test.h"
#include "core/core.h"
#include "ops/ops.h"
#include "objective/kto.h"
#include "objective/reward.h"
#include "objective/logp.h"
#include "takumi/safetensors.h"
#include <cjson/cJSON.h>

typedef struct fixture {
    int64_t T, C, V, Tr;
    int32_t S, Sr;
    const float *h, *href, *w, *value, *rh, *score, *rvalue;
    const int32_t *target, *seq, *rseq, *rgroup;
    tk_tensor_ref wref;
    tk_lm_head head;
} fixture;

static const void *fx(const tk_safetensors *st, const char *name, tk_dtype dt, int64_t n) {
    const tk_tensor_ref *t = tk_st_find(st, name);
    bool ok = t && t->dtype == dt && tk_tensor_nelems(t) == n;
    CHECK(ok, "fixture tensor %s (%lld elements of %s)", name, (long long)n, tk_dtype_name(dt));
    return ok ? t->data : NULL;
}

static bool load_fixture(const tk_safetensors *st, fixture *f) {
    const tk_tensor_ref *h = tk_st_find(st, "h"), *w = tk_st_find(st, "w"), *v = tk_st_find(st, "seq_value"), *rh = tk_st_find(st, "rm_h"),
                        *rv = tk_st_find(st, "rm_seq_value");
    if (!h || !w || !v || !rh || !rv) return false;
    f->C = h->ne[0]; f->T = h->ne[1]; f->V = w->ne[1]; f->S = (int32_t)v->ne[0]; f->Tr = rh->ne[1]; f->Sr = (int32_t)rv->ne[0];
    f->h = fx(st, "h", TK_F32, f->T * f->C);
    f->href = fx(st, "h_ref", TK_F32, f->T * f->C);
    f->w = fx(st, "w", TK_F32, f->V * f->C);
    f->value = fx(st, "seq_value", TK_F32, f->S);
    f->target = fx(st, "target", TK_I32, f->T);
    f->seq = fx(st, "seq", TK_I32, f->T);
    f->rh = fx(st, "rm_h", TK_F32, f->Tr * f->C);
    f->score = fx(st, "rm_score", TK_F32, f->C);
    f->rseq = fx(st, "rm_seq", TK_I32, f->Tr);
    f->rgroup = fx(st, "rm_seq_group", TK_I32, f->Sr);
    f->rvalue = fx(st, "rm_seq_value", TK_F32, f->Sr);
    f->wref = *w;
    f->head = (tk_lm_head){&f->wref, 0.0f};
    return f->h && f->href && f->w && f->value && f->target && f->seq && f->rh && f->score && f->rseq && f->rgroup && f->rvalue;
}

static double rel_ff(const float *a, const float *b, int64_t n) {
    double md = 0, mb = 0;
    for (int64_t i = 0; i < n; i++) { md = fmax(md, fabs((double)a[i] - b[i])); mb = fmax(mb, fabs((double)b[i])); }
    return md / (mb > 0 ? mb : 1);
}
static double rel_fd(const float *a, const double *b, int64_t n) {
    double md = 0, mb = 0;
    for (int64_t i = 0; i < n; i++) { md = fmax(md, fabs(a[i] - b[i])); mb = fmax(mb, fabs(b[i])); }
    return md / (mb > 0 ? mb : 1);
}
static double sig(double x) { return 1 / (1 + exp(-x)); }
static double lsig(double x) { return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x)); }

/* ---- KTO: the double reference (full logits); kl < -1e300 = compute it, else hold it fixed ---- */
static double kto_ref(const fixture *f, const double *h, const double *w, const tk_kto_params *p, double kl_in, double *kl_out) {
    double lp[16] = {0}, rp[16] = {0}, *ls = malloc((size_t)f->V * sizeof(double));
    for (int64_t t = 0; t < f->T; t++) {
        if (f->target[t] < 0 || f->seq[t] < 0) continue;
        for (int pass = 0; pass < 2; pass++) {
            double mx = -INFINITY, se = 0;
            for (int64_t j = 0; j < f->V; j++) {
                double z = 0;
                for (int64_t c = 0; c < f->C; c++)
                    z += (pass ? (double)f->href[t * f->C + c] : h[t * f->C + c]) * (pass ? (double)f->w[j * f->C + c] : w[j * f->C + c]);
                ls[j] = z;
                mx = fmax(mx, z);
            }
            for (int64_t j = 0; j < f->V; j++) se += exp(ls[j] - mx);
            (pass ? rp : lp)[f->seq[t]] += ls[f->target[t]] - mx - log(se);
        }
    }
    free(ls);
    double kl = 0, nk = 0, L = 0, n = 0;
    for (int32_t q = 0; q < f->S; q++) if (f->value[q] < 0) { kl += lp[q] - rp[q]; nk++; }
    kl = fmax(kl / nk, 0);
    if (kl_in > -1e300) kl = kl_in;
    if (kl_out) *kl_out = kl;
    for (int32_t q = 0; q < f->S; q++) {
        if (f->value[q] < 0) continue;
        double lr = lp[q] - rp[q];
        L += f->value[q] == 1 ? p->desirable_weight * (1 - sig(p->beta * (lr - kl))) : p->undesirable_weight * (1 - sig(p->beta * (kl - lr)));
        n++;
    }
    return L / n;
}

static void kto_fd(double *g, double *x, int64_t n, const fixture *f, double *h, double *w, const tk_kto_params *p, double kl) {
    for (int64_t i = 0; i < n; i++) {
        double x0 = x[i];
        x[i] = x0 + 1e-5; double a = kto_ref(f, h, w, p, kl, NULL);
        x[i] = x0 - 1e-5; double b = kto_ref(f, h, w, p, kl, NULL);
        x[i] = x0;
        g[i] = (a - b) / 2e-5;
    }
}

static tk_obj_batch kto_batch(const fixture *f) {
    return (tk_obj_batch){.T = f->T, .C = f->C, .h = f->h, .head = &f->head, .target = f->target, .seq = f->seq, .n_seq = f->S,
                          .seq_value = f->value, .ref_h = f->href};
}

static double metrics_err(const cJSON *met, const tk_obj_result *r, int n) {
    double em = 0;
    for (int i = 0; i < n && i < cJSON_GetArraySize(met); i++) {
        double want = cJSON_GetArrayItem(met, i)->valuedouble, got = r->metrics[i] / r->norm;
        em = fmax(em, fabs(got - want) / fmax(fabs(want), 1e-3));
    }
    return cJSON_GetArraySize(met) == n ? em : INFINITY;
}

static void check_kto(const tk_safetensors *st, const fixture *f, const char *name) {
    cJSON *j = cJSON_Parse(tk_st_metadata(st, name) ? tk_st_metadata(st, name) : "");
    CHECK(j != NULL, "fixture entry %s", name);
    if (!j) return;
    tk_kto_params p = {cJSON_GetObjectItem(j, "beta")->valuedouble, cJSON_GetObjectItem(j, "desirable_weight")->valuedouble,
                       cJSON_GetObjectItem(j, "undesirable_weight")->valuedouble};
    CHECK(tk_objective_find("kto") == &tk_objective_kto, "kto is registered");
    tk_objective *o = NULL;
    CHECK_OK(tk_objective_new(&tk_objective_kto, &p, &o));
    const int64_t n = f->T * f->C, nw = f->V * f->C;
    int32_t N = 0;
    for (int32_t q = 0; q < f->S; q++) N += f->value[q] >= 0;
    float *dh = malloc(n * sizeof(float)), *dw = calloc(nw, sizeof(float));
    char key[64];
    tk_obj_batch b = kto_batch(f);
    tk_obj_result r;
    CHECK_OK(tk_objective_loss_and_grad(o, &b, (float)(1.0 / N), dh, dw, &r));
    double loss = r.loss_sum / r.norm, tl = cJSON_GetObjectItem(j, "loss")->valuedouble;
    snprintf(key, sizeof key, "%s_dh", name);
    double eh = rel_ff(dh, fx(st, key, TK_F32, n), n);
    snprintf(key, sizeof key, "%s_dw", name);
    double ew = rel_ff(dw, fx(st, key, TK_F32, nw), nw);
    double em = metrics_err(cJSON_GetObjectItem(j, "metrics"), &r, 6);
    printf("%-14s vs TRL: loss %.9f (trl %.9f), dh %.1e, dW %.1e, 6 metrics %.1e\n", name, loss, tl, eh, ew, em);
    CHECK(r.norm == N && fabs(loss - tl) <= 1e-5 * fabs(tl), "%s loss %.9g vs TRL %.9g (norm %g)", name, loss, tl, r.norm);
    CHECK(eh < 1e-5 && ew < 1e-5, "%s gradients vs TRL: dh %g dW %g", name, eh, ew);
    CHECK(em < 1e-5, "%s metrics vs TRL: %g", name, em);
    double *hd = malloc(n * sizeof(double)), *wd = malloc(nw * sizeof(double)), *gh = malloc(n * sizeof(double)), *gw = malloc(nw * sizeof(double));
    for (int64_t i = 0; i < n; i++) hd[i] = f->h[i];
    for (int64_t i = 0; i < nw; i++) wd[i] = f->w[i];
    double kl, rl = kto_ref(f, hd, wd, &p, -1e308 * 10, &kl);
    kto_fd(gh, hd, n, f, hd, wd, &p, kl);
    kto_fd(gw, wd, nw, f, hd, wd, &p, kl);
    double fh = rel_fd(dh, gh, n), fw = rel_fd(dw, gw, nw);
    printf("%-14s vs finite differences (kl %.4f held): loss %.1e, dh %.1e, dW %.1e\n", name, kl, fabs(loss - rl) / fabs(rl), fh, fw);
    CHECK(fabs(loss - rl) <= 1e-6 * fabs(rl), "%s loss vs double reference: %.9g vs %.9g", name, loss, rl);
    CHECK(fh < 1e-5 && fw < 1e-5, "%s gradients vs finite differences: dh %g dW %g", name, fh, fw);
    /* chunks of 3 rows; evaluation only; precomputed reference sums */
    float *dh2 = malloc(n * sizeof(float)), *dw2 = calloc(nw, sizeof(float));
    tk_lmhead_xent_chunk_rows(3);
    tk_obj_result r2;
    CHECK_OK(tk_objective_loss_and_grad(o, &b, (float)(1.0 / N), dh2, dw2, &r2));
    tk_lmhead_xent_chunk_rows(0);
    CHECK(fabs(r2.loss_sum - r.loss_sum) <= CHUNK_TOL * fabs(r.loss_sum) && rel_ff(dh2, dh, n) < 10 * CHUNK_TOL && rel_ff(dw2, dw, nw) < 10 * CHUNK_TOL,
          "%s: chunks of 3 rows", name);
    CHECK_OK(tk_objective_loss_and_grad(o, &b, 1.0f, NULL, NULL, &r2));
    CHECK(r2.loss_sum == r.loss_sum, "%s: same loss without gradients", name);
    double ref[16];
    CHECK_OK(tk_seq_logp_forward(f->href, &f->head, f->T, f->target, f->seq, f->S, ref, NULL, NULL, NULL));
    tk_obj_batch b2 = b;
    b2.ref_h = NULL;
    b2.ref_logp = ref;
    CHECK_OK(tk_objective_loss_and_grad(o, &b2, 1.0f, NULL, NULL, &r2));
    CHECK(r2.loss_sum == r.loss_sum, "%s: ref_logp = ref_h: %.17g vs %.17g", name, r2.loss_sum, r.loss_sum);
    /* the clamp: a reference far above the policy on the KL sequences gives kl = 0 */
    for (int32_t q = 0; q < f->S; q++) if (f->value[q] < 0) ref[q] += 1e3;
    CHECK_OK(tk_objective_loss_and_grad(o, &b2, 1.0f, NULL, NULL, &r2));
    CHECK(r2.metrics[5] == 0.0, "%s: kl clamped at 0 (%g)", name, r2.metrics[5]);
    free(dh2); free(dw2); free(hd); free(wd); free(gh); free(gw); free(dh); free(dw);
    tk_objective_free(o);
    cJSON_Delete(j);
}

/* ---- reward: the double reference ---- */
static double rm_ref(const fixture *f, const double *h, const double *w, double center) {
    double r[16], L = 0;
    for (int32_t q = 0; q < f->Sr; q++) {
        int64_t last = -1;
        for (int64_t t = 0; t < f->Tr; t++) if (f->rseq[t] == q) last = t;
        r[q] = 0;
        for (int64_t c = 0; c < f->C; c++) r[q] += w[c] * h[last * f->C + c];
    }
    for (int32_t q = 0; q < f->Sr; q += 2) L += -lsig(r[q] - r[q + 1]) + center * (r[q] + r[q + 1]) * (r[q] + r[q + 1]);
    return L / (f->Sr / 2);
}

static void check_reward(const tk_safetensors *st, const fixture *f, const char *name) {
    cJSON *j = cJSON_Parse(tk_st_metadata(st, name) ? tk_st_metadata(st, name) : "");
    CHECK(j != NULL, "fixture entry %s", name);
    if (!j) return;
    tk_reward_params p = tk_reward_default_params();
    p.center_rewards = cJSON_GetObjectItem(j, "center_rewards")->valuedouble;
    CHECK(tk_objective_find("reward") == &tk_objective_reward, "reward is registered");
    tk_objective *o = NULL;
    CHECK_OK(tk_objective_new(&tk_objective_reward, &p, &o));
    tk_param_set ps = {0};
    CHECK_OK(tk_objective_add_params(o, f->C, 1, "base_model.model.", &ps));
    CHECK(ps.n == 1 && !strcmp(ps.p[0].name, "base_model.model.score.weight") && ps.p[0].n == f->C, "the score head parameter");
    double sd = 0;
    for (int64_t c = 0; c < f->C; c++) sd += (double)ps.p[0].w[c] * ps.p[0].w[c];
    sd = sqrt(sd / f->C);
    CHECK(sd > 0.005 && sd < 0.05, "initial score head deviation %g (normal, std 0.02)", sd);
    memcpy(ps.p[0].w, f->score, (size_t)f->C * sizeof(float));
    const int64_t n = f->Tr * f->C;
    const int32_t G = f->Sr / 2;
    float *dh = malloc(n * sizeof(float)), *dwh = calloc((size_t)(f->V * f->C), sizeof(float));
    tk_obj_batch b = {.T = f->Tr, .C = f->C, .h = f->rh, .head = &f->head, .seq = f->rseq, .n_seq = f->Sr, .seq_group = f->rgroup,
                      .n_group = G, .seq_value = f->rvalue};
    tk_obj_result r;
    CHECK_OK(tk_objective_loss_and_grad(o, &b, (float)(1.0 / G), dh, dwh, &r));
    double loss = r.loss_sum / r.norm, tl = cJSON_GetObjectItem(j, "loss")->valuedouble;
    char key[64];
    snprintf(key, sizeof key, "%s_dh", name);
    double eh = rel_ff(dh, fx(st, key, TK_F32, n), n);
    snprintf(key, sizeof key, "%s_dscore", name);
    double es = rel_ff(ps.p[0].g, fx(st, key, TK_F32, f->C), f->C);
    double em = metrics_err(cJSON_GetObjectItem(j, "metrics"), &r, 5);
    bool head_untouched = true;
    for (int64_t i = 0; i < f->V * f->C; i++) head_untouched &= dwh[i] == 0.0f;
    printf("%-14s vs TRL: loss %.9f (trl %.9f), dh %.1e, dscore %.1e, 5 metrics %.1e\n", name, loss, tl, eh, es, em);
    CHECK(fabs(loss - tl) <= 1e-5 * fabs(tl), "%s loss %.9g vs TRL %.9g", name, loss, tl);
    CHECK(eh < 1e-5 && es < 1e-5 && head_untouched, "%s gradients vs TRL: dh %g dscore %g", name, eh, es);
    CHECK(em < 1e-5, "%s metrics vs TRL: %g", name, em);
    double *hd = malloc(n * sizeof(double)), wd[64], *gh = malloc(n * sizeof(double)), gw[64];
    for (int64_t i = 0; i < n; i++) hd[i] = f->rh[i];
    for (int64_t c = 0; c < f->C; c++) wd[c] = f->score[c];
    for (int pass = 0; pass < 2; pass++) {
        double *x = pass ? wd : hd, *g = pass ? gw : gh;
        for (int64_t i = 0; i < (pass ? f->C : n); i++) {
            double x0 = x[i];
            x[i] = x0 + 1e-6; double a = rm_ref(f, hd, wd, p.center_rewards);
            x[i] = x0 - 1e-6; double c = rm_ref(f, hd, wd, p.center_rewards);
            x[i] = x0;
            g[i] = (a - c) / 2e-6;
        }
    }
    double rl = rm_ref(f, hd, wd, p.center_rewards), fh = rel_fd(dh, gh, n), fs = rel_fd(ps.p[0].g, gw, f->C);
    printf("%-14s vs finite differences: loss %.1e, dh %.1e, dscore %.1e\n", name, fabs(loss - rl) / fabs(rl), fh, fs);
    CHECK(fabs(loss - rl) <= 1e-6 * fabs(rl), "%s loss vs double reference", name);
    CHECK(fh < 1e-5 && fs < 1e-5, "%s gradients vs finite differences: dh %g dscore %g", name, fh, fs);
    /* evaluation leaves the head's gradient alone; tk_reward_scores gives the rewards */
    float g0 = ps.p[0].g[0];
    tk_obj_result r2;
    CHECK_OK(tk_objective_loss_and_grad(o, &b, 1.0f, NULL, NULL, &r2));
    CHECK(r2.loss_sum == r.loss_sum && ps.p[0].g[0] == g0, "%s: evaluation", name);
    double rw[16];
    CHECK_OK(tk_reward_scores(o, &b, rw));
    CHECK(fabs((rw[0] - rw[1] + rw[2] - rw[3] + rw[4] - rw[5]) / 3 - r.metrics[1] / r.norm) < 1e-12, "%s: scores give the margin", name);
    free(hd); free(gh); free(dh); free(dwh);
    tk_params_free(&ps);
    tk_objective_free(o);
    cJSON_Delete(j);
}

static void check_errors(const fixture *f) {
    tk_objective *o = NULL;
    tk_kto_params kp = tk_kto_default_params();
    kp.desirable_weight = -1;
    CHECK(tk_objective_new(&tk_objective_kto, &kp, &o) == TK_ERR_ARG && strstr(tk_last_error(), "desirable_weight"), "weight: %s", tk_last_error());
    CHECK_OK(tk_objective_new(&tk_objective_kto, NULL, &o));
    tk_obj_batch b = kto_batch(f);
    tk_obj_result r;
    float v[16];
    memcpy(v, f->value, (size_t)f->S * sizeof(float));
    v[2] = 0.5f;
    b.seq_value = v;
    CHECK(tk_objective_loss_and_grad(o, &b, 1.0f, NULL, NULL, &r) == TK_ERR_ARG && strstr(tk_last_error(), "sequence 2 has value 0.5"),
          "value: %s", tk_last_error());
    b.seq_value = NULL;
    CHECK(tk_objective_loss_and_grad(o, &b, 1.0f, NULL, NULL, &r) == TK_ERR_ARG && strstr(tk_last_error(), "seq_value"), "labels: %s", tk_last_error());
    tk_objective_free(o);
    tk_reward_params rp = tk_reward_default_params();
    rp.center_rewards = -0.1;
    CHECK(tk_objective_new(&tk_objective_reward, &rp, &o) == TK_ERR_ARG && strstr(tk_last_error(), "center_rewards"), "center: %s", tk_last_error());
    CHECK_OK(tk_objective_new(&tk_objective_reward, NULL, &o));
    tk_obj_batch rb = {.T = f->Tr, .C = f->C, .h = f->rh, .head = &f->head, .seq = f->rseq, .n_seq = f->Sr, .seq_group = f->rgroup,
                       .n_group = f->Sr / 2, .seq_value = f->rvalue};
    CHECK(tk_objective_loss_and_grad(o, &rb, 1.0f, NULL, NULL, &r) == TK_ERR_ARG && strstr(tk_last_error(), "add_params"), "no head: %s", tk_last_error());
    tk_param_set ps = {0};
    CHECK_OK(tk_objective_add_params(o, f->C, 1, "", &ps));
    CHECK(!strcmp(ps.p[0].name, "score.weight"), "full fine-tuning name %s", ps.p[0].name);
    memcpy(v, f->rvalue, (size_t)f->Sr * sizeof(float));
    v[1] = 1.0f;
    rb.seq_value = v;
    CHECK(tk_objective_loss_and_grad(o, &rb, 1.0f, NULL, NULL, &r) == TK_ERR_ARG && strstr(tk_last_error(), "pair 0 has two chosen"), "pairs: %s", tk_last_error());
    tk_params_free(&ps);
    tk_objective_free(o);
}

int main(void) {
    tk_safetensors *st = NULL;
    CHECK_OK(tk_st_open("tests/fixtures/objective/kto_reward_ref.safetensors", &st));
    fixture f;
    if (st && load_fixture(st, &f)) {
        CHECK(f.S <= 16 && f.Sr <= 16 && f.C <= 64, "fixture sizes");
        check_kto(st, &f, "kto");
        check_kto(st, &f, "kto_weighted");
        check_reward(st, &f, "reward");
        check_reward(st, &f, "reward_center");
        check_errors(&f);
    } else CHECK(0, "fixture tensors");
    tk_st_close(st);
    return tk_test_done("test_kto_reward");
}
