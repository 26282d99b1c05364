/* Files, fine-tuning jobs, their events and checkpoints in DATA_DIR/takumi.db (schema in keys.c),
 * and their JSON objects as OpenAI's API reference shapes them. Every statement runs under the keys'
 * mutex on their connection; lists are newest first with OpenAI's `after` cursor and has_more. */
#include "serve/server.h"
#include "serve/store_sql.h"
#include "core/core.h"
#include "data/data_internal.h"
#include <cjson/cJSON.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

char *srv_file_path(const tk_server *s, const char *id) {
    char name[64];
    snprintf(name, sizeof name, "files/%s", id);
    return tk_path_join(s->p.data_dir, name);
}

char *srv_job_dir(const tk_server *s, const char *id) {
    char name[64];
    snprintf(name, sizeof name, "jobs/%s", id);
    return tk_path_join(s->p.data_dir, name);
}

/* Prepares sql and binds the arguments: fmt has one letter per parameter: s text (NULL -> null), i int64, d double. */
sqlite3_stmt *srv_sql_prep(sqlite3 *db, const char *sql, const char *fmt, ...) {
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK) return NULL;
    va_list ap;
    va_start(ap, fmt);
    int rc = SQLITE_OK;
    for (int i = 0; fmt[i] && rc == SQLITE_OK; i++) {
        if (fmt[i] == 's') {
            const char *v = va_arg(ap, const char *);
            rc = v ? sqlite3_bind_text(q, i + 1, v, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(q, i + 1);
        } else if (fmt[i] == 'i') rc = sqlite3_bind_int64(q, i + 1, va_arg(ap, int64_t));
        else rc = sqlite3_bind_double(q, i + 1, va_arg(ap, double));
    }
    va_end(ap);
    if (rc != SQLITE_OK) { sqlite3_finalize(q); return NULL; }
    return q;
}

tk_status srv_sql_err(srv_keys *k, const char *what) {
    return tk_fail(TK_ERR_IO, "takumi.db: %s: %s", what, sqlite3_errmsg(k->db));
}

/* Runs a statement that returns no rows. */
tk_status srv_sql_done(srv_keys *k, sqlite3_stmt *q, const char *what) {
    tk_status st = q && sqlite3_step(q) == SQLITE_DONE ? TK_OK : srv_sql_err(k, what);
    sqlite3_finalize(q);
    return st;
}

void srv_sql_text(sqlite3_stmt *q, int i, char *out, size_t n) {
    const unsigned char *t = sqlite3_column_text(q, i);
    snprintf(out, n, "%s", t ? (const char *)t : "");
}

tk_status srv_sql_print(cJSON *root, tk_buf *out) {
    tk_status st = root ? tk_json_append_value(out, root) : TK_ERR_NOMEM;
    cJSON_Delete(root);
    return st;
}

/* ---- files ---- */
tk_status srv_file_insert(srv_keys *k, const srv_file *f) {
    pthread_mutex_lock(&k->mu);
    tk_status st = srv_sql_done(k, srv_sql_prep(k->db, "INSERT INTO files(id, owner, bytes, created_at, filename, purpose) VALUES(?1,?2,?3,?4,?5,?6)",
                                     "ssiiss", f->id, f->owner, f->bytes, f->created_at, f->filename, f->purpose), "cannot store the file");
    pthread_mutex_unlock(&k->mu);
    return st;
}

#define FILE_COLS "id, owner, bytes, created_at, filename, purpose"
static void file_row(sqlite3_stmt *q, srv_file *f) {
    srv_sql_text(q, 0, f->id, sizeof f->id);
    srv_sql_text(q, 1, f->owner, sizeof f->owner);
    f->bytes = sqlite3_column_int64(q, 2);
    f->created_at = sqlite3_column_int64(q, 3);
    srv_sql_text(q, 4, f->filename, sizeof f->filename);
    srv_sql_text(q, 5, f->purpose, sizeof f->purpose);
}

/* One row by id, the caller's (or any for admin): 1 and fill(q, out) when found, 0 when not, -1 on a database error. */
static int find_row(srv_keys *k, const char *sql, const char *id, const char *owner, bool admin, void (*fill)(sqlite3_stmt *, void *), void *out) {
    pthread_mutex_lock(&k->mu);
    sqlite3_stmt *q = srv_sql_prep(k->db, sql, "ssi", id, owner ? owner : "", (int64_t)admin);
    int rc = q ? sqlite3_step(q) : SQLITE_ERROR;
    int found = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
    if (found < 0) srv_sql_err(k, "cannot read a row");
    if (found == 1 && out) fill(q, out);
    sqlite3_finalize(q);
    pthread_mutex_unlock(&k->mu);
    return found;
}

