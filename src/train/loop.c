/* The loop's parts: one optimizer step (gradient accumulation over micro-batches, the
 * loss normalised by the step's target count; with N MPI ranks the micro-batches shared
 * among them and the sums added, dist.h), a validation pass (with the overfitting
 * warning and early stopping) and a checkpoint. */
#include "train/run.h"
#include "dist/dist.h"
#include "backend/backend.h"
#include <math.h>

double tk_run_epoch_progress(tk_run *r) {
    if (r->rows_epoch == r->st.epoch && r->rows.n_rows > 0) return (double)r->st.epoch + (double)r->st.row / (double)r->rows.n_rows;
    return (double)r->st.epoch;
}

/* The objective's metrics (sums over ws units) as means on the event (none for SFT). */
static void metric_means(const tk_run *r, double *sums, double ws, tk_train_event *e) {
    const tk_objective_ops *o = tk_train_objective(r->tc);
    if (!r->pref || ws <= 0) return;
    for (int i = 0; i < o->n_metrics; i++) sums[i] /= ws;
    e->n_metrics = o->n_metrics;
    e->metric_names = o->metric_names;
    e->metrics = sums;
}

static tk_status run_step(tk_run *r);

/* --precision bf16 (or auto resolved to it) covers the optimizer steps only: validation, the samples
 * and the evaluation after training run fp32, so that their numbers are takumi eval's and takumi
 * generate's on the saved adapter, whatever precision trained it. */
tk_status tk_run_step(tk_run *r) {
    const bool bf16 = r->precision == TK_PRECISION_BF16;
    tk_status st = bf16 ? tk_matmul_set_precision(true) : TK_OK;
    if (!st) st = run_step(r);
    if (bf16) (void)tk_matmul_set_precision(false);
    return st;
}

