/* Deployments: an alias (e.g. "support-bot") that requests name as their model, pointing at a model
 * version (a base or an ft: model); a canary sends a share of the users to another version. Rows in
 * takumi.db (table deployments: schema in keys.c), read on every request, so create, canary, promote
 * and rollback take effect at the next request (the versions are all loaded: nothing is reloaded).
 * The canary choice is sticky: SHA-256(alias ":" user) picks the user's bucket in 0..9999; a request
 * without "user" draws a random bucket. Every deployment endpoint is for admin keys; every key may
 * call an alias (the admin who made it published it). */
#include "serve/server.h"
#include "serve/store_sql.h"
#include "core/core.h"
#include "core/sha256.h"
#include <sqlite3.h>
#include <stdio.h>
#include <time.h>

int srv_deploy_bucket(const char *alias, const char *user) {
    uint8_t d[32];
    if (user) {
        tk_sha256 c;
        tk_sha256_init(&c);
        tk_sha256_update(&c, alias, strlen(alias));
        tk_sha256_update(&c, ":", 1);
        tk_sha256_update(&c, user, strlen(user));
        tk_sha256_final(&c, d);
    } else if (srv_random_bytes(d, 8)) {
        memset(d, 0, 8);
    }
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | d[i];
    return (int)(v % 10000);
}

int srv_deploy_resolve(srv_keys *k, const char *alias, const char *user, char version[SRV_MAX_ID + 1]) {
    pthread_mutex_lock(&k->mu);
    sqlite3_stmt *q = srv_sql_prep(k->db, "SELECT model, canary, canary_percent FROM deployments WHERE alias = ?1", "s", alias);
    int rc = q ? sqlite3_step(q) : SQLITE_ERROR, found = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
    if (found < 0) srv_sql_err(k, "cannot read a deployment");
    if (found == 1) {
        int pct = sqlite3_column_int(q, 2);
        bool canary = sqlite3_column_type(q, 1) != SQLITE_NULL && srv_deploy_bucket(alias, user) < pct * 100;
        srv_sql_text(q, canary ? 1 : 0, version, SRV_MAX_ID + 1);
    }
    sqlite3_finalize(q);
    pthread_mutex_unlock(&k->mu);
    return found;
}

static cJSON *deploy_obj(sqlite3_stmt *q, void *ud) {
    (void)ud;
    cJSON *o = cJSON_CreateObject();
    const char *alias = (const char *)sqlite3_column_text(q, 0);
    cJSON_AddStringToObject(o, "id", alias ? alias : "");
    cJSON_AddStringToObject(o, "object", "deployment");
    cJSON_AddStringToObject(o, "model", (const char *)sqlite3_column_text(q, 1) ? (const char *)sqlite3_column_text(q, 1) : "");
    if (sqlite3_column_type(q, 2) != SQLITE_NULL) {
        cJSON *c = cJSON_AddObjectToObject(o, "canary");
        cJSON_AddStringToObject(c, "model", (const char *)sqlite3_column_text(q, 2));
        cJSON_AddNumberToObject(c, "percent", sqlite3_column_int(q, 3));
    } else {
        cJSON_AddNullToObject(o, "canary");
    }
    if (sqlite3_column_type(q, 4) != SQLITE_NULL) cJSON_AddStringToObject(o, "previous", (const char *)sqlite3_column_text(q, 4));
    else cJSON_AddNullToObject(o, "previous");
    cJSON_AddNumberToObject(o, "created_at", (double)sqlite3_column_int64(q, 5));
    cJSON_AddNumberToObject(o, "updated_at", (double)sqlite3_column_int64(q, 6));
    return o;
}
#define DEPLOY_COLS "alias, model, canary, canary_percent, previous, created_at, updated_at"

/* The deployment's object into out: 1, 0 when there is none, -1 on a database error. */
static int deploy_json(srv_keys *k, const char *alias, tk_buf *out) {
    pthread_mutex_lock(&k->mu);
    sqlite3_stmt *q = srv_sql_prep(k->db, "SELECT " DEPLOY_COLS " FROM deployments WHERE alias = ?1", "s", alias);
    int rc = q ? sqlite3_step(q) : SQLITE_ERROR, found = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
    if (found < 0) srv_sql_err(k, "cannot read a deployment");
    if (found == 1 && srv_sql_print(deploy_obj(q, NULL), out)) found = -1;
    sqlite3_finalize(q);
    pthread_mutex_unlock(&k->mu);
    return found;
}

