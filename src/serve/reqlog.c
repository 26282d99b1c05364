/* The request log and feedback. Every chat/completion request that reached generation is a row of
 * table requests (id = the answer's id, the caller's key, the alias and the version that answered,
 * status, latency, tokens in and out, and unless --log-contents off the request's messages or prompt
 * and the first choice's text); rows older than --log-days are deleted as new ones come. POST
 * /v1/feedback rates an answer of the caller's (admin: any) and may give the answer it should have
 * been; GET /v1/feedback/export (admin) turns the newest feedback per answer into a file for the next
 * job: format=sft, chat records whose assistant turn is the correction (or the original answer when
 * rated > 0 without one), or format=preference, OpenAI's DPO records with the correction preferred over
 * the original. A completion's prompt becomes the user turn. Rows without contents are left out. */
#include "serve/server.h"
#include "serve/store_sql.h"
#include "core/core.h"
#include <microhttpd.h>
#include <sqlite3.h>
#include <stdio.h>
#include <time.h>

static const char *role_name(tk_role r) {
    return r == TK_ROLE_SYSTEM ? "system" : r == TK_ROLE_ASSISTANT ? "assistant" : r == TK_ROLE_TOOL ? "tool" : "user";
}

/* The request's contents as stored: {"messages": [...]} or {"messages": [{"role":"user","content": prompt}]}. */
static char *request_text(const srv_gen_req *g) {
    cJSON *o = cJSON_CreateObject(), *msgs = cJSON_AddArrayToObject(o, "messages");
    if (g->chat) {
        for (int i = 0; i < g->n_msgs; i++) {
            cJSON *m = cJSON_CreateObject();
            cJSON_AddStringToObject(m, "role", role_name(g->msgs[i].role));
            cJSON_AddStringToObject(m, "content", g->msgs[i].content ? g->msgs[i].content : "");
            cJSON_AddItemToArray(msgs, m);
        }
    } else if (g->n_prompts > 0) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "user");
        cJSON_AddStringToObject(m, "content", g->prompts[0]);
        cJSON_AddItemToArray(msgs, m);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

void srv_reqlog_add(tk_server *s, const srv_reqlog_row *row, const srv_gen_req *g) {
    srv_keys *k = &s->keys;
    char *req = s->p.log_contents_off ? NULL : request_text(g);
    char *resp = s->p.log_contents_off || !row->text ? NULL : tk_strndup(row->text, row->text_len);
    int64_t now = (int64_t)time(NULL);
    pthread_mutex_lock(&k->mu);
    tk_status st = srv_sql_done(k, srv_sql_prep(k->db, "INSERT OR REPLACE INTO requests(id, created_at, owner, deployment, model, status, latency,"
                                                " tokens_in, tokens_out, request, response) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)",
                                                "sisssidiiss", row->id, now, row->owner, row->deployment[0] ? row->deployment : NULL, row->model,
                                                (int64_t)row->status, row->latency, row->tokens_in, row->tokens_out, req, resp),
                                "cannot log the request");
    if (!st && s->p.log_days > 0)
        st = srv_sql_done(k, srv_sql_prep(k->db, "DELETE FROM requests WHERE created_at < ?1", "i", now - (int64_t)s->p.log_days * 86400),
                          "cannot drop old requests");
    pthread_mutex_unlock(&k->mu);
    if (st) srv_log(s, "request log: %s", tk_last_error());
    cJSON_free(req);
    free(resp);
}

void srv_handle_feedback(srv_req *q, srv_reply *r) {
    srv_feedback_req f;
    srv_error e;
    if (srv_parse_feedback_request(q->body, q->body_len, &f, &e)) { srv_reply_error(r, &e); return; }
    srv_keys *k = &q->s->keys;
    int64_t now = (int64_t)time(NULL), seq = -1;
    pthread_mutex_lock(&k->mu);
    sqlite3_stmt *st = srv_sql_prep(k->db, "SELECT 1 FROM requests WHERE id = ?1 AND (owner = ?2 OR ?3)", "ssi", f.response_id, q->owner, (int64_t)q->admin);
    int rc = st ? sqlite3_step(st) : SQLITE_ERROR;
    sqlite3_finalize(st);
    tk_status ok = TK_OK;
    if (rc == SQLITE_ROW) {
        static const char *const sql = "INSERT INTO feedback(response_id, owner, created_at, rating, correction, comment) VALUES(?1,?2,?3,?4,?5,?6)";
        sqlite3_stmt *ins = f.rating_given ? srv_sql_prep(k->db, sql, "ssidss", f.response_id, q->owner, now, f.rating, f.correction, f.comment)
                                           : srv_sql_prep(k->db, sql, "ssisss", f.response_id, q->owner, now, (const char *)NULL, f.correction, f.comment);
        ok = srv_sql_done(k, ins, "cannot store the feedback");
        seq = sqlite3_last_insert_rowid(k->db);
    } else if (rc != SQLITE_DONE) {
        ok = srv_sql_err(k, "cannot read the request log");
    }
    pthread_mutex_unlock(&k->mu);
    if (ok) srv_reply_fail(r, 500, NULL, NULL, "%.400s", tk_last_error());
    else if (rc != SQLITE_ROW)
        srv_reply_fail(r, 404, "response_not_found", "response_id", "No logged answer '%.80s' of yours (the log keeps --log-days days).", f.response_id);
    else {
        cJSON *o = cJSON_CreateObject();
        char id[40];
        snprintf(id, sizeof id, "fb-%lld", (long long)seq);
        cJSON_AddStringToObject(o, "id", id);
        cJSON_AddStringToObject(o, "object", "feedback");
        cJSON_AddStringToObject(o, "response_id", f.response_id);
        if (f.rating_given) cJSON_AddNumberToObject(o, "rating", f.rating); else cJSON_AddNullToObject(o, "rating");
        if (f.correction) cJSON_AddStringToObject(o, "correction", f.correction); else cJSON_AddNullToObject(o, "correction");
        if (f.comment) cJSON_AddStringToObject(o, "comment", f.comment); else cJSON_AddNullToObject(o, "comment");
        cJSON_AddNumberToObject(o, "created_at", (double)now);
        srv_reply_json(r, srv_sql_print(o, &r->body));
    }
    srv_feedback_req_free(&f);
}

