/* The GRPO objective (src/objective/grpo.c) on a small head problem:
 * - loss, dh, dW and TRL's logged metrics against TRL's own loss code for every loss type, with and
 *   without the KL term (fixture by tools/make_grpo_reference.py: trl 1.16 GRPOTrainer._compute_loss),
 *   max relative error printed; tk_grpo_advantages against TRL's advantage lines (three scalings, NaN
 *   rewards);
 * - the same gradients against central finite differences of a double reference written here (full
 *   logits), also with fractional and zero token weights; clipped and unclipped tokens on both sides;
 * - a batch split inside a sequence across two calls: sum(loss_sum) / sum(norm) and the gradients
 *   equal the whole batch's (dapo, grpo, dr_grpo with seq_tokens); bnpo counts one unit per call;
 * - chunk-size invariance, evaluation without gradients, old_logp NULL = the policy's own log-probs;
 * - bad batches and parameters fail with a message naming the field. */
#include "objective_ref.h"
#include "core/core.h"
#include "ops/ops.h"
#include "objective/logp.h"

typedef struct problem {
    int64_t T, C, V;
    int32_t S;
    const float *h, *href, *w, *value, *old, *weight;
    const int32_t *target, *seq, *seq_tokens;
    tk_tensor_ref wref;
    tk_lm_head head;
} problem;

static bool load(const tk_safetensors *st, problem *f) {
    const tk_tensor_ref *h = tk_st_find(st, "h"), *w = tk_st_find(st, "w"), *v = tk_st_find(st, "seq_value");
    if (!h || !w || !v) return false;
    memset(f, 0, sizeof *f);
    f->C = h->ne[0]; f->T = h->ne[1]; f->V = w->ne[1]; f->S = (int32_t)v->ne[0];
    f->h = fx(st, "h", TK_F32, f->T * f->C);
    f->href = fx(st, "h_ref", TK_F32, f->T * f->C);
    f->w = fx(st, "w", TK_F32, f->V * f->C);
    f->value = fx(st, "seq_value", TK_F32, f->S);
    f->old = fx(st, "old_logp", TK_F32, f->T);
    f->target = fx(st, "target", TK_I32, f->T);
    f->seq = fx(st, "seq", TK_I32, f->T);
    f->wref = *w;
    f->head = (tk_lm_head){&f->wref, 0.0f};
    return f->h && f->href && f->w && f->value && f->old && f->target && f->seq;
}

static tk_obj_batch batch_of(const problem *f) {
    return (tk_obj_batch){.T = f->T, .C = f->C, .h = f->h, .head = &f->head, .target = f->target, .weight = f->weight, .seq = f->seq,
                          .n_seq = f->S, .seq_value = f->value, .ref_h = f->href, .old_logp = f->old, .seq_tokens = f->seq_tokens};
}

/* log softmax(x_t . W^T)[target] in double over the full vocabulary */
static double row_logp(const problem *f, const double *x, const double *w, int64_t t) {
    double mx = -INFINITY, se = 0, zt = 0, *z = malloc((size_t)f->V * sizeof(double));
    for (int64_t j = 0; j < f->V; j++) {
        z[j] = 0;
        for (int64_t c = 0; c < f->C; c++) z[j] += x[t * f->C + c] * w[j * f->C + c];
        mx = fmax(mx, z[j]);
    }
    for (int64_t j = 0; j < f->V; j++) se += exp(z[j] - mx);
    zt = z[f->target[t]];
    free(z);
    return zt - mx - log(se);
}

/* The double reference of one call: loss_sum (returned), norm, and the four TRL metrics as token means.
 * ref[t]: the reference's log-probs (frozen). */
