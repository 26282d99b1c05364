/* Fine-tuning jobs' events and checkpoints in takumi.db (schema in keys.c), listed newest first as
 * OpenAI's "fine_tuning.job.event" and "fine_tuning.job.checkpoint" objects. */
#include "serve/store_sql.h"
#include "core/core.h"
#include <stdio.h>
#include <time.h>
#include <unistd.h>

/* ---- events and checkpoints ---- */
tk_status srv_event_add(srv_keys *k, const char *job, const char *level, const char *type, const char *message, const char *data) {
    pthread_mutex_lock(&k->mu);
    tk_status st = srv_sql_done(k, srv_sql_prep(k->db, "INSERT INTO events(job_id, created_at, level, type, message, data) VALUES(?1,?2,?3,?4,?5,?6)",
                                     "sissss", job, (int64_t)time(NULL), level, type, message, data), "cannot store an event");
    pthread_mutex_unlock(&k->mu);
    return st;
}

static cJSON *event_obj(sqlite3_stmt *q, void *ud) {
    (void)ud;
    cJSON *o = cJSON_CreateObject();
    char id[40];
    snprintf(id, sizeof id, "ftevent-%lld", (long long)sqlite3_column_int64(q, 0));
    cJSON_AddStringToObject(o, "object", "fine_tuning.job.event");
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddNumberToObject(o, "created_at", (double)sqlite3_column_int64(q, 1));
    cJSON_AddStringToObject(o, "level", (const char *)sqlite3_column_text(q, 2));
    cJSON_AddStringToObject(o, "message", (const char *)sqlite3_column_text(q, 4));
    const unsigned char *d = sqlite3_column_text(q, 5);
    cJSON *data = d ? cJSON_Parse((const char *)d) : NULL;
    cJSON_AddItemToObject(o, "data", data ? data : cJSON_CreateObject());
    cJSON_AddStringToObject(o, "type", (const char *)sqlite3_column_text(q, 3));
    return o;
}

int64_t srv_sql_cursor(const char *after, const char *prefix) {
    size_t n = strlen(prefix);
    if (!after || strncmp(after, prefix, n)) return 0;
    char *end = NULL;
    long long v = strtoll(after + n, &end, 10);
    return end && !*end && v > 0 ? v : 0;
}

tk_status srv_events_list_json(srv_keys *k, const char *job, const char *after, int limit, tk_buf *out) {
    pthread_mutex_lock(&k->mu);
    sqlite3_stmt *q = srv_sql_prep(k->db, "SELECT seq, created_at, level, type, message, data FROM events WHERE job_id = ?1 AND (?2 = 0 OR seq < ?2)"
                                  " ORDER BY seq DESC", "si", job, srv_sql_cursor(after, "ftevent-"));
    tk_status st = srv_sql_list(k, q, limit, event_obj, NULL, out);
    pthread_mutex_unlock(&k->mu);
    return st;
}

tk_status srv_checkpoint_add(srv_keys *k, const char *job, int64_t step, const char *metrics, const char *path) {
    pthread_mutex_lock(&k->mu);
    tk_status st = srv_sql_done(k, srv_sql_prep(k->db, "INSERT INTO checkpoints(job_id, step, created_at, metrics, path) VALUES(?1,?2,?3,?4,?5)",
                                     "siiss", job, step, (int64_t)time(NULL), metrics, path), "cannot store a checkpoint");
    pthread_mutex_unlock(&k->mu);
    return st;
}

