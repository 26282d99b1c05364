/* Planning a run: the model, tokenizer, template and data are loaded, the auto options
 * resolved (the rules: tk_trainer_run in trainer.h) and the epochs planned. The plan is a
 * pure function of the data, the seed and the options, which is what makes resume exact. */
#include "train/run.h"
#include <math.h>

tk_status tk_run_rows(tk_run *r, int64_t epoch) {
    if (r->rows_epoch == epoch) return TK_OK;
    tk_rows_free(&r->rows);
    r->rows_epoch = -1;
    tk_status st = tk_rows_epoch(&r->train, r->c.seed, epoch, true, r->c.pack_len, r->c.packing, &r->rows);
    if (!st) r->rows_epoch = epoch;
    return st;
}

tk_status tk_run_open_model(tk_trainer_config *c, tk_model **m, tk_chat_family *fam) {
    tk_model_params mp = tk_model_default_params();
    mp.tokenizer_path = c->tokenizer;
    mp.quantize_base = tk_quantize_base_dtype(c->quantize_base);
    tk_status st = tk_model_load(c->model, &mp, m);
    if (st) return st;
    const tk_tokenizer *tok = tk_model_tokenizer(*m);
    const tk_model_config *mc = tk_model_get_config(*m);
    if (c->template_name) {
        if ((st = tk_chat_resolve(tok, c->template_name, fam))) return st;
    } else if (tk_chat_resolve(tok, NULL, fam) != TK_OK) {
        *fam = TK_CHAT_UNKNOWN;   /* conversations will ask for --template; raw text still trains */
        tk_clear_error();
    }
    if (c->max_seq == 0) c->max_seq = mc->max_seq < 1024 ? mc->max_seq : 1024;
    if (c->max_seq > mc->max_seq)
        return tk_fail(TK_ERR_ARG, "--max-seq-len %d exceeds the model's context of %d tokens", c->max_seq, mc->max_seq);
    if (c->max_seq < 2) return tk_fail(TK_ERR_ARG, "the model's context (%d) is too short to train on", mc->max_seq);
    return TK_OK;
}

/* Loads model, tokenizer, template and data. */
tk_status tk_run_load_inputs(tk_run *r) {
    tk_trainer_config *c = &r->c;
    tk_status st = tk_run_pref_options(r);
    if (st) return st;
    if ((st = tk_run_open_model(c, &r->m, &r->fam))) return st;
    r->tok = tk_model_tokenizer(r->m);
    const tk_model_config *mc = tk_model_get_config(r->m);
    if (c->freeze_layers >= mc->n_layers)
        return tk_fail(TK_ERR_ARG, "--freeze-layers %d: the model has %d layers (at most %d can be frozen)", c->freeze_layers,
                       mc->n_layers, mc->n_layers - 1);
    r->sp = tk_sft_default_params();
    r->sp.format = c->format;
    r->sp.family = r->fam;
    r->sp.max_seq = c->max_seq;
    r->sp.train_on_prompt = c->train_on_prompt;
    r->sp.kl_group = c->batch_size;   /* KTO: the KL pairs' groups (auto: 8, TRL's per_device_train_batch_size) */
    if (r->grpo) return tk_run_grpo_load(r);   /* prompt sets; no sample prompts (the validation event grades greedy answers) */
    tk_status (*load)(const char *, const tk_tokenizer *, const tk_sft_params *, tk_sft_data *) =
        r->kto ? tk_kto_load : r->pref ? tk_pairs_load : tk_sft_load;
    if ((st = tk_run_distill_prepare(r))) return st;   /* the teacher's answers may become the data */
    if ((st = tk_run_augment_prepare(r))) return st;   /* or the data with paraphrased questions */
    if ((st = r->cls ? tk_run_cls_load(r, c->data, false) : load(tk_run_data_path(r), r->tok, &r->sp, &r->train))) return st;
    r->sp.format = r->train.format;   /* the validation file must be the same kind; samples re-read it */
    if (c->val && c->val_split > 0) return tk_fail(TK_ERR_ARG, "use either --val or --val-split, not both");
    if (c->val) {
        tk_sft_params vp = r->sp;
        vp.format = c->format;
        if ((st = r->cls ? tk_run_cls_load(r, c->val, true) : load(c->val, r->tok, &vp, &r->val))) return st;
        r->has_val = true;
        r->sample_path = c->val;
        r->sample_sp = vp;
        r->sample_sp.format = r->val.format;
    } else if (c->val_split > 0) {
        if ((st = tk_sft_split(&r->train, c->val_split, c->seed, &r->val))) return tk_fail_ctx(st, "%s: ", tk_run_data_path(r));
        r->has_val = true;
        r->sample_path = tk_run_data_path(r);
        r->sample_sp = r->sp;
    } else {
        r->sample_path = tk_run_data_path(r);
        r->sample_sp = r->sp;
    }
    /* sample prompts: the first validation examples (else the first training examples) */
    const tk_sft_data *sd = r->has_val ? &r->val : &r->train;
    int32_t k = r->cls ? 0 : c->samples < sd->n ? c->samples : (int32_t)sd->n;   /* a classifier answers no prompts */
    if (k > 0) {
        r->sample_lines = tk_malloc((size_t)k * sizeof *r->sample_lines);
        if (!r->sample_lines) return TK_ERR_NOMEM;
        for (int32_t i = 0; i < k; i++) r->sample_lines[i] = sd->line[i];
        r->n_sample_lines = k;
    }
    return TK_OK;
}