/* One export line from a logged request (its {"messages"} JSON), its answer, the feedback's rating and correction; NULL: none. */
static cJSON *export_line(const char *req, const char *answer, bool rated, double rating, const char *correction, bool sft) {
    cJSON *r = req ? cJSON_Parse(req) : NULL, *msgs = cJSON_DetachItemFromObjectCaseSensitive(r, "messages");
    cJSON_Delete(r);
    if (!cJSON_IsArray(msgs) || !cJSON_GetArraySize(msgs)) { cJSON_Delete(msgs); return NULL; }
    const char *good = correction ? correction : sft && rated && rating > 0 ? answer : NULL;
    if (!good || (!sft && (!answer || !correction || !strcmp(correction, answer)))) { cJSON_Delete(msgs); return NULL; }
    cJSON *o = cJSON_CreateObject();
    if (sft) {
        cJSON *a = cJSON_CreateObject();
        cJSON_AddStringToObject(a, "role", "assistant");
        cJSON_AddStringToObject(a, "content", good);
        cJSON_AddItemToArray(msgs, a);
        cJSON_AddItemToObject(o, "messages", msgs);
        return o;
    }
    cJSON *in = cJSON_AddObjectToObject(o, "input");
    cJSON_AddItemToObject(in, "messages", msgs);
    const char *sides[2][2] = {{"preferred_output", correction}, {"non_preferred_output", answer}};
    for (int i = 0; i < 2; i++) {
        cJSON *arr = cJSON_AddArrayToObject(o, sides[i][0]), *a = cJSON_CreateObject();
        cJSON_AddStringToObject(a, "role", "assistant");
        cJSON_AddStringToObject(a, "content", sides[i][1]);
        cJSON_AddItemToArray(arr, a);
    }
    return o;
}

void srv_handle_feedback_export(srv_req *q, srv_reply *r) {
    if (!srv_need_admin(q, r, "The feedback export")) return;
    const char *fmt = MHD_lookup_connection_value(q->c, MHD_GET_ARGUMENT_KIND, "format");
    bool sft = fmt && !strcmp(fmt, "sft");
    if (!sft && !(fmt && !strcmp(fmt, "preference"))) {
        srv_reply_fail(r, 400, "invalid_value", "format", "Invalid 'format': '%.40s' (sft or preference).", fmt ? fmt : "");
        return;
    }
    srv_keys *k = &q->s->keys;
    pthread_mutex_lock(&k->mu);
    sqlite3_stmt *st = srv_sql_prep(k->db, "SELECT r.request, r.response, f.rating, f.correction FROM feedback f JOIN requests r ON r.id = f.response_id"
                                           " WHERE f.seq IN (SELECT max(seq) FROM feedback GROUP BY response_id) ORDER BY f.seq", "");
    tk_status ok = st ? TK_OK : srv_sql_err(k, "cannot read the feedback");
    int rc = SQLITE_DONE;
    while (!ok && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        cJSON *line = export_line((const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
                                  sqlite3_column_type(st, 2) != SQLITE_NULL, sqlite3_column_double(st, 2), (const char *)sqlite3_column_text(st, 3), sft);
        if (line && !(ok = srv_sql_print(line, &r->body))) ok = tk_buf_append(&r->body, "\n", 1);
    }
    if (!ok && rc != SQLITE_DONE) ok = srv_sql_err(k, "cannot read the feedback");
    sqlite3_finalize(st);
    pthread_mutex_unlock(&k->mu);
    if (ok) { tk_buf_free(&r->body); srv_reply_fail(r, 500, NULL, NULL, "%.400s", tk_last_error()); return; }
    r->status = 200;
    r->content_type = "application/jsonl";
}