static void fill_file(sqlite3_stmt *q, void *out) { file_row(q, out); }

int srv_file_find(srv_keys *k, const char *id, const char *owner, bool admin, srv_file *f) {
    return find_row(k, "SELECT " FILE_COLS " FROM files WHERE id = ?1 AND (owner = ?2 OR ?3)", id, owner, admin, fill_file, f);
}

tk_status srv_file_delete_row(srv_keys *k, const char *id) {
    pthread_mutex_lock(&k->mu);
    tk_status st = srv_sql_done(k, srv_sql_prep(k->db, "DELETE FROM files WHERE id = ?1", "s", id), "cannot delete the file");
    pthread_mutex_unlock(&k->mu);
    return st;
}

static cJSON *file_obj(const srv_file *f) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", f->id);
    cJSON_AddStringToObject(o, "object", "file");
    cJSON_AddNumberToObject(o, "bytes", (double)f->bytes);
    cJSON_AddNumberToObject(o, "created_at", (double)f->created_at);
    cJSON_AddNullToObject(o, "expires_at");
    cJSON_AddStringToObject(o, "filename", f->filename);
    cJSON_AddStringToObject(o, "purpose", f->purpose);
    cJSON_AddStringToObject(o, "status", "processed");
    cJSON_AddNullToObject(o, "status_details");
    return o;
}

tk_status srv_file_json(const srv_file *f, tk_buf *out) { return srv_sql_print(file_obj(f), out); }

/* A list object over the rows of q (each made by row()), at most limit of them; has_more when q has more. */
tk_status srv_sql_list(srv_keys *k, sqlite3_stmt *q, int limit, cJSON *(*row)(sqlite3_stmt *, void *), void *ud, tk_buf *out) {
    if (!q) return srv_sql_err(k, "cannot list");
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(root, "data");
    int n = 0, rc;
    bool more = false;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (n == limit) { more = true; break; }
        cJSON_AddItemToArray(data, row(q, ud));
        n++;
    }
    tk_status st = rc == SQLITE_ROW || rc == SQLITE_DONE ? TK_OK : srv_sql_err(k, "cannot list");
    sqlite3_finalize(q);
    const cJSON *first = cJSON_GetArrayItem(data, 0), *last = cJSON_GetArrayItem(data, n - 1);
    const cJSON *fid = cJSON_GetObjectItemCaseSensitive(first, "id"), *lid = cJSON_GetObjectItemCaseSensitive(last, "id");
    if (fid) cJSON_AddStringToObject(root, "first_id", fid->valuestring); else cJSON_AddNullToObject(root, "first_id");
    if (lid) cJSON_AddStringToObject(root, "last_id", lid->valuestring); else cJSON_AddNullToObject(root, "last_id");
    cJSON_AddBoolToObject(root, "has_more", more);
    if (st) { cJSON_Delete(root); return st; }
    return srv_sql_print(root, out);
}

static cJSON *file_list_row(sqlite3_stmt *q, void *ud) {
    (void)ud;
    srv_file f;
    file_row(q, &f);
    return file_obj(&f);
}

tk_status srv_files_list_json(srv_keys *k, const char *owner, bool admin, const char *after, int limit, tk_buf *out) {
    pthread_mutex_lock(&k->mu);
    sqlite3_stmt *q = srv_sql_prep(k->db, "SELECT " FILE_COLS " FROM files WHERE (owner = ?1 OR ?2) AND (?3 IS NULL OR rowid < "
                                  "(SELECT rowid FROM files WHERE id = ?3)) ORDER BY rowid DESC", "sis", owner, (int64_t)admin, after);
    tk_status st = srv_sql_list(k, q, limit, file_list_row, NULL, out);
    pthread_mutex_unlock(&k->mu);
    return st;
}

