/* The SFT trainer (see trainer.h): drives a run through its parts (run.h lists them) —
 * plan, open the run folder (fresh or resumed), samples before, the loop (steps,
 * validation, checkpoints, pause/cancel between steps), adapter, samples after, report.
 *
 * Loss normalisation: an optimizer step's loss is the mean over all target tokens of all
 * its micro-batches (each micro-batch's gradient is scaled by 1 / the step's total target
 * count, known in advance from the plan), so gradient accumulation of k micro-batches of
 * b rows equals one batch of k*b rows up to float summation order.
 *
 * Resume: the plan (epoch shuffles, packing, steps) is a pure function of the data, the
 * seed and the options, so a checkpoint only needs the cursor (epoch, row), the step, the
 * dropout counter, the parameters and the AdamW moments; the options are compared with
 * the checkpoint's and the tokenized data's hash must match. */
#include "backend/backend.h"
#include "dist/dist.h"
#include "train/run.h"
#include "takumi/eval.h"
#include "peft/ia3.h"
#include "peft/adalora.h"
#include "peft/bottleneck.h"
#include "peft/prefix.h"
#include "peft/prompt.h"
#include <stdio.h>
#include <unistd.h>

void tk_run_emit(tk_run *r, tk_train_event *e) { if (r->fn) r->fn(e, r->ud); }

void tk_run_emitf(tk_run *r, tk_train_event_kind k, const char *event_name, bool log, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    tk_train_event e = {.kind = k, .step = r->st.step, .total_steps = r->st.total_steps, .message = msg};
    if (log && r->mx.fp) tk_metrics_write(&r->mx, &e, event_name);
    tk_run_emit(r, &e);
}


tk_status tk_train_precision_apply(int requested, int *used) {
    *used = TK_PRECISION_FP32;
    if (requested == TK_PRECISION_FP32) return tk_matmul_set_precision(false);
    tk_status st = tk_matmul_set_precision(true);
    if (st && requested == TK_PRECISION_AUTO) return tk_matmul_set_precision(false);   /* auto: fp32 where bf16 cannot run */
    if (!st) *used = TK_PRECISION_BF16;
    return st;
}

const char *tk_train_precision_name(int precision) {
    return precision == TK_PRECISION_BF16 ? "bf16" : precision == TK_PRECISION_FP32 ? "fp32" : "auto";
}

static void run_free(tk_run *r) {
    (void)tk_matmul_set_precision(false);   /* --precision bf16 lasts for the run only */
    free(r->shard_first);
    r->shard_first = NULL;
    tk_dist_overlap_free(r->ovl);
    r->ovl = NULL;
    if (r->created_out && r->lock_fd >= 0 && !tk_run_folder_in_use(r->c.out)) {
        /* a run that failed before writing anything leaves no empty folder behind (rmdir fails if it holds files) */
        char *p = tk_path_join(r->c.out, ".lock");
        if (p && unlink(p) == 0) rmdir(r->c.out);
        free(p);
    }
    tk_lock_release(r->lock_fd);
    tk_metrics_close(&r->mx);
    tk_eval_config_free(r->evalc);
    tk_buf_free(&r->eval_text);
    tk_train_ctx_free(r->tc);
    tk_model_free(r->m);
    tk_run_distill_free(r);
    tk_run_grpo_free(r);
    tk_sft_free(&r->train);
    tk_sft_free(&r->val);
    tk_pair_buf_free(&r->pb);
    tk_run_cls_free(r);
    free(r->ref_train); free(r->ref_val); free(r->ref_buf);
    tk_rows_free(&r->rows);
    tk_rows_free(&r->vrows);
    tk_batch_buf_free(&r->bb);
    tk_buf_free(&r->config_json);
    free(r->epoch_rows);
    free(r->sample_lines);
    free(r->path_metrics); free(r->path_config); free(r->path_samples); free(r->path_report);
    tk_sft_prompts_free(r->prompts, r->n_prompts);
    tk_run_free_answers(r->before, r->n_prompts);
    tk_run_free_answers(r->after, r->n_prompts);
    tk_trainer_config_free(&r->c);
}

