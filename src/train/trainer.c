/* The SFT trainer loop (see trainer.h): options, auto rules, the run folder, optimizer
 * steps with gradient accumulation, validation, early stopping, the overfitting warning,
 * checkpoints, exact resume, samples before/after and the report.
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
#include "train/trainer.h"
#include "train/batch.h"
#include "train/checkpoint.h"
#include "train/report.h"
#include "peft/adapter_io.h"
#include "core/core.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- options ------------------------------------------------------------------------ */

static const tk_trainer_option k_opts[] = {
    {"model", "PATH", "$TAKUMI_MODEL or models/SmolLM2-135M-Instruct.Q4_1.gguf", "base model: GGUF file, HF folder (config.json + safetensors) or llama2.c checkpoint"},
    {"tokenizer", "PATH", "the model's", "tokenizer file to use instead of the model's own (llama2.c tokenizer.bin, tokenizer.json, .gguf)"},
    {"data", "FILE", "(required)", "training data: JSONL/JSON in OpenAI chat, prompt/completion, Alpaca, ShareGPT or text format"},
    {"format", "NAME", "auto", "data format: auto, chat, prompt_completion, alpaca, sharegpt, text"},
    {"template", "NAME", "auto", "chat template family (default: recognised from the model)"},
    {"out", "DIR", "(required)", "run folder: config.json, metrics.jsonl, checkpoints/, adapter/, samples.json, report.html"},
    {"method", "lora|full", "lora", "LoRA adapters on a frozen base, or full fine-tuning (f32 master weights)"},
    {"lora-r", "N", "8", "LoRA rank"},
    {"lora-alpha", "X", "16", "LoRA alpha (scale = alpha / r)"},
    {"lora-dropout", "X", "0.05", "dropout on the LoRA input, [0, 1)"},
    {"lora-targets", "LIST", "all", "linears to adapt: all, or a comma list of q,k,v,o,gate,up,down"},
    {"rslora", "", "off", "rank-stabilised LoRA: scale = alpha / sqrt(r)"},
    {"freeze-layers", "N", "0", "train only layers >= N (LoRA: adapters there; full: embedding frozen too when N > 0)"},
    {"epochs", "auto|N", "auto", "passes over the data; auto: 3, more for < 34 examples (<= 25), fewer above 8333 (epochs x examples <= 25000)"},
    {"batch-size", "auto|N", "auto", "rows per micro-batch; auto: 1 packed row (without packing: examples, see grad-accum)"},
    {"grad-accum", "auto|N", "auto", "micro-batches per optimizer step; auto: about min(256, examples x epochs) steps, <= 32 rows a step"},
    {"lr", "auto|X", "auto", "peak learning rate; auto: LoRA 1e-3, full fine-tuning 2e-5"},
    {"schedule", "NAME", "cosine", "learning-rate schedule after warmup: constant, linear or cosine (to 0)"},
    {"warmup", "auto|X", "auto", "linear warmup: steps (>= 1) or a fraction of the steps (< 1); auto: 0.03"},
    {"weight-decay", "X", "0", "AdamW decoupled weight decay (not applied to norms and biases)"},
    {"clip", "X", "1.0", "clip the global gradient norm to X (0: off)"},
    {"max-seq-len", "auto|N", "auto", "tokens per example/row; longer examples are truncated (counted); auto: min(model context, 1024)"},
    {"no-packing", "", "packing on", "one example per row (padding) instead of packing several into each row"},
    {"pack-len", "auto|N", "auto", "tokens per packed row; auto: max-seq-len, shorter for small data so that steps stay many"},
    {"train-on-prompt", "", "off", "loss on prompt tokens too (default: assistant tokens and their end-of-turn only)"},
    {"val", "FILE", "none", "validation data (same formats)"},
    {"val-split", "F", "0", "hold out this fraction of the training data for validation (deterministic from the seed)"},
    {"eval-every", "auto|N", "auto", "validate every N steps and at the end; auto: a tenth of the steps"},
    {"patience", "N", "0 (off)", "stop when the validation loss has not improved for N evaluations"},
    {"save-every", "auto|N", "auto", "checkpoint every N steps and at the end; auto: a tenth of the steps"},
    {"keep-checkpoints", "K", "2", "keep the newest K checkpoints (0: all)"},
    {"resume", "", "off", "continue from the newest checkpoint in --out (exactly as if never interrupted)"},
    {"max-steps", "N", "0 (none)", "stop after N optimizer steps (with --resume: N in total); also the schedule length"},
    {"seed", "N", "42", "seed of LoRA initialisation, dropout, shuffling and the validation split"},
    {"threads", "N", "0 (all cores)", "compute threads (results are bit-identical for a given thread count)"},
    {"recompute", "", "off", "recompute activations in the backward (less memory, more time)"},
    {"samples", "N", "3", "validation prompts answered before and after training in the report"},
    {"sample-tokens", "N", "64", "tokens generated per sample (greedy)"},
};

const tk_trainer_option *tk_trainer_options(int *n) {
    *n = (int)(sizeof k_opts / sizeof k_opts[0]);
    return k_opts;
}

tk_trainer_config tk_trainer_config_default(void) {
    tk_trainer_config c;
    memset(&c, 0, sizeof c);
    c.format = TK_DATA_AUTO;
    c.method = TK_TRAIN_LORA;
    c.lora_r = 8;
    c.lora_alpha = 16;
    c.lora_dropout = 0.05;
    c.lora_targets = TK_LORA_ALL_TARGETS;
    c.schedule = TK_SCHED_COSINE;
    c.warmup = -1;
    c.weight_decay = 0;
    c.clip = 1.0;
    c.packing = true;
    c.keep_checkpoints = 2;
    c.seed = 42;
    c.samples = 3;
    c.sample_tokens = 64;
    return c;
}

void tk_trainer_config_free(tk_trainer_config *c) {
    if (!c) return;
    free(c->model); free(c->tokenizer); free(c->data); free(c->val); free(c->out); free(c->template_name);
    c->model = c->tokenizer = c->data = c->val = c->out = c->template_name = NULL;
}

static tk_status set_str(char **dst, const char *v, const char *name) {
    if (!v || !*v) return tk_fail(TK_ERR_ARG, "--%s needs a value", name);
    char *s = tk_strdup(v);
    if (!s) return TK_ERR_NOMEM;
    free(*dst);
    *dst = s;
    return TK_OK;
}

static tk_status parse_i64(const char *name, const char *v, int64_t lo, int64_t hi, bool allow_auto, int64_t *out) {
    if (!v || !*v) return tk_fail(TK_ERR_ARG, "--%s needs a value", name);
    if (allow_auto && !strcmp(v, "auto")) { *out = 0; return TK_OK; }
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || *end || x < lo || x > hi)
        return tk_fail(TK_ERR_ARG, "--%s: '%s' is not %s between %lld and %lld", name, v, allow_auto ? "auto or an integer" : "an integer",
                       (long long)lo, (long long)hi);
    *out = x;
    return TK_OK;
}

