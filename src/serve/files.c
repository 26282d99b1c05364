/* The Files API: POST /v1/files (multipart; the file checked with the data checker, whose errors
 * come back in a 400; stored atomically in DATA_DIR/files/ID, its row in takumi.db), GET /v1/files,
 * GET /v1/files/{id}, GET /v1/files/{id}/content, DELETE /v1/files/{id}. A user key sees its own
 * files only (another's answer 404, as a missing one). */
#include "serve/server.h"
#include "core/core.h"
#include "takumi/data.h"
#include <microhttpd.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <errno.h>

#define MAX_FINDINGS 8


/* The list query: ?after=ID&limit=N (1..max, default dflt); false with r set on a bad limit. */
bool srv_list_query(srv_req *q, srv_reply *r, int dflt, int max, const char **after, int *limit) {
    *after = MHD_lookup_connection_value(q->c, MHD_GET_ARGUMENT_KIND, "after");
    if (*after && !**after) *after = NULL;
    const char *l = MHD_lookup_connection_value(q->c, MHD_GET_ARGUMENT_KIND, "limit");
    *limit = dflt;
    if (!l) return true;
    char *end = NULL;
    long v = strtol(l, &end, 10);
    if (!*l || *end || v < 1 || v > max) {
        srv_reply_fail(r, 400, "invalid_value", "limit", "Invalid value for 'limit': '%.40s' is not an integer within [1, %d].", l, max);
        return false;
    }
    *limit = (int)v;
    return true;
}

typedef struct findings { tk_buf text; int n; } findings;
static void on_finding(const tk_data_finding *f, void *ud) {
    findings *fs = ud;
    if (f->severity != TK_DATA_ERROR) return;
    if (fs->n++ >= MAX_FINDINGS) return;
    if (fs->text.len) tk_buf_append(&fs->text, "; ", 2);
    tk_data_finding_format(f, &fs->text);
}

void srv_handle_file_upload(srv_req *q, srv_reply *r) {
    srv_upload u;
    srv_error e;
    if (srv_parse_upload(q->content_type, q->body, q->body_len, &u, &e)) { srv_reply_error(r, &e); return; }
    if (u.len == 0) { srv_reply_fail(r, 400, "invalid_file", "file", "The file '%s' is empty.", u.filename); return; }
    /* the data checker: a file that could not train is refused with its findings */
    findings fs = {0};
    tk_data_check_params cp = tk_data_check_default_params();
    cp.threads = 1;
    cp.on_finding = on_finding;
    cp.user = &fs;
    tk_data_report *rep = NULL;
    tk_status st = tk_data_check_buffer(u.data, u.len, u.filename[0] ? u.filename : "upload", &cp, &rep);
    if (st) {
        srv_reply_fail(r, 400, "invalid_file", "file", "The file '%.100s' cannot be read as training data: %.300s", u.filename, tk_last_error());
        tk_buf_free(&fs.text);
        return;
    }
    if (rep->verdict == TK_DATA_NOT_READY || rep->n_examples == 0) {
        srv_reply_fail(r, 400, "invalid_file", "file", "The file '%.100s' is not ready for fine-tuning (takumi data check: %llu error%s in %llu records, format %s)%s%.380s%s",
             u.filename, (unsigned long long)rep->n_errors, rep->n_errors == 1 ? "" : "s", (unsigned long long)rep->n_records,
             tk_data_format_name(rep->format), fs.text.len ? ": " : ".", fs.text.data ? fs.text.data : "", fs.n > MAX_FINDINGS ? "; ..." : "");
        tk_data_report_free(rep);
        tk_buf_free(&fs.text);
        return;
    }
    tk_data_report_free(rep);
    tk_buf_free(&fs.text);
    srv_file f = {0};
    uint8_t raw[12];
    char hexid[25];
    if (srv_random_bytes(raw, sizeof raw)) { srv_reply_fail(r, 500, NULL, NULL, "%.300s", tk_last_error()); return; }
    srv_hex(raw, sizeof raw, hexid);
    snprintf(f.id, sizeof f.id, "file-%s", hexid);
    snprintf(f.owner, sizeof f.owner, "%s", q->owner);
    snprintf(f.filename, sizeof f.filename, "%s", u.filename[0] ? u.filename : "upload.jsonl");
    snprintf(f.purpose, sizeof f.purpose, "%s", u.purpose);
    f.bytes = (int64_t)u.len;
    f.created_at = (int64_t)time(NULL);
    char *dir = tk_path_join(q->s->p.data_dir, "files"), *path = srv_file_path(q->s, f.id);
    st = dir && path ? tk_mkdir_p(dir) : TK_ERR_NOMEM;
    if (!st) st = tk_write_file_atomic(path, u.data, u.len);
    if (!st && (st = srv_file_insert(&q->s->keys, &f))) unlink(path);
    if (st) srv_reply_fail(r, 500, NULL, NULL, "Cannot store the file: %.400s", tk_last_error());
    else srv_reply_json(r, srv_file_json(&f, &r->body));
    free(dir);
    free(path);
}