tk_status tk_trainer_run(const tk_trainer_config *cfg, tk_train_event_fn on_event, void *ud, tk_train_control *ctl) {
    if (!cfg || !cfg->model || !cfg->data || !cfg->out)
        return tk_fail(TK_ERR_ARG, "train: --model, --data and --out are required");
    if (ctl) ctl->outcome = 0;
    if (!strcmp(tk_trainer_option_find("objective")->value_name(cfg->objective), "self")) return tk_self_run(cfg, on_event, ud, ctl);
    tk_run R, *r = &R;
    memset(r, 0, sizeof *r);
    r->fn = on_event;
    r->ud = ud;
    r->ctl = ctl;
    r->rows_epoch = -1;
    r->lock_fd = -1;
    r->st = tk_train_state_init();
    tk_status st = tk_trainer_config_check_method(cfg);
    if (!st) st = tk_trainer_config_copy(&r->c, cfg);
    if (st) return st;
    tk_trainer_config *c = &r->c;
    tk_set_threads(c->threads);
    if ((st = tk_train_precision_apply(c->precision, &r->precision))) {
        st = tk_fail_ctx(st, "--precision bf16 (use fp32 or auto here): ");
        run_free(r);
        return st;
    }
    (void)tk_matmul_set_precision(false);   /* resolved; tk_run_step turns bf16 on for each optimizer step */
    const bool lead = tk_dist_rank() == 0;   /* rank 0 owns the run folder and the events (dist.h) */
    if (!lead) r->fn = NULL;
    r->path_metrics = tk_path_join(c->out, "metrics.jsonl");
    r->path_config = tk_path_join(c->out, "config.json");
    r->path_samples = tk_path_join(c->out, "samples.json");
    r->path_report = tk_path_join(c->out, "report.html");
    if (!r->path_metrics || !r->path_config || !r->path_samples || !r->path_report) { run_free(r); return TK_ERR_NOMEM; }
    if (lead && (st = tk_run_folder_lock(r))) { run_free(r); return st; }
    if (lead && !c->resume && tk_run_folder_in_use(c->out)) {
        run_free(r);
        return tk_fail(TK_ERR_ARG, "%s already holds a training run: continue it with --resume, or choose another --out", cfg->out);
    }
    if ((st = tk_run_eval_load(r)) || (st = tk_run_load_inputs(r)) || (st = tk_run_plan(r)) || (st = tk_run_distill_load(r))) goto done;
    r->st.seed = c->seed;
    r->st.data_hash = tk_run_cls_hash(r, tk_sft_hash(&r->train));
    if (r->train.stats.n_truncated)
        tk_run_emitf(r, TK_EV_WARNING, "warning", false, "%llu of %llu examples are longer than %d tokens and were truncated (%llu trained tokens "
              "cut); %llu had nothing left to train on and are skipped",
              (unsigned long long)r->train.stats.n_truncated, (unsigned long long)r->train.stats.n_records, c->max_seq,
              (unsigned long long)r->train.stats.targets_cut, (unsigned long long)r->train.stats.n_skipped);
    tk_train_params tp = tk_train_default_params();
    tp.method = c->method;
    tp.lora.r = c->lora_r;
    tp.lora.alpha = (float)c->lora_alpha;
    tp.lora.dropout = (float)c->lora_dropout;
    tp.lora.rslora = c->rslora;
    tp.lora.targets = c->lora_targets;
    tp.lora.seed = c->seed;
    tp.lora.init = (tk_lora_init)c->lora_init;
    tp.lora.plus_ratio = (float)c->lora_plus_ratio;
    tp.freeze_layers = c->freeze_layers;
    tp.max_rows = r->grpo ? c->batch_size * c->group_size : c->batch_size;   /* grpo: a micro-batch is its prompts' answers */
    tp.max_cols = r->max_cols;
    tp.recompute = c->recompute;
    tk_ia3_config ia3 = {.targets = c->lora_targets == TK_LORA_ALL_TARGETS ? 0 : c->lora_targets, /* all: PEFT's k, v, down */
                         .feedforward = c->lora_targets & (1u << TK_LIN_DOWN)};
    if (c->method == TK_TRAIN_IA3) tp.peft_cfg = &ia3;
    tk_prefix_config pfx = {.num_virtual_tokens = c->num_virtual_tokens, .projection = c->prefix_projection,
                            .encoder_hidden_size = c->encoder_hidden_size, .seed = c->seed};
    if (c->method == TK_TRAIN_PREFIX) tp.peft_cfg = &pfx;
    tk_prompt_config pmt = {.num_virtual_tokens = c->num_virtual_tokens, .seed = c->seed};
    tk_ivec init_ids = {0}; /* --prompt-init text: the text's ids as HF's tokenizer gives them (special tokens added) */
    if (c->method == TK_TRAIN_PROMPT && c->prompt_init == 1) {
        if ((st = tk_tokenize(r->tok, c->prompt_init_text, strlen(c->prompt_init_text), TK_TOK_ADD_SPECIAL, &init_ids))) goto done;
        pmt.init_ids = init_ids.data;
        pmt.n_init_ids = (int32_t)init_ids.len;
        pmt.init_text = c->prompt_init_text;
    }
    if (c->method == TK_TRAIN_PROMPT) tp.peft_cfg = &pmt;
    tk_bottleneck_config bn = {.placement = c->adapter_placement, .reduction = c->adapter_reduction, .act = c->adapter_act - 1,
                               .seed = c->seed};
    if (c->method == TK_TRAIN_ADAPTER) tp.peft_cfg = &bn;
    /* AdaLoRA: the --lora-* values as for LoRA and DoRA (a resume reads them back from config.json); total_step = the run's steps */
    tk_adalora_config ada = tk_adalora_default_config();
    ada.init_r = c->adalora_init_r;
    ada.target_r = c->adalora_target_r;
    ada.tinit = c->adalora_tinit;
    ada.tfinal = c->adalora_tfinal;
    ada.delta_t = c->adalora_delta_t;
    ada.orth_reg = (float)c->adalora_orth_reg;
    ada.total_step = r->st.total_steps;
    ada.alpha = (float)c->lora_alpha;
    ada.dropout = (float)c->lora_dropout;
    ada.targets = c->lora_targets;
    ada.seed = c->seed;
    if (c->method == TK_TRAIN_ADALORA) tp.peft_cfg = &ada;
    if (r->pref || r->distill || r->grpo) {
        tp.objective = tk_objective_find(r->cls ? tk_trainer_option_find("task")->value_name(c->task)
                                                : tk_trainer_option_find("objective")->value_name(c->objective));
        tp.objective_params = tk_run_objective_params(r);
    }
    st = tk_train_ctx_new(r->m, &tp, &r->tc);
    tk_ivec_free(&init_ids); /* the adapter keeps its own copy */
    if (st) goto done;
    r->ps = tk_train_param_set(r->tc);
    if ((st = tk_run_config_json(r))) goto done;
    if (lead && (st = tk_mkdir_p(c->out))) goto done;

    bool resumed = false;
    if (lead && (st = tk_run_open(r, &resumed))) goto done;
    if (tk_dist_size() > 1 && (st = tk_run_dist_share(r, &resumed))) goto done;
    if ((st = tk_run_pref_precompute(r))) goto done;   /* every rank: each needs the reference log-probabilities */

    /* samples before training (the LoRA B matrices are zero, so this is the base model) */
    if (lead && r->n_sample_lines > 0 &&
        (st = tk_sft_prompts(r->sample_path, r->sample_lines, r->n_sample_lines, r->tok, &r->sample_sp, &r->prompts, &r->n_prompts)))
        goto done;
    if (!lead) st = TK_OK;   /* the samples are rank 0's */
    else if (resumed) st = tk_run_read_before(r);
    else {
        if (r->n_prompts) tk_run_emitf(r, TK_EV_INFO, "samples", false, "answering %d validation prompt%s before training", r->n_prompts,
                                r->n_prompts == 1 ? "" : "s");
        st = tk_run_answer_all(r, &r->before);
        if (!st) st = tk_run_write_samples(r);
    }
    if (st) goto done;

    tk_run_emitf(r, TK_EV_START, "start", !resumed, "%s %lld steps: %lld examples, %lld epoch%s, %lld rows/epoch, %d x %d rows per step, "
          "rows of up to %d tokens, lr %.3g (%s, warmup %lld), %lld trainable parameters, precision %s%s",
          resumed ? "resuming;" : "training", (long long)r->st.total_steps, (long long)r->train.n, (long long)r->n_epochs,
          r->n_epochs == 1 ? "" : "s", (long long)r->epoch_rows[0], c->batch_size, c->grad_accum, r->max_cols, c->lr,
          tk_trainer_option_find("schedule")->value_name((int)c->schedule), (long long)c->warmup, (long long)r->ps->total,
          tk_train_precision_name(r->precision), c->precision == TK_PRECISION_AUTO ? " (auto)" : "");
    if (r->st.done) tk_run_emitf(r, TK_EV_INFO, "done", false, "the run had already finished at step %lld", (long long)r->st.step);

    /* the base model's validation loss, the reference every later evaluation is read against */
    if (!resumed && r->has_val && r->st.step == 0 && (st = tk_run_evaluate(r))) goto done;

    /* the loop */
    while (!r->st.done) {
        if ((st = tk_run_step(r))) goto done;
        bool last = r->st.step >= r->st.total_steps;
        if (r->has_val && (r->st.step % c->eval_every == 0 || last) && (st = tk_run_evaluate(r))) goto done;
        if (lead && (st = tk_run_eval_step(r))) goto done;
        if (last || r->st.stopped_early) r->st.done = true;
        bool interrupted = ctl && atomic_load(&ctl->pause), cancel_asked = ctl && atomic_load(&ctl->cancel);
        if ((st = tk_dist_any(&interrupted)) || (st = tk_dist_any(&cancel_asked))) goto done;   /* every rank stops at the same step */
        bool cancelled = ctl && !interrupted && cancel_asked && !r->st.done;
        if (cancelled) {   /* no checkpoint: a resume continues from the last periodic one */
            ctl->outcome = 2;
            tk_run_emitf(r, TK_EV_INFO, "cancelled", true, "cancelled at step %lld (no checkpoint written)", (long long)r->st.step);
            goto done;
        }
        if (r->st.done || r->st.step % c->save_every == 0 || interrupted) { if ((st = tk_run_save(r))) goto done; }   /* every rank: ZeRO-1 */
        if (interrupted && !r->st.done) {
            if (ctl) ctl->outcome = 1;
            tk_run_emitf(r, TK_EV_INFO, "interrupted", true, "interrupted at step %lld: continue with --resume", (long long)r->st.step);
            goto done;
        }
    }

    /* outputs (rank 0's) */
    tk_run_dist_report(r);
    if (!lead) goto done;
    char *last_ck = NULL;
    if ((st = tk_ckpt_latest(c->out, &last_ck))) goto done;
    st = c->method == TK_TRAIN_HEAD ? TK_OK : tk_run_write_adapter(r, last_ck);
    free(last_ck);
    if (!st && r->reward) st = tk_run_write_reward_head(r);
    if (!st && r->cls) st = tk_run_write_classifier(r);
    if (st) goto done;
    if (r->n_prompts) tk_run_emitf(r, TK_EV_INFO, "samples", false, "answering the validation prompts after training");
    if ((st = tk_run_answer_all(r, &r->after)) || (st = tk_run_write_samples(r)) || (st = tk_run_eval_after(r)) ||
        (st = tk_run_write_report(r)))
        goto done;
    tk_run_emitf(r, TK_EV_DONE, "done", true, "%s after %lld steps; report: %s", r->st.stopped_early ? "stopped early" : "finished",
          (long long)r->st.step, r->path_report);
done:
    run_free(r);
    return st;
}