typedef struct { const char *job, *model; } ckpt_ctx;
static cJSON *checkpoint_obj(sqlite3_stmt *q, void *ud) {
    const ckpt_ctx *c = ud;
    cJSON *o = cJSON_CreateObject();
    char id[40], name[SRV_MAX_ID + 32];
    int64_t step = sqlite3_column_int64(q, 1);
    snprintf(id, sizeof id, "ftckpt-%lld", (long long)sqlite3_column_int64(q, 0));
    snprintf(name, sizeof name, "%s:ckpt-step-%lld", c->model, (long long)step);
    cJSON_AddStringToObject(o, "object", "fine_tuning.job.checkpoint");
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddNumberToObject(o, "created_at", (double)sqlite3_column_int64(q, 2));
    cJSON_AddStringToObject(o, "fine_tuned_model_checkpoint", name);
    cJSON_AddStringToObject(o, "fine_tuning_job_id", c->job);
    const unsigned char *m = sqlite3_column_text(q, 3);
    cJSON *metrics = m ? cJSON_Parse((const char *)m) : NULL;
    cJSON_AddItemToObject(o, "metrics", metrics ? metrics : cJSON_CreateObject());
    cJSON_AddNumberToObject(o, "step_number", (double)step);
    return o;
}

tk_status srv_checkpoints_list_json(srv_keys *k, const char *job, const char *model, const char *after, int limit, tk_buf *out) {
    ckpt_ctx c = {job, model};
    pthread_mutex_lock(&k->mu);
    sqlite3_stmt *q = srv_sql_prep(k->db, "SELECT seq, step, created_at, metrics FROM checkpoints WHERE job_id = ?1 AND (?2 = 0 OR seq < ?2)"
                                  " ORDER BY seq DESC", "si", job, srv_sql_cursor(after, "ftckpt-"));
    tk_status st = srv_sql_list(k, q, limit, checkpoint_obj, &c, out);
    pthread_mutex_unlock(&k->mu);
    return st;
}

tk_status srv_checkpoints_each(srv_keys *k, void (*fn)(const char *job, int64_t step, const char *path, int64_t created, void *ud), void *ud) {
    typedef struct { char job[40], *path; int64_t step, created; } row;
    row *rows = NULL;
    size_t n = 0, cap = 0;
    tk_status st = TK_OK;
    pthread_mutex_lock(&k->mu);
    sqlite3_stmt *q = srv_sql_prep(k->db, "SELECT job_id, step, path, created_at FROM checkpoints ORDER BY seq", "");
    if (!q) st = srv_sql_err(k, "cannot read the checkpoints");
    while (!st && sqlite3_step(q) == SQLITE_ROW) {
        if (n == cap) {
            row *g = tk_realloc(rows, sizeof *rows * (cap = cap ? 2 * cap : 16));
            if (!g) { st = TK_ERR_NOMEM; break; }
            rows = g;
        }
        srv_sql_text(q, 0, rows[n].job, sizeof rows[n].job);
        rows[n].step = sqlite3_column_int64(q, 1);
        rows[n].created = sqlite3_column_int64(q, 3);
        if (!(rows[n].path = tk_strdup(sqlite3_column_text(q, 2) ? (const char *)sqlite3_column_text(q, 2) : ""))) { st = TK_ERR_NOMEM; break; }
        n++;
    }
    sqlite3_finalize(q);
    pthread_mutex_unlock(&k->mu);
    for (size_t i = 0; i < n; i++) {
        if (!st) fn(rows[i].job, rows[i].step, rows[i].path, rows[i].created, ud);
        free(rows[i].path);
    }
    free(rows);
    return st;
}

tk_status srv_checkpoints_prune(srv_keys *k, const char *job) {
    pthread_mutex_lock(&k->mu);
    sqlite3_stmt *q = srv_sql_prep(k->db, "SELECT seq, path FROM checkpoints WHERE job_id = ?1", "s", job);
    int64_t gone[64];
    int n = 0;
    while (q && n < 64 && sqlite3_step(q) == SQLITE_ROW) {
        const unsigned char *p = sqlite3_column_text(q, 1);
        if (!p || access((const char *)p, F_OK)) gone[n++] = sqlite3_column_int64(q, 0);
    }
    sqlite3_finalize(q);
    tk_status st = q ? TK_OK : srv_sql_err(k, "cannot read the checkpoints");
    for (int i = 0; i < n && !st; i++) st = srv_sql_done(k, srv_sql_prep(k->db, "DELETE FROM checkpoints WHERE seq = ?1", "i", gone[i]), "cannot prune a checkpoint");
    pthread_mutex_unlock(&k->mu);
    return st;
}
