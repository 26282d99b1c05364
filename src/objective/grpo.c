/* GRPO (see grpo.h): per-token log-probabilities of the policy (and of the reference when beta > 0)
 * in one chunked pass each, the clipped surrogate and the KL term per token in double, the loss
 * type's aggregation as per-token coefficients, and one backward through tk_seq_logp_backward. */
#include "objective/grpo.h"
#include "objective/chunks.h"
#include "objective/logp.h"
#include "core/core.h"
#include <math.h>

enum { M_KL = 0, M_CLIP_LOW, M_CLIP_HIGH, M_CLIP_REGION, M_RATIO, M_ADV, M_COUNT };
static const char *const k_metric_names[M_COUNT] = {"kl", "clip_ratio/low_mean", "clip_ratio/high_mean", "clip_ratio/region_mean",
                                                    "ratio/mean", "advantage/mean"};
static const char *const k_loss_names[TK_GRPO_LOSS_COUNT] = {"dapo", "grpo", "bnpo", "dr_grpo"};

tk_grpo_params tk_grpo_default_params(void) {
    tk_grpo_params p = {.beta = 0.0, .epsilon_low = 0.2, .epsilon_high = 0.2, .loss_type = TK_GRPO_LOSS_DAPO, .max_completion_length = 512};
    return p;
}

int tk_grpo_needs_ref(const tk_grpo_params *p) { return p && p->beta > 0; }

int tk_grpo_loss_parse(const char *name) {
    for (int i = 0; name && i < TK_GRPO_LOSS_COUNT; i++)
        if (!strcmp(name, k_loss_names[i])) return i;
    return -1;
}
const char *tk_grpo_loss_name(int l) { return l >= 0 && l < TK_GRPO_LOSS_COUNT ? k_loss_names[l] : NULL; }

static tk_status grpo_create(const void *params, void **state) {
    tk_grpo_params p = params ? *(const tk_grpo_params *)params : tk_grpo_default_params();
    if (!(p.beta >= 0) || !isfinite(p.beta)) return tk_fail(TK_ERR_ARG, "beta %g must be a number >= 0", p.beta);
    if (!(p.epsilon_low >= 0) || !isfinite(p.epsilon_low) || !(p.epsilon_high >= 0) || !isfinite(p.epsilon_high))
        return tk_fail(TK_ERR_ARG, "epsilon_low %g and epsilon_high %g must be numbers >= 0", p.epsilon_low, p.epsilon_high);
    if (p.loss_type < 0 || p.loss_type >= TK_GRPO_LOSS_COUNT) return tk_fail(TK_ERR_ARG, "unknown loss type %d", p.loss_type);
    if (p.loss_type == TK_GRPO_LOSS_DR_GRPO && p.max_completion_length <= 0)
        return tk_fail(TK_ERR_ARG, "max_completion_length %d: dr_grpo needs it > 0", (int)p.max_completion_length);
    tk_grpo_params *s = tk_malloc(sizeof *s);
    if (!s) return TK_ERR_NOMEM;
    *s = p;
    *state = s;
    return TK_OK;
}
static void grpo_free(void *state) { free(state); }

/* The reference, when beta > 0: per-token log-probs need hidden states (ref_logp holds sums). */
static tk_status check_ref(const tk_obj_batch *b) {
    if (!b->ref_h) return tk_fail(TK_ERR_ARG, "beta > 0 needs the reference's hidden states (batch.ref_h; per-sequence ref_logp cannot serve)");
    if (!b->ref_head) return TK_OK;
    tk_status st = tk_head_check(b->ref_head, "reference head");
    if (st) return st;
    if (b->ref_head->w->ne[0] != b->head->w->ne[0] || b->ref_head->w->ne[1] != b->head->w->ne[1])
        return tk_fail(TK_ERR_ARG, "reference head {%lld, %lld} differs from the policy head {%lld, %lld}", (long long)b->ref_head->w->ne[0],
                       (long long)b->ref_head->w->ne[1], (long long)b->head->w->ne[0], (long long)b->head->w->ne[1]);
    return TK_OK;
}

/* The call's completion tokens (sq[t] = seq[t] on them, -1 elsewhere), each sequence's weight in the call
 * (wsum) and its normaliser n_s (nrm: the whole sequence's weight, seq_tokens when given). */
static tk_status tokens_of(const tk_obj_batch *b, int32_t *sq, double *wsum, double *nrm) {
    for (int64_t t = 0; t < b->T; t++) {
        const float w = b->weight ? b->weight[t] : 1.0f;
        sq[t] = b->target[t] >= 0 && w != 0 ? b->seq[t] : -1;
        if (sq[t] >= 0) wsum[sq[t]] += w;
    }
    for (int32_t s = 0; s < b->n_seq; s++) {
        if (b->seq_tokens && b->seq_tokens[s] < 0) return tk_fail(TK_ERR_RANGE, "seq_tokens of sequence %d is negative", (int)s);
        if (b->seq_tokens && wsum[s] != 0 && b->seq_tokens[s] == 0)
            return tk_fail(TK_ERR_RANGE, "sequence %d has completion tokens but seq_tokens 0", (int)s);
        nrm[s] = b->seq_tokens && b->seq_tokens[s] > 0 ? (double)b->seq_tokens[s] : wsum[s];
    }
    return TK_OK;
}

