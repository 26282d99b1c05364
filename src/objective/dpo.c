/* DPO, ORPO and SimPO (see dpo.h): pairs resolved from seq_group / seq_value, one chunked
 * pass of the policy's per-token log-probabilities over every row any term needs, the
 * per-pair losses and their derivatives in double, and one backward with per-token
 * coefficients. */
#include "objective/dpo.h"
#include "objective/logp.h"
#include "core/core.h"
#include <math.h>

typedef enum pref_kind { PREF_DPO = 0, PREF_ORPO, PREF_SIMPO } pref_kind;

typedef struct pref_state {
    pref_kind kind;
    tk_dpo_params p;
} pref_state;

static const char *const k_metric_names[] = {"rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins",
                                             "logps/chosen",   "logps/rejected",   "nll_loss",           "log_odds_ratio"};
static const char *const k_loss_names[TK_DPO_LOSS_COUNT] = {"sigmoid", "ipo", "hinge", "robust"};

tk_dpo_params tk_dpo_default_params(void) {
    tk_dpo_params p = {.loss = TK_DPO_SIGMOID, .beta = 0.1, .label_smoothing = 0.0, .simpo_gamma = 0.5};
    return p;
}

const char *tk_dpo_loss_name(tk_dpo_loss l) { return l >= 0 && l < TK_DPO_LOSS_COUNT ? k_loss_names[l] : "?"; }

tk_dpo_loss tk_dpo_loss_from_name(const char *name) {
    for (int i = 0; name && i < TK_DPO_LOSS_COUNT; i++)
        if (!strcmp(name, k_loss_names[i])) return (tk_dpo_loss)i;
    return TK_DPO_LOSS_COUNT;
}

static tk_status create(pref_kind kind, const void *params, void **state) {
    tk_dpo_params p = params ? *(const tk_dpo_params *)params : tk_dpo_default_params();
    if (!(p.beta > 0) || !isfinite(p.beta)) return tk_fail(TK_ERR_ARG, "beta %g must be a positive number", p.beta);
    if (!isfinite(p.label_smoothing) || p.label_smoothing < 0)
        return tk_fail(TK_ERR_ARG, "label_smoothing %g must be >= 0", p.label_smoothing);
    if (kind == PREF_DPO) {
        if (p.loss < 0 || p.loss >= TK_DPO_LOSS_COUNT) return tk_fail(TK_ERR_ARG, "unknown loss type %d", (int)p.loss);
        if (p.loss == TK_DPO_ROBUST && p.label_smoothing >= 0.5)
            return tk_fail(TK_ERR_ARG, "label_smoothing %g: the robust loss needs it in [0, 0.5)", p.label_smoothing);
        if (p.loss != TK_DPO_ROBUST && p.label_smoothing != 0)
            return tk_fail(TK_ERR_ARG, "label_smoothing applies to the robust loss only (as in TRL's DPOTrainer), not to %s",
                           k_loss_names[p.loss]);
    } else if (kind == PREF_SIMPO) {
        if (p.label_smoothing >= 1) return tk_fail(TK_ERR_ARG, "label_smoothing %g must be below 1", p.label_smoothing);
        if (!isfinite(p.simpo_gamma)) return tk_fail(TK_ERR_ARG, "simpo_gamma must be finite");
    } else if (p.label_smoothing != 0) {
        return tk_fail(TK_ERR_ARG, "label_smoothing does not apply to ORPO");
    }
    pref_state *s = tk_calloc(1, sizeof *s);
    if (!s) return TK_ERR_NOMEM;
    s->kind = kind;
    s->p = p;
    *state = s;
    return TK_OK;
}
static tk_status create_dpo(const void *params, void **state) { return create(PREF_DPO, params, state); }
static tk_status create_orpo(const void *params, void **state) { return create(PREF_ORPO, params, state); }
static tk_status create_simpo(const void *params, void **state) { return create(PREF_SIMPO, params, state); }
static void state_free(void *state) { free(state); }

/* log sigmoid(x) and sigmoid(x), stable for any sign. */
static double log_sigmoid(double x) { return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x)); }
static double sigmoid(double x) { return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x)); }
/* log(1 - e^x) for x < 0, as TRL's log1mexp (branch at -ln 2). */
static double log1mexp(double x) { return x < -0.6931471805599453 ? log1p(-exp(x)) : log(-expm1(x)); }

/* One pair's loss and its derivatives w.r.t. the chosen and rejected log-prob sums. */
typedef struct pair_in { double lp_c, lp_r, ref_c, ref_r; int64_t n_c, n_r; } pair_in;
typedef struct pair_out { double loss, d_c, d_r, reward_c, reward_r, logp_c, logp_r, log_odds_ratio; } pair_out;

