/* The objective seam (see objective.h): instances, the generic checks of a batch against
 * what an objective needs, and the registry of built-in objectives. */
#include "objective/objective.h"
#include "objective/classify.h"
#include "objective/chunks.h"
#include "objective/distill.h"
#include "objective/dpo.h"
#include "objective/grpo.h"
#include "objective/kto.h"
#include "objective/reward.h"
#include "core/core.h"
#include <math.h>

struct tk_objective {
    const tk_objective_ops *ops;
    void *state;
};

tk_status tk_objective_new(const tk_objective_ops *ops, const void *params, tk_objective **out) {
    if (!out) return tk_fail(TK_ERR_ARG, "objective: NULL output");
    *out = NULL;
    if (!ops || !ops->name || !ops->loss_and_grad)
        return tk_fail(TK_ERR_ARG, "objective: table without a name or loss_and_grad");
    if (ops->n_metrics < 0 || ops->n_metrics > TK_OBJ_MAX_METRICS || (ops->n_metrics && !ops->metric_names))
        return tk_fail(TK_ERR_ARG, "objective %s: %d metrics (at most %d, each named)", ops->name, ops->n_metrics,
                       TK_OBJ_MAX_METRICS);
    tk_objective *o = tk_calloc(1, sizeof(*o));
    if (!o) return tk_fail(TK_ERR_NOMEM, "objective %s: out of memory", ops->name);
    o->ops = ops;
    if (ops->create) {
        tk_status st = ops->create(params, &o->state);
        if (st) {
            free(o);
            return tk_fail_ctx(st, "objective %s: ", ops->name);
        }
    }
    *out = o;
    return TK_OK;
}

void tk_objective_free(tk_objective *o) {
    if (!o) return;
    if (o->ops->free) o->ops->free(o->state);
    free(o);
}

const tk_objective_ops *tk_objective_get_ops(const tk_objective *o) { return o ? o->ops : NULL; }
void *tk_objective_state(tk_objective *o) { return o ? o->state : NULL; }

/* The checks every objective would otherwise repeat: presence and ranges of what it needs. */
static tk_status check_batch(const char *name, unsigned needs, const tk_obj_batch *b) {
    if (!b) return tk_fail(TK_ERR_ARG, "objective %s: NULL batch", name);
    if (b->T < 0 || b->C <= 0 || !b->h)
        return tk_fail(TK_ERR_ARG, "objective %s: batch needs T >= 0, C > 0 and hidden states h", name);
    tk_status st = tk_head_check(b->head, name);
    if (st) return st;
    if (b->head->w->ne[0] != b->C)
        return tk_fail(TK_ERR_ARG, "objective %s: head width %lld differs from the hidden size C = %lld", name,
                       (long long)b->head->w->ne[0], (long long)b->C);
    const int64_t T = b->T, V = b->head->w->ne[1];
    if (needs & TK_OBJ_NEED_TARGET) {
        if (!b->target) return tk_fail(TK_ERR_ARG, "objective %s: needs per-token targets (batch.target)", name);
        for (int64_t t = 0; t < T; t++) {
            if (b->target[t] < -1 || b->target[t] >= V)
                return tk_fail(TK_ERR_RANGE, "objective %s: target %d at row %lld is outside the vocabulary [-1, %lld)",
                               name, (int)b->target[t], (long long)t, (long long)V);
            if (b->weight && !isfinite(b->weight[t]))
                return tk_fail(TK_ERR_RANGE, "objective %s: weight at row %lld is not finite", name, (long long)t);
        }
    }
    if (needs & TK_OBJ_NEED_SEQ) {
        if (!b->seq || b->n_seq < 0) return tk_fail(TK_ERR_ARG, "objective %s: needs sequence ids (batch.seq, n_seq)", name);
        for (int64_t t = 0; t < T; t++)
            if (b->seq[t] < -1 || b->seq[t] >= b->n_seq)
                return tk_fail(TK_ERR_RANGE, "objective %s: sequence id %d at row %lld is outside [-1, %d)", name,
                               (int)b->seq[t], (long long)t, (int)b->n_seq);
        if (b->seq_group)
            for (int32_t s = 0; s < b->n_seq; s++)
                if (b->seq_group[s] < 0 || b->seq_group[s] >= b->n_group)
                    return tk_fail(TK_ERR_RANGE, "objective %s: group %d of sequence %d is outside [0, %d)", name,
                                   (int)b->seq_group[s], (int)s, (int)b->n_group);
        if (b->seq_value)
            for (int32_t s = 0; s < b->n_seq; s++)
                if (!isfinite(b->seq_value[s]))
                    return tk_fail(TK_ERR_RANGE, "objective %s: value of sequence %d is not finite", name, (int)s);
    }
    if (needs & TK_OBJ_NEED_REF) {
        if (!b->ref_h && !b->ref_logp)
            return tk_fail(TK_ERR_ARG, "objective %s: needs a reference (batch.ref_h or batch.ref_logp)", name);
        if (b->ref_h && b->ref_head) {
            if ((st = tk_head_check(b->ref_head, "reference head"))) return tk_fail_ctx(st, "objective %s: ", name);
            if (b->ref_head->w->ne[0] != b->C || b->ref_head->w->ne[1] != V)
                return tk_fail(TK_ERR_ARG, "objective %s: reference head {%lld, %lld} differs from the policy head {%lld, %lld}",
                               name, (long long)b->ref_head->w->ne[0], (long long)b->ref_head->w->ne[1], (long long)b->C,
                               (long long)V);
        }
    }
    if (needs & TK_OBJ_NEED_TEACHER) {
        if (!b->teacher) return tk_fail(TK_ERR_ARG, "objective %s: needs a teacher (batch.teacher)", name);
        if ((st = tk_teacher_check(b->teacher, NULL, 0, T))) return tk_fail_ctx(st, "objective %s: ", name);
        if (tk_teacher_vocab(b->teacher) != V)
            return tk_fail(TK_ERR_ARG, "objective %s: teacher vocabulary %lld differs from the policy's %lld", name,
                           (long long)tk_teacher_vocab(b->teacher), (long long)V);
    }
    return TK_OK;
}