static double grpo_ref(const problem *f, const double *h, const double *w, const double *ref, const tk_grpo_params *p, double *norm,
                       double *met) {
    double sl[64] = {0}, sw[64] = {0}, m[4] = {0}, W = 0, L = 0;
    for (int64_t t = 0; t < f->T; t++) {
        const double wt = f->weight ? f->weight[t] : 1;
        if (f->seq[t] < 0 || f->target[t] < 0 || wt == 0) continue;
        const int32_t s = f->seq[t];
        const double A = f->value[s], lp = row_logp(f, h, w, t), r = f->old ? exp(lp - f->old[t]) : 1;
        const double c2 = fmin(fmax(r, 1 - p->epsilon_low), 1 + p->epsilon_high), kl = exp(ref[t] - lp) - (ref[t] - lp) - 1;
        const double l = -fmin(r * A, c2 * A) + p->beta * kl;
        const int lo = r < 1 - p->epsilon_low && A < 0, hi = r > 1 + p->epsilon_high && A > 0;
        sl[s] += wt * l; sw[s] += wt; W += wt;
        m[0] += wt * (p->beta > 0 ? kl : 0); m[1] += wt * lo; m[2] += wt * hi; m[3] += wt * (lo || hi);
    }
    double n = 0;
    for (int32_t s = 0; s < f->S; s++) {
        const double ns = f->seq_tokens && f->seq_tokens[s] > 0 ? f->seq_tokens[s] : sw[s];
        L += p->loss_type == TK_GRPO_LOSS_GRPO ? (ns > 0 ? sl[s] / ns : 0) : sl[s];
        n += ns > 0 ? sw[s] / ns : 1;
    }
    if (p->loss_type == TK_GRPO_LOSS_DAPO) n = W;
    if (p->loss_type == TK_GRPO_LOSS_DR_GRPO) n *= p->max_completion_length;
    if (p->loss_type == TK_GRPO_LOSS_BNPO) { L /= fmax(W, 1); n = 1; }
    *norm = n;
    for (int k = 0; met && k < 4; k++) met[k] = W > 0 ? m[k] / W : 0;
    return L;
}

static void fd(double *g, double *x, int64_t n, const problem *f, double *h, double *w, const double *ref, const tk_grpo_params *p, double scale) {
    double nm;
    for (int64_t i = 0; i < n; i++) {
        double x0 = x[i];
        x[i] = x0 + 1e-5; double a = grpo_ref(f, h, w, ref, p, &nm, NULL);
        x[i] = x0 - 1e-5; double b = grpo_ref(f, h, w, ref, p, &nm, NULL);
        x[i] = x0;
        g[i] = scale * (a - b) / 2e-5;
    }
}

/* loss, dh, dw and metrics of f against the double reference and its finite differences */
static void check_fd(const problem *f, const tk_grpo_params *p, const char *what) {
    const int64_t n = f->T * f->C, nw = f->V * f->C;
    double *hd = malloc(n * sizeof(double)), *wd = malloc(nw * sizeof(double)), *gh = malloc(n * sizeof(double)), *gw = malloc(nw * sizeof(double));
    double *hr = malloc(n * sizeof(double)), *ref = calloc((size_t)f->T, sizeof(double));
    for (int64_t i = 0; i < n; i++) { hd[i] = f->h[i]; hr[i] = f->href[i]; }
    for (int64_t i = 0; i < nw; i++) wd[i] = f->w[i];
    for (int64_t t = 0; t < f->T; t++) if (f->target[t] >= 0) ref[t] = row_logp(f, hr, wd, t);
    double norm, met[4], L = grpo_ref(f, hd, wd, ref, p, &norm, met);
    tk_objective *o = NULL;
    CHECK_OK(tk_objective_new(&tk_objective_grpo, p, &o));
    float *dh = malloc(n * sizeof(float)), *dw = calloc(nw, sizeof(float));
    tk_obj_batch b = batch_of(f);
    tk_obj_result r;
    CHECK_OK(tk_objective_loss_and_grad(o, &b, (float)(1.0 / norm), dh, dw, &r));
    fd(gh, hd, n, f, hd, wd, ref, p, 1.0 / norm);
    fd(gw, wd, nw, f, hd, wd, ref, p, 1.0 / norm);
    double em = 0;
    for (int k = 0; k < 4; k++) em = fmax(em, fabs(r.metrics[k] / r.norm - met[k]));
    double eh = rel_fd(dh, gh, n), ew = rel_fd(dw, gw, nw);
    printf("%-26s vs finite differences: loss %.1e, norm %.1e, dh %.1e, dW %.1e, metrics %.1e (clipped %.3f low %.3f high)\n", what,
           fabs(r.loss_sum - L) / fabs(L), fabs(r.norm - norm), eh, ew, em, met[1], met[2]);
    CHECK(fabs(r.loss_sum - L) <= 1e-6 * fabs(L) && fabs(r.norm - norm) <= 1e-12 * norm, "%s: loss %.9g / %g vs %.9g / %g", what, r.loss_sum,
          r.norm, L, norm);
    CHECK(eh < 1e-5 && ew < 1e-5, "%s gradients vs finite differences: dh %g dW %g", what, eh, ew);
    CHECK(em < 1e-6, "%s metrics: %g", what, em);
    CHECK(met[1] > 0 && met[2] > 0 && met[3] < 1, "%s: clipped tokens on both sides and unclipped ones", what);
    free(hd); free(wd); free(gh); free(gw); free(hr); free(ref); free(dh); free(dw);
    tk_objective_free(o);
}

