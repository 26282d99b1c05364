/* Per-key limits and usage. A stored key may carry a rate (rpm: chat/completion requests per minute, a token
 * bucket of rpm requests refilled at rpm/60 per second, kept in memory) and a token budget (prompt + completion
 * tokens over the key's life, counted in table usage per key and model, so it survives restarts). Over either,
 * a generation request gets 429 with OpenAI's error shapes (rate_limit_exceeded with Retry-After, or
 * insufficient_quota); the budget is checked before a request, so the last one may end past it. Keys of
 * --api-key-file and a server without keys have no limits. Admin endpoints: GET /v1/keys (keys, limits, tokens
 * used), POST /v1/keys/{id}/limits, GET /v1/usage (tokens per key and model, trained tokens per key, CPU seconds of
 * requests and jobs). */
#include "serve/server.h"
#include "serve/store_sql.h"
#include "core/core.h"
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* The row id of a stored key's owner name "key<N>"; 0 for other owners (key files, "local"). */
static int64_t key_row(const char *owner) {
    if (strncmp(owner, "key", 3) || owner[3] < '1' || owner[3] > '9') return 0;
    char *end = NULL;
    long long v = strtoll(owner + 3, &end, 10);
    return *end ? 0 : (int64_t)v;
}

void srv_limits_init(srv_limits *l) {
    memset(l, 0, sizeof *l);
    pthread_mutex_init(&l->mu, NULL);
}

void srv_limits_destroy(srv_limits *l) {
    free(l->b);
    pthread_mutex_destroy(&l->mu);
}

/* Takes one request from owner's bucket of rpm; 0, or the seconds to wait for the next one. */
static int take(srv_limits *l, const char *owner, int64_t rpm) {
    double now = tk_time_s();
    pthread_mutex_lock(&l->mu);
    int i = 0;
    while (i < l->n && strcmp(l->b[i].owner, owner)) i++;
    if (i == l->n) {
        if (l->n == l->cap) {
            int cap = l->cap ? l->cap * 2 : 16;
            void *g = realloc(l->b, sizeof *l->b * (size_t)cap);
            if (!g) { pthread_mutex_unlock(&l->mu); return 0; } /* out of memory: not limited rather than refused */
            l->b = g, l->cap = cap;
        }
        snprintf(l->b[i].owner, sizeof l->b[i].owner, "%s", owner);
        l->b[i].tokens = (double)rpm, l->b[i].last = now;
        l->n++;
    }
    double t = l->b[i].tokens + (now - l->b[i].last) * (double)rpm / 60.0;
    if (t > (double)rpm) t = (double)rpm;
    l->b[i].last = now;
    int wait = 0;
    if (t >= 1) t -= 1;
    else wait = (int)ceil((1 - t) * 60.0 / (double)rpm);
    l->b[i].tokens = t;
    pthread_mutex_unlock(&l->mu);
    return wait;
}

int srv_limits_check(tk_server *s, const char *owner, int *retry_after, srv_error *e) {
    *retry_after = 0;
    int64_t id = key_row(owner);
    if (!id) return 0;
    srv_keys *k = &s->keys;
    int64_t rpm = 0, budget = 0, used = 0;
    pthread_mutex_lock(&k->mu);
    sqlite3_stmt *q = srv_sql_prep(k->db, "SELECT rpm, token_budget, (SELECT coalesce(sum(tokens_in + tokens_out), 0) FROM usage WHERE owner = ?2)"
                                          " FROM api_keys WHERE id = ?1", "is", id, owner);
    int rc = q ? sqlite3_step(q) : SQLITE_ERROR;
    if (rc == SQLITE_ROW) rpm = sqlite3_column_int64(q, 0), budget = sqlite3_column_int64(q, 1), used = sqlite3_column_int64(q, 2);
    else if (rc != SQLITE_DONE) srv_sql_err(k, "cannot read the key's limits");
    sqlite3_finalize(q);
    pthread_mutex_unlock(&k->mu);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return srv_err(e, 500, "server_error", NULL, NULL, "%.400s", tk_last_error());
    if (budget > 0 && used >= budget)
        return srv_err(e, 429, "insufficient_quota", "insufficient_quota", NULL,
                       "You exceeded your current quota: this key's token budget is %lld tokens and %lld are used "
                       "(an admin raises it with POST /v1/keys/%s/limits).", (long long)budget, (long long)used, owner);
    if (rpm > 0 && (*retry_after = take(&s->limits, owner, rpm)) > 0)
        return srv_err(e, 429, "requests", "rate_limit_exceeded", NULL,
                       "Rate limit reached for requests on key %s: limit %lld requests per minute. Please try again in %ds.",
                       owner, (long long)rpm, *retry_after);
    return 0;
}