/* Runs an UPDATE/INSERT/DELETE: the number of rows changed, or -1 on a database error. */
static int deploy_exec(srv_keys *k, sqlite3_stmt *q) {
    pthread_mutex_lock(&k->mu);
    int n = srv_sql_done(k, q, "cannot change a deployment") ? -1 : sqlite3_changes(k->db);
    pthread_mutex_unlock(&k->mu);
    return n;
}

bool srv_need_admin(srv_req *q, srv_reply *r, const char *what) {
    if (q->admin) return true;
    srv_error e;
    srv_err(&e, 403, "invalid_request_error", "insufficient_permissions", NULL, "%s needs an admin key (takumi serve --create-key --admin).", what);
    srv_reply_error(r, &e);
    return false;
}
static bool need_admin(srv_req *q, srv_reply *r) { return srv_need_admin(q, r, "Managing deployments"); }

/* The model id must be served (any owner's: the admin publishes it); false with r set (404). */
static bool known_model(srv_req *q, srv_reply *r, const char *id) {
    int mi, ai;
    if (srv_registry_find(&q->s->reg, id, &mi, &ai)) return true;
    srv_reply_fail(r, 404, "model_not_found", "model", "The model '%.80s' does not exist (GET /v1/models lists the models served).", id);
    return false;
}

/* Answers the alias's object (404 when it is gone). */
static void reply_deploy(srv_req *q, srv_reply *r, const char *alias) {
    int found = deploy_json(&q->s->keys, alias, &r->body);
    if (found == 1) r->status = 200;
    else if (found == 0) srv_reply_fail(r, 404, "deployment_not_found", NULL, "No deployment '%.80s' (GET /v1/deployments lists them).", alias);
    else srv_reply_fail(r, 500, NULL, NULL, "%.400s", tk_last_error());
}

void srv_handle_deploy_create(srv_req *q, srv_reply *r) {
    if (!need_admin(q, r)) return;
    srv_deploy_req d;
    srv_error e;
    if (srv_parse_deploy_request(q->body, q->body_len, SRV_DEPLOY_CREATE, &d, &e)) { srv_reply_error(r, &e); return; }
    int mi, ai;
    if (srv_registry_find(&q->s->reg, d.alias, &mi, &ai))
        srv_reply_fail(r, 400, "invalid_value", "alias", "Invalid 'alias': '%s' is a model id; an alias needs a name of its own.", d.alias);
    else if (known_model(q, r, d.model)) {
        int64_t now = (int64_t)time(NULL);
        int n = deploy_exec(&q->s->keys, srv_sql_prep(q->s->keys.db, "INSERT OR IGNORE INTO deployments(alias, model, created_at, updated_at) VALUES(?1,?2,?3,?3)",
                                                      "ssi", d.alias, d.model, now));
        if (n < 0) srv_reply_fail(r, 500, NULL, NULL, "%.400s", tk_last_error());
        else if (n == 0) srv_reply_fail(r, 409, "deployment_exists", "alias", "A deployment '%s' exists already (canary + promote changes its model).", d.alias);
        else reply_deploy(q, r, d.alias);
    }
    srv_deploy_req_free(&d);
}

void srv_handle_deploy_list(srv_req *q, srv_reply *r) {
    if (!need_admin(q, r)) return;
    srv_keys *k = &q->s->keys;
    pthread_mutex_lock(&k->mu);
    tk_status st = srv_sql_list(k, srv_sql_prep(k->db, "SELECT " DEPLOY_COLS " FROM deployments ORDER BY alias", ""), 100000, deploy_obj, NULL, &r->body);
    pthread_mutex_unlock(&k->mu);
    if (st) srv_reply_fail(r, 500, NULL, NULL, "%.400s", tk_last_error());
    else r->status = 200;
}

/* The alias of the path /v1/deployments/{alias}[/...]; false with r set (404) when malformed. */
static bool path_alias(srv_req *q, srv_reply *r, char alias[SRV_MAX_ALIAS + 1]) {
    if (srv_path_segment(q->path, 2, alias, SRV_MAX_ALIAS + 1)) return true;
    srv_reply_fail(r, 404, "deployment_not_found", NULL, "No such deployment.");
    return false;
}

void srv_handle_deploy_get(srv_req *q, srv_reply *r) {
    char alias[SRV_MAX_ALIAS + 1];
    if (need_admin(q, r) && path_alias(q, r, alias)) reply_deploy(q, r, alias);
}