/* One TRL case: loss, gradients, metrics; then chunks, evaluation, the split into two calls. */
static void check_trl(const tk_safetensors *st, const problem *f, const char *name) {
    cJSON *j = cJSON_Parse(tk_st_metadata(st, name) ? tk_st_metadata(st, name) : "");
    CHECK(j != NULL, "fixture entry %s", name);
    if (!j) return;
    tk_grpo_params p = grpo_params_of(j);
    tk_objective *o = NULL;
    CHECK_OK(tk_objective_new(&tk_objective_grpo, &p, &o));
    const int64_t n = f->T * f->C, nw = f->V * f->C;
    float *dh = malloc(n * sizeof(float)), *dw = calloc(nw, sizeof(float));
    tk_obj_batch b = batch_of(f);
    tk_obj_result r, r2;
    double nb = -1;
    CHECK_OK(tk_grpo_norm(&p, &b, &nb));   /* the norm first, from the batch alone, as a trainer sums it */
    CHECK_OK(tk_objective_loss_and_grad(o, &b, (float)(1.0 / nb), dh, dw, &r));
    CHECK(nb == r.norm, "%s: tk_grpo_norm %.17g = the reported norm %.17g", name, nb, r.norm);
    char key[64];
    snprintf(key, sizeof key, "%s_dh", name);
    double loss = r.loss_sum / r.norm, tl = cJSON_GetObjectItem(j, "loss")->valuedouble, eh = rel_ff(dh, fx(st, key, TK_F32, n), n);
    snprintf(key, sizeof key, "%s_dw", name);
    double ew = rel_ff(dw, fx(st, key, TK_F32, nw), nw), em = 0;
    const cJSON *met = cJSON_GetObjectItem(j, "metrics");
    CHECK(cJSON_GetArraySize(met) == 4, "%s: four metrics", name);
    for (int k = 0; k < 4 && k < cJSON_GetArraySize(met); k++)
        em = fmax(em, fabs(r.metrics[k] / r.norm - cJSON_GetArrayItem(met, k)->valuedouble));
    printf("%-11s vs TRL: loss %.9f (trl %.9f, rel %.1e), dh %.1e, dW %.1e, 4 metrics %.1e\n", name, loss, tl, fabs(loss - tl) / fabs(tl), eh, ew, em);
    CHECK(fabs(loss - tl) <= 1e-5 * fabs(tl), "%s loss %.9g vs TRL %.9g", name, loss, tl);
    CHECK(eh < 1e-5 && ew < 1e-5, "%s gradients vs TRL: dh %g dW %g", name, eh, ew);
    CHECK(em < 1e-6, "%s metrics vs TRL: %g", name, em);
    /* chunks of 3 rows; evaluation only */
    float *dh2 = malloc(n * sizeof(float)), *dw2 = calloc(nw, sizeof(float));
    tk_lmhead_xent_chunk_rows(3);
    CHECK_OK(tk_objective_loss_and_grad(o, &b, (float)(1.0 / r.norm), dh2, dw2, &r2));
    tk_lmhead_xent_chunk_rows(0);
    CHECK(fabs(r2.loss_sum - r.loss_sum) <= CHUNK_TOL * fabs(r.loss_sum) && rel_ff(dh2, dh, n) < 10 * CHUNK_TOL && rel_ff(dw2, dw, nw) < 10 * CHUNK_TOL, "%s: chunks of 3 rows", name);
    CHECK_OK(tk_objective_loss_and_grad(o, &b, 1.0f, NULL, NULL, &r2));
    CHECK(r2.loss_sum == r.loss_sum && r2.norm == r.norm, "%s: same loss without gradients", name);
    /* split inside a sequence: rows [0, k) and [k, T) in two calls, seq_tokens = whole counts */
    int32_t cnt[64] = {0};
    for (int64_t t = 0; t < f->T; t++) if (f->seq[t] >= 0 && f->target[t] >= 0) cnt[f->seq[t]]++;
    int64_t k = 0;
    for (int64_t t = 1; t < f->T && !k; t++) if (f->seq[t] >= 0 && f->seq[t] == f->seq[t - 1] && t > f->T / 2) k = t + 1;
    tk_obj_batch b1 = b, b2 = b;
    b1.seq_tokens = b2.seq_tokens = cnt;
    b1.T = k;
    b2.T = f->T - k; b2.h += k * f->C; b2.ref_h += k * f->C; b2.target += k; b2.seq += k; b2.old_logp += k;
    tk_obj_result q1, q2;
    double n1 = -1, n2 = -1;
    CHECK_OK(tk_grpo_norm(&p, &b1, &n1));
    CHECK_OK(tk_grpo_norm(&p, &b2, &n2));
    const float gs = (float)(1.0 / (n1 + n2));
    memset(dw2, 0, nw * sizeof(float));
    CHECK_OK(tk_objective_loss_and_grad(o, &b1, gs, dh2, dw2, &q1));
    CHECK_OK(tk_objective_loss_and_grad(o, &b2, gs, dh2 + k * f->C, dw2, &q2));
    CHECK(q1.norm == n1 && q2.norm == n2, "%s: tk_grpo_norm of each call", name);
    const double split = (q1.loss_sum + q2.loss_sum) / (q1.norm + q2.norm);
    if (p.loss_type == TK_GRPO_LOSS_BNPO) {
        CHECK(q1.norm == 1 && q2.norm == 1, "%s: bnpo counts one unit per call", name);
    } else {
        printf("%-11s split at row %lld: loss %.1e, dh %.1e, dW %.1e\n", name, (long long)k, fabs(split - loss) / fabs(loss), rel_ff(dh2, dh, n),
               rel_ff(dw2, dw, nw));
        CHECK(fabs(split - loss) <= CHUNK_TOL * fabs(loss) && rel_ff(dh2, dh, n) < 10 * CHUNK_TOL && rel_ff(dw2, dw, nw) < 10 * CHUNK_TOL, "%s: two calls = one (%.17g vs %.17g)",
              name, split, loss);
    }
    free(dh); free(dw); free(dh2); free(dw2);
    tk_objective_free(o);
    cJSON_Delete(j);
}