static tk_status parse_dbl(const char *name, const char *v, double lo, double hi, bool allow_auto, double auto_val, double *out) {
    if (!v || !*v) return tk_fail(TK_ERR_ARG, "--%s needs a value", name);
    if (allow_auto && !strcmp(v, "auto")) { *out = auto_val; return TK_OK; }
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || *end || !isfinite(x) || x < lo || x > hi)
        return tk_fail(TK_ERR_ARG, "--%s: '%s' is not %s between %g and %g", name, v, allow_auto ? "auto or a number" : "a number", lo, hi);
    *out = x;
    return TK_OK;
}

static tk_status parse_bool(const char *name, const char *v, bool *out) {
    if (!v || !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "on")) { *out = true; return TK_OK; }
    if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no") || !strcmp(v, "off")) { *out = false; return TK_OK; }
    return tk_fail(TK_ERR_ARG, "--%s: '%s' is not true or false", name, v);
}

static tk_status parse_targets(const char *v, uint32_t *out) {
    if (!v || !*v) return tk_fail(TK_ERR_ARG, "--lora-targets needs a value");
    if (!strcmp(v, "all")) { *out = TK_LORA_ALL_TARGETS; return TK_OK; }
    static const char *const short_names[TK_LIN_COUNT] = {"q", "k", "v", "o", "gate", "up", "down"};
    uint32_t m = 0;
    const char *p = v;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        int found = -1;
        for (int i = 0; i < TK_LIN_COUNT; i++) {
            const char *ln = tk_linear_name((tk_linear_id)i);   /* "q_proj", … */
            if ((strlen(short_names[i]) == n && !strncmp(p, short_names[i], n)) || (strlen(ln) == n && !strncmp(p, ln, n))) found = i;
        }
        if (found < 0) return tk_fail(TK_ERR_ARG, "--lora-targets: unknown linear '%.*s' (choose from q,k,v,o,gate,up,down or all)", (int)n, p);
        m |= 1u << found;
        p += n;
        if (*p == ',') p++;
    }
    if (!m) return tk_fail(TK_ERR_ARG, "--lora-targets: empty list");
    *out = m;
    return TK_OK;
}

tk_status tk_trainer_config_set(tk_trainer_config *c, const char *name, const char *v) {
    int64_t i = 0;
    double d = 0;
    tk_status st;
    if (!strcmp(name, "model")) return set_str(&c->model, v, name);
    if (!strcmp(name, "tokenizer")) return set_str(&c->tokenizer, v, name);
    if (!strcmp(name, "data")) return set_str(&c->data, v, name);
    if (!strcmp(name, "val")) return set_str(&c->val, v, name);
    if (!strcmp(name, "out")) return set_str(&c->out, v, name);
    if (!strcmp(name, "template")) {
        if (v && !strcmp(v, "auto")) { free(c->template_name); c->template_name = NULL; return TK_OK; }
        if (v && tk_chat_family_from_name(v) == TK_CHAT_UNKNOWN)
            return tk_fail(TK_ERR_ARG, "--template: unknown family '%s' (choose from %s)", v, tk_chat_family_names());
        return set_str(&c->template_name, v, name);
    }
    if (!strcmp(name, "format")) {
        tk_data_format f = v ? tk_data_format_from_name(v) : TK_DATA_FORMAT_COUNT;
        if (f == TK_DATA_FORMAT_COUNT) return tk_fail(TK_ERR_ARG, "--format: unknown format '%s'", v ? v : "");
        c->format = f;
        return TK_OK;
    }
    if (!strcmp(name, "method")) {
        if (v && !strcmp(v, "lora")) c->method = TK_TRAIN_LORA;
        else if (v && !strcmp(v, "full")) c->method = TK_TRAIN_FULL;
        else return tk_fail(TK_ERR_ARG, "--method: '%s' is not lora or full", v ? v : "");
        return TK_OK;
    }
    if (!strcmp(name, "schedule")) {
        if (v && !strcmp(v, "constant")) c->schedule = TK_SCHED_CONSTANT;
        else if (v && !strcmp(v, "linear")) c->schedule = TK_SCHED_LINEAR;
        else if (v && !strcmp(v, "cosine")) c->schedule = TK_SCHED_COSINE;
        else return tk_fail(TK_ERR_ARG, "--schedule: '%s' is not constant, linear or cosine", v ? v : "");
        return TK_OK;
    }
    if (!strcmp(name, "lora-targets")) return parse_targets(v, &c->lora_targets);
    if (!strcmp(name, "lora-r")) { if (!(st = parse_i64(name, v, 1, 4096, false, &i))) c->lora_r = (int32_t)i; return st; }
    if (!strcmp(name, "lora-alpha")) return parse_dbl(name, v, 1e-6, 1e6, false, 0, &c->lora_alpha);
    if (!strcmp(name, "lora-dropout")) {
        if ((st = parse_dbl(name, v, 0, 1, false, 0, &d))) return st;
        if (d >= 1) return tk_fail(TK_ERR_ARG, "--lora-dropout: %g must be below 1", d);
        c->lora_dropout = d;
        return TK_OK;
    }
    if (!strcmp(name, "rslora")) return parse_bool(name, v, &c->rslora);
    if (!strcmp(name, "freeze-layers")) { if (!(st = parse_i64(name, v, 0, 100000, false, &i))) c->freeze_layers = (int32_t)i; return st; }
    if (!strcmp(name, "epochs")) { if (!(st = parse_i64(name, v, 1, 100000, true, &i))) c->epochs = (int32_t)i; return st; }
    if (!strcmp(name, "batch-size")) { if (!(st = parse_i64(name, v, 1, 4096, true, &i))) c->batch_size = (int32_t)i; return st; }
    if (!strcmp(name, "grad-accum")) { if (!(st = parse_i64(name, v, 1, 1 << 20, true, &i))) c->grad_accum = (int32_t)i; return st; }
    if (!strcmp(name, "lr")) {
        if ((st = parse_dbl(name, v, 0, 10, true, 0, &d))) return st;
        if (d == 0 && strcmp(v, "auto")) return tk_fail(TK_ERR_ARG, "--lr: must be positive (or auto)");
        c->lr = d;
        return TK_OK;
    }
    if (!strcmp(name, "warmup")) return parse_dbl(name, v, 0, 1e12, true, -1, &c->warmup);
    if (!strcmp(name, "weight-decay")) return parse_dbl(name, v, 0, 10, false, 0, &c->weight_decay);
    if (!strcmp(name, "clip")) return parse_dbl(name, v, 0, 1e9, false, 0, &c->clip);
    if (!strcmp(name, "max-seq-len")) {
        if ((st = parse_i64(name, v, 2, 1 << 24, true, &i))) return st;
        c->max_seq = (int32_t)i;
        return TK_OK;
    }
    if (!strcmp(name, "pack-len")) {
        if ((st = parse_i64(name, v, 2, 1 << 24, true, &i))) return st;
        c->pack_len = (int32_t)i;
        return TK_OK;
    }
    if (!strcmp(name, "packing")) return parse_bool(name, v, &c->packing);
    if (!strcmp(name, "no-packing")) {
        bool b;
        if ((st = parse_bool(name, v, &b))) return st;
        c->packing = !b;
        return TK_OK;
    }
    if (!strcmp(name, "train-on-prompt")) return parse_bool(name, v, &c->train_on_prompt);
    if (!strcmp(name, "val-split")) {
        if ((st = parse_dbl(name, v, 0, 1, false, 0, &d))) return st;
        if (d >= 1) return tk_fail(TK_ERR_ARG, "--val-split: %g must be below 1", d);
        c->val_split = d;
        return TK_OK;
    }
    if (!strcmp(name, "eval-every")) return parse_i64(name, v, 1, INT64_MAX / 2, true, &c->eval_every);
    if (!strcmp(name, "patience")) { if (!(st = parse_i64(name, v, 0, 1 << 30, false, &i))) c->patience = (int32_t)i; return st; }
    if (!strcmp(name, "save-every")) return parse_i64(name, v, 1, INT64_MAX / 2, true, &c->save_every);
    if (!strcmp(name, "keep-checkpoints")) { if (!(st = parse_i64(name, v, 0, 1 << 30, false, &i))) c->keep_checkpoints = (int32_t)i; return st; }
    if (!strcmp(name, "resume")) return parse_bool(name, v, &c->resume);
    if (!strcmp(name, "max-steps")) return parse_i64(name, v, 0, INT64_MAX / 2, false, &c->max_steps);
    if (!strcmp(name, "seed")) {
        if (!v || !*v) return tk_fail(TK_ERR_ARG, "--seed needs a value");
        char *end;
        errno = 0;
        unsigned long long x = strtoull(v, &end, 10);
        if (errno || *end || *v == '-') return tk_fail(TK_ERR_ARG, "--seed: '%s' is not a non-negative integer", v);
        c->seed = x;
        return TK_OK;
    }
    if (!strcmp(name, "threads")) { if (!(st = parse_i64(name, v, 0, 4096, false, &i))) c->threads = (int32_t)i; return st; }
    if (!strcmp(name, "recompute")) return parse_bool(name, v, &c->recompute);
    if (!strcmp(name, "samples")) { if (!(st = parse_i64(name, v, 0, 100, false, &i))) c->samples = (int32_t)i; return st; }
    if (!strcmp(name, "sample-tokens")) { if (!(st = parse_i64(name, v, 1, 4096, false, &i))) c->sample_tokens = (int32_t)i; return st; }
    return tk_fail(TK_ERR_ARG, "unknown option --%s ('takumi train --help' lists the options)", name);
}