static tk_status run_step(tk_run *r) {
    if (r->grpo) return tk_run_grpo_step(r);
    tk_trainer_config *c = &r->c;
    tk_status st = tk_run_rows(r, r->st.epoch);
    if (st) return st;
    int64_t per = (int64_t)c->batch_size * c->grad_accum;
    int64_t n = r->rows.n_rows - r->st.row < per ? r->rows.n_rows - r->st.row : per;
    int64_t W = r->pref ? 1 : tk_rows_targets(&r->train, &r->rows, r->st.row, n);
    if (W <= 0) return tk_fail(TK_ERR_INTERNAL, "step %lld has no target tokens", (long long)r->st.step + 1);
    double t0 = tk_time_s(), ls = 0, ws = 0, msum[TK_OBJ_MAX_METRICS] = {0};
    int64_t toks = 0;
    tk_params_zero_grad(r->ps);
    /* with N ranks, micro-batch j is rank j mod N's (tk_run_micro_mine); the dropout counter is the one-process run's */
    const uint64_t counter0 = tk_train_counter(r->tc);
    if (r->pref && (st = tk_run_pref_micro(r, n, &ls, &ws, &toks, msum))) return st;
    int64_t j = 0;
    for (int64_t k = 0; k < n && !r->pref; k += c->batch_size, j++) {
        int32_t nb = (int32_t)(n - k < c->batch_size ? n - k : c->batch_size);
        if (!tk_run_micro_mine(r, j, &counter0, (n + c->batch_size - 1) / c->batch_size)) continue;
        if ((st = tk_batch_fill(&r->bb, &r->train, &r->rows, r->st.row + k, nb))) return st;
        toks += r->bb.n_tokens;
        if ((st = r->distill ? tk_run_distill_micro(r, r->st.row + k, nb, (float)(1.0 / (double)W), &ls, &ws)
                             : tk_train_step_fwd_bwd(r->tc, &r->bb.b, r->bb.target, NULL, (float)(1.0 / (double)W), &ls, &ws)))
            return tk_fail_ctx(st, "step %lld: ", (long long)r->st.step + 1);
    }
    if (tk_dist_size() > 1) {   /* the step's sums over the ranks, then every rank takes the same optimizer step */
        tk_train_set_counter(r->tc, counter0 + (uint64_t)((n + c->batch_size - 1) / c->batch_size));
        tk_train_set_layer_done(r->tc, NULL, NULL);
        if ((st = tk_dist_barrier()) || (st = tk_dist_overlap_finish(r->ovl)) || (st = tk_run_dist_sums(r, &ls, &ws, &toks, msum)))
            return tk_fail_ctx(st, "step %lld: ", (long long)r->st.step + 1);
    }
    /* the adapter's regularizer (AdaLoRA's orthogonality penalty) joins the step's loss once, as in PEFT's forward */
    double reg = 0;
    if ((st = tk_train_reg_loss(r->tc, true, &reg))) return tk_fail_ctx(st, "step %lld: ", (long long)r->st.step + 1);
    ls += reg * ws;
    double gn = 0;
    float lr = tk_lr_at(&r->opt, r->st.step);
    if ((st = tk_run_dist_update(r, r->st.step, &gn))) return st;
    /* after the update, the step's gradients still in place (AdaLoRA's rank allocator, PEFT's update_and_allocate) */
    if ((st = tk_train_after_update(r->tc, r->st.step, tk_adamw_clip_scale(&r->opt, gn))))
        return tk_fail_ctx(st, "step %lld: ", (long long)r->st.step + 1);
    double dt = tk_time_s() - t0;
    r->st.step++;
    r->st.row += n;
    if (r->st.row >= r->rows.n_rows) { r->st.epoch++; r->st.row = 0; }
    r->st.counter = tk_train_counter(r->tc);
    r->st.tokens_seen += toks;
    r->st.elapsed_s += dt;
    double loss = ls / ws;
    r->st.train_loss_sum += ls;
    r->st.train_weight_sum += ws;
    r->steps_here++;
    r->time_here += dt;
    tk_train_event e = {.kind = TK_EV_STEP, .step = r->st.step, .total_steps = r->st.total_steps, .epoch = tk_run_epoch_progress(r),
                        .n_epochs = r->n_epochs, .train_loss = loss, .lr = lr, .grad_norm = gn, .tokens = toks,
                        .tokens_per_s = dt > 0 ? (double)toks / dt : 0, .step_s = dt, .elapsed_s = r->st.elapsed_s,
                        .eta_s = (double)(r->st.total_steps - r->st.step) * (r->time_here / (double)r->steps_here),
                        .peak_rss_mb = tk_peak_rss_mb()};
    metric_means(r, msum, ws, &e);
    if (!isfinite(loss)) return tk_fail(TK_ERR_RANGE, "step %lld: the loss is %g (diverged; try a lower --lr)", (long long)r->st.step, loss);
    if (tk_dist_rank() == 0 && (st = tk_metrics_write(&r->mx, &e, NULL))) return st;
    tk_run_emit(r, &e);
    return TK_OK;
}