/* ---- jobs ---- */
tk_status srv_job_insert(srv_keys *k, const srv_job_row *j, const char *metadata, const char *grader) {
    pthread_mutex_lock(&k->mu);
    tk_status st = srv_sql_done(k, srv_sql_prep(k->db, "INSERT INTO jobs(id, owner, model, training_file, validation_file, suffix, seed, metadata, method,"
                                            " n_epochs, batch_size, lr_mult, beta, status, created_at, eval_interval, grader)"
                                            " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17)",
                                     "ssssssissiiddsiis", j->id, j->owner, j->model, j->training_file, j->validation_file[0] ? j->validation_file : NULL,
                                     j->suffix, j->seed, metadata, j->method, j->n_epochs, j->batch_size, j->lr_mult, j->beta, j->status, j->created_at,
                                     j->eval_interval, grader),
                             "cannot store the job");
    pthread_mutex_unlock(&k->mu);
    return st;
}

tk_status srv_job_grader(srv_keys *k, const char *id, char **out) {
    *out = NULL;
    pthread_mutex_lock(&k->mu);
    sqlite3_stmt *q = srv_sql_prep(k->db, "SELECT grader FROM jobs WHERE id = ?1", "s", id);
    tk_status st = q ? TK_OK : srv_sql_err(k, "cannot read the job's grader");
    if (q && sqlite3_step(q) == SQLITE_ROW && sqlite3_column_type(q, 0) != SQLITE_NULL && !(*out = tk_strdup((const char *)sqlite3_column_text(q, 0))))
        st = TK_ERR_NOMEM;
    sqlite3_finalize(q);
    pthread_mutex_unlock(&k->mu);
    return st;
}

tk_status srv_job_add_cpu(srv_keys *k, const char *id, double seconds) {
    pthread_mutex_lock(&k->mu);
    tk_status st = srv_sql_done(k, srv_sql_prep(k->db, "UPDATE jobs SET cpu_seconds = cpu_seconds + ?2 WHERE id = ?1", "sd", id, seconds),
                                "cannot count the job's CPU time");
    pthread_mutex_unlock(&k->mu);
    return st;
}

#define JOB_COLS "id, owner, model, training_file, validation_file, suffix, seed, method, n_epochs, batch_size, lr_mult, beta, status," \
                 " created_at, fine_tuned_model, metadata, finished_at, error_code, error_message, trained_tokens, hypers, eval_interval, grader"
static void job_row(sqlite3_stmt *q, srv_job_row *j) {
    memset(j, 0, sizeof *j);
    srv_sql_text(q, 0, j->id, sizeof j->id);
    srv_sql_text(q, 1, j->owner, sizeof j->owner);
    srv_sql_text(q, 2, j->model, sizeof j->model);
    srv_sql_text(q, 3, j->training_file, sizeof j->training_file);
    srv_sql_text(q, 4, j->validation_file, sizeof j->validation_file);
    srv_sql_text(q, 5, j->suffix, sizeof j->suffix);
    j->seed = sqlite3_column_int64(q, 6);
    srv_sql_text(q, 7, j->method, sizeof j->method);
    j->n_epochs = sqlite3_column_int64(q, 8);
    j->batch_size = sqlite3_column_int64(q, 9);
    j->lr_mult = sqlite3_column_double(q, 10);
    j->beta = sqlite3_column_double(q, 11);
    srv_sql_text(q, 12, j->status, sizeof j->status);
    j->created_at = sqlite3_column_int64(q, 13);
    srv_sql_text(q, 14, j->fine_tuned_model, sizeof j->fine_tuned_model);
    j->eval_interval = sqlite3_column_int64(q, 21);
}

static void fill_job(sqlite3_stmt *q, void *out) { job_row(q, out); }

int srv_job_find(srv_keys *k, const char *id, const char *owner, bool admin, srv_job_row *j) {
    return find_row(k, "SELECT " JOB_COLS " FROM jobs WHERE id = ?1 AND (owner = ?2 OR ?3)", id, owner, admin, fill_job, j);
}

/* A hyperparameter as the job shows it: the resolved value when known, else "auto" or the value asked for. */
static void add_hyper(cJSON *h, const cJSON *resolved, const char *name, double asked) {
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(resolved, name);
    if (cJSON_IsNumber(r)) cJSON_AddNumberToObject(h, name, r->valuedouble);
    else if (asked > 0) cJSON_AddNumberToObject(h, name, asked);
    else cJSON_AddStringToObject(h, name, "auto");
}

