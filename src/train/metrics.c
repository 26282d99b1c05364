/* metrics.jsonl writing/reading/truncation and the progress text (see metrics.h). */
#include "train/metrics.h"
#include "core/core.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/resource.h>

double tk_peak_rss_mb(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (double)ru.ru_maxrss / 1024.0;   /* Linux: KiB */
}

tk_status tk_metrics_open(tk_metrics *m, const char *path) {
    memset(m, 0, sizeof *m);
    m->fp = fopen(path, "a");
    if (!m->fp) return tk_fail(TK_ERR_IO, "%s: cannot open for appending: %s", path, strerror(errno));
    m->path = tk_strdup(path);
    if (!m->path) { fclose(m->fp); m->fp = NULL; return TK_ERR_NOMEM; }
    return TK_OK;
}

void tk_metrics_close(tk_metrics *m) {
    if (!m) return;
    if (m->fp) fclose(m->fp);
    free(m->path);
    memset(m, 0, sizeof *m);
}

static const char *kind_name(tk_train_event_kind k) {
    switch (k) {
    case TK_EV_START: return "start";
    case TK_EV_STEP: return "step";
    case TK_EV_EVAL: return "eval";
    case TK_EV_CHECKPOINT: return "checkpoint";
    case TK_EV_WARNING: return "warning";
    case TK_EV_INFO: return "info";
    case TK_EV_DONE: return "done";
    }
    return "event";
}

/* The line is built with a sticky status: after a failed append (out of memory) nothing more is added and
 * the line is not written, so a line is never written with a part missing. */
typedef struct jline { tk_buf b; tk_status st; } jline;

static void japp(jline *l, const void *s, size_t n) { if (!l->st) l->st = tk_buf_append(&l->b, s, n); }

static void jfmt(jline *l, const char *fmt, ...) {
    if (l->st) return;
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) { l->st = tk_fail(TK_ERR_INTERNAL, "metrics: a field longer than %zu bytes", sizeof tmp); return; }
    japp(l, tmp, (size_t)n);
}

/* A double as JSON (null when not finite). */
static void jnum(jline *l, const char *key, double v, bool last) {
    if (isfinite(v)) jfmt(l, "\"%s\":%.17g%s", key, v, last ? "" : ",");
    else jfmt(l, "\"%s\":null%s", key, last ? "" : ",");
}

static void jstr(jline *l, const char *s) {
    japp(l, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\') { char e[2] = {'\\', (char)*p}; japp(l, e, 2); }
        else if (*p == '\n') japp(l, "\\n", 2);
        else if (*p < 0x20) jfmt(l, "\\u%04x", *p);
        else japp(l, p, 1);
    }
    japp(l, "\"", 1);
}

tk_status tk_metrics_write(tk_metrics *m, const tk_train_event *e, const char *event_name) {
    if (!m->fp) return tk_fail(TK_ERR_ARG, "metrics: file not open");
    jline l = {0};
    jfmt(&l, "{\"step\":%lld,", (long long)e->step);
    if (e->kind == TK_EV_STEP) {
        jnum(&l, "epoch", e->epoch, false);
        jnum(&l, "train_loss", e->train_loss, false);
        jnum(&l, "lr", e->lr, false);
        jnum(&l, "grad_norm", e->grad_norm, false);
        jfmt(&l, "\"tokens\":%lld,", (long long)e->tokens);
        jnum(&l, "tokens_per_s", e->tokens_per_s, false);
        jnum(&l, "step_s", e->step_s, false);
        jnum(&l, "elapsed_s", e->elapsed_s, false);
        for (int i = 0; i < e->n_metrics; i++) jnum(&l, e->metric_names[i], e->metrics[i], false);
        jnum(&l, "peak_rss_mb", e->peak_rss_mb, true);
    } else if (e->kind == TK_EV_EVAL) {
        jnum(&l, "epoch", e->epoch, false);
        jnum(&l, "valid_loss", e->valid_loss, false);
        jnum(&l, "valid_ppl", e->valid_ppl, false);
        jnum(&l, "valid_token_acc", e->valid_acc, false);
        for (int i = 0; i < e->n_metrics; i++) {
            char key[96];
            snprintf(key, sizeof key, "valid_%s", e->metric_names[i]);
            jnum(&l, key, e->metrics[i], false);
        }
        jfmt(&l, "\"valid_tokens\":%lld", (long long)e->valid_tokens);
    } else {
        japp(&l, "\"event\":", 8);
        jstr(&l, event_name ? event_name : kind_name(e->kind));
        japp(&l, ",\"message\":", 11);
        jstr(&l, e->message);
    }
    japp(&l, "}\n", 2);
    tk_status st = l.st;
    if (!st && (tk_io_fwrite(l.b.data, 1, l.b.len, m->fp) != l.b.len || fflush(m->fp) != 0))
        st = tk_fail(TK_ERR_IO, "%s: write failed: %s", m->path, strerror(errno));
    tk_buf_free(&l.b);
    return st;
}