double srv_thread_cpu_s(void) {
    struct timespec ts;
    return clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) ? 0 : (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void srv_usage_add(tk_server *s, const char *owner, const char *model, int64_t in, int64_t out, double cpu_s) {
    srv_keys *k = &s->keys;
    pthread_mutex_lock(&k->mu);
    tk_status st = srv_sql_done(k, srv_sql_prep(k->db, "INSERT INTO usage(owner, model, requests, tokens_in, tokens_out, cpu_seconds) VALUES(?1,?2,1,?3,?4,?5)"
                                                " ON CONFLICT(owner, model) DO UPDATE SET requests = requests + 1, tokens_in = tokens_in + ?3,"
                                                " tokens_out = tokens_out + ?4, cpu_seconds = cpu_seconds + ?5", "ssiid", owner, model, in, out, cpu_s),
                                "cannot count the usage");
    pthread_mutex_unlock(&k->mu);
    if (st) srv_log(s, "usage: %s", tk_last_error());
}

static cJSON *usage_row(sqlite3_stmt *q, void *ud) {
    (void)ud;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "usage");
    cJSON_AddStringToObject(o, "key", (const char *)sqlite3_column_text(q, 0));
    cJSON_AddStringToObject(o, "model", (const char *)sqlite3_column_text(q, 1));
    cJSON_AddNumberToObject(o, "requests", (double)sqlite3_column_int64(q, 2));
    cJSON_AddNumberToObject(o, "prompt_tokens", (double)sqlite3_column_int64(q, 3));
    cJSON_AddNumberToObject(o, "completion_tokens", (double)sqlite3_column_int64(q, 4));
    cJSON_AddNumberToObject(o, "total_tokens", (double)(sqlite3_column_int64(q, 3) + sqlite3_column_int64(q, 4)));
    cJSON_AddNumberToObject(o, "trained_tokens", (double)sqlite3_column_int64(q, 5));
    /* CPU seconds: of the generations (each request's thread) and of the fine-tuning jobs (the job thread) */
    double rc = sqlite3_column_double(q, 6), jc = sqlite3_column_double(q, 7);
    cJSON_AddNumberToObject(o, "cpu_seconds", round((rc + jc) * 1e6) / 1e6);   /* microseconds: what the clock resolves usefully */
    cJSON_AddNumberToObject(o, "request_cpu_seconds", round(rc * 1e6) / 1e6);
    cJSON_AddNumberToObject(o, "training_cpu_seconds", round(jc * 1e6) / 1e6);
    return o;
}

/* GET /v1/usage: one row per key and model: requests and tokens served, and (model = a job's base) the tokens
 * its fine-tuning jobs trained, as OpenAI bills them (trained_tokens of the finished jobs). */
void srv_handle_usage(srv_req *q, srv_reply *r) {
    if (!srv_need_admin(q, r, "Usage")) return;
    srv_keys *k = &q->s->keys;
    pthread_mutex_lock(&k->mu);
    tk_status st = srv_sql_list(k, srv_sql_prep(k->db,
        "SELECT owner, model, sum(requests), sum(tin), sum(tout), sum(trained), sum(rcpu), sum(jcpu) FROM ("
        " SELECT owner, model, requests, tokens_in AS tin, tokens_out AS tout, 0 AS trained, cpu_seconds AS rcpu, 0 AS jcpu FROM usage"
        " UNION ALL SELECT owner, model, 0, 0, 0, trained_tokens, 0, cpu_seconds FROM jobs WHERE trained_tokens > 0 OR cpu_seconds > 0)"
        " GROUP BY owner, model ORDER BY owner, model", ""), 100000, usage_row, NULL, &r->body);
    pthread_mutex_unlock(&k->mu);
    if (st) srv_reply_fail(r, 500, NULL, NULL, "%.400s", tk_last_error());
    else r->status = 200;
}