static cJSON *job_obj(sqlite3_stmt *q, void *ud) {
    (void)ud;
    srv_job_row j;
    job_row(q, &j);
    cJSON *o = cJSON_CreateObject(), *resolved = NULL;
    const unsigned char *hy = sqlite3_column_text(q, 20);
    if (hy) resolved = cJSON_Parse((const char *)hy);
    cJSON_AddStringToObject(o, "object", "fine_tuning.job");
    cJSON_AddStringToObject(o, "id", j.id);
    cJSON_AddStringToObject(o, "model", j.model);
    cJSON_AddNumberToObject(o, "created_at", (double)j.created_at);
    if (sqlite3_column_type(q, 16) == SQLITE_NULL) cJSON_AddNullToObject(o, "finished_at");
    else cJSON_AddNumberToObject(o, "finished_at", (double)sqlite3_column_int64(q, 16));
    if (j.fine_tuned_model[0]) cJSON_AddStringToObject(o, "fine_tuned_model", j.fine_tuned_model); else cJSON_AddNullToObject(o, "fine_tuned_model");
    cJSON_AddStringToObject(o, "organization_id", j.owner);
    cJSON_AddArrayToObject(o, "result_files");
    cJSON_AddStringToObject(o, "status", j.status);
    cJSON_AddStringToObject(o, "training_file", j.training_file);
    if (j.validation_file[0]) cJSON_AddStringToObject(o, "validation_file", j.validation_file); else cJSON_AddNullToObject(o, "validation_file");
    cJSON *h = cJSON_AddObjectToObject(o, "hyperparameters");
    add_hyper(h, resolved, "n_epochs", (double)j.n_epochs);
    add_hyper(h, resolved, "batch_size", (double)j.batch_size);
    add_hyper(h, resolved, "learning_rate_multiplier", j.lr_mult);
    bool dpo = !strcmp(j.method, "dpo");
    if (dpo) add_hyper(h, resolved, "beta", j.beta);
    bool rft = !strcmp(j.method, "reinforcement");
    int64_t tt = sqlite3_column_int64(q, 19);
    if (tt > 0 || !strcmp(j.status, "succeeded")) cJSON_AddNumberToObject(o, "trained_tokens", (double)tt); else cJSON_AddNullToObject(o, "trained_tokens");
    cJSON_AddArrayToObject(o, "integrations");
    cJSON_AddNumberToObject(o, "seed", (double)j.seed);
    cJSON_AddNullToObject(o, "estimated_finish");
    cJSON *m = cJSON_AddObjectToObject(o, "method");
    cJSON_AddStringToObject(m, "type", j.method);
    cJSON *mo = cJSON_AddObjectToObject(m, j.method);
    const unsigned char *gr = rft ? sqlite3_column_text(q, 22) : NULL;
    cJSON *grader = gr ? cJSON_Parse((const char *)gr) : NULL;
    if (grader) cJSON_AddItemToObject(mo, "grader", grader);
    cJSON *mh = cJSON_Duplicate(h, true);
    cJSON_AddItemToObject(mo, "hyperparameters", mh);
    if (rft) {   /* the method's own hyperparameters (the top-level object keeps the three of every method) */
        add_hyper(mh, resolved, "eval_interval", (double)j.eval_interval);
        cJSON_AddStringToObject(mh, "eval_samples", "auto");
        cJSON_AddStringToObject(mh, "compute_multiplier", "auto");
        cJSON_AddStringToObject(mh, "reasoning_effort", "default");
    }
    const unsigned char *md = sqlite3_column_text(q, 15);
    cJSON *meta = md ? cJSON_Parse((const char *)md) : NULL;
    if (meta && cJSON_GetArraySize(meta) > 0) cJSON_AddItemToObject(o, "metadata", meta);
    else { cJSON_Delete(meta); cJSON_AddNullToObject(o, "metadata"); }
    if (sqlite3_column_type(q, 17) == SQLITE_NULL) cJSON_AddNullToObject(o, "error");
    else {
        cJSON *e = cJSON_AddObjectToObject(o, "error");
        cJSON_AddStringToObject(e, "code", (const char *)sqlite3_column_text(q, 17));
        const unsigned char *msg = sqlite3_column_text(q, 18);
        cJSON_AddStringToObject(e, "message", msg ? (const char *)msg : "");
        cJSON_AddNullToObject(e, "param");
    }
    cJSON_Delete(resolved);
    return o;
}

