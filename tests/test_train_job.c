/* The public training API (takumi/train.h), through takumi.h only:
 * - options by name: defaults and help for every option, values read back, bad names and
 *   values rejected with a message naming the option, a job refused without --data;
 * - a job on its own thread reports its steps (loss, lr, tokens/s), evaluations,
 *   checkpoints and the end to a progress callback, and its status says DONE;
 * - pause (from the callback, and from another thread while it runs) writes a checkpoint
 *   and stops; tk_job_resume then gives bit for bit the losses, learning rates, gradient
 *   norms and validation losses of the uninterrupted run;
 * - cancel stops without writing a checkpoint or an adapter;
 * - a failing job's message reaches the thread that waits for it; a job runs once;
 * - the trained adapter through takumi/adapter.h: read (PEFT folder), converted to a GGUF
 *   adapter, both applied to the model give the same logits, and merged into an HF folder
 *   they give those logits without an adapter. */
#include "test.h"
#include "takumi.h"
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *g_tmp, *g_model, *g_tok;
static char g_data[512];

#define MAX_STEPS 128
typedef struct record {
    double loss[MAX_STEPS + 1], lr[MAX_STEPS + 1], gn[MAX_STEPS + 1], valid[MAX_STEPS + 1];
    int64_t n_steps, n_evals, n_ckpt, n_done, bad_metrics, last_step;
    tk_job *job;            /* pause_at / cancel_at act on it */
    int64_t pause_at, cancel_at;
} record;

static void on_ev(const tk_train_event *e, void *ud) {
    record *r = ud;
    if (e->kind == TK_EV_STEP && e->step >= 1 && e->step <= MAX_STEPS) {
        r->loss[e->step] = e->train_loss;
        r->lr[e->step] = e->lr;
        r->gn[e->step] = e->grad_norm;
        r->n_steps++;
        if (e->step != r->last_step + 1 || !isfinite(e->train_loss) || !(e->lr > 0) || !(e->tokens_per_s > 0) || e->tokens <= 0 ||
            e->total_steps < e->step)
            r->bad_metrics++;
        r->last_step = e->step;
        if (r->pause_at && e->step == r->pause_at) tk_job_pause(r->job);
        if (r->cancel_at && e->step == r->cancel_at) tk_job_cancel(r->job);
    }
    if (e->kind == TK_EV_EVAL && e->step <= MAX_STEPS) { r->valid[e->step] = e->valid_loss; r->n_evals++; }
    if (e->kind == TK_EV_CHECKPOINT) r->n_ckpt++;
    if (e->kind == TK_EV_DONE) r->n_done++;
}

static tk_train_options *options(const char *out) {
    tk_train_options *o = NULL;
    CHECK_OK(tk_train_options_new(&o));
    if (!o) return NULL;
    char dir[700];
    snprintf(dir, sizeof dir, "%s/%s", g_tmp, out);
    const char *kv[][2] = {{"model", g_model}, {"tokenizer", g_tok}, {"data", g_data}, {"out", dir}, {"max-seq-len", "200"},
                           {"val-split", "0.2"}, {"eval-every", "3"}, {"save-every", "3"}, {"samples", "0"}, {"seed", "11"},
                           {"epochs", "2"}, {"lr", "2e-3"}, {"threads", "1"}};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) CHECK_OK(tk_train_options_set(o, kv[i][0], kv[i][1]));
    return o;
}

static bool exists(const char *out, const char *rel) {
    char p[800];
    struct stat sb;
    snprintf(p, sizeof p, "%s/%s/%s", g_tmp, out, rel);
    return stat(p, &sb) == 0;
}