void srv_handle_file_list(srv_req *q, srv_reply *r) {
    const char *after;
    int limit;
    if (!srv_list_query(q, r, 10000, 10000, &after, &limit)) return;
    const char *purpose = MHD_lookup_connection_value(q->c, MHD_GET_ARGUMENT_KIND, "purpose");
    if (purpose && *purpose && strcmp(purpose, "fine-tune")) {   /* only fine-tune files are stored */
        srv_reply_json(r, tk_buf_printf(&r->body, "{\"object\":\"list\",\"data\":[],\"first_id\":null,\"last_id\":null,\"has_more\":false}"));
        return;
    }
    srv_reply_json(r, srv_files_list_json(&q->s->keys, q->owner, q->admin, after, limit, &r->body));
}

/* The file of the path's third segment, the caller's; false with r set (404) when none. */
static bool find_file(srv_req *q, srv_reply *r, srv_file *f) {
    char id[64];
    int found = srv_path_segment(q->path, 2, id, sizeof id) ? srv_file_find(&q->s->keys, id, q->owner, q->admin, f) : 0;
    if (found == 1) return true;
    if (found < 0) srv_reply_fail(r, 500, NULL, NULL, "%.400s", tk_last_error());
    else srv_reply_fail(r, 404, NULL, "id", "No such File object: %.80s", id[0] ? id : "?");
    return false;
}

void srv_handle_file_get(srv_req *q, srv_reply *r) {
    srv_file f;
    if (find_file(q, r, &f)) srv_reply_json(r, srv_file_json(&f, &r->body));
}

void srv_handle_file_content(srv_req *q, srv_reply *r) {
    srv_file f;
    if (!find_file(q, r, &f)) return;
    char *path = srv_file_path(q->s, f.id), *data = NULL;
    size_t len = 0;
    tk_status st = path ? tk_read_file(path, &data, &len) : TK_ERR_NOMEM;
    free(path);
    if (st) { srv_reply_fail(r, 500, NULL, NULL, "Cannot read the file %s: %.300s", f.id, tk_last_error()); return; }
    r->status = 200;
    r->content_type = "application/octet-stream";
    r->body.data = data;
    r->body.len = len;
    r->body.cap = len + 1;
}

void srv_handle_file_delete(srv_req *q, srv_reply *r) {
    srv_file f;
    if (!find_file(q, r, &f)) return;
    char *path = srv_file_path(q->s, f.id);
    if (!path) { srv_reply_fail(r, 500, NULL, NULL, "out of memory"); return; }
    if (unlink(path) && errno != ENOENT) { srv_reply_fail(r, 500, NULL, NULL, "Cannot delete %s: %s", f.id, strerror(errno)); free(path); return; }
    free(path);
    if (srv_file_delete_row(&q->s->keys, f.id)) { srv_reply_fail(r, 500, NULL, NULL, "%.400s", tk_last_error()); return; }
    srv_reply_json(r, tk_buf_printf(&r->body, "{\"id\":\"%s\",\"object\":\"file\",\"deleted\":true}", f.id));
}
