/* The job queue: one thread runs one training job at a time through takumi/train.h's job API, while
 * the connection threads serve requests. A job's progress becomes events (a "metrics" event per step,
 * as OpenAI emits them, "message" events for the rest) and checkpoint rows; a succeeded job's adapter
 * (RUN/adapter) is attached to its loaded base as the model "ft:<base>:<owner>:<suffix>:<id>".
 * Restarts: a job the database still calls running (the server was killed, or stopped: a stop pauses
 * the job at a checkpoint) is resumed from its run folder (tk_job_resume: the newest checkpoint). */
#include "serve/server.h"
#include "core/core.h"
#include "data/data_internal.h"
#include "takumi/train.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>


typedef struct run_ctx {
    tk_server *s;
    const srv_job_row *j;
    int mi;                      /* the job's base model */
    int64_t step, tokens;
    double train_loss, valid_loss;
    double reward, valid_reward; /* reinforcement: the step's mean reward, the last graded validation's (NAN: none) */
    double cpu_mark;             /* the runner thread's CPU seconds when the job's time was last counted */
} run_ctx;

/* Adds the runner thread's CPU seconds since the last count to the job's (jobs.cpu_seconds, shown by /v1/usage). */
static void count_cpu(run_ctx *c) {
    double now = srv_thread_cpu_s(), d = now - c->cpu_mark;
    c->cpu_mark = now;
    if (d > 0 && srv_job_add_cpu(&c->s->keys, c->j->id, d)) tk_clear_error();
}

/* The objective metric named name of event e (NAN: none). */
static double event_metric(const tk_train_event *e, const char *name) {
    for (int i = 0; i < e->n_metrics; i++)
        if (!strcmp(e->metric_names[i], name)) return e->metrics[i];
    return NAN;
}

/* "ft:<base>:<owner>:<suffix>:<id>:ckpt-step-N": the model a job's checkpoint is. */
static void ckpt_model_name(const srv_job_row *j, int64_t step, char *out, size_t n) {
    char name[SRV_MAX_ID + 1];
    srv_ft_model_name(j, name, sizeof name);
    snprintf(out, n, "%s:ckpt-step-%lld", name, (long long)step);
}

/* Serves the checkpoint folder ckpt (its adapter/) of job j as a model of j's owner; a checkpoint without an adapter
 * (full fine-tuning, or written before checkpoints held one) or one already served is left alone. */
static void add_ckpt_model(tk_server *s, const srv_job_row *j, int mi, int64_t step, const char *ckpt, int64_t created) {
    char name[SRV_MAX_ID + 40], *adapter = tk_path_join(ckpt, "adapter");
    int bi, ai;
    ckpt_model_name(j, step, name, sizeof name);
    if (adapter && access(adapter, F_OK) == 0 && !srv_registry_find(&s->reg, name, &bi, &ai) &&
        srv_registry_add(&s->reg, mi, name, adapter, j->owner, created))
        srv_log(s, "the checkpoint model %s is not served: %s", name, tk_last_error());
    tk_clear_error();
    free(adapter);
}

/* Drops the rows of j's checkpoints the trainer removed, and their models. */
static void prune_ckpts(tk_server *s, const srv_job_row *j) {
    char prefix[SRV_MAX_ID + 40];
    ckpt_model_name(j, 0, prefix, sizeof prefix);
    prefix[strlen(prefix) - 1] = 0;   /* "...:ckpt-step-" */
    if (srv_checkpoints_prune(&s->keys, j->id)) tk_clear_error();
    srv_registry_unload_missing(&s->reg, prefix);
}

static void event(run_ctx *c, const char *level, const char *type, const char *msg, const char *data) {
    srv_event_add(&c->s->keys, c->j->id, level, type, msg, data);
}

