/* Sequence classification and regression in a run (--task classify|regress; see run.h): the task's
 * options (those that do not apply fail, naming the option), its data (classify_data.h), the
 * micro-batches of a step and a validation pass. The run goes through the preference objectives'
 * path (r->pref: the loop's steps and validation call pref_run.c, which hands them here); units
 * are sequences: a step's gradients are scaled by 1 / its examples. With N MPI ranks, micro-batch j (and
 * validation batch j) is rank j mod N's, as for SFT; the loop sums the losses and metrics over the ranks. */
#include "train/run.h"

static const char *task_of(int i) { return tk_trainer_option_find("task")->value_name(i); }

tk_status tk_run_cls_options(tk_run *r) {
    tk_trainer_config *c = &r->c;
    const bool task = c->task != 0, regress = c->task == 2;
    const char *tn = task_of(c->task);
    if (!task) {
        if (c->labels) return tk_fail(TK_ERR_ARG, "--labels applies to --task classify (the task is lm)");
        if (tk_trainer_config_given(c, "pooling")) return tk_fail(TK_ERR_ARG, "--pooling applies to --task classify or regress (the task is lm)");
        if (c->method == TK_TRAIN_HEAD)
            return tk_fail(TK_ERR_ARG, "--method head trains a task head alone: give --task classify (with --labels) or --task regress");
        return TK_OK;
    }
    if (c->objective != 0)
        return tk_fail(TK_ERR_ARG, "--objective %s does not apply to --task %s: the task's head has its own loss (%s)",
                       tk_trainer_option_find("objective")->value_name(c->objective), tn, regress ? "MSE" : "cross-entropy");
    const struct { const char *opt; bool set; } k[] = {
        {"train-on-prompt", c->train_on_prompt}, {"eval-config", c->eval_config != NULL},
        {"format", tk_trainer_config_given(c, "format")}, {"template", c->template_name != NULL},
        {"samples", tk_trainer_config_given(c, "samples")}, {"sample-tokens", tk_trainer_config_given(c, "sample-tokens")},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (k[i].set)
            return tk_fail(TK_ERR_ARG, "--%s does not apply to --task %s (the data is {\"text\", \"label\"} JSONL or text<TAB>label TSV%s)",
                           k[i].opt, tn, !strcmp(k[i].opt, "eval-config") ? "; evaluate with `takumi eval --adapter RUN/adapter --data FILE`" : "");
    if (c->method == TK_TRAIN_FULL)
        return tk_fail(TK_ERR_ARG, "--method full with --task %s: not supported yet (a fully fine-tuned body has no adapter to save beside the "
                       "head); use --method lora --freeze-layers N (adapters on the upper layers only) or --method head", tn);
    if (c->method == TK_TRAIN_HEAD && tk_trainer_config_given(c, "freeze-layers"))
        return tk_fail(TK_ERR_ARG, "--freeze-layers does not apply to --method head (the whole body is frozen)");
    r->cp = tk_classify_default_params();
    r->cp.regress = regress;
    r->cp.pooling = (tk_pooling)c->pooling;
    if (regress) {
        if (c->labels) return tk_fail(TK_ERR_ARG, "--labels does not apply to --task regress (its label is a number)");
        r->cp.n_labels = 1;
    } else {
        tk_status st = tk_labels_parse(c->labels, "--labels", &r->labels, &r->n_labels);
        if (st) return st;
        if (r->n_labels < 2) return tk_fail(TK_ERR_ARG, "--labels %s: a classifier needs at least 2 labels", c->labels);
        r->cp.n_labels = r->n_labels;
    }
    r->cls = true;
    r->pref = true;
    return TK_OK;
}

tk_status tk_run_cls_load(tk_run *r, const char *path, bool val) {
    return tk_cls_load(path, r->tok, r->c.max_seq, r->labels, r->n_labels, r->cp.regress, val ? &r->val : &r->train,
                       val ? &r->lab_val : &r->lab_train);
}

/* Rows [k, k + nb) of rows (of d, labels lab) as the objective's batch x. */
static tk_status inputs(tk_run *r, const tk_sft_data *d, const tk_cls_labels *lab, const tk_rows *rows, int64_t k, int32_t nb,
                        tk_obj_batch *x) {
    tk_status st = tk_cls_fill(&r->cb, d, lab, rows, k, nb);
    *x = (tk_obj_batch){.seq = r->cb.seq, .n_seq = r->cb.n_seq, .seq_value = r->cb.value};
    return st;
}

static void add(const tk_run *r, const tk_obj_result *res, double *ls, double *ws, int64_t *toks, double *metrics) {
    *ls += res->loss_sum;
    *ws += res->norm;
    *toks += r->cb.bb.n_tokens;
    for (int i = 0; i < tk_train_objective(r->tc)->n_metrics; i++) metrics[i] += res->metrics[i];
}

tk_status tk_run_cls_micro(tk_run *r, int64_t n, double *ls, double *ws, int64_t *toks, double *metrics) {
    const int64_t S = tk_rows_examples(&r->rows, r->st.row, n);
    if (S <= 0) return tk_fail(TK_ERR_INTERNAL, "step %lld has no examples", (long long)r->st.step + 1);
    const uint64_t counter0 = tk_train_counter(r->tc);
    int64_t j = 0;
    for (int64_t k = 0; k < n; k += r->c.batch_size, j++) {
        int32_t nb = (int32_t)(n - k < r->c.batch_size ? n - k : r->c.batch_size);
        if (!tk_run_micro_mine(r, j, &counter0, (n + r->c.batch_size - 1) / r->c.batch_size)) continue;   /* N MPI ranks: micro-batch j is rank j mod N's */
        tk_obj_batch x;
        tk_obj_result res;
        tk_status st = inputs(r, &r->train, &r->lab_train, &r->rows, r->st.row + k, nb, &x);
        if (!st) st = tk_train_step_objective(r->tc, &r->cb.bb.b, &x, (float)(1.0 / (double)S), &res);
        if (st) return tk_fail_ctx(st, "step %lld: ", (long long)r->st.step + 1);
        add(r, &res, ls, ws, toks, metrics);
    }
    return TK_OK;
}

tk_status tk_run_cls_eval(tk_run *r, double *ls, double *ws, int64_t *toks, double *metrics) {
    int64_t j = 0;
    for (int64_t k = 0; k < r->vrows.n_rows; k += r->c.batch_size, j++) {
        int32_t nb = (int32_t)(r->vrows.n_rows - k < r->c.batch_size ? r->vrows.n_rows - k : r->c.batch_size);
        if (!tk_run_micro_mine(r, j, NULL, 0)) continue;   /* N ranks: batch j is rank j mod N's, the sums are added by the loop */
        tk_obj_batch x;
        tk_obj_result res;
        tk_status st = inputs(r, &r->val, r->c.val ? &r->lab_val : &r->lab_train, &r->vrows, k, nb, &x);
        if (!st) st = tk_train_eval_objective(r->tc, &r->cb.bb.b, &x, &res);
        if (st) return st;
        add(r, &res, ls, ws, toks, metrics);
    }
    return TK_OK;
}

uint64_t tk_run_cls_hash(const tk_run *r, uint64_t h) {
    for (int64_t i = 0; r->cls && i < r->lab_train.n; i++) {
        uint32_t v;
        memcpy(&v, &r->lab_train.value[i], sizeof v);
        h = (h ^ r->lab_train.line[i]) * 1099511628211ull;
        h = (h ^ v) * 1099511628211ull;
    }
    return h;
}

void tk_run_cls_free(tk_run *r) {
    tk_labels_free(r->labels, r->n_labels);
    tk_cls_labels_free(&r->lab_train);
    tk_cls_labels_free(&r->lab_val);
    tk_cls_buf_free(&r->cb);
}
