/* The review's items: prompts (text or messages) with both systems' answers, read from JSONL
 * and written back as JSON. */
#include "eval/review_internal.h"
#include "data/data_internal.h"
#include <inttypes.h>

tk_status tk_review_each_line(const char *path, tk_review_line_fn fn, void *ud, uint64_t *n_lines) {
    tk_reader *r = NULL;
    tk_status st = tk_reader_open(path, TK_DATA_JSONL, TK_DATA_DEFAULT_MAX_LINE, &r);
    if (st) return st;
    uint64_t n = 0;
    for (;;) {
        tk_raw rec;
        bool has = false;
        if ((st = tk_reader_next(r, &rec, &has)) || !has) break;
        if (rec.kind == TK_RAW_BLANK) continue;
        if (rec.kind != TK_RAW_RECORD) {
            st = tk_fail(TK_ERR_FORMAT, "%s: line %" PRIu64 ": %s", path, rec.line,
                         rec.kind == TK_RAW_TOO_LONG ? "the line is too long" : rec.msg ? rec.msg : "unreadable");
            break;
        }
        n++;
        tk_rfinds fs = {0};
        cJSON *v = tk_json_parse(rec.data, rec.len, rec.line, &fs);
        if (!v) {
            st = tk_fail(TK_ERR_FORMAT, "%s: line %" PRIu64 ": not JSON: %s", path, rec.line,
                         fs.n && fs.v[0].message ? fs.v[0].message : "syntax error");
            tk_rf_clear(&fs);
            break;
        }
        tk_rf_clear(&fs);
        if (!cJSON_IsObject(v)) st = tk_fail(TK_ERR_FORMAT, "is %s, expected an object", tk_json_type_name(v));
        else st = fn(ud, v, rec.line);
        cJSON_Delete(v);
        if (st) { tk_fail_ctx(st, "%s: line %" PRIu64 ": ", path, rec.line); break; }
    }
    tk_reader_close(r);
    if (n_lines) *n_lines = n;
    return st;
}

static tk_status parse_role(const cJSON *m, size_t k, tk_role *out) {
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
    if (!cJSON_IsString(role)) return tk_fail(TK_ERR_FORMAT, "message %zu has no \"role\" string", k + 1);
    for (int r = TK_ROLE_SYSTEM; r <= TK_ROLE_TOOL; r++)
        if (!strcmp(role->valuestring, tk_data_role_name(r))) { *out = (tk_role)r; return TK_OK; }
    return tk_fail(TK_ERR_FORMAT, "message %zu has role \"%.40s\" (expected system, user, assistant or tool)", k + 1,
                   role->valuestring);
}

/* The prompt of rec ("prompt": text or messages, or "messages") into it. */
static tk_status parse_prompt(const cJSON *rec, tk_review_item *it) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(rec, "prompt");
    const char *key = "prompt";
    if (!p) { p = cJSON_GetObjectItemCaseSensitive(rec, "messages"); key = "messages"; }
    if (!p) return tk_fail(TK_ERR_FORMAT, "no \"prompt\" or \"messages\"");
    if (cJSON_IsString(p)) {
        if (!p->valuestring[0]) return tk_fail(TK_ERR_FORMAT, "\"%s\" is empty", key);
        if (!(it->msgs = tk_calloc(1, sizeof *it->msgs))) return TK_ERR_NOMEM;
        it->msgs[0].role = TK_ROLE_USER;
        if (!(it->msgs[0].content = tk_strdup(p->valuestring))) return TK_ERR_NOMEM;
        it->n_msgs = 1;
        it->text_prompt = true;
        return TK_OK;
    }
    int n = cJSON_GetArraySize(p);
    if (!cJSON_IsArray(p) || n == 0)
        return tk_fail(TK_ERR_FORMAT, "\"%s\" is %s, expected a string or a non-empty list of messages", key,
                       cJSON_IsArray(p) ? "an empty list" : tk_json_type_name(p));
    if (!(it->msgs = tk_calloc((size_t)n, sizeof *it->msgs))) return TK_ERR_NOMEM;
    const cJSON *m;
    cJSON_ArrayForEach(m, p) {
        size_t k = it->n_msgs;
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!cJSON_IsObject(m)) return tk_fail(TK_ERR_FORMAT, "\"%s\": message %zu is not an object", key, k + 1);
        tk_status st = parse_role(m, k, &it->msgs[k].role);
        if (st) return tk_fail_ctx(st, "\"%s\": ", key);
        if (!cJSON_IsString(c)) return tk_fail(TK_ERR_FORMAT, "\"%s\": message %zu has no \"content\" string", key, k + 1);
        if (!(it->msgs[k].content = tk_strdup(c->valuestring))) return TK_ERR_NOMEM;
        it->n_msgs++;
    }
    if (it->msgs[it->n_msgs - 1].role != TK_ROLE_USER)
        return tk_fail(TK_ERR_FORMAT, "\"%s\" ends with a %s message, expected a user turn (the one to answer)", key,
                       tk_data_role_name(it->msgs[it->n_msgs - 1].role));
    return TK_OK;
}

typedef struct read_ctx { tk_review_set *s; size_t cap; const char *ka, *kb; } read_ctx;

static tk_status get_answer(const cJSON *rec, const char *key, char **out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, key);
    if (!cJSON_IsString(v)) return tk_fail(TK_ERR_FORMAT, "\"%s\" is %s, expected a string (the answer)", key, tk_json_type_name(v));
    return (*out = tk_strdup(v->valuestring)) ? TK_OK : TK_ERR_NOMEM;
}