tk_status tk_run_evaluate(tk_run *r) {
    if (r->grpo) return tk_run_grpo_evaluate(r);
    tk_eval_sums acc = {0};
    double t0 = tk_time_s(), msum[TK_OBJ_MAX_METRICS] = {0};
    if (r->pref) {
        tk_status st = tk_run_pref_eval(r, &acc.loss_sum, &acc.weight_sum, &acc.n_tokens, msum);
        if (st) return tk_fail_ctx(st, "validation at step %lld: ", (long long)r->st.step);
    }
    int64_t j = 0;
    for (int64_t k = 0; k < r->vrows.n_rows && !r->pref; k += r->c.batch_size, j++) {
        int32_t nb = (int32_t)(r->vrows.n_rows - k < r->c.batch_size ? r->vrows.n_rows - k : r->c.batch_size);
        if (!tk_run_micro_mine(r, j, NULL, 0)) continue;   /* N ranks: batch j is rank j mod N's, the sums are added below */
        tk_status st = tk_batch_fill(&r->bb, &r->val, &r->vrows, k, nb);
        if (!st) st = r->distill ? tk_run_distill_eval(r, k, nb, &acc.loss_sum, &acc.weight_sum) : tk_train_eval(r->tc, &r->bb.b, r->bb.target, NULL, &acc);
        if (st) return tk_fail_ctx(st, "validation at step %lld: ", (long long)r->st.step);
    }
    if (tk_dist_size() > 1) {
        tk_status st = tk_run_dist_sums(r, &acc.loss_sum, &acc.weight_sum, &acc.n_tokens, msum);
        if (!st) st = tk_dist_sum_i64(&acc.n_correct, 1);
        if (st) return tk_fail_ctx(st, "validation at step %lld: ", (long long)r->st.step);
    }
    double vl = acc.weight_sum > 0 ? acc.loss_sum / acc.weight_sum : NAN;
    tk_train_event e = {.kind = TK_EV_EVAL, .step = r->st.step, .total_steps = r->st.total_steps, .epoch = tk_run_epoch_progress(r),
                        .n_epochs = r->n_epochs, .valid_loss = vl, .valid_ppl = exp(vl),
                        .valid_acc = acc.n_tokens && !r->pref ? (double)acc.n_correct / (double)acc.n_tokens : NAN,
                        .valid_tokens = acc.n_tokens, .elapsed_s = tk_time_s() - t0};
    if (r->pref || r->distill) e.valid_ppl = NAN;   /* a pair loss or a divergence has no perplexity */
    if (r->distill) e.valid_acc = NAN;
    metric_means(r, msum, acc.weight_sum, &e);
    tk_status st = tk_dist_rank() == 0 ? tk_metrics_write(&r->mx, &e, NULL) : TK_OK;
    if (st) return st;
    tk_run_emit(r, &e);
    /* overfitting: validation up while training down since the previous evaluation; said
     * once per plateau (the first evaluation after the best), so noise does not repeat it */
    double tr = r->st.train_weight_sum > 0 ? r->st.train_loss_sum / r->st.train_weight_sum : NAN;
    if (vl < r->st.best_val) { r->st.best_val = vl; r->st.best_step = r->st.step; r->st.bad_evals = 0; }
    else r->st.bad_evals++;
    if (r->st.bad_evals == 1 && isfinite(r->st.prev_val) && isfinite(r->st.prev_train) && isfinite(tr) && vl > r->st.prev_val &&
        tr < r->st.prev_train)
        tk_run_emitf(r, TK_EV_WARNING, "warning", true, "validation loss rose from %.4f to %.4f while the training loss fell from %.4f to %.4f: "
              "the model may be overfitting (fewer epochs, --patience, more data)", r->st.prev_val, vl, r->st.prev_train, tr);
    if (isfinite(tr)) r->st.prev_train = tr;
    r->st.prev_val = vl;
    r->st.train_loss_sum = r->st.train_weight_sum = 0;
    if (r->c.patience > 0 && r->st.bad_evals >= r->c.patience) {
        r->st.stopped_early = true;
        tk_run_emitf(r, TK_EV_INFO, "early_stop", true, "early stop: no validation improvement for %d evaluations (best %.4f at step %lld)",
              r->st.bad_evals, r->st.best_val, (long long)r->st.best_step);
    }
    return TK_OK;
}

tk_status tk_run_save(tk_run *r) {
    char *path = NULL;
    tk_status st = TK_OK;
    int64_t ne = 0;
    const float *extra = tk_train_extra_state(r->tc, &ne);   /* the adapter's state besides its parameters (AdaLoRA) */
    if (r->shard_first) {   /* N ranks: rank 0 gathers the sharded optimizer state, writes, and drops it again */
        st = tk_dist_gather_moments(r->ps, r->shard_first);
        if (!st && tk_dist_rank() == 0) st = tk_ckpt_save_ex(r->c.out, r->ps, extra, ne, &r->st, r->config_json.data, r->c.keep_checkpoints, &path);
        tk_dist_shard_drop(r->ps, r->shard_first);
        if (st) return tk_fail_ctx(st, "checkpoint at step %lld: ", (long long)r->st.step);
        if (tk_dist_rank() != 0) return TK_OK;
    } else
        st = tk_ckpt_save_ex(r->c.out, r->ps, extra, ne, &r->st, r->config_json.data, r->c.keep_checkpoints, &path);
    if (!st) st = tk_run_write_ckpt_adapter(r, path);
    if (st) { free(path); return tk_fail_ctx(st, "checkpoint at step %lld: ", (long long)r->st.step); }
    tk_run_emitf(r, TK_EV_CHECKPOINT, "checkpoint", true, "%s", path);
    free(path);
    return TK_OK;
}