void srv_handle_deploy_delete(srv_req *q, srv_reply *r) {
    char alias[SRV_MAX_ALIAS + 1];
    if (!need_admin(q, r) || !path_alias(q, r, alias)) return;
    int n = deploy_exec(&q->s->keys, srv_sql_prep(q->s->keys.db, "DELETE FROM deployments WHERE alias = ?1", "s", alias));
    if (n < 0) srv_reply_fail(r, 500, NULL, NULL, "%.400s", tk_last_error());
    else if (n == 0) srv_reply_fail(r, 404, "deployment_not_found", NULL, "No deployment '%.80s'.", alias);
    else srv_reply_json(r, tk_buf_printf(&r->body, "{\"id\":\"%s\",\"object\":\"deployment\",\"deleted\":true}", alias));
}

/* Runs sql (?1 = alias, ?2 = now, then the extra text args) on an existing deployment; answers its new object, or
 * 404 / 400 (when the statement changed nothing though the alias exists: what_missing). */
static void deploy_change(srv_req *q, srv_reply *r, const char *alias, sqlite3_stmt *st, const char *what_missing) {
    int n = deploy_exec(&q->s->keys, st);
    if (n < 0) { srv_reply_fail(r, 500, NULL, NULL, "%.400s", tk_last_error()); return; }
    if (n > 0) { reply_deploy(q, r, alias); return; }
    tk_buf tmp = {0};
    int found = deploy_json(&q->s->keys, alias, &tmp);
    tk_buf_free(&tmp);
    if (found == 0) srv_reply_fail(r, 404, "deployment_not_found", NULL, "No deployment '%.80s' (GET /v1/deployments lists them).", alias);
    else srv_reply_fail(r, 400, "invalid_state", NULL, "Deployment '%.80s': %s.", alias, what_missing);
}

void srv_handle_deploy_canary(srv_req *q, srv_reply *r) {
    char alias[SRV_MAX_ALIAS + 1];
    if (!need_admin(q, r) || !path_alias(q, r, alias)) return;
    srv_deploy_req d;
    srv_error e;
    if (srv_parse_deploy_request(q->body, q->body_len, SRV_DEPLOY_CANARY, &d, &e)) { srv_reply_error(r, &e); return; }
    if (known_model(q, r, d.model))
        deploy_change(q, r, alias, srv_sql_prep(q->s->keys.db, "UPDATE deployments SET canary = ?3, canary_percent = ?4, updated_at = ?2 "
                                                "WHERE alias = ?1 AND model != ?3", "sisi", alias, (int64_t)time(NULL), d.model, (int64_t)d.percent),
                      "the canary is the deployment's own model");
    srv_deploy_req_free(&d);
}

/* An empty body or {} (promote and rollback take no fields); false with r set (400). */
static bool empty_body(srv_req *q, srv_reply *r) {
    size_t i = 0;
    while (i < q->body_len && (q->body[i] == ' ' || q->body[i] == '\n' || q->body[i] == '\r' || q->body[i] == '\t')) i++;
    if (i == q->body_len) return true;
    cJSON *root = NULL;
    srv_error e;
    if (srv_parse_json_object(q->body, q->body_len, &root, &e)) { srv_reply_error(r, &e); return false; }
    bool ok = !root->child;
    if (!ok) srv_reply_fail(r, 400, "unknown_parameter", root->child->string, "Unrecognized request argument supplied: %.60s", root->child->string);
    cJSON_Delete(root);
    return ok;
}

void srv_handle_deploy_promote(srv_req *q, srv_reply *r) {
    char alias[SRV_MAX_ALIAS + 1];
    if (!need_admin(q, r) || !path_alias(q, r, alias) || !empty_body(q, r)) return;
    deploy_change(q, r, alias, srv_sql_prep(q->s->keys.db, "UPDATE deployments SET previous = model, model = canary, canary = NULL, canary_percent = 0,"
                                            " updated_at = ?2 WHERE alias = ?1 AND canary IS NOT NULL", "si", alias, (int64_t)time(NULL)),
                  "no canary to promote");
}

/* Rollback: a canary is dropped; without one, the model goes back to the previous version (which becomes the one
 * rolled back from, so a second rollback undoes the first). */
void srv_handle_deploy_rollback(srv_req *q, srv_reply *r) {
    char alias[SRV_MAX_ALIAS + 1];
    if (!need_admin(q, r) || !path_alias(q, r, alias) || !empty_body(q, r)) return;
    deploy_change(q, r, alias, srv_sql_prep(q->s->keys.db, "UPDATE deployments SET "
                                            "previous = CASE WHEN canary IS NULL THEN model ELSE previous END, "
                                            "model = CASE WHEN canary IS NULL THEN previous ELSE model END, "
                                            "canary = NULL, canary_percent = 0, updated_at = ?2 "
                                            "WHERE alias = ?1 AND (canary IS NOT NULL OR previous IS NOT NULL)", "si", alias, (int64_t)time(NULL)),
                  "nothing to roll back (no canary and no previous version)");
}