static tk_status pair_loss(const pref_state *s, int32_t g, const pair_in *in, pair_out *o) {
    const double beta = s->p.beta, e = s->p.label_smoothing;
    memset(o, 0, sizeof *o);
    if (s->kind == PREF_DPO) {
        double lc = in->lp_c - in->ref_c, lr = in->lp_r - in->ref_r, z = beta * (lc - lr), dz = 0;
        switch (s->p.loss) {
        case TK_DPO_SIGMOID: o->loss = -log_sigmoid(z); dz = -sigmoid(-z); break;
        case TK_DPO_HINGE: o->loss = 1 - z > 0 ? 1 - z : 0; dz = 1 - z > 0 ? -1 : 0; break;
        case TK_DPO_ROBUST:
            o->loss = (-(1 - e) * log_sigmoid(z) + e * log_sigmoid(-z)) / (1 - 2 * e);
            dz = (-(1 - e) * sigmoid(-z) - e * sigmoid(z)) / (1 - 2 * e);
            break;
        case TK_DPO_IPO: {
            double u = lc / (double)in->n_c - lr / (double)in->n_r - 1 / (2 * beta);
            o->loss = u * u;
            o->d_c = 2 * u / (double)in->n_c;
            o->d_r = -2 * u / (double)in->n_r;
            break;
        }
        default: return tk_fail(TK_ERR_ARG, "unknown loss type %d", (int)s->p.loss);
        }
        if (s->p.loss != TK_DPO_IPO) { o->d_c = beta * dz; o->d_r = -beta * dz; }
        o->reward_c = beta * lc;
        o->reward_r = beta * lr;
        o->logp_c = in->lp_c;
        o->logp_r = in->lp_r;
        return TK_OK;
    }
    double mc = in->lp_c / (double)in->n_c, mr = in->lp_r / (double)in->n_r, d_mc, d_mr;
    if (s->kind == PREF_ORPO) {
        if (!(mc < 0) || !(mr < 0))
            return tk_fail(TK_ERR_RANGE, "pair %d: a mean log-probability is %g (probability 1: the odds are infinite)", (int)g,
                           mc < 0 ? mr : mc);
        double lo = (mc - mr) - (log1mexp(mc) - log1mexp(mr)), ratio = log_sigmoid(lo), dlo = -beta * sigmoid(-lo);
        o->loss = -beta * ratio;
        o->log_odds_ratio = ratio;
        d_mc = dlo * (-1.0 / expm1(mc)); /* d lo / d m_c = 1 / (1 - e^m_c) */
        d_mr = dlo * (1.0 / expm1(mr));
    } else {
        double x = mc - mr - s->p.simpo_gamma / beta, z = beta * x;
        o->loss = -(1 - e) * log_sigmoid(z) - e * log_sigmoid(-z);
        double dx = beta * (-(1 - e) * sigmoid(-z) + e * sigmoid(z));
        d_mc = dx;
        d_mr = -dx;
    }
    o->d_c = d_mc / (double)in->n_c;
    o->d_r = d_mr / (double)in->n_r;
    o->reward_c = beta * mc;
    o->reward_r = beta * mr;
    o->logp_c = mc;
    o->logp_r = mr;
    return TK_OK;
}

/* Scratch of one call. */
typedef struct work {
    int32_t *useq, *ch, *rj;  /* [T] rows the policy pass needs (0) or not (-1); [G] chosen / rejected sequence */
    double *token, *dtok;     /* [T] */
    double *lp, *ref, *dseq;  /* [S] policy and reference log-prob sums, d loss / d sum */
    int64_t *cnt;             /* [S] */
} work;

static void work_free(work *w) {
    free(w->useq); free(w->ch); free(w->token); free(w->dtok); free(w->lp); free(w->cnt);
}

static tk_status work_init(work *w, int64_t T, int32_t S, int32_t G) {
    memset(w, 0, sizeof *w);
    size_t t = (size_t)(T ? T : 1), s = (size_t)(S ? S : 1), g = (size_t)(G ? G : 1);
    w->useq = tk_malloc(t * sizeof *w->useq);
    w->ch = tk_malloc(2 * g * sizeof *w->ch);
    w->token = tk_calloc(t, sizeof *w->token);
    w->dtok = tk_calloc(t, sizeof *w->dtok);
    w->lp = tk_calloc(3 * s, sizeof *w->lp);
    w->cnt = tk_calloc(s, sizeof *w->cnt);
    if (!w->useq || !w->ch || !w->token || !w->dtok || !w->lp || !w->cnt) { work_free(w); return TK_ERR_NOMEM; }
    w->rj = w->ch + g;
    w->ref = w->lp + s;
    w->dseq = w->lp + 2 * s;
    return TK_OK;
}

/* The NLL rows of ORPO: weight != 0 (given), else the chosen completions. */
static bool nll_row(const tk_obj_batch *b, int64_t t) {
    if (b->target[t] < 0) return false;
    if (b->weight) return b->weight[t] != 0.0f;
    return b->seq[t] >= 0 && b->seq_value[b->seq[t]] == 1.0f;
}

