/* The "distill" objective (see distill.h): tk_distill at the rows that carry a loss in SFT
 * data, behind the objective table. */
#include "objective/distill.h"
#include "core/core.h"
#include <math.h>

typedef struct distill_state {
    tk_distill_params p;
    int64_t *rows;                 /* scratch: the trained rows of a batch */
    int64_t cap;
} distill_state;

tk_distill_params tk_distill_default_params(void) {
    tk_distill_params p = {.kind = TK_DISTILL_FORWARD_KL, .temperature = 1.0f, .beta = 0.5f};
    return p;
}

int tk_distill_kind_from_name(const char *name) {
    for (int k = TK_DISTILL_FORWARD_KL; k <= TK_DISTILL_JSD && name; k++)
        if (!strcmp(tk_distill_kind_name((tk_distill_kind)k), name)) return k;
    return -1;
}

static tk_status distill_create(const void *params, void **state) {
    tk_distill_params p = params ? *(const tk_distill_params *)params : tk_distill_default_params();
    if ((int)p.kind < TK_DISTILL_FORWARD_KL || p.kind > TK_DISTILL_JSD)
        return tk_fail(TK_ERR_ARG, "unknown distillation kind %d", (int)p.kind);
    if (!(p.beta >= 0 && p.beta <= 1))
        return tk_fail(TK_ERR_ARG, "jsd beta %g must be in [0, 1]", (double)p.beta);
    if (!(p.temperature > 0) || !isfinite(p.temperature))
        return tk_fail(TK_ERR_ARG, "temperature %g must be a positive number", (double)p.temperature);
    distill_state *s = tk_calloc(1, sizeof *s);
    if (!s) return TK_ERR_NOMEM;
    s->p = p;
    *state = s;
    return TK_OK;
}

static void distill_free(void *state) {
    distill_state *s = state;
    if (!s) return;
    free(s->rows);
    free(s);
}

static tk_status distill_loss_and_grad(void *state, const tk_obj_batch *b, float grad_scale, float *dh, float *dw,
                                       tk_obj_result *res) {
    distill_state *s = state;
    if (b->T > s->cap) {
        int64_t *r = tk_realloc(s->rows, (size_t)b->T * sizeof *r);
        if (!r) return TK_ERR_NOMEM;
        s->rows = r;
        s->cap = b->T;
    }
    int64_t n = 0;
    for (int64_t t = 0; t < b->T; t++)
        if (b->target[t] >= 0 && (!b->weight || b->weight[t] != 0.0f)) s->rows[n++] = t;
    if (dh) memset(dh, 0, (size_t)b->T * (size_t)b->C * sizeof *dh);
    return tk_distill_p(b->h, b->head, b->teacher, s->rows, n, b->T, b->weight, &s->p, grad_scale, &res->loss_sum, &res->norm,
                        dh, dw);
}

const tk_objective_ops tk_objective_distill = {
    .name = "distill",
    .needs = TK_OBJ_NEED_TARGET | TK_OBJ_NEED_TEACHER,
    .n_metrics = 0,
    .metric_names = NULL,
    .create = distill_create,
    .free = distill_free,
    .loss_and_grad = distill_loss_and_grad,
};