/* Calls fn for every complete line that parses as a JSON object. */
static tk_status each_line(const char *path, bool *missing, void (*fn)(void *, const char *, size_t, cJSON *), void *ud) {
    char *data = NULL;
    size_t len = 0;
    *missing = false;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) { *missing = true; return TK_OK; }
        return tk_fail(TK_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    fclose(f);
    tk_status st = tk_read_file(path, &data, &len);
    if (st) return st;
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && data[j] != '\n') j++;
        if (j == len) break;          /* no newline: a line cut by a crash */
        data[j] = 0;
        cJSON *o = cJSON_ParseWithLength(data + i, j - i);
        if (o && cJSON_IsObject(o)) fn(ud, data + i, j - i, o);
        cJSON_Delete(o);
        i = j + 1;
    }
    free(data);
    return TK_OK;
}

typedef struct trunc_ctx { int64_t max_step; tk_buf out; } trunc_ctx;

static void trunc_line(void *ud, const char *line, size_t len, cJSON *o) {
    trunc_ctx *t = ud;
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "step");
    if (!cJSON_IsNumber(s) || s->valuedouble > (double)t->max_step) return;
    tk_buf_append(&t->out, line, len);
    tk_buf_append(&t->out, "\n", 1);
}

tk_status tk_metrics_truncate(const char *path, int64_t max_step) {
    trunc_ctx t = {.max_step = max_step};
    bool missing;
    tk_status st = each_line(path, &missing, trunc_line, &t);
    if (!st && !missing) st = tk_write_file_atomic(path, t.out.data ? t.out.data : "", t.out.len);
    tk_buf_free(&t.out);
    return st;
}

typedef struct read_ctx { tk_metrics_series *s; int64_t cap_t, cap_v, cap_e; bool oom; } read_ctx;

/* Grows each of the k arrays p[i] (element size sz[i]) to hold want entries when *cap < want. */
static bool grow(void **p[], const size_t *sz, int k, int64_t *cap, int64_t want) {
    if (want <= *cap) return true;
    int64_t c = *cap ? 2 * *cap : 64;
    for (int i = 0; i < k; i++) {
        void *q = realloc(*p[i], (size_t)c * sz[i]);
        if (!q) return false;
        *p[i] = q;
    }
    *cap = c;
    return true;
}

static double num(const cJSON *o, const char *k) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(j) ? j->valuedouble : NAN;
}