tk_status tk_trainer_config_apply_json(tk_trainer_config *c, const char *json, const char *where) {
    cJSON *o = cJSON_Parse(json);
    if (!o || !cJSON_IsObject(o)) { cJSON_Delete(o); return tk_fail(TK_ERR_FORMAT, "%s: not a JSON object", where); }
    int n;
    const tk_trainer_option *opts = tk_trainer_options(&n);
    tk_status st = TK_OK;
    char num[64];
    for (const cJSON *e = o->child; e && !st; e = e->next) {
        bool known = !strcmp(e->string, "packing");
        for (int i = 0; i < n && !known; i++) known = !strcmp(opts[i].name, e->string);
        if (!known || !strcmp(e->string, "resume") || cJSON_IsNull(e)) continue;
        const char *v = NULL;
        if (cJSON_IsString(e)) v = e->valuestring;
        else if (cJSON_IsBool(e)) v = cJSON_IsTrue(e) ? "true" : "false";
        else if (cJSON_IsNumber(e)) { snprintf(num, sizeof num, "%.17g", e->valuedouble); v = num; }
        else continue;
        st = tk_trainer_config_set(c, e->string, v);
    }
    cJSON_Delete(o);
    return st ? tk_fail_ctx(st, "%s: ", where) : TK_OK;
}

static void jstr(tk_buf *b, const char *key, const char *v) {
    tk_buf_printf(b, "\"%s\":", key);
    if (!v) { tk_buf_append(b, "null,", 5); return; }
    tk_buf_append(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p == '"' || *p == '\\') { char e[2] = {'\\', (char)*p}; tk_buf_append(b, e, 2); }
        else if (*p < 0x20) tk_buf_printf(b, "\\u%04x", *p);
        else tk_buf_append(b, p, 1);
    }
    tk_buf_append(b, "\",", 2);
}

static const char *sched_name(tk_sched s) { return s == TK_SCHED_CONSTANT ? "constant" : s == TK_SCHED_LINEAR ? "linear" : "cosine"; }

static void targets_text(uint32_t m, char *buf, size_t n) {
    static const char *const short_names[TK_LIN_COUNT] = {"q", "k", "v", "o", "gate", "up", "down"};
    if (m == TK_LORA_ALL_TARGETS) { snprintf(buf, n, "all"); return; }
    buf[0] = 0;
    for (int i = 0; i < TK_LIN_COUNT; i++)
        if (m & (1u << i)) { size_t l = strlen(buf); snprintf(buf + l, n - l, "%s%s", l ? "," : "", short_names[i]); }
}

tk_status tk_trainer_config_json(const tk_trainer_config *c, tk_buf *b) {
    char tg[64];
    targets_text(c->lora_targets, tg, sizeof tg);
    tk_buf_append(b, "{", 1);
    jstr(b, "model", c->model);
    jstr(b, "tokenizer", c->tokenizer);
    jstr(b, "data", c->data);
    jstr(b, "format", tk_data_format_name(c->format));
    jstr(b, "template", c->template_name ? c->template_name : "auto");
    jstr(b, "out", c->out);
    jstr(b, "method", c->method == TK_TRAIN_FULL ? "full" : "lora");
    tk_buf_printf(b, "\"lora-r\":%d,\"lora-alpha\":%.17g,\"lora-dropout\":%.17g,", c->lora_r, c->lora_alpha, c->lora_dropout);
    jstr(b, "lora-targets", tg);
    tk_buf_printf(b, "\"rslora\":%s,\"freeze-layers\":%d,", c->rslora ? "true" : "false", c->freeze_layers);
    if (c->epochs) tk_buf_printf(b, "\"epochs\":%d,", c->epochs); else jstr(b, "epochs", "auto");
    if (c->batch_size) tk_buf_printf(b, "\"batch-size\":%d,", c->batch_size); else jstr(b, "batch-size", "auto");
    if (c->grad_accum) tk_buf_printf(b, "\"grad-accum\":%d,", c->grad_accum); else jstr(b, "grad-accum", "auto");
    if (c->lr > 0) tk_buf_printf(b, "\"lr\":%.17g,", c->lr); else jstr(b, "lr", "auto");
    jstr(b, "schedule", sched_name(c->schedule));
    if (c->warmup >= 0) tk_buf_printf(b, "\"warmup\":%.17g,", c->warmup); else jstr(b, "warmup", "auto");
    tk_buf_printf(b, "\"weight-decay\":%.17g,\"clip\":%.17g,", c->weight_decay, c->clip);
    if (c->max_seq) tk_buf_printf(b, "\"max-seq-len\":%d,", c->max_seq); else jstr(b, "max-seq-len", "auto");
    tk_buf_printf(b, "\"packing\":%s,", c->packing ? "true" : "false");
    if (c->pack_len) tk_buf_printf(b, "\"pack-len\":%d,", c->pack_len); else jstr(b, "pack-len", "auto");
    tk_buf_printf(b, "\"train-on-prompt\":%s,", c->train_on_prompt ? "true" : "false");
    jstr(b, "val", c->val);
    tk_buf_printf(b, "\"val-split\":%.17g,", c->val_split);
    if (c->eval_every) tk_buf_printf(b, "\"eval-every\":%lld,", (long long)c->eval_every); else jstr(b, "eval-every", "auto");
    tk_buf_printf(b, "\"patience\":%d,", c->patience);
    if (c->save_every) tk_buf_printf(b, "\"save-every\":%lld,", (long long)c->save_every); else jstr(b, "save-every", "auto");
    tk_buf_printf(b, "\"keep-checkpoints\":%d,\"max-steps\":%lld,\"seed\":\"%llu\",\"threads\":%d,\"recompute\":%s,\"samples\":%d,"
                     "\"sample-tokens\":%d}",
                  c->keep_checkpoints, (long long)c->max_steps, (unsigned long long)c->seed, c->threads, c->recompute ? "true" : "false",
                  c->samples, c->sample_tokens);
    return b->data ? TK_OK : TK_ERR_NOMEM;
}

