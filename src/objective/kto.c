/* KTO (see kto.h): per-sequence log-probability sums of the policy and the reference, the
 * detached KL estimate from the call's mismatched sequences, the per-sequence losses and
 * their derivatives in double, and one backward with per-sequence coefficients. */
#include "objective/kto.h"
#include "objective/logp.h"
#include "core/core.h"
#include <math.h>

static const char *const k_metric_names[] = {"rewards/chosen", "rewards/rejected", "rewards/margins", "logps/chosen", "logps/rejected", "kl"};

tk_kto_params tk_kto_default_params(void) {
    tk_kto_params p = {.beta = 0.1, .desirable_weight = 1.0, .undesirable_weight = 1.0};
    return p;
}

static tk_status kto_create(const void *params, void **state) {
    tk_kto_params p = params ? *(const tk_kto_params *)params : tk_kto_default_params();
    if (!(p.beta > 0) || !isfinite(p.beta)) return tk_fail(TK_ERR_ARG, "beta %g must be a positive number", p.beta);
    if (!(p.desirable_weight >= 0) || !isfinite(p.desirable_weight) || !(p.undesirable_weight >= 0) || !isfinite(p.undesirable_weight))
        return tk_fail(TK_ERR_ARG, "desirable_weight %g and undesirable_weight %g must be >= 0", p.desirable_weight, p.undesirable_weight);
    tk_kto_params *s = tk_malloc(sizeof *s);
    if (!s) return TK_ERR_NOMEM;
    *s = p;
    *state = s;
    return TK_OK;
}
static void kto_free(void *state) { free(state); }

static double sigmoid(double x) { return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x)); }

static tk_status kto_loss_and_grad(void *state, const tk_obj_batch *b, float grad_scale, float *dh, float *dw, tk_obj_result *res) {
    const tk_kto_params *p = state;
    const int32_t S = b->n_seq;
    if (!b->seq_value) return tk_fail(TK_ERR_ARG, "needs the labels (batch.seq_value: 1 desirable, 0 undesirable, -1 a KL sequence)");
    size_t s = (size_t)(S ? S : 1);
    double *lp = tk_calloc(3 * s, sizeof *lp), *ref = lp ? lp + s : NULL, *dsum = lp ? lp + 2 * s : NULL;
    int64_t *cnt = tk_calloc(s, sizeof *cnt);
    tk_status st = lp && cnt ? TK_OK : TK_ERR_NOMEM;
    for (int32_t q = 0; q < S && !st; q++) {
        float v = b->seq_value[q];
        if (v != 1.0f && v != 0.0f && v != -1.0f)
            st = tk_fail(TK_ERR_ARG, "sequence %d has value %g (1 = desirable, 0 = undesirable, -1 = KL sequence)", (int)q, (double)v);
    }
    if (!st) st = tk_seq_logp_forward(b->h, b->head, b->T, b->target, b->seq, S, lp, NULL, cnt, NULL);
    for (int32_t q = 0; q < S && !st; q++)
        if (!cnt[q]) st = tk_fail(TK_ERR_ARG, "sequence %d has no completion token", (int)q);
    if (!st) {
        if (b->ref_logp) memcpy(ref, b->ref_logp, s * sizeof *ref);
        else st = tk_seq_logp_forward(b->ref_h, b->ref_head ? b->ref_head : b->head, b->T, b->target, b->seq, S, ref, NULL, NULL, NULL);
    }
    if (st) goto done;
    /* the KL estimate: mean over the mismatched sequences, clamped at 0, detached */
    double kl = 0, n_kl = 0;
    for (int32_t q = 0; q < S; q++)
        if (b->seq_value[q] == -1.0f) { kl += lp[q] - ref[q]; n_kl++; }
    kl = n_kl > 0 ? fmax(kl / n_kl, 0.0) : 0.0;
    double n_c = 0, n_r = 0, rw_c = 0, rw_r = 0, lp_c = 0, lp_r = 0;
    for (int32_t q = 0; q < S; q++) { /* sequence order: deterministic */
        float v = b->seq_value[q];
        if (v == -1.0f) continue;
        double lr = lp[q] - ref[q], z, w;
        if (v == 1.0f) { z = p->beta * (lr - kl); w = p->desirable_weight; n_c++; rw_c += p->beta * lr; lp_c += lp[q]; }
        else { z = p->beta * (kl - lr); w = p->undesirable_weight; n_r++; rw_r += p->beta * lr; lp_r += lp[q]; }
        double sg = sigmoid(z), dz = -w * sg * (1 - sg);   /* d/dz of w (1 - sigmoid(z)) */
        res->loss_sum += w * (1 - sg);
        dsum[q] = grad_scale * dz * (v == 1.0f ? p->beta : -p->beta);
    }
    const double N = n_c + n_r;
    res->norm = N;
    double m[6] = {n_c ? rw_c / n_c : 0, n_r ? rw_r / n_r : 0, n_c && n_r ? rw_c / n_c - rw_r / n_r : 0,
                   n_c ? lp_c / n_c : 0, n_r ? lp_r / n_r : 0, kl};
    for (int k = 0; k < 6; k++) res->metrics[k] = m[k] * N;
    if (dh) {
        memset(dh, 0, (size_t)(b->T * b->C) * sizeof(float));
        st = tk_seq_logp_backward(b->h, b->head, b->T, b->target, b->seq, S, dsum, NULL, NULL, dh, dw);
    }
done:
    free(lp);
    free(cnt);
    return st;
}

const tk_objective_ops tk_objective_kto = {
    .name = "kto", .needs = TK_OBJ_NEED_TARGET | TK_OBJ_NEED_SEQ | TK_OBJ_NEED_REF, .n_metrics = 6, .metric_names = k_metric_names,
    .create = kto_create, .free = kto_free, .loss_and_grad = kto_loss_and_grad,
};