/* A call's norm (grpo.h): tokens (dapo), whole sequences (grpo; x L for dr_grpo; a sequence without
 * tokens counts 1), or 1 (bnpo). */
static double call_norm(const tk_grpo_params *p, int32_t S, const double *wsum, const double *nrm) {
    double n = 0, W = 0;
    for (int32_t s = 0; s < S; s++) { W += wsum[s]; n += nrm[s] > 0 ? wsum[s] / nrm[s] : 1.0; }
    return p->loss_type == TK_GRPO_LOSS_DAPO ? W : p->loss_type == TK_GRPO_LOSS_BNPO ? 1.0
         : p->loss_type == TK_GRPO_LOSS_DR_GRPO ? n * p->max_completion_length : n;
}

tk_status tk_grpo_norm(const tk_grpo_params *p, const tk_obj_batch *b, double *norm) {
    if (!p || !b || !norm || !b->target || !b->seq || b->T < 0 || b->n_seq < 0)
        return tk_fail(TK_ERR_ARG, "grpo norm: needs params, a batch with target and seq, and an output");
    if (p->loss_type < 0 || p->loss_type >= TK_GRPO_LOSS_COUNT) return tk_fail(TK_ERR_ARG, "grpo norm: unknown loss type %d", p->loss_type);
    for (int64_t t = 0; t < b->T; t++)
        if (b->seq[t] < -1 || b->seq[t] >= b->n_seq)
            return tk_fail(TK_ERR_RANGE, "grpo norm: sequence id %d at row %lld is outside [-1, %d)", (int)b->seq[t], (long long)t, (int)b->n_seq);
    const size_t nt = (size_t)(b->T ? b->T : 1), ns = (size_t)(b->n_seq ? b->n_seq : 1);
    int32_t *sq = tk_malloc(nt * sizeof *sq);
    double *wsum = tk_calloc(2 * ns, sizeof *wsum);
    tk_status st = sq && wsum ? tokens_of(b, sq, wsum, wsum + ns) : TK_ERR_NOMEM;
    *norm = st ? 0 : call_norm(p, b->n_seq, wsum, wsum + ns);
    free(sq);
    free(wsum);
    return st ? tk_fail_ctx(st, "grpo norm: ") : TK_OK;
}