int tk_trainer_auto_epochs(uint64_t n) { return tk_data_auto_epochs(n); }

/* ---- the run -------------------------------------------------------------------------- */

typedef struct run {
    tk_trainer_config c;          /* resolved copy */
    tk_train_event_fn fn; void *ud;
    volatile sig_atomic_t *stop;
    tk_model *m;
    const tk_tokenizer *tok;
    tk_chat_family fam;
    tk_sft_params sp, sample_sp;  /* data parameters; those of the file the sample prompts come from */
    tk_sft_data train, val;
    bool has_val;
    const char *sample_path;      /* file the sample prompts come from */
    uint64_t *sample_lines; int32_t n_sample_lines;
    tk_train_ctx *tc;
    tk_param_set *ps;
    tk_adamw opt;
    tk_train_state st;
    int64_t n_epochs;             /* planned */
    int64_t *epoch_rows;          /* rows per planned epoch */
    tk_rows rows; int64_t rows_epoch;
    tk_rows vrows;
    int32_t max_cols;             /* longest row a micro-batch can have */
    tk_batch_buf bb;
    tk_metrics mx;
    tk_buf config_json;           /* resolved configuration + info */
    char *path_metrics, *path_config, *path_samples, *path_report;
    int64_t steps_here; double time_here;   /* steps and step time in this process (ETA) */
    double lr_auto_note;
    tk_sft_prompt *prompts; int32_t n_prompts;
    char **before, **after;
} run;

static void emit(run *r, tk_train_event *e) { if (r->fn) r->fn(e, r->ud); }

static void emitf(run *r, tk_train_event_kind k, const char *event_name, bool log, const char *fmt, ...) TK_PRINTF(5, 6);
static void emitf(run *r, tk_train_event_kind k, const char *event_name, bool log, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    tk_train_event e = {.kind = k, .step = r->st.step, .total_steps = r->st.total_steps, .message = msg};
    if (log && r->mx.fp) tk_metrics_write(&r->mx, &e, event_name);
    emit(r, &e);
}

static char *join(const char *a, const char *b) {
    tk_buf s = {0};
    if (tk_buf_printf(&s, "%s/%s", a, b)) { tk_buf_free(&s); return NULL; }
    return s.data;
}

static tk_status copy_config(tk_trainer_config *dst, const tk_trainer_config *src) {
    *dst = *src;
    dst->model = dst->tokenizer = dst->data = dst->val = dst->out = dst->template_name = NULL;
    char **d[6] = {&dst->model, &dst->tokenizer, &dst->data, &dst->val, &dst->out, &dst->template_name};
    const char *s[6] = {src->model, src->tokenizer, src->data, src->val, src->out, src->template_name};
    for (int i = 0; i < 6; i++)
        if (s[i] && !(*d[i] = tk_strdup(s[i]))) { tk_trainer_config_free(dst); return TK_ERR_NOMEM; }
    return TK_OK;
}

static tk_status ensure_rows(run *r, int64_t epoch) {
    if (r->rows_epoch == epoch) return TK_OK;
    tk_rows_free(&r->rows);
    r->rows_epoch = -1;
    tk_status st = tk_rows_epoch(&r->train, r->c.seed, epoch, true, r->c.pack_len, r->c.packing, &r->rows);
    if (!st) r->rows_epoch = epoch;
    return st;
}

