/* SFT: next-token cross-entropy with per-token weights, the objective the trainer has always
 * used. It is tk_lmhead_xent itself (src/ops/xent.c), so losses and gradients are
 * bit-identical to calling it directly. */
#include "objective/objective.h"
#include "ops/ops.h"

static tk_status sft_loss_and_grad(void *state, const tk_obj_batch *b, float grad_scale, float *dh, float *dw,
                                   tk_obj_result *res) {
    (void)state;
    return tk_lmhead_xent(b->h, b->head, b->target, b->weight, b->T, grad_scale, &res->loss_sum, &res->norm, dh,
                          dh ? dw : NULL);
}

const tk_objective_ops tk_objective_sft = {
    .name = "sft",
    .needs = TK_OBJ_NEED_TARGET,
    .n_metrics = 0,
    .metric_names = NULL,
    .create = NULL,
    .free = NULL,
    .loss_and_grad = sft_loss_and_grad,
};