/* {"step":..,"train_loss":..,"total_steps":..[,"valid_loss":..][,"train_reward_mean":..][,"valid_reward_mean":..]} */
static void metrics_json(const run_ctx *c, int64_t total, char *out, size_t n) {
    int k = snprintf(out, n, "{\"step\":%lld,\"train_loss\":%.6g", (long long)c->step, isfinite(c->train_loss) ? c->train_loss : 0.0);
    if (total > 0 && k > 0 && (size_t)k < n) k += snprintf(out + k, n - (size_t)k, ",\"total_steps\":%lld", (long long)total);
    if (isfinite(c->valid_loss) && k > 0 && (size_t)k < n) k += snprintf(out + k, n - (size_t)k, ",\"valid_loss\":%.6g", c->valid_loss);
    if (isfinite(c->reward) && k > 0 && (size_t)k < n) k += snprintf(out + k, n - (size_t)k, ",\"train_reward_mean\":%.6g", c->reward);
    if (isfinite(c->valid_reward) && k > 0 && (size_t)k < n) k += snprintf(out + k, n - (size_t)k, ",\"valid_reward_mean\":%.6g", c->valid_reward);
    if (k > 0 && (size_t)k < n) snprintf(out + k, n - (size_t)k, "}");
}

static void on_event(const tk_train_event *e, void *ud) {
    run_ctx *c = ud;
    char data[256], msg[512];
    switch (e->kind) {
    case TK_EV_STEP:
        c->step = e->step;
        c->train_loss = e->train_loss;
        c->tokens += e->tokens;
        c->reward = event_metric(e, "reward");
        metrics_json(c, e->total_steps, data, sizeof data);
        if (isfinite(c->reward))
            snprintf(msg, sizeof msg, "Step %lld/%lld: training reward=%.4f", (long long)e->step, (long long)e->total_steps, c->reward);
        else snprintf(msg, sizeof msg, "Step %lld/%lld: training loss=%.4f", (long long)e->step, (long long)e->total_steps, e->train_loss);
        event(c, "info", "metrics", msg, data);
        count_cpu(c);
        break;
    case TK_EV_EVAL:
        c->valid_loss = e->valid_loss;
        c->valid_reward = event_metric(e, "reward");
        if (isfinite(c->valid_reward)) {
            snprintf(data, sizeof data, "{\"step\":%lld,\"valid_reward_mean\":%.6g}", (long long)e->step, c->valid_reward);
            snprintf(msg, sizeof msg, "Step %lld: validation reward=%.4f", (long long)e->step, c->valid_reward);
        } else {
            snprintf(data, sizeof data, "{\"step\":%lld,\"valid_loss\":%.6g}", (long long)e->step, e->valid_loss);
            snprintf(msg, sizeof msg, "Step %lld: validation loss=%.4f", (long long)e->step, e->valid_loss);
        }
        event(c, "info", "metrics", msg, data);
        break;
    case TK_EV_CHECKPOINT: {
        /* the step is the folder's (".../step-00000012"): a resumed job checkpoints before its first step event too */
        const char *b = e->message ? strrchr(e->message, '/') : NULL;
        long long step = b && !strncmp(b, "/step-", 6) ? strtoll(b + 6, NULL, 10) : 0;
        if (step > 0) c->step = step;
        metrics_json(c, 0, data, sizeof data);
        srv_checkpoint_add(&c->s->keys, c->j->id, c->step, data, e->message ? e->message : "");
        if (e->message) add_ckpt_model(c->s, c->j, c->mi, c->step, e->message, (int64_t)time(NULL));
        prune_ckpts(c->s, c->j);
        snprintf(msg, sizeof msg, "Checkpoint created at step %lld", (long long)c->step);
        event(c, "info", "message", msg, NULL);
        break;
    }
    case TK_EV_WARNING: event(c, "warn", "message", e->message ? e->message : "warning", NULL); break;
    case TK_EV_START: case TK_EV_INFO: case TK_EV_DONE: if (e->message) event(c, "info", "message", e->message, NULL); break;
    }
}