static void test_options(void) {
    int n = tk_train_option_count(), documented = 1, resume_keys = 0;
    tk_train_option_info info;
    for (int i = 0; i < n; i++) {
        CHECK(tk_train_option_get_info(i, &info), "option %d", i);
        if (!info.name || !info.dflt || !*info.dflt || !info.help || !*info.help) documented = 0;
        resume_keys += info.resume_must_match;
    }
    CHECK(n >= 30 && documented && !tk_train_option_get_info(n, &info), "%d options, each with a default and help", n);
    CHECK(resume_keys >= 20 && resume_keys < n, "%d options must match on resume", resume_keys);

    tk_train_options *o = NULL;
    CHECK_OK(tk_train_options_new(&o));
    char buf[64];
    CHECK_OK(tk_train_options_get(o, "lr", buf, sizeof buf));
    CHECK(!strcmp(buf, "auto"), "lr defaults to auto, got '%s'", buf);
    CHECK_OK(tk_train_options_get(o, "lora-r", buf, sizeof buf));
    CHECK(!strcmp(buf, "8"), "lora-r defaults to 8, got '%s'", buf);
    CHECK_OK(tk_train_options_get(o, "no-packing", buf, sizeof buf));
    CHECK(!strcmp(buf, "false"), "no-packing is off by default, got '%s'", buf);
    CHECK_OK(tk_train_options_set(o, "no-packing", NULL));
    CHECK_OK(tk_train_options_get(o, "no-packing", buf, sizeof buf));
    CHECK(!strcmp(buf, "true"), "no-packing set, got '%s'", buf);
    CHECK_OK(tk_train_options_set(o, "lora-targets", "q,v"));
    CHECK_OK(tk_train_options_get(o, "lora-targets", buf, sizeof buf));
    CHECK(!strcmp(buf, "q,v"), "lora-targets read back as '%s'", buf);
    CHECK_OK(tk_train_options_get(o, "data", buf, sizeof buf));
    CHECK(buf[0] == 0, "data unset reads as empty, got '%s'", buf);

    const char *bad[][2] = {{"lora-r", "0"}, {"lora-dropout", "1"}, {"lr", "0"}, {"lr", "fast"}, {"epochs", "-1"},
                            {"method", "qlora"}, {"schedule", "step"}, {"lora-targets", "q,x"}, {"seed", "-1"},
                            {"val-split", "2"}, {"template", "nonesuch"}, {"lora-rank", "4"}, {"data", ""}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tk_status st = tk_train_options_set(o, bad[i][0], bad[i][1]);
        CHECK(st == TK_ERR_ARG && strstr(tk_last_error(), bad[i][0]), "--%s %s: %s", bad[i][0], bad[i][1], tk_last_error());
    }
    CHECK(tk_train_options_get(o, "nope", buf, sizeof buf) == TK_ERR_ARG, "unknown option read");
    tk_job *j = NULL;
    CHECK_OK(tk_train_options_set(o, "model", "m.gguf"));
    CHECK_OK(tk_train_options_set(o, "out", "RUN"));
    tk_status st = tk_job_new(o, NULL, NULL, &j);
    CHECK(st == TK_ERR_ARG && !j && strstr(tk_last_error(), "--data"), "a job without data: %s", tk_last_error());
    tk_train_options_free(o);
    char missing[600];
    snprintf(missing, sizeof missing, "%s/not-a-run", g_tmp);
    st = tk_job_resume(missing, NULL, NULL, &j);
    CHECK(st == TK_ERR_NOT_FOUND && !j && strstr(tk_last_error(), "not-a-run"), "resume of a folder without a run: %s", tk_last_error());
}

static void write_data(void) {
    static const char *names[] = {"Lily", "Tom", "Sue", "Ben", "Max", "Mia", "Sam", "Ann"};
    static const char *things[] = {"ball", "cat", "dog", "tree", "cake", "car", "boat", "kite"};
    snprintf(g_data, sizeof g_data, "%s/stories.jsonl", g_tmp);
    FILE *f = fopen(g_data, "w");
    if (!f) { CHECK(0, "cannot write %s", g_data); return; }
    for (int i = 0; i < 20; i++) {
        const char *n = names[i % 8], *t = things[(i * 3) % 8];
        fprintf(f, "{\"prompt\":\"Tell me about %s and the %s.\",\"completion\":\"%s had a %s. %s was happy.\"}\n", n, t, n, t, n);
    }
    fclose(f);
}