/* Loads model, tokenizer, template and data. */
static tk_status load_inputs(run *r) {
    tk_trainer_config *c = &r->c;
    tk_model_params mp = tk_model_default_params();
    mp.tokenizer_path = c->tokenizer;
    tk_status st = tk_model_load(c->model, &mp, &r->m);
    if (st) return st;
    r->tok = tk_model_tokenizer(r->m);
    const tk_model_config *mc = tk_model_get_config(r->m);
    if (c->template_name) {
        if ((st = tk_chat_resolve(r->tok, c->template_name, &r->fam))) return st;
    } else if (tk_chat_resolve(r->tok, NULL, &r->fam) != TK_OK) {
        r->fam = TK_CHAT_UNKNOWN;   /* conversations will ask for --template; raw text still trains */
        tk_clear_error();
    }
    if (c->max_seq == 0) c->max_seq = mc->max_seq < 1024 ? mc->max_seq : 1024;
    if (c->max_seq > mc->max_seq)
        return tk_fail(TK_ERR_ARG, "--max-seq-len %d exceeds the model's context of %d tokens", c->max_seq, mc->max_seq);
    if (c->max_seq < 2) return tk_fail(TK_ERR_ARG, "the model's context (%d) is too short to train on", mc->max_seq);
    if (c->freeze_layers >= mc->n_layers)
        return tk_fail(TK_ERR_ARG, "--freeze-layers %d: the model has %d layers (at most %d can be frozen)", c->freeze_layers,
                       mc->n_layers, mc->n_layers - 1);
    r->sp = tk_sft_default_params();
    r->sp.format = c->format;
    r->sp.family = r->fam;
    r->sp.max_seq = c->max_seq;
    r->sp.train_on_prompt = c->train_on_prompt;
    if ((st = tk_sft_load(c->data, r->tok, &r->sp, &r->train))) return st;
    r->sp.format = r->train.format;   /* the validation file must be the same kind; samples re-read it */
    if (c->val && c->val_split > 0) return tk_fail(TK_ERR_ARG, "use either --val or --val-split, not both");
    if (c->val) {
        tk_sft_params vp = r->sp;
        vp.format = c->format;
        if ((st = tk_sft_load(c->val, r->tok, &vp, &r->val))) return st;
        r->has_val = true;
        r->sample_path = c->val;
        r->sample_sp = vp;
        r->sample_sp.format = r->val.format;
    } else if (c->val_split > 0) {
        if ((st = tk_sft_split(&r->train, c->val_split, c->seed, &r->val))) return tk_fail_ctx(st, "%s: ", c->data);
        r->has_val = true;
        r->sample_path = c->data;
        r->sample_sp = r->sp;
    } else {
        r->sample_path = c->data;
        r->sample_sp = r->sp;
    }
    /* sample prompts: the first validation examples (else the first training examples) */
    const tk_sft_data *sd = r->has_val ? &r->val : &r->train;
    int32_t k = c->samples < sd->n ? c->samples : (int32_t)sd->n;
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
static tk_status plan(run *r) {
    tk_trainer_config *c = &r->c;
    const tk_sft_data *d = &r->train;
    if (c->epochs == 0) c->epochs = tk_trainer_auto_epochs((uint64_t)d->n);
    bool shape_auto = c->batch_size == 0 && c->grad_accum == 0;
    double passes = (double)d->n * c->epochs, steps = passes < 256 ? passes : 256;
    double tok_step = (double)d->stats.n_tokens * c->epochs / steps, ex_step = passes / steps;
    double mean = (double)d->stats.n_tokens / (double)d->n;
    if (c->packing) {
        if (c->pack_len == 0) {
            double pl = shape_auto && tok_step < c->max_seq ? ceil(tok_step) : c->max_seq;
            if (pl < d->stats.longest) pl = d->stats.longest;
            c->pack_len = (int32_t)(pl > c->max_seq ? c->max_seq : pl);
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
            double fit = floor(c->max_seq / (mean > 1 ? mean : 1)), b = floor(ex_step + 0.5);
            if (b > fit) b = fit;
            c->batch_size = (int32_t)(b < 1 ? 1 : b > 8 ? 8 : b);
        }
        if (c->grad_accum == 0) {
            double a = floor(ex_step / c->batch_size + 0.5);
            c->grad_accum = (int32_t)(a < 1 ? 1 : a > 32 ? 32 : a);
        }
    }
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
        c->lr = c->method == TK_TRAIN_LORA ? 1e-3 : 2e-5;
    }
    double w = c->warmup < 0 ? 0.03 : c->warmup;
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
    if (r->has_val) {
        /* validation rows: as training rows, but never shorter than the longest validation example */
        int32_t vl = c->packing ? (c->pack_len > r->val.stats.longest ? c->pack_len : r->val.stats.longest) : r->val.stats.longest;
        tk_status st = tk_rows_epoch(&r->val, c->seed, 0, false, vl, c->packing, &r->vrows);
        if (st) return st;
        if (vl > r->max_cols) r->max_cols = vl;
    }
    return TK_OK;
}

static tk_status build_config_json(run *r) {
    tk_buf *b = &r->config_json;
    b->len = 0;
    tk_status st = tk_trainer_config_json(&r->c, b);
    if (st) return st;
    b->len--;   /* reopen the object for the informational entries */
    const tk_model_config *mc = tk_model_get_config(r->m);
    tk_buf_printf(b, ",\"info\":{\"takumi\":\"%s\",\"model_name\":", TK_VERSION);
    tk_buf tmp = {0};
    jstr(&tmp, "x", mc->name);
    tk_buf_append(b, tmp.data + 4, tmp.len - 5);   /* the quoted value only */
    tk_buf_free(&tmp);
    tk_buf_printf(b, ",\"model_params\":%lld,\"template\":\"%s\",\"data_format\":\"%s\",\"train_examples\":%lld,\"valid_examples\":%lld,"
                     "\"train_tokens\":%llu,\"train_target_tokens\":%llu,\"truncated_examples\":%llu,\"skipped_examples\":%llu,"
                     "\"truncated_target_tokens\":%llu,\"data_hash\":\"%016llx\",\"total_steps\":%lld,\"threads\":%d,"
                     "\"trainable_params\":%lld}}",
                  (long long)tk_model_n_params(r->m), tk_chat_family_name(r->fam), tk_data_format_name(r->train.format), (long long)r->train.n,
                  (long long)(r->has_val ? r->val.n : 0), (unsigned long long)r->train.stats.n_tokens,
                  (unsigned long long)r->train.stats.n_targets, (unsigned long long)r->train.stats.n_truncated,
                  (unsigned long long)r->train.stats.n_skipped, (unsigned long long)r->train.stats.targets_cut,
                  (unsigned long long)r->st.data_hash, (long long)r->st.total_steps, tk_get_threads(), (long long)r->ps->total);
    return b->data ? TK_OK : TK_ERR_NOMEM;
}

/* On resume: the options that shape the trajectory must equal the checkpoint's. */
static tk_status check_resume_config(run *r, const char *saved, const char *where) {
    static const char *const keys[] = {"method", "lora-r", "lora-alpha", "lora-dropout", "lora-targets", "rslora", "freeze-layers",
                                       "epochs", "batch-size", "grad-accum", "lr", "schedule", "warmup", "weight-decay", "clip",
                                       "max-seq-len", "packing", "pack-len", "train-on-prompt", "val-split", "seed", "format", "template"};
    cJSON *a = cJSON_Parse(saved), *b = cJSON_Parse(r->config_json.data);
    tk_status st = TK_OK;
    if (!a || !b) st = tk_fail(TK_ERR_FORMAT, "%s: the saved configuration is not JSON", where);
    tk_buf diff = {0};
    for (size_t i = 0; !st && i < sizeof keys / sizeof keys[0]; i++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(a, keys[i]), *y = cJSON_GetObjectItemCaseSensitive(b, keys[i]);
        if (x && y && cJSON_Compare(x, y, true)) continue;
        char *xs = x ? cJSON_PrintUnformatted(x) : NULL, *ys = y ? cJSON_PrintUnformatted(y) : NULL;
        tk_buf_printf(&diff, "\n  --%s: checkpoint %s, now %s", keys[i], xs ? xs : "(none)", ys ? ys : "(none)");
        free(xs); free(ys);
    }
    if (!st) {
        const cJSON *ia = cJSON_GetObjectItemCaseSensitive(a, "info"), *ib = cJSON_GetObjectItemCaseSensitive(b, "info");
        const cJSON *pa = cJSON_GetObjectItemCaseSensitive(ia, "model_params"), *pb = cJSON_GetObjectItemCaseSensitive(ib, "model_params");
        if (pa && pb && !cJSON_Compare(pa, pb, true)) tk_buf_printf(&diff, "\n  model: another model (parameter count differs)");
        const cJSON *ta = cJSON_GetObjectItemCaseSensitive(ia, "threads"), *tb = cJSON_GetObjectItemCaseSensitive(ib, "threads");
        if (!diff.len && ta && tb && !cJSON_Compare(ta, tb, true))
            emitf(r, TK_EV_WARNING, "warning", false, "resuming with %d threads instead of %d: the losses will match the uninterrupted run "
                  "only up to float rounding", (int)tb->valuedouble, (int)ta->valuedouble);
    }
    if (!st && diff.len)
        st = tk_fail(TK_ERR_ARG, "cannot resume from %s: the run's options differ from the checkpoint's:%s\n  (resume with the original "
                     "options, or start a new run in another --out folder)", where, diff.data);
    tk_buf_free(&diff);
    cJSON_Delete(a);
    cJSON_Delete(b);
    return st;
}