/* n_epochs, batch_size, learning_rate_multiplier as the run resolved them (RUN/config.json), or NULL. */
static char *resolved_hypers(const char *dir, const srv_job_row *j) {
    char *path = tk_path_join(dir, "config.json"), *js = NULL, *out = NULL;
    if (path && !tk_read_file(path, &js, NULL)) {
        cJSON *c = cJSON_Parse(js), *h = cJSON_CreateObject();
        const cJSON *ep = cJSON_GetObjectItemCaseSensitive(c, "epochs"), *bs = cJSON_GetObjectItemCaseSensitive(c, "batch-size"),
                    *ga = cJSON_GetObjectItemCaseSensitive(c, "grad-accum"), *lr = cJSON_GetObjectItemCaseSensitive(c, "lr-multiplier"),
                    *beta = cJSON_GetObjectItemCaseSensitive(c, "beta");
        if (cJSON_IsNumber(ep)) cJSON_AddNumberToObject(h, "n_epochs", ep->valuedouble);
        if (cJSON_IsNumber(bs)) cJSON_AddNumberToObject(h, "batch_size", bs->valuedouble * (cJSON_IsNumber(ga) ? ga->valuedouble : 1));
        if (cJSON_IsNumber(lr)) cJSON_AddNumberToObject(h, "learning_rate_multiplier", lr->valuedouble);
        if (!strcmp(j->method, "dpo") && cJSON_IsNumber(beta)) cJSON_AddNumberToObject(h, "beta", beta->valuedouble);
        const cJSON *ev = cJSON_GetObjectItemCaseSensitive(c, "eval-every");
        if (!strcmp(j->method, "reinforcement") && cJSON_IsNumber(ev)) cJSON_AddNumberToObject(h, "eval_interval", ev->valuedouble);
        out = cJSON_PrintUnformatted(h);
        cJSON_Delete(h);
        cJSON_Delete(c);
    }
    tk_clear_error();
    free(js);
    free(path);
    return out;
}

/* Tokens trained over the whole run (RUN/metrics.jsonl: each step's "tokens", a step logged again after a
 * resume counted once) -- what OpenAI bills as trained_tokens; -1 when unreadable. */
static int64_t trained_tokens(const char *dir) {
    char *path = tk_path_join(dir, "metrics.jsonl"), *text = NULL;
    size_t len = 0;
    int64_t total = -1, *per = NULL, n = 0;
    if (path && !tk_read_file(path, &text, &len)) {
        total = 0;
        for (char *line = text, *next; line && line < text + len; line = next) {
            next = memchr(line, '\n', (size_t)(text + len - line));
            if (next) *next++ = 0;
            cJSON *o = cJSON_Parse(line);
            const cJSON *step = cJSON_GetObjectItemCaseSensitive(o, "step"), *tok = cJSON_GetObjectItemCaseSensitive(o, "tokens");
            if (cJSON_IsNumber(step) && cJSON_IsNumber(tok) && step->valuedouble >= 0 && step->valuedouble < 1e7) {
                int64_t i = (int64_t)step->valuedouble;
                if (i >= n) {
                    int64_t m = i + 1 > 2 * n ? i + 1 : 2 * n;
                    int64_t *g = tk_realloc(per, sizeof *per * (size_t)m);
                    if (!g) { cJSON_Delete(o); total = -1; break; }
                    memset(g + n, 0, sizeof *g * (size_t)(m - n));
                    per = g, n = m;
                }
                per[i] = (int64_t)tok->valuedouble;
            }
            cJSON_Delete(o);
        }
        for (int64_t i = 0; i < n && total >= 0; i++) total += per[i];
    }
    tk_clear_error();
    free(per);
    free(text);
    free(path);
    return total;
}