/* The steps (and evaluations) of `part` are those of `full`, bit for bit. */
static int same_steps(const record *full, const record *part, int64_t from, int64_t to) {
    for (int64_t s = from; s <= to; s++)
        if (memcmp(&full->loss[s], &part->loss[s], sizeof(double)) || memcmp(&full->lr[s], &part->lr[s], sizeof(double)) ||
            memcmp(&full->gn[s], &part->gn[s], sizeof(double)) || memcmp(&full->valid[s], &part->valid[s], sizeof(double)))
            return 0;
    return 1;
}

/* Logits of the last of a few tokens. */
/* Last-token logits of a short prompt, with the attached adapter h applied (NULL: the base). */
static tk_status logits_of(tk_model *m, tk_adapter_handle *h, float *out) {
    static const int32_t ids[] = {1, 403, 261, 280, 300, 7};
    tk_session *s = NULL;
    tk_status st = tk_session_new(m, 16, &s);
    tk_adapter_use u = {tk_adapter_handle_peft(h), 1.0f};
    if (!st && h) st = tk_session_set_adapters(s, &u, 1);
    if (!st) st = tk_session_eval(s, ids, 6, out);
    tk_session_free(s);
    return st;
}

static double max_diff(const float *a, const float *b, int n) {
    double d = 0;
    for (int i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

static void test_adapter_api(const char *run) {
    char peft[700], gguf[700], merged[700];
    snprintf(peft, sizeof peft, "%s/%s/adapter", g_tmp, run);
    snprintf(gguf, sizeof gguf, "%s/%s/converted.gguf", g_tmp, run);
    snprintf(merged, sizeof merged, "%s/%s/merged", g_tmp, run);
    tk_adapter *a = NULL, *b = NULL;
    CHECK_OK(tk_adapter_load(peft, &a));
    CHECK_OK(tk_adapter_convert(g_model, peft, gguf));
    CHECK_OK(tk_adapter_load(gguf, &b));
    if (!a || !b) { tk_adapter_free(a); tk_adapter_free(b); return; }
    tk_adapter_info ia = tk_adapter_get_info(a), ib = tk_adapter_get_info(b);
    CHECK(!strcmp(ia.format, "peft") && !strcmp(ib.format, "gguf") && ia.r == 8 && ib.r == 8 && ia.n_modules == ib.n_modules &&
          ia.n_modules > 0 && fabsf(ia.scale - 2.0f) < 1e-6f && fabsf(ib.scale - ia.scale) < 1e-6f && ia.targets == ib.targets,
          "info: %s r %d scale %g (%lld modules) vs %s r %d scale %g (%lld)", ia.format, ia.r, (double)ia.scale, (long long)ia.n_modules,
          ib.format, ib.r, (double)ib.scale, (long long)ib.n_modules);
    tk_model_params mp = tk_model_default_params();
    mp.tokenizer_path = g_tok;
    tk_model *m = NULL, *mm = NULL;
    CHECK_OK(tk_model_load(g_model, &mp, &m));
    if (!m) { tk_adapter_free(a); tk_adapter_free(b); return; }
    int V = tk_model_get_config(m)->n_vocab;
    float *base = calloc((size_t)V, 4), *la = calloc((size_t)V, 4), *lb = calloc((size_t)V, 4), *lm = calloc((size_t)V, 4);
    tk_adapter_handle *h = NULL;
    CHECK_OK(logits_of(m, NULL, base));
    CHECK_OK(tk_adapter_apply_loaded(m, b, &h));
    CHECK_OK(logits_of(m, h, lb));
    tk_adapter_detach(m, h);
    h = NULL;
    CHECK_OK(tk_adapter_apply_loaded(m, a, &h));
    CHECK(tk_adapter_handle_rank(h) == 8 && fabsf(tk_adapter_handle_scale(h) - 2.0f) < 1e-6f, "applied: r %d scale %g",
          tk_adapter_handle_rank(h), (double)tk_adapter_handle_scale(h));
    CHECK_OK(logits_of(m, h, la));
    tk_export_params ep = tk_export_default_params();
    CHECK(tk_export_parse_dtype("f32", &ep.dtype) && !tk_export_parse_dtype("f8", &ep.dtype), "dtype names");
    CHECK_OK(tk_adapter_merge(m, h, merged, &ep));
    tk_adapter_detach(m, h);
    CHECK_OK(tk_model_load(merged, &mp, &mm));
    if (mm) CHECK_OK(logits_of(mm, NULL, lm));
    double moved = max_diff(base, la, V), conv = max_diff(la, lb, V), merge = max_diff(la, lm, V);
    CHECK(moved > 1e-3 && conv < 1e-4 && merge < 1e-3, "adapter moved logits by %.3g; GGUF vs PEFT %.3g; merged vs applied %.3g", moved,
          conv, merge);
    printf("adapter API: logits moved %.3g by the adapter; converted %.2g, merged %.2g from it\n", moved, conv, merge);
    free(base); free(la); free(lb); free(lm);
    tk_model_free(mm);
    tk_model_free(m);
    tk_adapter_free(a);
    tk_adapter_free(b);
}

static void test_jobs(void) {
    write_data();
    /* A: uninterrupted, on its own thread */
    static record a, b1, b2, c, d1, d2;
    tk_train_options *o = options("runA");
    tk_job *j = NULL;
    CHECK_OK(tk_job_new(o, on_ev, &a, &j));
    tk_train_options_free(o);
    if (!j) return;
    CHECK(tk_job_get_status(j).state == TK_JOB_READY, "a new job is ready");
    CHECK_OK(tk_job_start(j));
    CHECK(tk_job_start(j) == TK_ERR_ARG, "a job starts once");
    CHECK_OK(tk_job_wait(j));
    tk_job_status s = tk_job_get_status(j);
    int64_t total = s.total_steps;
    CHECK(s.state == TK_JOB_DONE && s.step == total && total >= 8 && total <= MAX_STEPS && s.result == TK_OK, "A: state %d, step %lld of %lld",
          (int)s.state, (long long)s.step, (long long)total);
    CHECK(a.n_steps == total && a.bad_metrics == 0 && a.n_evals >= 3 && a.n_ckpt >= 2 && a.n_done == 1,
          "A's events: %lld steps (%lld odd), %lld evals, %lld checkpoints, %lld done", (long long)a.n_steps, (long long)a.bad_metrics,
          (long long)a.n_evals, (long long)a.n_ckpt, (long long)a.n_done);
    CHECK(s.train_loss == a.loss[total] && s.valid_loss == a.valid[total], "status holds the last losses");
    CHECK(a.loss[total] < a.loss[1], "the loss fell: %.4f -> %.4f", a.loss[1], a.loss[total]);
    CHECK(exists("runA", "adapter/adapter_model.safetensors") && exists("runA", "report.html"), "A wrote its adapter and report");
    CHECK(tk_job_run(j) == TK_ERR_ARG, "a finished job does not run again");
    tk_job_free(j);
    test_adapter_api("runA");

    /* B: paused from the callback at step 4 (not a save step), resumed on the caller's thread */
    o = options("runB");
    j = NULL;
    CHECK_OK(tk_job_new(o, on_ev, &b1, &j));
    tk_train_options_free(o);
    if (!j) return;
    b1.job = j;
    b1.pause_at = 4;
    CHECK_OK(tk_job_start(j));
    CHECK_OK(tk_job_wait(j));
    s = tk_job_get_status(j);
    CHECK(s.state == TK_JOB_PAUSED && s.step == 4, "B paused: state %d at step %lld", (int)s.state, (long long)s.step);
    CHECK(exists("runB", "checkpoints/step-00000004") && !exists("runB", "adapter"), "pause wrote the step-4 checkpoint, no adapter");
    tk_job_free(j);
    char dir[700];
    snprintf(dir, sizeof dir, "%s/runB", g_tmp);
    j = NULL;
    CHECK_OK(tk_job_resume(dir, on_ev, &b2, &j));
    if (!j) return;
    b2.last_step = 4;
    CHECK_OK(tk_job_run(j));
    s = tk_job_get_status(j);
    CHECK(s.state == TK_JOB_DONE && s.step == total, "B resumed to the end: state %d, step %lld", (int)s.state, (long long)s.step);
    CHECK(b1.n_steps == 4 && b2.n_steps == total - 4 && b2.bad_metrics == 0, "B ran 4 + %lld steps", (long long)b2.n_steps);
    CHECK(same_steps(&a, &b1, 1, 4) && same_steps(&a, &b2, 5, total), "pause + resume gives the uninterrupted run's numbers bit for bit");
    tk_job_free(j);

    /* C: cancelled at step 2 (before the first save at 3): no checkpoint, no adapter */
    o = options("runC");
    j = NULL;
    CHECK_OK(tk_job_new(o, on_ev, &c, &j));
    tk_train_options_free(o);
    if (!j) return;
    c.job = j;
    c.cancel_at = 2;
    CHECK_OK(tk_job_start(j));
    CHECK_OK(tk_job_wait(j));
    s = tk_job_get_status(j);
    CHECK(s.state == TK_JOB_CANCELLED && s.step == 2 && c.n_ckpt == 0, "C cancelled: state %d at step %lld, %lld checkpoints", (int)s.state,
          (long long)s.step, (long long)c.n_ckpt);
    CHECK(!exists("runC", "checkpoints/step-00000002") && !exists("runC", "adapter"), "cancel writes no checkpoint and no adapter");
    tk_job_free(j);

    /* D: paused from this thread while the job runs on its own; resumed; same numbers */
    o = options("runD");
    j = NULL;
    CHECK_OK(tk_job_new(o, on_ev, &d1, &j));
    tk_train_options_free(o);
    if (!j) return;
    CHECK_OK(tk_job_start(j));
    for (int k = 0; k < 60000 && tk_job_get_status(j).step < 2 && tk_job_get_status(j).state == TK_JOB_RUNNING; k++) usleep(500);
    tk_job_pause(j);
    CHECK_OK(tk_job_wait(j));
    s = tk_job_get_status(j);
    int64_t at = s.step;
    CHECK(s.state == TK_JOB_PAUSED || (s.state == TK_JOB_DONE && at == total), "D paused (state %d at step %lld)", (int)s.state, (long long)at);
    tk_job_free(j);
    if (at < total) {
        snprintf(dir, sizeof dir, "%s/runD", g_tmp);
        j = NULL;
        CHECK_OK(tk_job_resume(dir, on_ev, &d2, &j));
        if (!j) return;
        d2.last_step = at;
        CHECK_OK(tk_job_start(j));
        CHECK_OK(tk_job_wait(j));
        CHECK(tk_job_get_status(j).state == TK_JOB_DONE, "D resumed to the end");
        tk_job_free(j);
    }
    CHECK(same_steps(&a, &d1, 1, at) && (at == total || same_steps(&a, &d2, at + 1, total)),
          "pause from another thread at step %lld + resume gives the same numbers", (long long)at);

    /* a failing job: the message reaches the waiting thread */
    o = options("runE");
    char nowhere[600];
    snprintf(nowhere, sizeof nowhere, "%s/no-such-data.jsonl", g_tmp);
    CHECK_OK(tk_train_options_set(o, "data", nowhere));
    j = NULL;
    CHECK_OK(tk_job_new(o, NULL, NULL, &j));
    tk_train_options_free(o);
    if (!j) return;
    CHECK_OK(tk_job_start(j));
    tk_status st = tk_job_wait(j);
    CHECK(st != TK_OK && tk_job_get_status(j).state == TK_JOB_FAILED && strstr(tk_last_error(), "no-such-data.jsonl"),
          "a failing job: %d, %s", (int)st, tk_last_error());
    tk_job_free(j);
}

int main(void) {
    char tmpl[] = "/tmp/takumi_test_train_job_XXXXXX";
    g_tmp = mkdtemp(tmpl);
    if (!g_tmp) { fprintf(stderr, "mkdtemp failed\n"); return 1; }
    test_options();
    g_model = tk_test_shared("models/stories260K/hf");
    g_tok = tk_test_shared("models/stories260K/llama2c/tok512.bin");
    char *m = g_model ? strdup(g_model) : NULL, *t = g_tok ? strdup(g_tok) : NULL;
    g_model = m;
    g_tok = t;
    if (!tk_test_require(m && t ? m : NULL, "models/stories260K")) test_jobs();
    free(m);
    free(t);
    if (!tk_test_failures) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_tmp);
    }
    return tk_test_done("test_train_job");
}