static bool dir_has_run(const char *out) {
    char *p = join(out, "checkpoints");
    char *q = join(out, "metrics.jsonl");
    struct stat sb;
    bool has = (p && stat(p, &sb) == 0) || (q && stat(q, &sb) == 0 && sb.st_size > 0);
    free(p); free(q);
    return has;
}

/* ---- samples ------------------------------------------------------------------------- */

static bool gen_text(void *ud, const char *text, size_t len) { return tk_buf_append(ud, text, len) == TK_OK; }

static tk_status answer(run *r, const tk_sft_prompt *p, char **out) {
    *out = NULL;
    tk_session *s = NULL;
    int64_t ctx = p->n + r->c.sample_tokens + 8;
    const tk_model_config *mc = tk_model_get_config(r->m);
    if (ctx > mc->max_seq) ctx = mc->max_seq;
    if (p->n + 1 >= ctx) { *out = tk_strdup("(prompt longer than the model's context)"); return *out ? TK_OK : TK_ERR_NOMEM; }
    tk_status st = tk_session_new(r->m, (int32_t)ctx, &s);
    if (st) return st;
    tk_session_set_exact(s, true);
    int n_ads = 0;
    const tk_adapter_use *ads = tk_train_adapters(r->tc, &n_ads); /* the adapters being trained */
    if ((st = tk_session_set_adapters(s, ads, n_ads))) { tk_session_free(s); return st; }
    tk_gen_params gp = tk_gen_default_params();
    gp.sampler.temperature = 0;
    gp.max_tokens = r->c.sample_tokens;
    tk_buf text = {0};
    st = tk_generate(s, r->tok, p->ids, p->n, &gp, gen_text, &text, NULL, NULL);
    tk_session_free(s);
    if (st) { tk_buf_free(&text); return st; }
    *out = text.data ? text.data : tk_strdup("");
    return *out ? TK_OK : TK_ERR_NOMEM;
}

static tk_status answer_all(run *r, char ***out) {
    *out = tk_calloc((size_t)(r->n_prompts ? r->n_prompts : 1), sizeof **out);
    if (!*out) return TK_ERR_NOMEM;
    for (int32_t i = 0; i < r->n_prompts; i++) {
        tk_status st = answer(r, &r->prompts[i], &(*out)[i]);
        if (st) return tk_fail_ctx(st, "answering sample prompt %d: ", i + 1);
    }
    return TK_OK;
}

static void free_answers(char **a, int32_t n) {
    if (!a) return;
    for (int32_t i = 0; i < n; i++) free(a[i]);
    free(a);
}

static tk_status write_samples(run *r) {
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "samples");
    cJSON_AddStringToObject(o, "source", r->sample_path);
    for (int32_t i = 0; i < r->n_prompts && arr; i++) {
        cJSON *s = cJSON_CreateObject();
        cJSON_AddNumberToObject(s, "line", (double)r->prompts[i].line);
        cJSON_AddStringToObject(s, "question", r->prompts[i].question);
        cJSON_AddStringToObject(s, "reference", r->prompts[i].reference);
        if (r->before && r->before[i]) cJSON_AddStringToObject(s, "before", r->before[i]);
        if (r->after && r->after[i]) cJSON_AddStringToObject(s, "after", r->after[i]);
        cJSON_AddItemToArray(arr, s);
    }
    char *t = cJSON_Print(o);
    cJSON_Delete(o);
    if (!t) return TK_ERR_NOMEM;
    tk_status st = tk_write_file_atomic(r->path_samples, t, strlen(t));
    free(t);
    return st;
}

/* Resume: the "before" answers were produced by the first process. */
static tk_status read_before(run *r) {
    char *js = NULL;
    r->before = tk_calloc((size_t)(r->n_prompts ? r->n_prompts : 1), sizeof *r->before);
    if (!r->before) return TK_ERR_NOMEM;
    if (tk_read_file(r->path_samples, &js, NULL) != TK_OK) { tk_clear_error(); return TK_OK; }
    cJSON *o = cJSON_Parse(js);
    free(js);
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, "samples");
    int32_t i = 0;
    for (const cJSON *s = arr ? arr->child : NULL; s && i < r->n_prompts; s = s->next, i++) {
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(s, "before");
        if (cJSON_IsString(b)) r->before[i] = tk_strdup(b->valuestring);
    }
    cJSON_Delete(o);
    return TK_OK;
}

/* ---- steps, evaluation, checkpoints --------------------------------------------------- */

static double epoch_progress(run *r) {
    if (r->rows_epoch == r->st.epoch && r->rows.n_rows > 0) return (double)r->st.epoch + (double)r->st.row / (double)r->rows.n_rows;
    return (double)r->st.epoch;
}

static tk_status train_step(run *r) {
    tk_trainer_config *c = &r->c;
    tk_status st = ensure_rows(r, r->st.epoch);
    if (st) return st;
    int64_t per = (int64_t)c->batch_size * c->grad_accum;
    int64_t n = r->rows.n_rows - r->st.row < per ? r->rows.n_rows - r->st.row : per;
    int64_t W = tk_rows_targets(&r->train, &r->rows, r->st.row, n);
    if (W <= 0) return tk_fail(TK_ERR_INTERNAL, "step %lld has no target tokens", (long long)r->st.step + 1);
    double t0 = tk_time_s(), ls = 0, ws = 0;
    int64_t toks = 0;
    tk_params_zero_grad(r->ps);
    for (int64_t k = 0; k < n; k += c->batch_size) {
        int32_t nb = (int32_t)(n - k < c->batch_size ? n - k : c->batch_size);
        if ((st = tk_batch_fill(&r->bb, &r->train, &r->rows, r->st.row + k, nb))) return st;
        toks += r->bb.n_tokens;
        if ((st = tk_train_step_fwd_bwd(r->tc, &r->bb.b, r->bb.target, NULL, (float)(1.0 / (double)W), &ls, &ws)))
            return tk_fail_ctx(st, "step %lld: ", (long long)r->st.step + 1);
    }
    double gn = 0;
    float lr = tk_lr_at(&r->opt, r->st.step);
    tk_adamw_step(&r->opt, r->ps, r->st.step, &gn);
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
    tk_train_event e = {.kind = TK_EV_STEP, .step = r->st.step, .total_steps = r->st.total_steps, .epoch = epoch_progress(r),
                        .n_epochs = r->n_epochs, .train_loss = loss, .lr = lr, .grad_norm = gn, .tokens = toks,
                        .tokens_per_s = dt > 0 ? (double)toks / dt : 0, .step_s = dt, .elapsed_s = r->st.elapsed_s,
                        .eta_s = (double)(r->st.total_steps - r->st.step) * (r->time_here / (double)r->steps_here),
                        .peak_rss_mb = tk_peak_rss_mb()};
    if (!isfinite(loss)) return tk_fail(TK_ERR_RANGE, "step %lld: the loss is %g (diverged; try a lower --lr)", (long long)r->st.step, loss);
    if ((st = tk_metrics_write(&r->mx, &e, NULL))) return st;
    emit(r, &e);
    return TK_OK;
}

