/* The reward model's score head and Bradley-Terry loss (see reward.h). */
#include "objective/reward.h"
#include "core/core.h"
#include <math.h>
#include <stdio.h>

static const char *const k_metric_names[] = {"accuracy", "margin", "mean_reward", "min_reward", "max_reward"};

typedef struct rm_state {
    tk_reward_params p;
    tk_score_head head;   /* 1 output, last-token pooling (classify.h) */
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
    return tk_score_head_add(&s->head, C, 1, TK_POOL_LAST, s->p.init_std, seed, prefix, ps);
}

tk_status tk_reward_scores(tk_objective *o, const tk_obj_batch *b, double *rewards) {
    const tk_objective_ops *ops = tk_objective_get_ops(o);
    if (ops != &tk_objective_reward || !b || !rewards || !b->seq || !b->h) return tk_fail(TK_ERR_ARG, "reward scores: not a reward objective, or NULL batch");
    const rm_state *s = tk_objective_state(o);
    return tk_score_head_forward(&s->head, b, NULL, rewards);
}

static double log_sigmoid(double x) { return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x)); }
static double sigmoid(double x) { return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x)); }

static tk_status rm_loss_and_grad(void *state, const tk_obj_batch *b, float grad_scale, float *dh, float *dw, tk_obj_result *res) {
    rm_state *s = state;
    const int32_t S = b->n_seq, G = b->n_group;
    size_t ns = (size_t)(S ? S : 1), ng = (size_t)(G ? G : 1);
    double *x = dh ? tk_malloc(ns * (size_t)b->C * sizeof *x) : NULL;
    double *r = tk_malloc(2 * ns * sizeof *r), *d = r ? r + ns : NULL;
    int32_t *ch = tk_malloc(2 * ng * sizeof *ch), *rj = ch ? ch + ng : NULL;
    tk_status st = (x || !dh) && r && ch ? TK_OK : TK_ERR_NOMEM;
    if (!st) st = tk_objective_pairs(b, ch, rj);
    if (!st) st = tk_score_head_forward(&s->head, b, x, r);
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
    if (dh) st = tk_score_head_backward(&s->head, b, x, d, dh);
done:
    free(x);
    free(r);
    free(ch);
    return st;
}

const tk_objective_ops tk_objective_reward = {
    .name = "reward", .needs = TK_OBJ_NEED_SEQ, .n_metrics = 5, .metric_names = k_metric_names,
    .create = rm_create, .free = rm_free, .loss_and_grad = rm_loss_and_grad, .add_params = rm_add_params,
};