/* The options of a fresh run of job j on model mi into dir. */
static tk_status job_options(tk_server *s, const srv_job_row *j, int mi, const char *dir, tk_train_options **out) {
    tk_train_options *o;
    tk_status st = tk_train_options_new(&o);
    if (st) return st;
    char *data = srv_file_path(s, j->training_file), *val = j->validation_file[0] ? srv_file_path(s, j->validation_file) : NULL;
    char v[64];
#define SET(name, value) if (!st) st = tk_train_options_set(o, name, value)
    SET("model", s->reg.models[mi].path);
    if (s->p.tokenizer) SET("tokenizer", s->p.tokenizer);
    SET("data", data);
    if (val) SET("val", val);
    SET("out", dir);
    snprintf(v, sizeof v, "%lld", (long long)j->seed); SET("seed", v);
    snprintf(v, sizeof v, "%d", s->p.threads); SET("threads", v);
    SET("samples", "0");
    if (j->n_epochs > 0) { snprintf(v, sizeof v, "%lld", (long long)j->n_epochs); SET("epochs", v); }
    if (j->batch_size > 0) { snprintf(v, sizeof v, "%lld", (long long)j->batch_size); SET("batch-size", v); SET("grad-accum", "1"); }
    if (j->lr_mult > 0) { snprintf(v, sizeof v, "%.9g", j->lr_mult); SET("lr-multiplier", v); }   /* OpenAI's: it scales the auto rate */
    if (!strcmp(j->method, "dpo")) {
        SET("objective", "dpo");
        if (j->beta > 0) { snprintf(v, sizeof v, "%.9g", j->beta); SET("beta", v); }
    }
    char *grader = NULL, *gpath = NULL;
    if (!st && !strcmp(j->method, "reinforcement")) {
        /* GRPO with the job's grader (DATA_DIR/jobs/ID.grader.json, beside the run folder: a resume reads it again), the
           served base model as the judge of score_model graders, answers of up to min(256, context / 8) tokens */
        srv_error e;
        int judge = -1;
        st = srv_job_grader(&s->keys, j->id, &grader);
        if (!st && !grader) st = tk_fail(TK_ERR_FORMAT, "the reinforcement job %s has no grader stored", j->id);
        if (!st && srv_grader_judge(&s->reg, grader, &judge, &e)) st = tk_fail(TK_ERR_ARG, "%s", e.message);
        char name[80];
        snprintf(name, sizeof name, "%s.grader.json", j->id);
        gpath = st ? NULL : tk_path_join(s->p.data_dir, "jobs");
        char *g = gpath ? tk_path_join(gpath, name) : NULL;
        free(gpath);
        gpath = g;
        if (!st) st = gpath ? tk_write_file_atomic(gpath, grader, strlen(grader)) : TK_ERR_NOMEM;
        SET("objective", "grpo");
        SET("grader", gpath);
        if (judge >= 0) SET("judge", s->reg.models[judge].path);
        int32_t ctx = tk_model_get_config(s->reg.models[mi].m)->max_seq;
        snprintf(v, sizeof v, "%d", ctx / 8 < 8 ? 8 : ctx / 8 > 256 ? 256 : ctx / 8); SET("max-new-tokens", v);
        if (j->eval_interval > 0) { snprintf(v, sizeof v, "%lld", (long long)j->eval_interval); SET("eval-every", v); }
    }
#undef SET
    free(grader);
    free(gpath);
    free(data);
    free(val);
    if (st) { tk_train_options_free(o); return st; }
    *out = o;
    return TK_OK;
}