/* Resolves the auto options and plans the epochs.
 *
 * Batch shape: the run aims at S = min(256, examples x epochs) optimizer steps — enough
 * updates for the schedule to matter and a readable curve, and like OpenAI's batch size
 * of one example for small data sets, never less than one example a step — so a step
 * carries T = tokens x epochs / S tokens. Packed: rows are max-seq-len tokens, or shorter
 * (but at least the longest example) when T is smaller, one row per micro-batch, and
 * round(T / row) micro-batches (at most 32) per step. Unpacked: round(examples per step)
 * examples, up to 8 in a micro-batch (bounded by max-seq-len tokens), the rest as
 * micro-batches. Explicit --batch-size / --grad-accum keep rows of max-seq-len. */
tk_status tk_run_plan(tk_run *r) {
    tk_trainer_config *c = &r->c;
    const tk_sft_data *d = &r->train;
    int32_t grpo_cols = 0;
    if (r->grpo) {
        tk_status st = tk_run_grpo_plan(r, &grpo_cols);
        if (st) return st;
        goto epochs;
    }
    if (c->epochs == 0) c->epochs = tk_trainer_auto_epochs((uint64_t)d->n);
    bool shape_auto = c->batch_size == 0 && c->grad_accum == 0;
    double passes = (double)d->n * c->epochs, steps = passes < 256 ? passes : 256;
    double tok_step = (double)d->stats.n_tokens * c->epochs / steps, ex_step = passes / steps;
    double mean = (double)d->stats.n_tokens / (double)d->n;
    const int32_t row_max = r->pref && !r->cls ? 2 * c->max_seq : c->max_seq;   /* a pair: two sequences of up to max-seq-len */
    if (c->packing) {
        if (c->pack_len == 0) {
            double pl = shape_auto && tok_step < row_max ? ceil(tok_step) : row_max;
            if (pl < d->stats.longest) pl = d->stats.longest;
            c->pack_len = (int32_t)(pl > row_max ? row_max : pl);
        }
        if (c->pack_len < d->stats.longest)
            return tk_fail(TK_ERR_ARG, "--pack-len %d is shorter than the longest example (%d tokens); raise it or lower --max-seq-len",
                           c->pack_len, d->stats.longest);
        if (c->batch_size == 0) c->batch_size = 1;
        if (c->grad_accum == 0) {
            double a = floor(tok_step / ((double)c->pack_len * c->batch_size) + 0.5);
            c->grad_accum = (int32_t)(a < 1 ? 1 : a > 32 ? 32 : a);
        }
    } else {
        c->pack_len = d->stats.longest;   /* rows are single examples */
        if (c->batch_size == 0) {
            double fit = floor(row_max / (mean > 1 ? mean : 1)), b = floor(ex_step + 0.5);
            if (b > fit) b = fit;
            const double lo = r->kto ? 2 : 1;   /* KTO's KL estimate needs another example in the batch */
            c->batch_size = (int32_t)(b < lo ? lo : b > 8 ? 8 : b);
        }
        if (c->grad_accum == 0) {
            double a = floor(ex_step / c->batch_size + 0.5);
            c->grad_accum = (int32_t)(a < 1 ? 1 : a > 32 ? 32 : a);
        }
    }
epochs:
    r->n_epochs = c->epochs;
    r->epoch_rows = tk_calloc((size_t)r->n_epochs, sizeof *r->epoch_rows);
    if (!r->epoch_rows) return TK_ERR_NOMEM;
    int64_t per = (int64_t)c->batch_size * c->grad_accum, planned = 0;
    for (int64_t e = 0; e < r->n_epochs; e++) {
        tk_rows rw;
        tk_status st = tk_rows_epoch(d, c->seed, e, true, c->pack_len, c->packing, &rw);
        if (st) return st;
        r->epoch_rows[e] = rw.n_rows;
        planned += (rw.n_rows + per - 1) / per;
        tk_rows_free(&rw);
    }
    r->st.total_steps = c->max_steps > 0 ? c->max_steps : planned;
    if (c->max_steps > 0 && tk_trainer_config_given(c, "epochs") && tk_trainer_config_given(c, "max-steps") && c->max_steps != planned)
        tk_run_emitf(r, TK_EV_WARNING, "warning", false, "--max-steps %lld ends the run after %.2f epochs, not the %d --epochs asks for "
                     "(%lld steps)", (long long)c->max_steps, (double)c->max_steps * (double)r->n_epochs / (double)(planned ? planned : 1),
                     c->epochs, (long long)planned);
    if (c->lr > 0 && c->lr_mult != 1 && tk_trainer_config_given(c, "lr-multiplier"))
        return tk_fail(TK_ERR_ARG, "--lr-multiplier %g scales the auto learning rate: drop it or --lr %g", c->lr_mult, c->lr);
    if (c->lr == 0) {
        /* LoRA: B starts at zero and only a rank-r update is learned, so it takes a much
         * larger rate than full fine-tuning, and a CPU run makes few steps (<= 256 by the
         * shape rule above). Measured on SmolLM2-135M-Instruct (Q4_1) with all defaults but
         * the rate — 24 support-desk conversations (8 facts x 3 questions), 8 paraphrased
         * validation questions, auto: 5 epochs, 120 steps of one conversation, cosine — the
         * validation loss after 120 steps was 0.146 (token accuracy 96.7%) at 1e-3 and 0.834
         * (81.8%) at 2e-4, the usual rate for 7B models and long runs (of the 3 sample
         * paraphrases, 1e-3 answered one word for word and two in the trained style with
         * wrong numbers). Full fine-tuning: 2e-5,
         * the usual SFT rate for small dense models. */
        c->lr = c->method != TK_TRAIN_FULL ? 1e-3 : 2e-5;
        /* GRPO: sampled answers and a policy-gradient loss are noisier than SFT targets; TRL's GRPOConfig
         * default is 1e-6 for full fine-tuning of large models, LoRA runs take about 100x that */
        if (r->grpo) c->lr = c->method != TK_TRAIN_FULL ? 1e-4 : 1e-6;
        c->lr *= c->lr_mult;
    }
    double w = c->warmup < 0 ? 0.03 : c->warmup;
    if (w >= 1 && w > (double)r->st.total_steps)
        return tk_fail(TK_ERR_ARG, "--warmup %g steps exceeds the run's %lld steps: the learning rate would never reach --lr",
                       w, (long long)r->st.total_steps);
    c->warmup = w < 1 ? floor(w * (double)r->st.total_steps + 0.5) : floor(w);
    if (c->eval_every == 0 && r->has_val) c->eval_every = (r->st.total_steps + 9) / 10;
    if (c->save_every == 0) c->save_every = (r->st.total_steps + 9) / 10;
    if (c->eval_every < 1) c->eval_every = 1;
    if (c->save_every < 1) c->save_every = 1;
    r->opt = tk_adamw_default();
    r->opt.lr = (float)c->lr;
    r->opt.weight_decay = (float)c->weight_decay;
    r->opt.clip = (float)c->clip;
    r->opt.sched = c->schedule;
    r->opt.warmup = (int64_t)c->warmup;
    r->opt.total = r->st.total_steps;
    r->opt.min_lr_ratio = 0;
    r->max_cols = c->pack_len;
    if (r->grpo) {   /* the schedule ticks once per update: --passes of them a step; rows are prompt + answer */
        r->opt.total *= c->passes;
        r->opt.warmup *= c->passes;
        r->max_cols = grpo_cols;
        return tk_run_grpo_prepare(r);
    }
    if (r->has_val) {
        /* validation rows: as training rows, but never shorter than the longest validation example */
        int32_t vl = c->packing ? (c->pack_len > r->val.stats.longest ? c->pack_len : r->val.stats.longest) : r->val.stats.longest;
        tk_status st = tk_rows_epoch(&r->val, c->seed, 0, false, vl, c->packing, &r->vrows);
        if (st) return st;
        if (vl > r->max_cols) r->max_cols = vl;
    }
    return TK_OK;
}