static tk_status read_line(void *ud, const cJSON *rec, uint64_t line) {
    read_ctx *c = ud;
    tk_review_set *s = c->s;
    if (s->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        tk_review_item *v = tk_realloc(s->items, cap * sizeof *v);
        if (!v) return TK_ERR_NOMEM;
        s->items = v;
        c->cap = cap;
    }
    tk_review_item *it = &s->items[s->n++];
    memset(it, 0, sizeof *it);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(rec, "id");
    char buf[32];
    if (cJSON_IsString(id) && id->valuestring[0]) snprintf(buf, sizeof buf, "%s", "");
    else if (cJSON_IsNumber(id) && id->valuedouble == (double)(int64_t)id->valuedouble)
        snprintf(buf, sizeof buf, "%" PRId64, (int64_t)id->valuedouble);
    else if (!id) snprintf(buf, sizeof buf, "%" PRIu64, line);
    else return tk_fail(TK_ERR_FORMAT, "\"id\" is %s, expected a non-empty string or an integer", tk_json_type_name(id));
    if (!(it->id = tk_strdup(buf[0] ? buf : id->valuestring))) return TK_ERR_NOMEM;
    for (size_t i = 0; i + 1 < s->n; i++)
        if (!strcmp(s->items[i].id, it->id)) return tk_fail(TK_ERR_FORMAT, "id \"%.60s\" again (ids must be unique)", it->id);
    tk_status st = parse_prompt(rec, it);
    if (!st && c->ka) st = get_answer(rec, c->ka, &it->a);
    if (!st && c->kb) st = get_answer(rec, c->kb, &it->b);
    return st;
}

tk_status tk_review_read_fields(const char *path, const char *ka, const char *kb, tk_review_set *out) {
    if (!path || !out) return tk_fail(TK_ERR_ARG, "tk_review_read: NULL argument");
    memset(out, 0, sizeof *out);
    read_ctx c = {.s = out, .ka = ka, .kb = kb};
    tk_status st = tk_review_each_line(path, read_line, &c, NULL);
    if (!st && out->n == 0) st = tk_fail(TK_ERR_FORMAT, "%s: no items (an empty file?)", path);
    if (st) tk_review_set_free(out);
    return st;
}

tk_status tk_review_read(const char *path, bool with_answers, tk_review_set *out) {
    return tk_review_read_fields(path, with_answers ? "a" : NULL, with_answers ? "b" : NULL, out);
}

tk_status tk_review_set_system(tk_review_set *s, const char *system) {
    if (!s || !system) return tk_fail(TK_ERR_ARG, "tk_review_set_system: NULL argument");
    for (size_t i = 0; i < s->n; i++) {
        tk_review_item *it = &s->items[i];
        if (it->n_msgs && it->msgs[0].role == TK_ROLE_SYSTEM) continue;
        tk_chat_msg *m = tk_realloc(it->msgs, (it->n_msgs + 1) * sizeof *m);
        if (!m) return TK_ERR_NOMEM;
        it->msgs = m;
        char *c = tk_strdup(system);
        if (!c) return TK_ERR_NOMEM;
        memmove(m + 1, m, it->n_msgs * sizeof *m);
        m[0] = (tk_chat_msg){TK_ROLE_SYSTEM, c};
        it->n_msgs++;
        it->text_prompt = false;
    }
    return TK_OK;
}

tk_status tk_review_set_answer(tk_review_item *it, char side, const char *text, size_t len) {
    if (!it || !text || (side != 'a' && side != 'b')) return tk_fail(TK_ERR_ARG, "tk_review_set_answer: bad argument");
    if (memchr(text, 0, len)) return tk_fail(TK_ERR_ARG, "item %s: the answer holds a NUL byte", it->id);
    char *c = tk_strndup(text, len);
    if (!c) return TK_ERR_NOMEM;
    char **slot = side == 'a' ? &it->a : &it->b;
    free(*slot);
    *slot = c;
    return TK_OK;
}

void tk_review_set_free(tk_review_set *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) {
        tk_review_item *it = &s->items[i];
        for (size_t k = 0; k < it->n_msgs; k++) free((char *)it->msgs[k].content);
        free(it->msgs);
        free(it->id);
        free(it->a);
        free(it->b);
    }
    free(s->items);
    memset(s, 0, sizeof *s);
}

static tk_status append_msg(tk_buf *b, const char *role, const char *content, bool comma) {
    tk_status st = tk_buf_printf(b, "%s{\"role\":\"%s\",\"content\":", comma ? "," : "", role);
    if (!st) st = tk_json_append_str(b, content, strlen(content));
    if (!st) st = TK_REVIEW_LIT(b, "}");
    return st;
}

tk_status tk_review_append_messages(tk_buf *b, const tk_review_item *it, const char *answer) {
    tk_status st = TK_REVIEW_LIT(b, "[");
    for (size_t k = 0; !st && k < it->n_msgs; k++) st = append_msg(b, tk_data_role_name(it->msgs[k].role), it->msgs[k].content, k > 0);
    if (!st && answer) st = append_msg(b, "assistant", answer, it->n_msgs > 0);
    return st ? st : TK_REVIEW_LIT(b, "]");
}

tk_status tk_review_append_prompt(tk_buf *b, const tk_review_item *it) {
    if (it->text_prompt && it->n_msgs == 1) return tk_json_append_str(b, it->msgs[0].content, strlen(it->msgs[0].content));
    return tk_review_append_messages(b, it, NULL);
}

tk_status tk_review_write_in(const char *dir, const char *name, const tk_buf *b) {
    char *path = tk_path_join(dir, name);
    if (!path) return TK_ERR_NOMEM;
    tk_status st = tk_write_file_atomic(path, b->data ? b->data : "", b->len);
    free(path);
    return st;
}