/* Runs job j (status already "running") to its end on this thread. */
static void run_job(tk_server *s, const srv_job_row *j) {
    srv_keys *k = &s->keys;
    srv_runner *rn = &s->runner;
    run_ctx c = {.s = s, .j = j, .train_loss = NAN, .valid_loss = NAN, .reward = NAN, .valid_reward = NAN, .cpu_mark = srv_thread_cpu_s()};
    int mi = 0, ai = -1;
    char msg[700];
    bool found = srv_registry_find(&s->reg, j->model, &mi, &ai);
    c.mi = mi;
    if (!found || ai >= 0) {
        snprintf(msg, sizeof msg, "The base model '%s' is not served by this server (start it with --model %s=PATH).", j->model, j->model);
        pthread_mutex_lock(&rn->mu);
        if (!rn->cancel) { event(&c, "error", "message", msg, NULL); srv_job_set_status(k, j->id, "failed", true, NULL, "model_not_available", msg, -1, NULL); }
        pthread_mutex_unlock(&rn->mu);
        return;
    }
    char *dir = srv_job_dir(s, j->id), *cfg = dir ? tk_path_join(dir, "config.json") : NULL;
    tk_job *job = NULL;
    tk_status st = dir && cfg ? TK_OK : TK_ERR_NOMEM;
    if (!st && access(cfg, F_OK) == 0) {
        event(&c, "info", "message", "Resuming the job from its newest checkpoint (after a pause or a restart)", NULL);
        st = tk_job_resume(dir, on_event, &c, &job);
    } else if (!st) {
        if (access(dir, F_OK) == 0) {   /* a run folder cut off before its configuration: set aside, start afresh */
            char old[600];
            snprintf(old, sizeof old, "%s.stale-%lld", dir, (long long)time(NULL));
            if (rename(dir, old)) st = tk_fail(TK_ERR_IO, "%s: cannot set the unfinished run folder aside", dir);
        }
        char *jobs = tk_path_join(s->p.data_dir, "jobs");
        if (!st) st = jobs ? tk_mkdir_p(jobs) : TK_ERR_NOMEM;
        free(jobs);
        tk_train_options *o = NULL;
        if (!st) st = job_options(s, j, mi, dir, &o);
        if (!st) st = tk_job_new(o, on_event, &c, &job);
        tk_train_options_free(o);
    }
    pthread_mutex_lock(&rn->mu);
    bool cancelled = rn->cancel || rn->pause;   /* paused before it started: it starts when resumed */
    if (!st && !cancelled) { rn->job = job; event(&c, "info", "message", "Fine-tuning job started", NULL); }
    pthread_mutex_unlock(&rn->mu);
    if (!st && !cancelled) st = tk_job_run(job);
    snprintf(msg, sizeof msg, "%s", st ? tk_last_error() : "");
    tk_job_status js = tk_job_get_status(job);
    pthread_mutex_lock(&rn->mu);
    rn->job = NULL;
    if (rn->cancel || (rn->pause && !st && js.state != TK_JOB_DONE)) {
        /* the cancel or pause request set the status */
        if (rn->pause && js.state == TK_JOB_PAUSED) {
            snprintf(msg, sizeof msg, "Fine-tuning job paused at step %lld (a checkpoint was written; resume continues from it)", (long long)js.step);
            event(&c, "info", "message", msg, NULL);
        }
    } else if (st) {
        event(&c, "error", "message", msg, NULL);   /* events first: a client that sees the status sees them */
        srv_job_set_status(k, j->id, "failed", true, NULL, "training_failed", msg, c.tokens, NULL);
    } else if (js.state == TK_JOB_PAUSED) {
        snprintf(msg, sizeof msg, "The server is stopping: the job paused at step %lld and resumes when the server starts again", (long long)js.step);
        event(&c, "info", "message", msg, NULL);
    } else {
        char name[SRV_MAX_ID + 1], *adapter = tk_path_join(dir, "adapter"), *hypers = resolved_hypers(dir, j);
        srv_ft_model_name(j, name, sizeof name);
        tk_status rs = adapter ? srv_registry_add(&s->reg, mi, name, adapter, j->owner, (int64_t)time(NULL)) : TK_ERR_NOMEM;
        if (rs) {
            snprintf(msg, sizeof msg, "The trained adapter cannot be served: %s", tk_last_error());
            event(&c, "error", "message", msg, NULL);
            srv_job_set_status(k, j->id, "failed", true, NULL, "model_not_served", msg, c.tokens, hypers);
        } else {
            prune_ckpts(s, j);
            snprintf(msg, sizeof msg, "New fine-tuned model created: %s", name);
            event(&c, "info", "message", msg, NULL);
            event(&c, "info", "message", "The job has successfully completed", NULL);
            srv_job_set_status(k, j->id, "succeeded", true, name, NULL, NULL, trained_tokens(dir), hypers);
        }
        free(adapter);
        free(hypers);
    }
    pthread_mutex_unlock(&rn->mu);
    prune_ckpts(s, j);
    count_cpu(&c);
    tk_job_free(job);
    free(dir);
    free(cfg);
}

