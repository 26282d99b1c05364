/* The reward model's score head and Bradley-Terry loss (see reward.h). */
#include "objective/reward.h"
#include "core/core.h"
#include <math.h>
#include <stdio.h>

static const char *const k_metric_names[] = {"accuracy", "margin", "mean_reward", "min_reward", "max_reward"};

typedef struct rm_state {
    tk_reward_params p;
    int64_t C;
    float *w, *g;   /* the head's weights and gradient (buffers of its tk_param) */
} rm_state;

tk_reward_params tk_reward_default_params(void) {
    tk_reward_params p = {.center_rewards = 0.0, .init_std = 0.02};
    return p;
}

static tk_status rm_create(const void *params, void **state) {
    tk_reward_params p = params ? *(const tk_reward_params *)params : tk_reward_default_params();
    if (!(p.center_rewards >= 0) || !isfinite(p.center_rewards))
        return tk_fail(TK_ERR_ARG, "center_rewards %g must be >= 0", p.center_rewards);
    if (!(p.init_std > 0) || !isfinite(p.init_std)) return tk_fail(TK_ERR_ARG, "init_std %g must be > 0", p.init_std);
    rm_state *s = tk_calloc(1, sizeof *s);
    if (!s) return TK_ERR_NOMEM;
    s->p = p;
    *state = s;
    return TK_OK;
}
static void rm_free(void *state) { free(state); }

static tk_status rm_add_params(void *state, int64_t C, uint64_t seed, const char *prefix, tk_param_set *ps) {
    rm_state *s = state;
    if (s->w) return tk_fail(TK_ERR_ARG, "the score head's parameters were already added");
    if (C <= 0) return tk_fail(TK_ERR_ARG, "model width %lld", (long long)C);
    char name[160];
    snprintf(name, sizeof name, "%s%s", prefix, TK_REWARD_HEAD_NAME);
    int64_t ne[2] = {C, 1};
    tk_param *p;
    tk_status st = tk_params_add(ps, name, 2, ne, NULL, true, &p);
    if (st) return st;
    tk_rng rng;
    tk_rng_seed(&rng, seed ^ 0x5c0de5c0de5c0deULL);
    for (int64_t c = 0; c < C; c++) p->w[c] = (float)(s->p.init_std * tk_rng_normal(&rng));
    s->C = C;
    s->w = p->w;
    s->g = p->g;
    return TK_OK;
}

/* r[q] = w . h[last row of q]; last[q] = that row. */
static tk_status scores(const rm_state *s, const tk_obj_batch *b, int64_t *last, double *r) {
    if (!s->w) return tk_fail(TK_ERR_ARG, "the score head has no parameters (add_params was not called)");
    if (b->C != s->C) return tk_fail(TK_ERR_ARG, "hidden size %lld differs from the score head's %lld", (long long)b->C, (long long)s->C);
    for (int32_t q = 0; q < b->n_seq; q++) last[q] = -1;
    for (int64_t t = 0; t < b->T; t++)
        if (b->seq[t] >= 0) last[b->seq[t]] = t;
    for (int32_t q = 0; q < b->n_seq; q++) {
        if (last[q] < 0) return tk_fail(TK_ERR_ARG, "sequence %d has no row (batch.seq marks none)", (int)q);
        const float *h = b->h + last[q] * b->C;
        double acc = 0;
        for (int64_t c = 0; c < b->C; c++) acc += (double)s->w[c] * h[c];
        r[q] = acc;
    }
    return TK_OK;
}

tk_status tk_reward_scores(tk_objective *o, const tk_obj_batch *b, double *rewards) {
    const tk_objective_ops *ops = tk_objective_get_ops(o);
    if (ops != &tk_objective_reward || !b || !rewards || !b->seq || !b->h) return tk_fail(TK_ERR_ARG, "reward scores: not a reward objective, or NULL batch");
    int64_t *last = tk_malloc((size_t)(b->n_seq ? b->n_seq : 1) * sizeof *last);
    if (!last) return TK_ERR_NOMEM;
    tk_status st = scores(tk_objective_state(o), b, last, rewards);
    free(last);
    return st;
}

static double log_sigmoid(double x) { return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x)); }
static double sigmoid(double x) { return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x)); }

static tk_status rm_loss_and_grad(void *state, const tk_obj_batch *b, float grad_scale, float *dh, float *dw, tk_obj_result *res) {
    rm_state *s = state;
    const int32_t S = b->n_seq, G = b->n_group;
    size_t ns = (size_t)(S ? S : 1), ng = (size_t)(G ? G : 1);
    int64_t *last = tk_malloc(ns * sizeof *last);
    double *r = tk_malloc(2 * ns * sizeof *r), *d = r ? r + ns : NULL;
    int32_t *ch = tk_malloc(2 * ng * sizeof *ch), *rj = ch ? ch + ng : NULL;
    tk_status st = last && r && ch ? TK_OK : TK_ERR_NOMEM;
    if (!st) st = tk_objective_pairs(b, ch, rj);
    if (!st) st = scores(s, b, last, r);
    if (st) goto done;
    double mn = INFINITY, mx = -INFINITY;
    for (int32_t g = 0; g < G; g++) {
        double rc = r[ch[g]], rr = r[rj[g]], x = rc - rr, c2 = 2 * s->p.center_rewards * (rc + rr);
        res->loss_sum += -log_sigmoid(x) + s->p.center_rewards * (rc + rr) * (rc + rr);
        d[ch[g]] = grad_scale * (-sigmoid(-x) + c2);
        d[rj[g]] = grad_scale * (sigmoid(-x) + c2);
        res->metrics[0] += rc > rr;
        res->metrics[1] += x;
        res->metrics[2] += 0.5 * (rc + rr);
        mn = fmin(mn, fmin(rc, rr));
        mx = fmax(mx, fmax(rc, rr));
    }
    res->norm = G;
    res->metrics[3] = G ? mn * G : 0;
    res->metrics[4] = G ? mx * G : 0;
    (void)dw;   /* the LM head is not part of a reward model */
    if (dh) {
        memset(dh, 0, (size_t)(b->T * b->C) * sizeof(float));
        for (int32_t q = 0; q < S; q++) { /* sequence order: deterministic */
            const float *h = b->h + last[q] * b->C;
            float *o = dh + last[q] * b->C;
            for (int64_t c = 0; c < b->C; c++) {
                o[c] += (float)(d[q] * s->w[c]);
                s->g[c] += (float)(d[q] * h[c]);
            }
        }
    }
done:
    free(last);
    free(r);
    free(ch);
    return st;
}

const tk_objective_ops tk_objective_reward = {
    .name = "reward", .needs = TK_OBJ_NEED_SEQ, .n_metrics = 5, .metric_names = k_metric_names,
    .create = rm_create, .free = rm_free, .loss_and_grad = rm_loss_and_grad, .add_params = rm_add_params,
};