static void check_advantages(const tk_safetensors *st) {
    const tk_tensor_ref *rt = tk_st_find(st, "rewards");
    if (!rt) { CHECK(0, "fixture rewards"); return; }
    const int32_t n = (int32_t)rt->ne[0];
    const char *scales[3] = {"group", "batch", "none"};
    const int32_t group[8] = {0, 0, 0, 1, 1, 1, 2, 2}, renum[8] = {7, 7, 7, -3, -3, -3, 5, 5}; /* ids compared for equality */
    double r[8], rn[8];
    float a[8];
    for (int32_t i = 0; i < n && i < 8; i++) {
        r[i] = ((const float *)rt->data)[i];
        rn[i] = ((const float *)fx(st, "rewards_nan", TK_F32, n))[i];
    }
    double worst = 0;
    for (int sc = 0; sc < 3; sc++) {
        char key[32];
        for (int nanv = 0; nanv < 2; nanv++) {
            snprintf(key, sizeof key, "adv_%s%s", nanv ? "nan_" : "", scales[sc]);
            const float *want = fx(st, key, TK_F32, n);
            CHECK_OK(tk_grpo_advantages(nanv ? rn : r, sc == 1 ? renum : group, n, sc, a));
            double e = want ? rel_ff(a, want, n) : 1;
            worst = fmax(worst, e);
            CHECK(e < 1e-6, "advantages %s: %g", key, e);
        }
    }
    printf("advantages vs TRL (group, batch, none; with NaN rewards): max rel %.1e\n", worst);
    double one[1] = {3};
    CHECK_OK(tk_grpo_advantages(one, NULL, 1, TK_GRPO_SCALE_GROUP, a));
    CHECK(a[0] == 0.0f, "a group of one: advantage 0 (%g)", a[0]);
    CHECK(tk_grpo_advantages(r, NULL, n, 7, a) == TK_ERR_ARG && strstr(tk_last_error(), "scaling"), "scale: %s", tk_last_error());
    CHECK(tk_grpo_advantages(NULL, NULL, 2, 0, a) == TK_ERR_ARG, "NULL rewards");
}