static cJSON *key_row_obj(sqlite3_stmt *q, void *ud) {
    (void)ud;
    cJSON *o = cJSON_CreateObject();
    char id[32];
    snprintf(id, sizeof id, "key%lld", (long long)sqlite3_column_int64(q, 0));
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "object", "api_key");
    cJSON_AddBoolToObject(o, "admin", sqlite3_column_int(q, 1) != 0);
    cJSON_AddNumberToObject(o, "created_at", (double)sqlite3_column_int64(q, 2));
    cJSON_AddNumberToObject(o, "rpm", (double)sqlite3_column_int64(q, 3));
    cJSON_AddNumberToObject(o, "token_budget", (double)sqlite3_column_int64(q, 4));
    cJSON_AddNumberToObject(o, "tokens_used", (double)sqlite3_column_int64(q, 5));
    return o;
}
#define KEY_SQL "SELECT k.id, k.admin, k.created, k.rpm, k.token_budget, (SELECT coalesce(sum(tokens_in + tokens_out), 0) FROM usage" \
                " WHERE owner = 'key' || k.id) FROM api_keys k"

/* GET /v1/keys: the stored keys (never their secrets) with their limits and the tokens they used. */
void srv_handle_keys(srv_req *q, srv_reply *r) {
    if (!srv_need_admin(q, r, "Listing keys")) return;
    srv_keys *k = &q->s->keys;
    pthread_mutex_lock(&k->mu);
    tk_status st = srv_sql_list(k, srv_sql_prep(k->db, KEY_SQL " ORDER BY k.id", ""), 100000, key_row_obj, NULL, &r->body);
    pthread_mutex_unlock(&k->mu);
    if (st) srv_reply_fail(r, 500, NULL, NULL, "%.400s", tk_last_error());
    else r->status = 200;
}

/* POST /v1/keys/{id}/limits {"rpm"?, "token_budget"?}: the key's object after the change. */
void srv_handle_key_limits(srv_req *q, srv_reply *r) {
    if (!srv_need_admin(q, r, "Setting a key's limits")) return;
    char owner[SRV_OWNER_LEN];
    int64_t id = srv_path_segment(q->path, 2, owner, sizeof owner) ? key_row(owner) : 0;
    srv_limits_req l;
    srv_error e;
    if (!id) { srv_reply_fail(r, 404, "key_not_found", NULL, "No such key (GET /v1/keys lists them)."); return; }
    if (srv_parse_limits_request(q->body, q->body_len, &l, &e)) { srv_reply_error(r, &e); return; }
    srv_keys *k = &q->s->keys;
    pthread_mutex_lock(&k->mu);
    tk_status st = srv_sql_done(k, srv_sql_prep(k->db, "UPDATE api_keys SET rpm = CASE WHEN ?2 < 0 THEN rpm ELSE ?2 END,"
                                                " token_budget = CASE WHEN ?3 < 0 THEN token_budget ELSE ?3 END WHERE id = ?1",
                                                "iii", id, l.rpm, l.token_budget), "cannot set the limits");
    bool found = !st && sqlite3_changes(k->db) > 0;
    if (found) {
        sqlite3_stmt *one = srv_sql_prep(k->db, KEY_SQL " WHERE k.id = ?1", "i", id);
        st = one && sqlite3_step(one) == SQLITE_ROW ? srv_sql_print(key_row_obj(one, NULL), &r->body) : srv_sql_err(k, "cannot read the key");
        sqlite3_finalize(one);
    }
    pthread_mutex_unlock(&k->mu);
    if (st) { tk_buf_free(&r->body); srv_reply_fail(r, 500, NULL, NULL, "%.400s", tk_last_error()); return; }
    if (!found) { srv_reply_fail(r, 404, "key_not_found", NULL, "No key %s (GET /v1/keys lists them).", owner); return; }
    if (l.rpm >= 0) { /* a new rate starts with a full bucket */
        pthread_mutex_lock(&q->s->limits.mu);
        for (int i = 0; i < q->s->limits.n; i++)
            if (!strcmp(q->s->limits.b[i].owner, owner)) q->s->limits.b[i] = q->s->limits.b[--q->s->limits.n];
        pthread_mutex_unlock(&q->s->limits.mu);
    }
    r->status = 200;
}
