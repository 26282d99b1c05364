/* The public training API (takumi/train.h): options by name over the declarative table,
 * and jobs that run a trainer on the caller's thread or their own, with pause / cancel
 * flags polled between steps and a status snapshot kept under a mutex. */
#include "takumi/train.h"
#include "train/trainer.h"
#include "core/core.h"
#include <math.h>
#include <pthread.h>
#include <stdio.h>

/* ---- options -------------------------------------------------------------------------- */

struct tk_train_options { tk_trainer_config c; };

int tk_train_option_count(void) {
    int n;
    tk_trainer_options(&n);
    return n;
}

bool tk_train_option_get_info(int i, tk_train_option_info *out) {
    int n;
    const tk_trainer_option *o = tk_trainer_options(&n);
    if (i < 0 || i >= n || !out) return false;
    out->name = o[i].name;
    out->arg = o[i].arg;
    out->dflt = o[i].dflt;
    out->help = o[i].help;
    out->resume_must_match = o[i].resume;
    return true;
}

tk_status tk_train_options_new(tk_train_options **out) {
    *out = tk_calloc(1, sizeof **out);
    if (!*out) return TK_ERR_NOMEM;
    (*out)->c = tk_trainer_config_default();
    return TK_OK;
}

void tk_train_options_free(tk_train_options *o) {
    if (!o) return;
    tk_trainer_config_free(&o->c);
    free(o);
}

tk_status tk_train_options_set(tk_train_options *o, const char *name, const char *value) {
    if (!o || !name) return tk_fail(TK_ERR_ARG, "train options: NULL argument");
    return tk_trainer_config_set(&o->c, name, value);
}

tk_status tk_train_options_get(const tk_train_options *o, const char *name, char *buf, size_t n) {
    if (!o || !name || !buf || !n) return tk_fail(TK_ERR_ARG, "train options: NULL argument");
    tk_buf b = {0};
    tk_status st = tk_trainer_config_get(&o->c, name, &b);
    if (!st) snprintf(buf, n, "%s", b.data ? b.data : "");
    tk_buf_free(&b);
    return st;
}

tk_status tk_train_options_load_run(tk_train_options *o, const char *run_dir) {
    if (!o || !run_dir) return tk_fail(TK_ERR_ARG, "train options: NULL argument");
    char *path = tk_path_join(run_dir, "config.json"), *js = NULL;
    if (!path) return TK_ERR_NOMEM;
    FILE *f = fopen(path, "rb");
    if (!f) { tk_status st = tk_fail(TK_ERR_NOT_FOUND, "%s: no run configuration (not a run folder?)", path); free(path); return st; }
    fclose(f);
    tk_status st = tk_read_file(path, &js, NULL);
    if (!st) st = tk_trainer_config_apply_json(&o->c, js, path);
    if (!st) st = tk_trainer_config_set(&o->c, "resume", "true");
    free(js);
    free(path);
    return st;
}

/* ---- jobs ----------------------------------------------------------------------------- */

struct tk_job {
    tk_trainer_config c;
    tk_train_event_fn fn;
    void *ud;
    tk_train_control ctl;
    pthread_mutex_t mu;          /* guards status and err */
    tk_job_status status;
    char *err;                   /* the failing run's message */
    pthread_t thread;
    bool started, threaded, joined;
};

static void on_event(const tk_train_event *e, void *ud) {
    tk_job *j = ud;
    pthread_mutex_lock(&j->mu);
    if (e->total_steps > 0) j->status.total_steps = e->total_steps;
    if (e->kind == TK_EV_STEP) { j->status.step = e->step; j->status.train_loss = e->train_loss; }
    if (e->kind == TK_EV_EVAL) j->status.valid_loss = e->valid_loss;
    pthread_mutex_unlock(&j->mu);
    if (j->fn) j->fn(e, j->ud);
}

tk_status tk_job_new(const tk_train_options *o, tk_train_event_fn on_ev, void *ud, tk_job **out) {
    *out = NULL;
    if (!o) return tk_fail(TK_ERR_ARG, "train job: NULL options");
    static const char *const required[] = {"model", "data", "out"};
    const char *const have[] = {o->c.model, o->c.data, o->c.out};
    for (int i = 0; i < 3; i++)
        if (!have[i]) return tk_fail(TK_ERR_ARG, "train job: option --%s is required", required[i]);
    tk_job *j = tk_calloc(1, sizeof *j);
    if (!j) return TK_ERR_NOMEM;
    tk_status st = tk_trainer_config_copy(&j->c, &o->c);
    if (st) { free(j); return st; }
    j->fn = on_ev;
    j->ud = ud;
    atomic_init(&j->ctl.pause, 0);
    atomic_init(&j->ctl.cancel, 0);
    pthread_mutex_init(&j->mu, NULL);
    j->status.state = TK_JOB_READY;
    j->status.train_loss = j->status.valid_loss = NAN;
    *out = j;
    return TK_OK;
}