static void check_errors(const problem *f) {
    tk_objective *o = NULL;
    tk_grpo_params p = tk_grpo_default_params();
    CHECK(tk_objective_find("grpo") == &tk_objective_grpo, "grpo is registered");
    CHECK(!strcmp(tk_grpo_loss_name(tk_grpo_loss_parse("dr_grpo")), "dr_grpo") && tk_grpo_loss_parse("ppo") == -1 && !tk_grpo_loss_name(9), "loss names");
    CHECK(p.loss_type == TK_GRPO_LOSS_DAPO && p.beta == 0 && p.epsilon_low == 0.2 && !tk_grpo_needs_ref(&p), "TRL 1.16's defaults");
    p.beta = -1;
    CHECK(tk_objective_new(&tk_objective_grpo, &p, &o) == TK_ERR_ARG && strstr(tk_last_error(), "beta"), "beta: %s", tk_last_error());
    p = tk_grpo_default_params(); p.loss_type = 9;
    CHECK(tk_objective_new(&tk_objective_grpo, &p, &o) == TK_ERR_ARG && strstr(tk_last_error(), "loss type"), "loss: %s", tk_last_error());
    p = tk_grpo_default_params(); p.loss_type = TK_GRPO_LOSS_DR_GRPO; p.max_completion_length = 0;
    CHECK(tk_objective_new(&tk_objective_grpo, &p, &o) == TK_ERR_ARG && strstr(tk_last_error(), "max_completion_length"), "L: %s", tk_last_error());
    p = tk_grpo_default_params(); p.epsilon_high = NAN;
    CHECK(tk_objective_new(&tk_objective_grpo, &p, &o) == TK_ERR_ARG && strstr(tk_last_error(), "epsilon"), "epsilon: %s", tk_last_error());
    p = tk_grpo_default_params(); p.beta = 0.1;
    CHECK(tk_grpo_needs_ref(&p), "beta > 0 needs the reference");
    CHECK_OK(tk_objective_new(&tk_objective_grpo, &p, &o));
    tk_obj_batch b = batch_of(f);
    tk_obj_result r;
    b.ref_h = NULL;
    double sums[64] = {0};
    b.ref_logp = sums;
    CHECK(tk_objective_loss_and_grad(o, &b, 1.0f, NULL, NULL, &r) == TK_ERR_ARG && strstr(tk_last_error(), "ref_h"), "ref: %s", tk_last_error());
    b = batch_of(f);
    tk_tensor_ref small = f->wref;
    small.ne[1] = f->V - 1;
    tk_lm_head sh = {&small, 0.0f};
    b.ref_head = &sh;
    CHECK(tk_objective_loss_and_grad(o, &b, 1.0f, NULL, NULL, &r) == TK_ERR_ARG && strstr(tk_last_error(), "reference head"), "ref head: %s", tk_last_error());
    b = batch_of(f);
    b.seq_value = NULL;
    CHECK(tk_objective_loss_and_grad(o, &b, 1.0f, NULL, NULL, &r) == TK_ERR_ARG && strstr(tk_last_error(), "seq_value"), "adv: %s", tk_last_error());
    b = batch_of(f);
    float *old = malloc((size_t)f->T * sizeof(float));
    memcpy(old, f->old, (size_t)f->T * sizeof(float));
    int64_t bad = 0;
    while (f->seq[bad] < 0) bad++;
    old[bad] = INFINITY;
    b.old_logp = old;
    CHECK(tk_objective_loss_and_grad(o, &b, 1.0f, NULL, NULL, &r) == TK_ERR_RANGE && strstr(tk_last_error(), "old_logp at row"), "old: %s", tk_last_error());
    b = batch_of(f);
    int32_t tokens[64] = {0};
    tokens[0] = -2;
    b.seq_tokens = tokens;
    CHECK(tk_objective_loss_and_grad(o, &b, 1.0f, NULL, NULL, &r) == TK_ERR_RANGE && strstr(tk_last_error(), "seq_tokens of sequence 0"), "tokens: %s", tk_last_error());
    tokens[0] = 0;
    CHECK(tk_objective_loss_and_grad(o, &b, 1.0f, NULL, NULL, &r) == TK_ERR_RANGE && strstr(tk_last_error(), "seq_tokens 0"), "tokens 0: %s", tk_last_error());
    double nb;
    p.loss_type = 7;
    CHECK(tk_grpo_norm(&p, &b, &nb) == TK_ERR_ARG && strstr(tk_last_error(), "loss type"), "norm loss: %s", tk_last_error());
    p.loss_type = TK_GRPO_LOSS_GRPO;
    CHECK(tk_grpo_norm(&p, &b, &nb) == TK_ERR_RANGE && strstr(tk_last_error(), "seq_tokens 0"), "norm tokens: %s", tk_last_error());
    b.seq_tokens = NULL;
    b.n_seq = 2;
    CHECK(tk_grpo_norm(&p, &b, &nb) == TK_ERR_RANGE && strstr(tk_last_error(), "outside [-1, 2)"), "norm seq: %s", tk_last_error());
    tk_objective_free(o);
    /* beta = 0 needs no reference; old_logp NULL = the policy's own log-probs (ratio 1) */
    CHECK_OK(tk_objective_new(&tk_objective_grpo, NULL, &o));
    b = batch_of(f);
    b.ref_h = NULL;
    b.old_logp = NULL;
    const int64_t n = f->T * f->C;
    float *dh = malloc(n * sizeof(float)), *dh2 = malloc(n * sizeof(float));
    tk_obj_result r2;
    CHECK_OK(tk_objective_loss_and_grad(o, &b, 1.0f, dh, NULL, &r));
    double tok[256];
    CHECK(f->T <= 256, "problem size");
    CHECK_OK(tk_seq_logp_forward(f->h, &f->head, f->T, f->target, f->seq, f->S, NULL, NULL, NULL, tok));
    for (int64_t t = 0; t < f->T; t++) old[t] = (float)tok[t];
    b.old_logp = old;
    CHECK_OK(tk_objective_loss_and_grad(o, &b, 1.0f, dh2, NULL, &r2));
    CHECK(fabs(r.loss_sum - r2.loss_sum) < 1e-6 * fabs(r.loss_sum) && rel_ff(dh, dh2, n) < 1e-6 && r.metrics[1] == 0 && r.metrics[2] == 0,
          "old_logp NULL: %.9g vs %.9g", r.loss_sum, r2.loss_sum);
    free(dh); free(dh2); free(old);
    tk_objective_free(o);
}