static void *runner_main(void *arg) {
    tk_server *s = arg;
    srv_runner *rn = &s->runner;
    srv_keys *k = &s->keys;
    /* Linux keeps a nice value per thread, and the threads this one starts (its OpenMP team) inherit it: the job's
     * compute yields to the request threads and the batch decode whenever they have work. Lowering one's own
     * priority is always permitted; should it fail all the same, the job runs at the server's priority. */
    if (s->p.job_nice > 0) (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), s->p.job_nice);
    pthread_mutex_lock(&rn->mu);
    while (!rn->stop) {
        char id[40];
        srv_job_row j;
        /* a job left running by the last server first, then the oldest queued one */
        bool got = srv_job_next(k, "running", id) || srv_job_next(k, "queued", id);
        if (!got || srv_job_find(k, id, NULL, true, &j) != 1) {
            while (!rn->wake && !rn->stop) pthread_cond_wait(&rn->cv, &rn->mu);
            rn->wake = false;
            continue;
        }
        srv_job_set_status(k, id, "running", false, NULL, NULL, NULL, -1, NULL);
        snprintf(rn->job_id, sizeof rn->job_id, "%s", id);
        rn->cancel = rn->pause = false;
        pthread_mutex_unlock(&rn->mu);
        run_job(s, &j);
        pthread_mutex_lock(&rn->mu);
        rn->job_id[0] = 0;
    }
    pthread_mutex_unlock(&rn->mu);
    return NULL;
}

tk_status srv_runner_start(tk_server *s) {
    srv_runner *rn = &s->runner;
    int e = pthread_create(&rn->thread, NULL, runner_main, s);
    if (e) return tk_fail(TK_ERR_IO, "serve: cannot start the job thread: %s", strerror(e));
    rn->started = true;
    return TK_OK;
}

void srv_runner_wake(tk_server *s) {
    pthread_mutex_lock(&s->runner.mu);
    s->runner.wake = true;
    pthread_cond_signal(&s->runner.cv);
    pthread_mutex_unlock(&s->runner.mu);
}

bool srv_runner_cancel(tk_server *s, const char *id) {
    srv_runner *rn = &s->runner;   /* the caller holds rn->mu */
    if (strcmp(rn->job_id, id)) return false;
    rn->cancel = true;
    if (rn->job) tk_job_cancel(rn->job);
    return true;
}

bool srv_runner_pause(tk_server *s, const char *id) {
    srv_runner *rn = &s->runner;   /* the caller holds rn->mu */
    if (strcmp(rn->job_id, id)) return false;
    rn->pause = true;
    if (rn->job) tk_job_pause(rn->job);
    return true;
}

void srv_runner_stop(tk_server *s) {
    srv_runner *rn = &s->runner;
    if (!rn->started) return;
    pthread_mutex_lock(&rn->mu);
    rn->stop = true;
    if (rn->job) tk_job_pause(rn->job);
    pthread_cond_signal(&rn->cv);
    pthread_mutex_unlock(&rn->mu);
    pthread_join(rn->thread, NULL);
    rn->started = false;
}

static void register_one(const srv_job_row *j, void *ud) {
    tk_server *s = ud;
    int mi, ai;
    char *dir = srv_job_dir(s, j->id), *adapter = dir ? tk_path_join(dir, "adapter") : NULL;
    if (j->fine_tuned_model[0] && adapter && srv_registry_find(&s->reg, j->model, &mi, &ai) && ai < 0 &&
        srv_registry_add(&s->reg, mi, j->fine_tuned_model, adapter, j->owner, j->created_at) && s->p.log) {
        char line[600];
        snprintf(line, sizeof line, "the fine-tuned model %s is not served: %s", j->fine_tuned_model, tk_last_error());
        s->p.log(s->p.log_ud, line);
    }
    tk_clear_error();
    free(adapter);
    free(dir);
}

/* A stored checkpoint of a job whose base is loaded: its model again (after a restart). */
static void register_ckpt(const char *job, int64_t step, const char *path, int64_t created, void *ud) {
    tk_server *s = ud;
    srv_job_row j;
    int mi, ai;
    if (srv_job_find(&s->keys, job, NULL, true, &j) == 1 && srv_registry_find(&s->reg, j.model, &mi, &ai) && ai < 0)
        add_ckpt_model(s, &j, mi, step, path, created);
    tk_clear_error();
}

tk_status srv_runner_register_models(tk_server *s) {
    tk_status st = srv_jobs_each(&s->keys, "succeeded", register_one, s);
    return st ? st : srv_checkpoints_each(&s->keys, register_ckpt, s);
}