tk_status tk_job_resume(const char *run_dir, tk_train_event_fn on_ev, void *ud, tk_job **out) {
    *out = NULL;
    tk_train_options *o;
    tk_status st = tk_train_options_new(&o);
    if (!st) st = tk_train_options_load_run(o, run_dir);
    if (!st) st = tk_job_new(o, on_ev, ud, out);
    tk_train_options_free(o);
    return st;
}

static bool claim(tk_job *j) {
    pthread_mutex_lock(&j->mu);
    bool ok = !j->started;
    if (ok) { j->started = true; j->status.state = TK_JOB_RUNNING; }
    pthread_mutex_unlock(&j->mu);
    return ok;
}

/* Runs the trainer and records the outcome (on whichever thread runs the job). */
static tk_status execute(tk_job *j) {
    tk_status st = tk_trainer_run(&j->c, on_event, j, &j->ctl);
    pthread_mutex_lock(&j->mu);
    j->status.result = st;
    if (st) {
        j->status.state = TK_JOB_FAILED;
        free(j->err);
        j->err = tk_strdup(tk_last_error());
    } else
        j->status.state = j->ctl.outcome == 1 ? TK_JOB_PAUSED : j->ctl.outcome == 2 ? TK_JOB_CANCELLED : TK_JOB_DONE;
    pthread_mutex_unlock(&j->mu);
    return st;
}

tk_status tk_job_run(tk_job *j) {
    if (!j) return tk_fail(TK_ERR_ARG, "train job: NULL job");
    if (!claim(j)) return tk_fail(TK_ERR_ARG, "train job: already started (a job runs once)");
    return execute(j);
}

static void *thread_main(void *arg) {
    execute(arg);
    return NULL;
}

tk_status tk_job_start(tk_job *j) {
    if (!j) return tk_fail(TK_ERR_ARG, "train job: NULL job");
    if (!claim(j)) return tk_fail(TK_ERR_ARG, "train job: already started (a job runs once)");
    int e = pthread_create(&j->thread, NULL, thread_main, j);
    if (e) {
        pthread_mutex_lock(&j->mu);
        j->status.state = TK_JOB_FAILED;
        j->status.result = TK_ERR_IO;
        pthread_mutex_unlock(&j->mu);
        return tk_fail(TK_ERR_IO, "train job: cannot start a thread: %s", strerror(e));
    }
    j->threaded = true;
    return TK_OK;
}

tk_status tk_job_wait(tk_job *j) {
    if (!j) return tk_fail(TK_ERR_ARG, "train job: NULL job");
    if (j->threaded && !j->joined) { pthread_join(j->thread, NULL); j->joined = true; }
    pthread_mutex_lock(&j->mu);
    tk_status st = j->status.result;
    tk_job_state state = j->status.state;
    char *msg = j->err ? tk_strdup(j->err) : NULL;
    pthread_mutex_unlock(&j->mu);
    if (state == TK_JOB_READY) { free(msg); return tk_fail(TK_ERR_ARG, "train job: not started"); }
    if (st) st = tk_fail(st, "%s", msg ? msg : "training failed");   /* the job thread's message, on this thread */
    free(msg);
    return st;
}

void tk_job_pause(tk_job *j) { if (j) atomic_store(&j->ctl.pause, 1); }
void tk_job_cancel(tk_job *j) { if (j) atomic_store(&j->ctl.cancel, 1); }

tk_job_status tk_job_get_status(const tk_job *j) {
    tk_job_status s;
    memset(&s, 0, sizeof s);
    if (!j) { s.state = TK_JOB_FAILED; s.result = TK_ERR_ARG; return s; }
    pthread_mutex_lock((pthread_mutex_t *)&j->mu);
    s = j->status;
    pthread_mutex_unlock((pthread_mutex_t *)&j->mu);
    return s;
}

void tk_job_free(tk_job *j) {
    if (!j) return;
    if (j->threaded && !j->joined) pthread_join(j->thread, NULL);
    pthread_mutex_destroy(&j->mu);
    tk_trainer_config_free(&j->c);
    free(j->err);
    free(j);
}