static tk_status evaluate(run *r) {
    tk_eval_sums acc = {0};
    double t0 = tk_time_s();
    for (int64_t k = 0; k < r->vrows.n_rows; k += r->c.batch_size) {
        int32_t nb = (int32_t)(r->vrows.n_rows - k < r->c.batch_size ? r->vrows.n_rows - k : r->c.batch_size);
        tk_status st = tk_batch_fill(&r->bb, &r->val, &r->vrows, k, nb);
        if (!st) st = tk_train_eval(r->tc, &r->bb.b, r->bb.target, NULL, &acc);
        if (st) return tk_fail_ctx(st, "validation at step %lld: ", (long long)r->st.step);
    }
    double vl = acc.weight_sum > 0 ? acc.loss_sum / acc.weight_sum : NAN;
    tk_train_event e = {.kind = TK_EV_EVAL, .step = r->st.step, .total_steps = r->st.total_steps, .epoch = epoch_progress(r),
                        .n_epochs = r->n_epochs, .valid_loss = vl, .valid_ppl = exp(vl),
                        .valid_acc = acc.n_tokens ? (double)acc.n_correct / (double)acc.n_tokens : NAN, .valid_tokens = acc.n_tokens,
                        .elapsed_s = tk_time_s() - t0};
    tk_status st = tk_metrics_write(&r->mx, &e, NULL);
    if (st) return st;
    emit(r, &e);
    /* overfitting: validation up while training down since the previous evaluation; said
     * once per plateau (the first evaluation after the best), so noise does not repeat it */
    double tr = r->st.train_weight_sum > 0 ? r->st.train_loss_sum / r->st.train_weight_sum : NAN;
    if (vl < r->st.best_val) { r->st.best_val = vl; r->st.best_step = r->st.step; r->st.bad_evals = 0; }
    else r->st.bad_evals++;
    if (r->st.bad_evals == 1 && isfinite(r->st.prev_val) && isfinite(r->st.prev_train) && isfinite(tr) && vl > r->st.prev_val &&
        tr < r->st.prev_train)
        emitf(r, TK_EV_WARNING, "warning", true, "validation loss rose from %.4f to %.4f while the training loss fell from %.4f to %.4f: "
              "the model may be overfitting (fewer epochs, --patience, more data)", r->st.prev_val, vl, r->st.prev_train, tr);
    if (isfinite(tr)) r->st.prev_train = tr;
    r->st.prev_val = vl;
    r->st.train_loss_sum = r->st.train_weight_sum = 0;
    if (r->c.patience > 0 && r->st.bad_evals >= r->c.patience) {
        r->st.stopped_early = true;
        emitf(r, TK_EV_INFO, "early_stop", true, "early stop: no validation improvement for %d evaluations (best %.4f at step %lld)",
              r->st.bad_evals, r->st.best_val, (long long)r->st.best_step);
    }
    return TK_OK;
}

static tk_status save(run *r) {
    char *path = NULL;
    tk_status st = tk_ckpt_save(r->c.out, r->ps, &r->st, r->config_json.data, r->c.keep_checkpoints, &path);
    if (st) return tk_fail_ctx(st, "checkpoint at step %lld: ", (long long)r->st.step);
    emitf(r, TK_EV_CHECKPOINT, "checkpoint", true, "%s", path);
    free(path);
    return TK_OK;
}

/* ---- outputs ---------------------------------------------------------------------------- */

/* RUN/adapter/ (PEFT layout: adapter_config.json + adapter_model.safetensors) and
 * RUN/adapter.gguf (llama.cpp LoRA adapter), by the adapter writers of src/peft/adapter_io.h.
 * Full fine-tuning leaves its weights in the last checkpoint (`takumi export` merges/writes
 * models). */
static tk_status write_adapter(run *r, const char *last_ckpt) {
    if (r->c.method != TK_TRAIN_LORA) {
        emitf(r, TK_EV_INFO, "weights", true, "the trained weights are in %s/params.safetensors (tensors \"param/<HF name>\"; q/k rows "
              "%s)", last_ckpt, tk_train_qk_permuted(r->tc) ? "in llama.cpp's permuted order" : "in HF order");
        return TK_OK;
    }
    char *dir = join(r->c.out, "adapter"), *gg = join(r->c.out, "adapter.gguf");
    tk_status st = dir && gg ? TK_OK : TK_ERR_NOMEM;
    if (!st) st = tk_adapter_save_peft(tk_train_lora(r->tc), r->m, dir, NULL);
    if (!st) emitf(r, TK_EV_INFO, "adapter", true, "adapter (PEFT): %s", dir);
    if (!st) {
        tk_status g = tk_adapter_save_gguf(tk_train_lora(r->tc), r->m, gg);
        if (g == TK_ERR_UNSUPPORTED) emitf(r, TK_EV_WARNING, "warning", true, "no GGUF adapter: %s", tk_last_error());
        else if (g) st = g;
        else emitf(r, TK_EV_INFO, "adapter", true, "adapter (GGUF, llama.cpp): %s", gg);
    }
    free(dir);
    free(gg);
    return st;
}

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

static tk_status write_report(run *r) {
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
    kv_add(sum, &ns, sv, "epochs", "%.2f of %lld", epoch_progress(r), (long long)r->n_epochs);
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
    if (r->c.method == TK_TRAIN_LORA)
        snprintf(title, sizeof title, "%s · LoRA r=%d alpha=%g%s · %s", mc->name, r->c.lora_r, r->c.lora_alpha, r->c.rslora ? " (rsLoRA)" : "",
                 r->c.data);
    else
        snprintf(title, sizeof title, "%s · full fine-tuning%s · %s", mc->name, r->c.freeze_layers ? " (lower layers frozen)" : "", r->c.data);
    tk_report_input in = {.title = title, .summary = sum, .n_summary = ns, .data = data, .n_data = nd,
                          .config_json = r->config_json.data, .metrics = &ms, .samples = smp, .n_samples = r->n_prompts};
    st = tk_report_write(r->path_report, &in);
    free(smp);
    tk_metrics_series_free(&ms);
    return st;
}

static void run_free(run *r) {
    tk_metrics_close(&r->mx);
    tk_train_ctx_free(r->tc);
    tk_model_free(r->m);
    tk_sft_free(&r->train);
    tk_sft_free(&r->val);
    tk_rows_free(&r->rows);
    tk_rows_free(&r->vrows);
    tk_batch_buf_free(&r->bb);
    tk_buf_free(&r->config_json);
    free(r->epoch_rows);
    free(r->sample_lines);
    free(r->path_metrics); free(r->path_config); free(r->path_samples); free(r->path_report);
    tk_sft_prompts_free(r->prompts, r->n_prompts);
    free_answers(r->before, r->n_prompts);
    free_answers(r->after, r->n_prompts);
    tk_trainer_config_free(&r->c);
}