bool srv_job_json(srv_keys *k, const char *id, tk_buf *out) {
    pthread_mutex_lock(&k->mu);
    sqlite3_stmt *q = srv_sql_prep(k->db, "SELECT " JOB_COLS " FROM jobs WHERE id = ?1", "s", id);
    bool ok = q && sqlite3_step(q) == SQLITE_ROW && srv_sql_print(job_obj(q, NULL), out) == TK_OK;
    sqlite3_finalize(q);
    pthread_mutex_unlock(&k->mu);
    return ok;
}

tk_status srv_jobs_list_json(srv_keys *k, const char *owner, bool admin, const char *after, int limit, tk_buf *out) {
    pthread_mutex_lock(&k->mu);
    sqlite3_stmt *q = srv_sql_prep(k->db, "SELECT " JOB_COLS " FROM jobs WHERE (owner = ?1 OR ?2) AND (?3 IS NULL OR rowid < "
                                  "(SELECT rowid FROM jobs WHERE id = ?3)) ORDER BY rowid DESC", "sis", owner, (int64_t)admin, after);
    tk_status st = srv_sql_list(k, q, limit, job_obj, NULL, out);
    pthread_mutex_unlock(&k->mu);
    return st;
}

tk_status srv_job_set_status(srv_keys *k, const char *id, const char *status, bool finished, const char *model,
                             const char *err_code, const char *err_msg, int64_t trained_tokens, const char *hypers) {
    pthread_mutex_lock(&k->mu);
    tk_status st = srv_sql_done(k, srv_sql_prep(k->db, "UPDATE jobs SET status = ?2, finished_at = CASE WHEN ?3 THEN ?4 ELSE finished_at END,"
                                            " fine_tuned_model = COALESCE(?5, fine_tuned_model), error_code = COALESCE(?6, error_code),"
                                            " error_message = COALESCE(?7, error_message),"
                                            " trained_tokens = CASE WHEN ?8 >= 0 THEN ?8 ELSE trained_tokens END, hypers = COALESCE(?9, hypers)"
                                            " WHERE id = ?1",
                                     "ssiisssis", id, status, (int64_t)finished, (int64_t)time(NULL), model, err_code, err_msg, trained_tokens, hypers),
                             "cannot update the job");
    pthread_mutex_unlock(&k->mu);
    return st;
}

bool srv_job_next(srv_keys *k, const char *st, char out[40]) {
    pthread_mutex_lock(&k->mu);
    sqlite3_stmt *q = srv_sql_prep(k->db, "SELECT id FROM jobs WHERE status = ?1 ORDER BY rowid LIMIT 1", "s", st);
    bool ok = q && sqlite3_step(q) == SQLITE_ROW;
    if (ok) srv_sql_text(q, 0, out, 40);
    sqlite3_finalize(q);
    pthread_mutex_unlock(&k->mu);
    return ok;
}

int64_t srv_jobs_count(srv_keys *k, const char *st) {
    pthread_mutex_lock(&k->mu);
    sqlite3_stmt *q = srv_sql_prep(k->db, "SELECT COUNT(*) FROM jobs WHERE status = ?1", "s", st);
    int64_t n = q && sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
    sqlite3_finalize(q);
    pthread_mutex_unlock(&k->mu);
    return n;
}

tk_status srv_jobs_each(srv_keys *k, const char *st, void (*fn)(const srv_job_row *j, void *ud), void *ud) {
    /* rows are read first, the callback runs without the lock (it may write) */
    srv_job_row *rows = NULL;
    size_t n = 0, cap = 0;
    tk_status s = TK_OK;
    pthread_mutex_lock(&k->mu);
    sqlite3_stmt *q = srv_sql_prep(k->db, "SELECT " JOB_COLS " FROM jobs WHERE status = ?1 ORDER BY rowid", "s", st);
    if (!q) s = srv_sql_err(k, "cannot read the jobs");
    while (!s && sqlite3_step(q) == SQLITE_ROW) {
        if (n == cap) {
            void *g = tk_realloc(rows, sizeof *rows * (cap = cap ? cap * 2 : 16));
            if (!g) { s = TK_ERR_NOMEM; break; }
            rows = g;
        }
        job_row(q, &rows[n++]);
    }
    sqlite3_finalize(q);
    pthread_mutex_unlock(&k->mu);
    for (size_t i = 0; i < n && !s; i++) fn(&rows[i], ud);
    free(rows);
    return s;
}
