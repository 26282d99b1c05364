/* Distillation in a run (--objective distill; see run.h): the teacher is loaded once and run
 * forward (no gradients, no adapters) on each micro-batch of the SFT data; the "distill"
 * objective (objective/distill.h) compares its token distributions with the student's at the
 * trained positions. Units are trained tokens, as for SFT: a step's gradients are scaled by
 * 1 / its target tokens. */
#include "train/run.h"

tk_status tk_run_distill_options(tk_run *r) {
    tk_trainer_config *c = &r->c;
    if (!c->teacher) return tk_fail(TK_ERR_ARG, "--objective distill needs --teacher PATH (the model whose distributions the student learns)");
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
    tk_model_params mp = tk_model_default_params();
    mp.tokenizer = TK_TOKENIZER_IF_PRESENT;
    tk_status st = tk_model_load(r->c.teacher, &mp, &r->teacher);
    if (st) return tk_fail_ctx(st, "--teacher %s: ", r->c.teacher);
    const int64_t vt = tk_model_weights(r->teacher)->output.ne[1], vs = tk_model_weights(r->m)->output.ne[1];
    if (vt != vs)
        return tk_fail(TK_ERR_ARG, "--teacher %s has a vocabulary of %lld tokens, the student %s %lld: different tokenizers are not "
                       "supported yet", r->c.teacher, (long long)vt, r->c.model, (long long)vs);
    st = tk_forward_new(r->teacher, r->c.batch_size, r->max_cols, 0, &r->teacher_fw);
    return st ? tk_fail_ctx(st, "--teacher %s: ", r->c.teacher) : TK_OK;
}

void tk_run_distill_free(tk_run *r) {
    tk_forward_free(r->teacher_fw);
    tk_model_free(r->teacher);
    r->teacher_fw = NULL;
    r->teacher = NULL;
}

/* The teacher's forward on the micro-batch in r->bb, and the objective's inputs. */
static tk_status inputs(tk_run *r, tk_lm_head *head, tk_teacher *t, tk_obj_batch *x) {
    tk_status st = tk_forward_run(r->teacher_fw, &r->bb.b, NULL, 0, NULL);
    if (st) return tk_fail_ctx(st, "teacher forward: ");
    *head = (tk_lm_head){&tk_model_weights(r->teacher)->output, tk_model_get_config(r->teacher)->final_softcap};
    *t = (tk_teacher){.h = tk_forward_hidden(r->teacher_fw), .head = head};
    *x = (tk_obj_batch){.target = r->bb.target, .teacher = t};
    return TK_OK;
}

tk_status tk_run_distill_micro(tk_run *r, int64_t r0, int32_t nb, float grad_scale, double *ls, double *ws) {
    (void)r0; (void)nb;
    tk_lm_head head;
    tk_teacher t;
    tk_obj_batch x;
    tk_obj_result res;
    tk_status st = inputs(r, &head, &t, &x);
    if (!st) st = tk_train_step_objective(r->tc, &r->bb.b, &x, grad_scale, &res);
    if (st) return st;
    *ls += res.loss_sum;
    *ws += res.norm;
    return TK_OK;
}

tk_status tk_run_distill_eval(tk_run *r, int64_t r0, int32_t nb, double *ls, double *ws) {
    (void)r0; (void)nb;
    tk_lm_head head;
    tk_teacher t;
    tk_obj_batch x;
    tk_obj_result res;
    tk_status st = inputs(r, &head, &t, &x);
    if (!st) st = tk_train_eval_objective(r->tc, &r->bb.b, &x, &res);
    if (st) return st;
    *ls += res.loss_sum;
    *ws += res.norm;
    return TK_OK;
}