static tk_status pref_loss_and_grad(void *state, const tk_obj_batch *b, float grad_scale, float *dh, float *dw, tk_obj_result *res) {
    const pref_state *s = state;
    const int64_t T = b->T;
    const int32_t S = b->n_seq, G = b->n_group;
    const bool orpo = s->kind == PREF_ORPO;
    work w;
    tk_status st = work_init(&w, T, S, G);
    if (st) return st;
    if ((st = tk_objective_pairs(b, w.ch, w.rj))) goto done;
    /* the policy's log-prob of every row a term needs, in one chunked pass */
    for (int64_t t = 0; t < T; t++) w.useq[t] = b->target[t] >= 0 && (b->seq[t] >= 0 || (orpo && nll_row(b, t))) ? 0 : -1;
    if ((st = tk_seq_logp_forward(b->h, b->head, T, b->target, w.useq, 1, NULL, NULL, NULL, w.token))) goto done;
    for (int64_t t = 0; t < T; t++) /* row order: deterministic */
        if (b->seq[t] >= 0 && b->target[t] >= 0) { w.lp[b->seq[t]] += w.token[t]; w.cnt[b->seq[t]]++; }
    for (int32_t q = 0; q < S; q++)
        if (!w.cnt[q]) { st = tk_fail(TK_ERR_ARG, "sequence %d (pair %d) has no completion token", (int)q, (int)b->seq_group[q]); goto done; }
    if (s->kind == PREF_DPO) {
        if (b->ref_logp) memcpy(w.ref, b->ref_logp, (size_t)S * sizeof *w.ref);
        else if ((st = tk_seq_logp_forward(b->ref_h, b->ref_head ? b->ref_head : b->head, T, b->target, b->seq, S, w.ref, NULL, NULL, NULL)))
            goto done;
    }
    for (int32_t g = 0; g < G; g++) {
        int32_t c = w.ch[g], r = w.rj[g];
        pair_in in = {w.lp[c], w.lp[r], w.ref[c], w.ref[r], w.cnt[c], w.cnt[r]};
        pair_out o;
        if ((st = pair_loss(s, g, &in, &o))) goto done;
        res->loss_sum += o.loss;
        double m[8] = {o.reward_c, o.reward_r, o.reward_c > o.reward_r, o.reward_c - o.reward_r, o.logp_c, o.logp_r, 0, o.log_odds_ratio};
        for (int k = 0; k < 8; k++) res->metrics[k] += m[k];
        w.dseq[c] = grad_scale * o.d_c;
        w.dseq[r] = grad_scale * o.d_r;
    }
    for (int64_t t = 0; t < T; t++) /* per-token coefficients of the sums */
        if (b->seq[t] >= 0 && b->target[t] >= 0) w.dtok[t] = w.dseq[b->seq[t]];
    res->norm = G;
    if (orpo) { /* + the NLL, a token mean over the call's NLL rows, counted once per pair */
        double ls = 0, ws = 0;
        for (int64_t t = 0; t < T; t++)
            if (nll_row(b, t)) { double wt = b->weight ? b->weight[t] : 1.0; ls -= wt * w.token[t]; ws += wt; }
        double nll = ws != 0 ? ls / ws : 0;
        res->loss_sum += G * nll;
        res->metrics[6] = G * nll;
        for (int64_t t = 0; t < T && ws != 0; t++)
            if (nll_row(b, t)) w.dtok[t] -= grad_scale * (double)G * (b->weight ? b->weight[t] : 1.0) / ws;
    }
    if (dh) {
        memset(dh, 0, (size_t)(T * b->C) * sizeof(float));
        st = tk_seq_logp_backward(b->h, b->head, T, b->target, w.useq, 1, NULL, NULL, w.dtok, dh, dw);
    }
done:
    work_free(&w);
    return st;
}

#define PREF_NEEDS (TK_OBJ_NEED_TARGET | TK_OBJ_NEED_SEQ)
const tk_objective_ops tk_objective_dpo = {
    .name = "dpo", .needs = PREF_NEEDS | TK_OBJ_NEED_REF, .n_metrics = 6, .metric_names = k_metric_names,
    .create = create_dpo, .free = state_free, .loss_and_grad = pref_loss_and_grad,
};
const tk_objective_ops tk_objective_orpo = {
    .name = "orpo", .needs = PREF_NEEDS, .n_metrics = 8, .metric_names = k_metric_names,
    .create = create_orpo, .free = state_free, .loss_and_grad = pref_loss_and_grad,
};
const tk_objective_ops tk_objective_simpo = {
    .name = "simpo", .needs = PREF_NEEDS, .n_metrics = 6, .metric_names = k_metric_names,
    .create = create_simpo, .free = state_free, .loss_and_grad = pref_loss_and_grad,
};
