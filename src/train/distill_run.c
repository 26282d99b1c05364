/* Distillation in a run (--objective distill; see run.h): the teacher (loaded once by
 * tk_run_distill_prepare) runs forward (no gradients, no adapters) on each micro-batch of the SFT
 * data; the "distill" objective (objective/distill.h) compares its token distributions with the
 * student's at the trained positions. With --teacher-context the teacher's rows come from its own,
 * longer examples (distill_context.c). Units are trained tokens, as for SFT: a step's gradients are
 * scaled by 1 / its target tokens. */
#include "train/run.h"

tk_status tk_run_distill_options(tk_run *r) {
    tk_trainer_config *c = &r->c;
    if (!c->teacher && !c->teacher_context)
        return tk_fail(TK_ERR_ARG, "--objective distill needs --teacher PATH (the model whose distributions the student learns) or "
                       "--teacher-context FILE (the base model, reading FILE, teaches itself without it)");
    if (!c->distill_loss && !(c->distill_loss = tk_strdup("forward_kl"))) return TK_ERR_NOMEM;
    if (c->temperature == 0) c->temperature = 1;
    r->distp = tk_distill_default_params();
    r->distp.kind = (tk_distill_kind)tk_distill_kind_from_name(c->distill_loss);
    r->distp.temperature = (float)c->temperature;
    if (c->jsd_beta >= 0 && r->distp.kind != TK_DISTILL_JSD)
        return tk_fail(TK_ERR_ARG, "--jsd-beta is the generalised JSD's beta: it needs --distill-loss jsd (not %s)", c->distill_loss);
    if (r->distp.kind == TK_DISTILL_JSD && c->jsd_beta < 0) c->jsd_beta = 0.5;
    if (r->distp.kind == TK_DISTILL_JSD) r->distp.beta = (float)c->jsd_beta;
    return TK_OK;
}

tk_status tk_run_distill_load(tk_run *r) {
    if (!r->distill) return TK_OK;
    tk_status st;
    if (r->ctx_text && (st = tk_run_context_load(r))) return st;   /* may raise r->max_cols */
    if (!r->teacher) return TK_OK;   /* the base model teaches through the training context's reference forward */
    st = tk_forward_new(r->teacher, r->ctx_text ? 1 : r->c.batch_size, r->max_cols, 0, &r->teacher_fw);
    return st ? tk_fail_ctx(st, "--teacher %s: ", r->c.teacher) : TK_OK;
}

void tk_run_distill_free(tk_run *r) {
    tk_forward_free(r->teacher_fw);
    tk_model_free(r->teacher);
    r->teacher_fw = NULL;
    r->teacher = NULL;
    free(r->ctx_text);
    free(r->answers_path);
    tk_sft_free(&r->tctx);
    free(r->t_of_train);
    free(r->t_of_val);
    free(r->t_shift_train);
    free(r->t_shift_val);
    free(r->t_h);
    r->ctx_text = r->answers_path = NULL;
    r->t_of_train = r->t_of_val = NULL;
    r->t_shift_train = r->t_shift_val = NULL;
    r->t_h = NULL;
}

/* The teacher's forward on the micro-batch in r->bb (rows [r0, r0 + nb) of rows over d), and the objective's inputs. */
static tk_status inputs(tk_run *r, bool val, int64_t r0, int32_t nb, tk_lm_head *head, tk_teacher *t, tk_obj_batch *x) {
    const float *h = NULL;
    tk_status st;
    if (r->ctx_text) {
        st = val ? tk_run_context_hidden(r, &r->val, &r->vrows, r->t_of_val, r->t_shift_val, r0, nb, &h, head)
                 : tk_run_context_hidden(r, &r->train, &r->rows, r->t_of_train, r->t_shift_train, r0, nb, &h, head);
        if (st) return st;
    } else {
        if ((st = tk_forward_run(r->teacher_fw, &r->bb.b, NULL, 0, NULL))) return tk_fail_ctx(st, "teacher forward: ");
        h = tk_forward_hidden(r->teacher_fw);
        *head = (tk_lm_head){&tk_model_weights(r->teacher)->output, tk_model_get_config(r->teacher)->final_softcap};
    }
    *t = (tk_teacher){.h = h, .head = head};
    *x = (tk_obj_batch){.target = r->bb.target, .teacher = t};
    return TK_OK;
}

tk_status tk_run_distill_micro(tk_run *r, int64_t r0, int32_t nb, float grad_scale, double *ls, double *ws) {
    tk_lm_head head;
    tk_teacher t;
    tk_obj_batch x;
    tk_obj_result res;
    tk_status st = inputs(r, false, r0, nb, &head, &t, &x);
    if (!st) st = tk_train_step_objective(r->tc, &r->bb.b, &x, grad_scale, &res);
    if (st) return st;
    *ls += res.loss_sum;
    *ws += res.norm;
    return TK_OK;
}

tk_status tk_run_distill_eval(tk_run *r, int64_t r0, int32_t nb, double *ls, double *ws) {
    tk_lm_head head;
    tk_teacher t;
    tk_obj_batch x;
    tk_obj_result res;
    tk_status st = inputs(r, true, r0, nb, &head, &t, &x);
    if (!st) st = tk_train_eval_objective(r->tc, &r->bb.b, &x, &res);
    if (st) return st;
    *ls += res.loss_sum;
    *ws += res.norm;
    return TK_OK;
}
