/* Preference objectives in a run (dpo, orpo, simpo, kto, reward; see run.h): the objective options (those
 * that do not apply fail, naming the option), the reference (LoRA and other adapters: the base
 * with the adapter off; full fine-tuning: the weights as loaded, both through
 * tk_train_reference_hidden, no second copy of the model; or --precompute-ref: every pair's
 * reference log-probabilities once before training), the micro-batches of a step and a
 * validation pass. Units are pairs: a step's gradients are scaled by 1 / its pairs. */
#include "train/run.h"
#include "objective/logp.h"
#include "backend/backend.h"

static const char *objective_of(int i) { return tk_trainer_option_find("objective")->value_name(i); }

tk_status tk_run_pref_options(tk_run *r) {
    tk_trainer_config *c = &r->c;
    const char *obj = objective_of(c->objective);
    const bool distill = !strcmp(obj, "distill"), grpo = !strcmp(obj, "grpo"), self = !strcmp(obj, "self"),
               pref = c->objective != 0 && !distill && !grpo && !self, dpo = !strcmp(obj, "dpo"), simpo = !strcmp(obj, "simpo"),
               kto = !strcmp(obj, "kto"), reward = !strcmp(obj, "reward"), sampled = grpo || self;
    const struct { const char *opt; bool set, applies; const char *to; } k[] = {
        {"beta", c->beta != 0, (pref && !reward) || grpo, "--objective dpo, orpo, simpo, kto or grpo (a reward model has no beta)"},
        {"loss", c->loss != NULL, dpo || grpo, "--objective dpo or grpo"},
        {"label-smoothing", c->label_smoothing >= 0, dpo || simpo, "--objective dpo (--loss robust) or simpo"},
        {"simpo-gamma", c->simpo_gamma >= 0, simpo, "--objective simpo"},
        {"precompute-ref", c->precompute_ref, dpo || kto, "--objective dpo or kto (orpo, simpo and reward have no reference model)"},
        {"desirable-weight", c->desirable_weight >= 0, kto, "--objective kto"},
        {"undesirable-weight", c->undesirable_weight >= 0, kto, "--objective kto"},
        {"center-rewards", c->center_rewards >= 0, reward, "--objective reward"},
        {"train-on-prompt", c->train_on_prompt, !pref && !sampled, "--objective sft or distill (preference and reinforcement losses are on "
                                                                   "the completions, as in TRL)"},
        {"teacher", c->teacher != NULL, distill, "--objective distill"},
        {"distill-loss", c->distill_loss != NULL, distill, "--objective distill"},
        {"temperature", c->temperature != 0, distill || sampled, "--objective distill, grpo or self"},
        {"jsd-beta", c->jsd_beta >= 0, distill, "--objective distill --distill-loss jsd"},
        {"teacher-context", c->teacher_context != NULL, distill || self, "--objective distill (context distillation) or self (answers "
                                                                            "sampled with the file, trained without it)"},
        {"teacher-answers", c->teacher_answers, distill, "--objective distill"},
        {"max-new-tokens", c->max_new_tokens != 0, distill || sampled, "--objective distill (the teacher's generated answers), grpo or self"},
        {"grader", c->grader != NULL, sampled, "--objective grpo or self"},
        {"judge", c->judge != NULL, sampled, "--objective grpo or self (score_model graders)"},
        {"group-size", c->group_size != 0, sampled, "--objective grpo or self"},
        {"epsilon", c->epsilon >= 0, grpo, "--objective grpo"},
        {"epsilon-high", c->epsilon_high >= 0, grpo, "--objective grpo"},
        {"passes", tk_trainer_config_given(c, "passes") && c->passes != 1, grpo, "--objective grpo"},
        {"scale-rewards", tk_trainer_config_given(c, "scale-rewards") && c->scale_rewards != 0, grpo, "--objective grpo"},
        {"max-grader-failures", c->max_grader_failures >= 0, sampled, "--objective grpo or self"},
        {"rounds", c->rounds != 0, self, "--objective self"},
        {"self-train", tk_trainer_config_given(c, "self-train") && c->self_train != 0, self, "--objective self"},
        {"min-score", c->min_score > -1e299, self, "--objective self"},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (k[i].set && !k[i].applies)
            return tk_fail(TK_ERR_ARG, "--%s does not apply to --objective %s: it is for %s", k[i].opt, obj, k[i].to);
    r->pref = pref;
    r->kto = kto;
    r->reward = reward;
    r->distill = distill;
    if (distill) return tk_run_distill_options(r);
    tk_status cst = tk_run_cls_options(r);
    if (cst || r->cls) return cst;
    if (grpo) return tk_run_grpo_options(r);
    if (self) return tk_run_self_options(r);
    if (!pref) return TK_OK;
    if (kto && c->batch_size == 1)
        return tk_fail(TK_ERR_ARG, "--objective kto needs --batch-size >= 2: its KL estimate pairs each prompt with another example's "
                       "completion of the same batch (as TRL's KTOTrainer, which refuses a batch of 1)");
    if (reward) {
        r->rp = tk_reward_default_params();
        r->rp.center_rewards = c->center_rewards > 0 ? c->center_rewards : 0;
        return TK_OK;
    }
    if (c->beta == 0) c->beta = 0.1;
    if (kto) {
        if (c->desirable_weight < 0) c->desirable_weight = 1;
        if (c->undesirable_weight < 0) c->undesirable_weight = 1;
        r->kp = (tk_kto_params){.beta = c->beta, .desirable_weight = c->desirable_weight, .undesirable_weight = c->undesirable_weight};
        return TK_OK;
    }
    if (dpo && !c->loss && !(c->loss = tk_strdup("sigmoid"))) return TK_ERR_NOMEM;
    tk_dpo_loss loss = dpo ? tk_dpo_loss_from_name(c->loss) : TK_DPO_SIGMOID;
    if (dpo && c->label_smoothing >= 0 && loss != TK_DPO_ROBUST)
        return tk_fail(TK_ERR_ARG, "--label-smoothing applies to --loss robust only (TRL's DPOTrainer smooths no other DPO loss), not %s",
                       c->loss);
    if (loss == TK_DPO_ROBUST && c->label_smoothing >= 0.5)
        return tk_fail(TK_ERR_ARG, "--label-smoothing %g: --loss robust needs a flip probability in [0, 0.5)", c->label_smoothing);
    if (((dpo && loss == TK_DPO_ROBUST) || simpo) && c->label_smoothing < 0) c->label_smoothing = 0;   /* else it stays auto: unset */
    if (simpo && c->simpo_gamma < 0) c->simpo_gamma = 0.5;
    r->dp = tk_dpo_default_params();
    r->dp.loss = loss;
    r->dp.beta = c->beta;
    r->dp.label_smoothing = c->label_smoothing > 0 ? c->label_smoothing : 0;
    if (simpo) r->dp.simpo_gamma = c->simpo_gamma;
    return TK_OK;
}

const void *tk_run_objective_params(const tk_run *r) {
    if (r->cls) return &r->cp;
    if (r->distill) return &r->distp;
    if (r->grpo) return tk_run_grpo_params(r);
    return !r->pref ? NULL : r->kto ? (const void *)&r->kp : r->reward ? (const void *)&r->rp : (const void *)&r->dp;
}

/* Rows [k, k + nb) of rows (of d) into r->pb: pairs, or KTO units. */
static tk_status fill(tk_run *r, const tk_sft_data *d, const tk_rows *rows, int64_t k, int32_t nb) {
    return (r->kto ? tk_kto_fill : tk_pair_fill)(&r->pb, d, rows, k, nb);
}

/* The objective's inputs for the micro-batch in r->pb: the pairs (KTO: the labelled examples and their
 * KL sequences; reward: the sequences' last rows), and for dpo and kto the reference (stored sums when
 * precomputed, else the reference forward of this batch). */
static tk_status inputs(tk_run *r, const double *store, tk_lm_head *ref_head, tk_obj_batch *x) {
    tk_pair_buf *pb = &r->pb;
    *x = (tk_obj_batch){.target = pb->bb.target, .weight = !strcmp(objective_of(r->c.objective), "orpo") ? pb->weight : NULL,
                        .seq = r->reward ? pb->pool : pb->seq, .n_seq = pb->n_seq, .seq_group = pb->group, .n_group = pb->n_pairs,
                        .seq_value = pb->value};
    if (!(tk_train_objective(r->tc)->needs & TK_OBJ_NEED_REF)) return TK_OK;
    if (store) {
        if (pb->n_seq > r->ref_cap) {
            double *v = tk_realloc(r->ref_buf, (size_t)pb->n_seq * sizeof *v);
            if (!v) return TK_ERR_NOMEM;
            r->ref_buf = v;
            r->ref_cap = pb->n_seq;
        }
        for (int32_t s = 0; s < pb->n_seq; s++) r->ref_buf[s] = store[2 * pb->example[pb->group[s]] + (s & 1)];
        x->ref_logp = r->ref_buf;
        return TK_OK;
    }
    *ref_head = tk_train_reference_head(r->tc);
    x->ref_head = ref_head;
    return tk_train_reference_hidden(r->tc, &pb->bb.b, &x->ref_h);
}

/* Reference sums of every pair of d (rows: d's rows in any order), into *out [2 x d->n]. */
static tk_status precompute(tk_run *r, const tk_sft_data *d, const tk_rows *rows, double **out) {
    double *v = tk_calloc((size_t)(2 * d->n), sizeof *v), sums[2 * 64];
    if (!v) return TK_ERR_NOMEM;
    tk_status st = TK_OK;
    for (int64_t k = 0; k < rows->n_rows && !st; k += r->c.batch_size) {
        int32_t nb = (int32_t)(rows->n_rows - k < r->c.batch_size ? rows->n_rows - k : r->c.batch_size);
        tk_lm_head head;
        tk_obj_batch x;
        if ((st = fill(r, d, rows, k, nb)) || (st = inputs(r, NULL, &head, &x))) break;
        const tk_pair_buf *pb = &r->pb;
        double *s = pb->n_seq <= 2 * 64 ? sums : tk_malloc((size_t)pb->n_seq * sizeof *s);
        if (!s) { st = TK_ERR_NOMEM; break; }
        st = tk_seq_logp_forward(x.ref_h, x.ref_head, (int64_t)pb->bb.b.n_rows * pb->bb.b.n_cols, pb->bb.target, pb->seq, pb->n_seq, s,
                                 NULL, NULL, NULL);
        for (int32_t q = 0; q < pb->n_seq && !st; q++) v[2 * pb->example[pb->group[q]] + (q & 1)] = s[q];
        if (s != sums) free(s);
    }
    if (st) { free(v); return st; }
    *out = v;
    return TK_OK;
}

tk_status tk_run_pref_precompute(tk_run *r) {
    if (!r->pref || !r->c.precompute_ref) return TK_OK;
    tk_run_emitf(r, TK_EV_INFO, "reference", false, "computing the reference log-probabilities of %lld training%s pairs",
                 (long long)r->train.n, r->has_val ? " and validation" : "");
    tk_rows rows;
    tk_status st = tk_rows_epoch(&r->train, r->c.seed, 0, false, r->c.pack_len, r->c.packing, &rows);
    /* the training pairs' references in the steps' precision (bf16 where tk_run_step uses it), the
     * validation pairs' in fp32 as validation runs: the same numbers as without --precompute-ref */
    const bool bf16 = r->precision == TK_PRECISION_BF16;
    if (!st && bf16) st = tk_matmul_set_precision(true);
    if (!st) st = precompute(r, &r->train, &rows, &r->ref_train);
    if (bf16) (void)tk_matmul_set_precision(false);
    tk_rows_free(&rows);
    if (!st && r->has_val) st = precompute(r, &r->val, &r->vrows, &r->ref_val);
    return st ? tk_fail_ctx(st, "reference log-probabilities: ") : TK_OK;
}

tk_status tk_run_pref_micro(tk_run *r, int64_t n, double *ls, double *ws, int64_t *toks, double *metrics) {
    if (r->cls) return tk_run_cls_micro(r, n, ls, ws, toks, metrics);
    const int64_t G = tk_rows_examples(&r->rows, r->st.row, n);
    if (G <= 0) return tk_fail(TK_ERR_INTERNAL, "step %lld has no pairs", (long long)r->st.step + 1);
    const int nm = tk_train_objective(r->tc)->n_metrics;
    const uint64_t counter0 = tk_train_counter(r->tc);
    int64_t j = 0;
    for (int64_t k = 0; k < n; k += r->c.batch_size, j++) {
        int32_t nb = (int32_t)(n - k < r->c.batch_size ? n - k : r->c.batch_size);
        if (!tk_run_micro_mine(r, j, &counter0, (n + r->c.batch_size - 1) / r->c.batch_size)) continue;   /* N MPI ranks: micro-batch j is rank j mod N's */
        tk_lm_head head;
        tk_obj_batch x;
        tk_obj_result res;
        tk_status st = fill(r, &r->train, &r->rows, r->st.row + k, nb);
        if (!st) st = inputs(r, r->ref_train, &head, &x);
        if (!st) st = tk_train_step_objective(r->tc, &r->pb.bb.b, &x, (float)(1.0 / (double)G), &res);
        if (st) return tk_fail_ctx(st, "step %lld: ", (long long)r->st.step + 1);
        *ls += res.loss_sum;
        *ws += res.norm;
        *toks += r->pb.bb.n_tokens;
        for (int i = 0; i < nm; i++) metrics[i] += res.metrics[i];
    }
    return TK_OK;
}

tk_status tk_run_pref_eval(tk_run *r, double *ls, double *ws, int64_t *toks, double *metrics) {
    if (r->cls) return tk_run_cls_eval(r, ls, ws, toks, metrics);
    const int nm = tk_train_objective(r->tc)->n_metrics;
    int64_t j = 0;
    for (int64_t k = 0; k < r->vrows.n_rows; k += r->c.batch_size, j++) {
        int32_t nb = (int32_t)(r->vrows.n_rows - k < r->c.batch_size ? r->vrows.n_rows - k : r->c.batch_size);
        if (!tk_run_micro_mine(r, j, NULL, 0)) continue;
        tk_lm_head head;
        tk_obj_batch x;
        tk_obj_result res;
        tk_status st = fill(r, &r->val, &r->vrows, k, nb);
        if (!st) st = inputs(r, r->ref_val, &head, &x);
        if (!st) st = tk_train_eval_objective(r->tc, &r->pb.bb.b, &x, &res);
        if (st) return st;
        *ls += res.loss_sum;
        *ws += res.norm;
        *toks += r->pb.bb.n_tokens;
        for (int i = 0; i < nm; i++) metrics[i] += res.metrics[i];
    }
    return TK_OK;
}