static void read_line(void *ud, const char *line, size_t len, cJSON *o) {
    (void)line; (void)len;
    read_ctx *r = ud;
    tk_metrics_series *s = r->s;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "step");
    if (!cJSON_IsNumber(st) || r->oom) return;
    int64_t step = (int64_t)st->valuedouble;
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(o, "event");
    const size_t D = sizeof(double), I = sizeof(int64_t), P = sizeof(char *);
    if (cJSON_GetObjectItemCaseSensitive(o, "train_loss")) {
        void **arr[5] = {(void **)&s->train_step, (void **)&s->train_loss, (void **)&s->lr, (void **)&s->tokens_per_s,
                         (void **)&s->peak_rss_mb};
        size_t sz[5] = {I, D, D, D, D};
        if (!grow(arr, sz, 5, &r->cap_t, s->n_train + 1)) { r->oom = true; return; }
        s->train_step[s->n_train] = step;
        s->train_loss[s->n_train] = num(o, "train_loss");
        s->lr[s->n_train] = num(o, "lr");
        s->tokens_per_s[s->n_train] = num(o, "tokens_per_s");
        s->peak_rss_mb[s->n_train] = num(o, "peak_rss_mb");
        s->n_train++;
    } else if (cJSON_GetObjectItemCaseSensitive(o, "valid_loss")) {
        void **arr[4] = {(void **)&s->valid_step, (void **)&s->valid_loss, (void **)&s->valid_ppl, (void **)&s->valid_acc};
        size_t sz[4] = {I, D, D, D};
        if (!grow(arr, sz, 4, &r->cap_v, s->n_valid + 1)) { r->oom = true; return; }
        s->valid_step[s->n_valid] = step;
        s->valid_loss[s->n_valid] = num(o, "valid_loss");
        s->valid_ppl[s->n_valid] = num(o, "valid_ppl");
        s->valid_acc[s->n_valid] = num(o, "valid_token_acc");
        s->n_valid++;
    } else if (cJSON_IsString(ev)) {
        void **arr[3] = {(void **)&s->event_step, (void **)&s->event_name, (void **)&s->event_msg};
        size_t sz[3] = {I, P, P};
        if (!grow(arr, sz, 3, &r->cap_e, s->n_events + 1)) { r->oom = true; return; }
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(o, "message");
        s->event_step[s->n_events] = step;
        s->event_name[s->n_events] = tk_strdup(ev->valuestring);
        s->event_msg[s->n_events] = tk_strdup(cJSON_IsString(msg) ? msg->valuestring : "");
        s->n_events++;
        if (!s->event_name[s->n_events - 1] || !s->event_msg[s->n_events - 1]) r->oom = true;
    }
}

tk_status tk_metrics_read(const char *path, tk_metrics_series *out) {
    memset(out, 0, sizeof *out);
    read_ctx r = {.s = out};
    bool missing;
    tk_status st = each_line(path, &missing, read_line, &r);
    if (!st && r.oom) st = tk_fail(TK_ERR_NOMEM, "%s: out of memory reading metrics", path);
    if (st) tk_metrics_series_free(out);
    return st;
}

void tk_metrics_series_free(tk_metrics_series *s) {
    if (!s) return;
    free(s->train_step); free(s->train_loss); free(s->lr); free(s->tokens_per_s); free(s->peak_rss_mb);
    free(s->valid_step); free(s->valid_loss); free(s->valid_ppl); free(s->valid_acc);
    for (int64_t i = 0; i < s->n_events; i++) { free(s->event_name[i]); free(s->event_msg[i]); }
    free(s->event_step); free(s->event_name); free(s->event_msg);
    memset(s, 0, sizeof *s);
}

void tk_duration_format(double s, char *buf, size_t n) {
    if (!isfinite(s) || s < 0) { snprintf(buf, n, "?"); return; }
    long long t = (long long)(s + 0.5);
    if (t < 60) snprintf(buf, n, "%llds", t);
    else if (t < 3600) snprintf(buf, n, "%lldm%02llds", t / 60, t % 60);
    else snprintf(buf, n, "%lldh%02lldm", t / 3600, (t % 3600) / 60);
}

void tk_progress_format(const tk_train_event *e, char *buf, size_t n) {
    char eta[32];
    tk_duration_format(e->eta_s, eta, sizeof eta);
    snprintf(buf, n, "step %lld/%lld · epoch %.2f/%lld · loss %.4f · lr %.2e · %.0f tok/s · ETA %s · %.0f MiB",
             (long long)e->step, (long long)e->total_steps, e->epoch, (long long)e->n_epochs, e->train_loss, e->lr,
             e->tokens_per_s, eta, e->peak_rss_mb);
}