static tk_status mkdir_one(const char *p) {
    if (mkdir(p, 0755) != 0 && errno != EEXIST) return tk_fail(TK_ERR_IO, "%s: cannot create folder: %s", p, strerror(errno));
    return TK_OK;
}

tk_status tk_trainer_run(const tk_trainer_config *cfg, tk_train_event_fn on_event, void *ud, volatile sig_atomic_t *stop) {
    if (!cfg || !cfg->model || !cfg->data || !cfg->out)
        return tk_fail(TK_ERR_ARG, "train: --model, --data and --out are required");
    run R, *r = &R;
    memset(r, 0, sizeof *r);
    r->fn = on_event;
    r->ud = ud;
    r->stop = stop;
    r->rows_epoch = -1;
    r->st = tk_train_state_init();
    tk_status st = copy_config(&r->c, cfg);
    if (st) return st;
    tk_trainer_config *c = &r->c;
    tk_set_threads(c->threads);
    r->path_metrics = join(c->out, "metrics.jsonl");
    r->path_config = join(c->out, "config.json");
    r->path_samples = join(c->out, "samples.json");
    r->path_report = join(c->out, "report.html");
    if (!r->path_metrics || !r->path_config || !r->path_samples || !r->path_report) { run_free(r); return TK_ERR_NOMEM; }
    if (!c->resume && dir_has_run(c->out)) {
        run_free(r);
        return tk_fail(TK_ERR_ARG, "%s already holds a training run: continue it with --resume, or choose another --out", cfg->out);
    }
    if ((st = load_inputs(r)) || (st = plan(r))) goto done;
    r->st.seed = c->seed;
    r->st.data_hash = tk_sft_hash(&r->train);
    if (r->train.stats.n_truncated)
        emitf(r, TK_EV_WARNING, "warning", false, "%llu of %llu examples are longer than %d tokens and were truncated (%llu trained tokens "
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
    tp.freeze_layers = c->freeze_layers;
    tp.max_rows = c->batch_size;
    tp.max_cols = r->max_cols;
    tp.recompute = c->recompute;
    if ((st = tk_train_ctx_new(r->m, &tp, &r->tc))) goto done;
    r->ps = tk_train_param_set(r->tc);
    if ((st = build_config_json(r))) goto done;
    if ((st = mkdir_one(c->out))) goto done;

    /* fresh start or resume */
    char *ck = NULL;
    bool resumed = false;
    if (c->resume) {
        st = tk_ckpt_latest(c->out, &ck);
        if (st == TK_ERR_NOT_FOUND) {
            tk_clear_error();
            st = TK_OK;
            emitf(r, TK_EV_INFO, "resume", false, "no checkpoint in %s/checkpoints yet: starting from the beginning", c->out);
        } else if (!st) {
            char *saved = NULL;
            tk_train_state s2;
            st = tk_ckpt_load(ck, r->ps, &s2, &saved);
            if (!st && saved) st = check_resume_config(r, saved, ck);
            free(saved);
            if (!st && s2.data_hash != r->st.data_hash)
                st = tk_fail(TK_ERR_ARG, "cannot resume from %s: the training data differs from the checkpoint's (tokenized data hash)", ck);
            if (!st) {
                int64_t total = r->st.total_steps;
                r->st = s2;
                r->st.total_steps = total;
                if (r->st.done && r->st.step < total && !r->st.stopped_early) r->st.done = false;   /* --max-steps raised */
                tk_train_set_counter(r->tc, r->st.counter);
                resumed = true;
            }
        }
        if (st) { free(ck); goto done; }
    }
    if ((st = tk_metrics_truncate(r->path_metrics, resumed ? r->st.step : -1))) { free(ck); goto done; }
    if ((st = tk_metrics_open(&r->mx, r->path_metrics))) { free(ck); goto done; }
    if (resumed) emitf(r, TK_EV_INFO, "resume", true, "resumed from %s (step %lld)", ck, (long long)r->st.step);
    free(ck);
    /* config.json: the resolved configuration, written once the run is known to be consistent */
    if ((st = tk_write_file_atomic(r->path_config, r->config_json.data, r->config_json.len))) goto done;

    /* samples before training (the LoRA B matrices are zero, so this is the base model) */
    if (r->n_sample_lines > 0 &&
        (st = tk_sft_prompts(r->sample_path, r->sample_lines, r->n_sample_lines, r->tok, &r->sample_sp, &r->prompts, &r->n_prompts)))
        goto done;
    if (resumed) st = read_before(r);
    else {
        if (r->n_prompts) emitf(r, TK_EV_INFO, "samples", false, "answering %d validation prompt%s before training", r->n_prompts,
                                r->n_prompts == 1 ? "" : "s");
        st = answer_all(r, &r->before);
        if (!st) st = write_samples(r);
    }
    if (st) goto done;

    emitf(r, TK_EV_START, "start", !resumed, "%s %lld steps: %lld examples, %lld epoch%s, %lld rows/epoch, %d x %d rows per step, "
          "rows of up to %d tokens, lr %.3g (%s, warmup %lld), %lld trainable parameters",
          resumed ? "resuming;" : "training", (long long)r->st.total_steps, (long long)r->train.n, (long long)r->n_epochs,
          r->n_epochs == 1 ? "" : "s", (long long)r->epoch_rows[0], c->batch_size, c->grad_accum, r->max_cols, c->lr,
          sched_name(c->schedule), (long long)c->warmup, (long long)r->ps->total);
    if (r->st.done) emitf(r, TK_EV_INFO, "done", false, "the run had already finished at step %lld", (long long)r->st.step);

    /* the base model's validation loss, the reference every later evaluation is read against */
    if (!resumed && r->has_val && r->st.step == 0 && (st = evaluate(r))) goto done;

    /* the loop */
    while (!r->st.done) {
        if ((st = train_step(r))) goto done;
        bool last = r->st.step >= r->st.total_steps;
        if (r->has_val && (r->st.step % c->eval_every == 0 || last) && (st = evaluate(r))) goto done;
        if (last || r->st.stopped_early) r->st.done = true;
        bool interrupted = stop && *stop;
        if (r->st.done || r->st.step % c->save_every == 0 || interrupted) { if ((st = save(r))) goto done; }
        if (interrupted && !r->st.done) {
            emitf(r, TK_EV_INFO, "interrupted", true, "interrupted at step %lld: continue with --resume", (long long)r->st.step);
            goto done;
        }
    }

    /* outputs */
    char *last_ck = NULL;
    if ((st = tk_ckpt_latest(c->out, &last_ck))) goto done;
    st = write_adapter(r, last_ck);
    free(last_ck);
    if (st) goto done;
    if (r->n_prompts) emitf(r, TK_EV_INFO, "samples", false, "answering the validation prompts after training");
    if ((st = answer_all(r, &r->after)) || (st = write_samples(r)) || (st = write_report(r))) goto done;
    emitf(r, TK_EV_DONE, "done", true, "%s after %lld steps; report: %s", r->st.stopped_early ? "stopped early" : "finished",
          (long long)r->st.step, r->path_report);
done:
    run_free(r);
    return st;
}