int main(void) {
    tk_safetensors *st = NULL;
    CHECK_OK(tk_st_open("tests/fixtures/objective/grpo_ref.safetensors", &st));
    problem f;
    if (st && load(st, &f)) {
        CHECK(f.S <= 64 && f.T <= 256, "fixture sizes");
        const char *cases[] = {"dapo", "dapo_kl", "grpo", "grpo_kl", "bnpo_kl", "dr_grpo_kl"};
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) check_trl(st, &f, cases[i]);
        check_advantages(st);
        /* finite differences: each loss type, beta 0 and > 0; then fractional / zero weights with seq_tokens */
        for (int lt = 0; lt < TK_GRPO_LOSS_COUNT; lt++)
            for (int kl = 0; kl < 2; kl++) {
                tk_grpo_params p = {.beta = kl ? 0.05 : 0, .epsilon_low = 0.2, .epsilon_high = 0.28, .loss_type = lt, .max_completion_length = 11};
                char what[64];
                snprintf(what, sizeof what, "%s beta %g", tk_grpo_loss_name(lt), p.beta);
                check_fd(&f, &p, what);
            }
        float wt[256];
        int32_t cnt[64] = {0};
        int zeroed = 0;
        for (int64_t t = 0; t < f.T; t++) {
            wt[t] = t % 3 == 0 ? 0.5f : 1.0f;
            if (f.seq[t] == 2 && !zeroed) { wt[t] = 0; zeroed = 1; }
            if (f.seq[t] >= 0 && wt[t] != 0) cnt[f.seq[t]]++;
        }
        problem g = f;
        g.weight = wt;
        for (int lt = 0; lt < TK_GRPO_LOSS_COUNT; lt++) {
            tk_grpo_params p = {.beta = 0.05, .epsilon_low = 0.2, .epsilon_high = 0.2, .loss_type = lt, .max_completion_length = 11};
            char what[64];
            snprintf(what, sizeof what, "%s weighted", tk_grpo_loss_name(lt));
            g.seq_tokens = NULL;
            check_fd(&g, &p, what);
            g.seq_tokens = cnt; /* whole counts, not weights: n_s as given */
            snprintf(what, sizeof what, "%s weighted + seq_tokens", tk_grpo_loss_name(lt));
            check_fd(&g, &p, what);
        }
        check_errors(&f);
    } else CHECK(0, "fixture tensors");
    tk_st_close(st);
    return tk_test_done("test_grpo");
}
