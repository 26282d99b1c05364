/* RUN/report.html: the summary and data tables of a finished run, the curves from
 * metrics.jsonl and the samples (the HTML itself: report.c). */
#include "train/run.h"
#include "train/report.h"

static void kv_add(tk_report_kv *kv, int *n, char (*vals)[160], const char *k, const char *fmt, ...) TK_PRINTF(5, 6);
static void kv_add(tk_report_kv *kv, int *n, char (*vals)[160], const char *k, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(vals[*n], 160, fmt, ap);
    va_end(ap);
    kv[*n].key = k;
    kv[*n].value = vals[*n];
    (*n)++;
}

tk_status tk_run_write_report(tk_run *r) {
    tk_metrics_series ms;
    tk_status st = tk_metrics_read(r->path_metrics, &ms);
    if (st) return st;
    tk_report_kv sum[20], data[16];
    char sv[20][160], dv[16][160];
    int ns = 0, nd = 0;
    const tk_model_config *mc = tk_model_get_config(r->m);
    char dur[32];
    tk_duration_format(r->st.elapsed_s, dur, sizeof dur);
    kv_add(sum, &ns, sv, "steps", "%lld of %lld%s", (long long)r->st.step, (long long)r->st.total_steps, r->st.stopped_early ? " (early stop)" : "");
    kv_add(sum, &ns, sv, "epochs", "%.2f of %lld", tk_run_epoch_progress(r), (long long)r->n_epochs);
    if (ms.n_train) {
        int64_t k = ms.n_train < 10 ? ms.n_train : 10;
        double a = 0, b = 0;
        for (int64_t i = 0; i < k; i++) { a += ms.train_loss[i]; b += ms.train_loss[ms.n_train - 1 - i]; }
        kv_add(sum, &ns, sv, "train loss", "%.4f → %.4f (mean of the first / last %lld steps)", a / k, b / k, (long long)k);
    }
    if (ms.n_valid) {
        kv_add(sum, &ns, sv, "validation loss", "%.4f%s → %.4f (best %.4f at step %lld)", ms.valid_loss[0],
               ms.valid_step[0] == 0 ? " (base model)" : "", ms.valid_loss[ms.n_valid - 1], r->st.best_val, (long long)r->st.best_step);
        kv_add(sum, &ns, sv, "validation perplexity", "%.2f → %.2f", ms.valid_ppl[0], ms.valid_ppl[ms.n_valid - 1]);
        kv_add(sum, &ns, sv, "validation token accuracy", "%.1f%% → %.1f%%", 100 * ms.valid_acc[0], 100 * ms.valid_acc[ms.n_valid - 1]);
    }
    kv_add(sum, &ns, sv, "training time", "%s", dur);
    kv_add(sum, &ns, sv, "throughput", "%.0f tokens/s (%lld tokens)", r->st.elapsed_s > 0 ? (double)r->st.tokens_seen / r->st.elapsed_s : 0,
           (long long)r->st.tokens_seen);
    double peak = 0;
    for (int64_t i = 0; i < ms.n_train; i++) if (ms.peak_rss_mb[i] > peak) peak = ms.peak_rss_mb[i];
    kv_add(sum, &ns, sv, "peak memory (RSS)", "%.0f MiB", peak);
    kv_add(sum, &ns, sv, "trainable parameters", "%lld (%.3f%% of %lld)", (long long)r->ps->total,
           100.0 * (double)r->ps->total / (double)tk_model_n_params(r->m), (long long)tk_model_n_params(r->m));
    kv_add(sum, &ns, sv, "precision", "%s%s", r->precision == TK_PRECISION_BF16
           ? "bf16 base and LM-head products (fp32 sums, weights, gradients, moments)" : "fp32",
           r->c.precision == TK_PRECISION_AUTO ? " (--precision auto)" : "");
    kv_add(sum, &ns, sv, "run folder", "%s", r->c.out);
    kv_add(data, &nd, dv, "training file", "%s (%s)", r->c.data, tk_data_format_name(r->train.format));
    kv_add(data, &nd, dv, "training examples", "%lld (%llu tokens, %llu trained)", (long long)r->train.n,
           (unsigned long long)r->train.stats.n_tokens, (unsigned long long)r->train.stats.n_targets);
    if (r->has_val)
        kv_add(data, &nd, dv, "validation examples", "%lld (%s)", (long long)r->val.n, r->c.val ? r->c.val : "held out of the training file");
    kv_add(data, &nd, dv, "chat template", "%s", tk_chat_family_name(r->fam));
    if (r->c.packing) kv_add(data, &nd, dv, "sequence length", "%d tokens max, packed into rows of %d", r->c.max_seq, r->c.pack_len);
    else kv_add(data, &nd, dv, "sequence length", "%d tokens max, one example per row", r->c.max_seq);
    kv_add(data, &nd, dv, "truncated examples", "%llu (%llu trained tokens cut)", (unsigned long long)r->train.stats.n_truncated,
           (unsigned long long)r->train.stats.targets_cut);
    kv_add(data, &nd, dv, "skipped examples", "%llu (nothing left to train on after truncation)", (unsigned long long)r->train.stats.n_skipped);
    kv_add(data, &nd, dv, "rows per epoch", "%lld (%d per micro-batch, %d micro-batches per step)", (long long)r->epoch_rows[0],
           r->c.batch_size, r->c.grad_accum);
    tk_report_sample *smp = tk_calloc((size_t)(r->n_prompts ? r->n_prompts : 1), sizeof *smp);
    if (!smp) { tk_metrics_series_free(&ms); return TK_ERR_NOMEM; }
    for (int32_t i = 0; i < r->n_prompts; i++) {
        smp[i].question = r->prompts[i].question;
        smp[i].reference = r->prompts[i].reference;
        smp[i].before = r->before && r->before[i] ? r->before[i] : "(not recorded)";
        smp[i].after = r->after && r->after[i] ? r->after[i] : "(not recorded)";
    }
    char title[400];
    if (r->c.method == TK_TRAIN_LORA || r->c.method == TK_TRAIN_DORA)
        snprintf(title, sizeof title, "%s · %s r=%d alpha=%g%s · %s", mc->name, r->c.method == TK_TRAIN_DORA ? "DoRA" : "LoRA", r->c.lora_r,
                 r->c.lora_alpha, r->c.rslora ? " (rsLoRA)" : "", r->c.data);
    else if (r->c.method == TK_TRAIN_IA3)
        snprintf(title, sizeof title, "%s · IA3 · %s", mc->name, r->c.data);
    else if (r->c.method == TK_TRAIN_PREFIX)
        snprintf(title, sizeof title, "%s · prefix tuning, %d virtual tokens%s · %s", mc->name, r->c.num_virtual_tokens,
                 r->c.prefix_projection ? " (projection)" : "", r->c.data);
    else if (r->c.method == TK_TRAIN_PROMPT)
        snprintf(title, sizeof title, "%s · prompt tuning, %d virtual tokens (%s init) · %s", mc->name, r->c.num_virtual_tokens,
                 r->c.prompt_init ? "text" : "random", r->c.data);
    else if (r->c.method == TK_TRAIN_ADAPTER)
        snprintf(title, sizeof title, "%s · bottleneck adapters (%s, reduction %d) · %s", mc->name, r->c.adapter_placement ? "Houlsby" : "Pfeiffer",
                 r->c.adapter_reduction, r->c.data);
    else if (r->c.method == TK_TRAIN_ADALORA)
        snprintf(title, sizeof title, "%s · AdaLoRA r=%d -> %d · %s", mc->name, r->c.adalora_init_r, r->c.adalora_target_r, r->c.data);
    else if (r->c.method == TK_TRAIN_HEAD)
        snprintf(title, sizeof title, "%s · task head only (frozen body) · %s", mc->name, r->c.data);
    else
        snprintf(title, sizeof title, "%s · full fine-tuning%s · %s", mc->name, r->c.freeze_layers ? " (lower layers frozen)" : "", r->c.data);
    tk_report_input in = {.title = title, .summary = sum, .n_summary = ns, .data = data, .n_data = nd,
                          .config_json = r->config_json.data, .metrics = &ms, .samples = smp, .n_samples = r->n_prompts,
                          .eval_text = r->eval_text.data};
    st = tk_report_write(r->path_report, &in);
    free(smp);
    tk_metrics_series_free(&ms);
    return st;
}