static tk_status grpo_loss_and_grad(void *state, const tk_obj_batch *b, float grad_scale, float *dh, float *dw, tk_obj_result *res) {
    const tk_grpo_params *p = state;
    const int64_t T = b->T;
    const int32_t S = b->n_seq;
    if (!b->seq_value) return tk_fail(TK_ERR_ARG, "needs the advantages (batch.seq_value, one per sequence)");
    tk_status st = p->beta > 0 ? check_ref(b) : TK_OK;
    if (st) return st;
    const size_t nt = (size_t)(T ? T : 1), ns = (size_t)(S ? S : 1);
    int32_t *sq = tk_malloc(nt * sizeof *sq);
    double *lp = tk_calloc(3 * nt, sizeof *lp), *ref = lp ? lp + nt : NULL, *dtok = lp ? lp + 2 * nt : NULL;
    double *wsum = tk_calloc(2 * ns, sizeof *wsum), *nrm = wsum ? wsum + ns : NULL;
    if (!sq || !lp || !wsum) { st = TK_ERR_NOMEM; goto done; }
    if ((st = tokens_of(b, sq, wsum, nrm))) goto done;
    for (int64_t t = 0; t < T; t++)
        if (sq[t] >= 0 && b->old_logp && !isfinite(b->old_logp[t]))
            { st = tk_fail(TK_ERR_RANGE, "old_logp at row %lld is not finite", (long long)t); goto done; }
    if ((st = tk_seq_logp_forward(b->h, b->head, T, b->target, sq, S, NULL, NULL, NULL, lp))) goto done;
    if (p->beta > 0 &&
        (st = tk_seq_logp_forward(b->ref_h, b->ref_head ? b->ref_head : b->head, T, b->target, sq, S, NULL, NULL, NULL, ref)))
        goto done;
    /* per token: the loss, its derivative, the metrics; row order (deterministic) */
    double tok_w = 0, tok_sum = 0, m[M_COUNT] = {0};
    for (int64_t t = 0; t < T; t++) {
        if (sq[t] < 0) continue;
        const int32_t s = sq[t];
        const double w = b->weight ? b->weight[t] : 1.0, A = b->seq_value[s];
        const double r = b->old_logp ? exp(lp[t] - (double)b->old_logp[t]) : 1.0;
        const int low = r < 1 - p->epsilon_low && A < 0, high = r > 1 + p->epsilon_high && A > 0;
        const double rc = fmin(fmax(r, 1 - p->epsilon_low), 1 + p->epsilon_high);
        double l = -fmin(r * A, rc * A), d = low || high ? 0.0 : -A * r, kl = 0;
        if (p->beta > 0) {
            const double x = ref[t] - lp[t];
            kl = exp(x) - x - 1;
            l += p->beta * kl;
            d += p->beta * (1 - exp(x));
        }
        /* coefficient of this token's loss in loss_sum */
        const double c = p->loss_type == TK_GRPO_LOSS_GRPO ? w / (nrm[s] > 0 ? nrm[s] : 1) : w;
        tok_sum += c * l;
        dtok[t] = c * d;
        tok_w += w;
        m[M_KL] += w * kl; m[M_CLIP_LOW] += w * low; m[M_CLIP_HIGH] += w * high; m[M_CLIP_REGION] += w * (low || high);
        m[M_RATIO] += w * r; m[M_ADV] += w * A;
    }
    const double norm = call_norm(p, S, wsum, nrm);
    if (p->loss_type == TK_GRPO_LOSS_BNPO) { /* the call's token mean, one unit; TRL: mask.sum().clamp(min=1) */
        const double inv = 1.0 / (tok_w > 1 ? tok_w : 1.0);
        tok_sum *= inv;
        for (int64_t t = 0; t < T; t++) dtok[t] *= inv;
    }
    res->loss_sum = tok_sum;
    res->norm = norm;
    for (int k = 0; k < M_COUNT; k++) res->metrics[k] = tok_w > 0 ? m[k] / tok_w * norm : 0;
    if (dh) {
        for (int64_t t = 0; t < T; t++) dtok[t] *= grad_scale;
        memset(dh, 0, (size_t)(T * b->C) * sizeof(float));
        st = tk_seq_logp_backward(b->h, b->head, T, b->target, sq, S, NULL, NULL, dtok, dh, dw);
    }
done:
    free(sq);
    free(lp);
    free(wsum);
    return st;
}

const tk_objective_ops tk_objective_grpo = {
    .name = "grpo", .needs = TK_OBJ_NEED_TARGET | TK_OBJ_NEED_SEQ, .n_metrics = M_COUNT, .metric_names = k_metric_names,
    .create = grpo_create, .free = grpo_free, .loss_and_grad = grpo_loss_and_grad,
};

/* ---- advantages ---- */

/* Mean and Bessel-corrected std of the non-NaN rewards[i] with pick(i) (group id g, or all when all != 0);
 * NaN when none (mean) or fewer than two (std), as TRL's nanmean / nanstd. */
static void moments(const double *r, const int32_t *group, int32_t n, int all, int32_t g, double *mean, double *sd) {
    double s = 0, q = 0, k = 0;
    for (int32_t i = 0; i < n; i++)
        if ((all || !group || group[i] == g) && !isnan(r[i])) { s += r[i]; k++; }
    *mean = k > 0 ? s / k : NAN;
    for (int32_t i = 0; i < n; i++)
        if ((all || !group || group[i] == g) && !isnan(r[i])) q += (r[i] - *mean) * (r[i] - *mean);
    *sd = k > 1 ? sqrt(q / k * (k / (k - 1))) : NAN;
}

tk_status tk_grpo_advantages(const double *rewards, const int32_t *group, int32_t n, int scale, float *adv) {
    if (n < 0 || (n > 0 && (!rewards || !adv))) return tk_fail(TK_ERR_ARG, "grpo advantages: needs n >= 0, rewards and adv");
    if (scale != TK_GRPO_SCALE_GROUP && scale != TK_GRPO_SCALE_BATCH && scale != TK_GRPO_SCALE_NONE)
        return tk_fail(TK_ERR_ARG, "grpo advantages: unknown reward scaling %d (group, batch or none)", scale);
    double bmean, bsd;
    moments(rewards, group, n, 1, 0, &bmean, &bsd);
    if (n <= 1) bsd = 0; /* TRL: zeros when the batch has one reward */
    for (int32_t i = 0; i < n; i++) {
        double mean, sd, gsize = 0;
        moments(rewards, group, n, 0, group ? group[i] : 0, &mean, &sd);
        for (int32_t j = 0; j < n; j++) gsize += !group || group[j] == group[i];
        if (gsize <= 1) sd = 0; /* TRL: zeros when num_generations is 1 */
        if (scale == TK_GRPO_SCALE_BATCH) sd = bsd;
        double a = rewards[i] - mean;
        if (scale != TK_GRPO_SCALE_NONE) a /= sd + 1e-4;
        adv[i] = isnan(a) ? 0.0f : (float)a;
    }
    return TK_OK;
}