tk_status tk_objective_loss_and_grad(tk_objective *o, const tk_obj_batch *b, float grad_scale, float *dh, float *dw,
                                     tk_obj_result *res) {
    if (!o || !res) return tk_fail(TK_ERR_ARG, "objective: NULL objective or result");
    memset(res, 0, sizeof(*res));
    if (!isfinite(grad_scale)) return tk_fail(TK_ERR_ARG, "objective %s: grad_scale is not finite", o->ops->name);
    tk_status st = check_batch(o->ops->name, o->ops->needs, b);
    if (st) return st;
    st = o->ops->loss_and_grad(o->state, b, grad_scale, dh, dh ? dw : NULL, res);
    if (st) return tk_fail_ctx(st, "objective %s: ", o->ops->name);
    return TK_OK;
}

tk_status tk_objective_add_params(tk_objective *o, int64_t C, uint64_t seed, const char *prefix, tk_param_set *ps) {
    if (!o || !ps) return tk_fail(TK_ERR_ARG, "objective: NULL objective or parameter set");
    if (!o->ops->add_params) return TK_OK;
    tk_status st = o->ops->add_params(o->state, C, seed, prefix ? prefix : "", ps);
    return st ? tk_fail_ctx(st, "objective %s: ", o->ops->name) : TK_OK;
}

tk_status tk_objective_pairs(const tk_obj_batch *b, int32_t *ch, int32_t *rj) {
    if (!b->seq_group || !b->seq_value)
        return tk_fail(TK_ERR_ARG, "needs the pairs (batch.seq_group and batch.seq_value: 1 chosen, 0 rejected)");
    for (int32_t g = 0; g < b->n_group; g++) ch[g] = rj[g] = -1;
    for (int32_t q = 0; q < b->n_seq; q++) {
        float v = b->seq_value[q];
        int32_t *slot = v == 1.0f ? &ch[b->seq_group[q]] : v == 0.0f ? &rj[b->seq_group[q]] : NULL;
        if (!slot) return tk_fail(TK_ERR_ARG, "sequence %d has value %g (1 = chosen, 0 = rejected)", (int)q, (double)v);
        if (*slot >= 0)
            return tk_fail(TK_ERR_ARG, "pair %d has two %s sequences (%d and %d)", (int)b->seq_group[q], v == 1.0f ? "chosen" : "rejected",
                           (int)*slot, (int)q);
        *slot = q;
    }
    for (int32_t g = 0; g < b->n_group; g++)
        if (ch[g] < 0 || rj[g] < 0) return tk_fail(TK_ERR_ARG, "pair %d lacks a %s sequence", (int)g, ch[g] < 0 ? "chosen" : "rejected");
    return TK_OK;
}

const tk_objective_ops *tk_objective_find(const char *name) {
    static const tk_objective_ops *const builtin[] = {&tk_objective_sft, &tk_objective_dpo, &tk_objective_orpo, &tk_objective_simpo,
                                                      &tk_objective_kto, &tk_objective_reward, &tk_objective_distill,
                                                      &tk_objective_grpo, &tk_objective_classify, &tk_objective_regress};
    if (!name) return NULL;
    for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++)
        if (!strcmp(builtin[i]->name, name)) return builtin[i];
    return NULL;
}
