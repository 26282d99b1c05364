/* Reading evaluation records: chat "messages" (the final assistant turn is the reference; a conversation ending with a
 * user turn is a prompt only, as OpenAI's reinforcement fine-tuning data), prompt/question/instruction with an optional
 * completion/answer/response/output/reference, preference pairs (prompt/chosen/rejected), classification (text/label),
 * multiple choice (question/choices/answer) and already generated predictions ("prediction"). Extra fields stay in the
 * record for graders ({{ item.x }}) and required facts ("facts", "match"). CSV files and records read through a field map
 * (--map: any JSON/CSV/TSV layout) come through the data toolkit's layout, so they read as `data check` reads them. */
#include "eval/eval_internal.h"
#include "data/data_internal.h"
#include <ctype.h>

static const cJSON *field(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

static const char *str_field(const cJSON *o, const char *const *keys, const char **which) {
    for (int i = 0; keys[i]; i++) {
        const cJSON *v = field(o, keys[i]);
        if (cJSON_IsString(v)) { if (which) *which = keys[i]; return v->valuestring; }
    }
    return NULL;
}

static tk_status push_msg(tk_eval_ex *ex, tk_role role, const char *text) {
    tk_chat_msg *m = tk_realloc(ex->prompt, (ex->n_prompt + 1) * sizeof *m);
    if (!m) return TK_ERR_NOMEM;
    ex->prompt = m;
    char *c = tk_strdup(text);
    if (!c) return TK_ERR_NOMEM;
    m[ex->n_prompt++] = (tk_chat_msg){role, c};
    return TK_OK;
}

static bool role_of(const char *s, tk_role *r) {
    if (!strcmp(s, "system") || !strcmp(s, "developer")) *r = TK_ROLE_SYSTEM;
    else if (!strcmp(s, "user") || !strcmp(s, "human")) *r = TK_ROLE_USER;
    else if (!strcmp(s, "assistant") || !strcmp(s, "gpt") || !strcmp(s, "model")) *r = TK_ROLE_ASSISTANT;
    else if (!strcmp(s, "tool")) *r = TK_ROLE_TOOL;
    else return false;
    return true;
}

/* A message list into ex->prompt; the final assistant turn goes to *last (when last is non-NULL). */
static tk_status read_messages(const cJSON *list, tk_eval_ex *ex, char **last, const char *key, char *err, size_t n_err) {
    int n = cJSON_GetArraySize(list), i = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, list) {
        const cJSON *r = field(m, "role"), *c = field(m, "content");
        tk_role role;
        if (!cJSON_IsString(r) || !role_of(r->valuestring, &role)) {
            snprintf(err, n_err, "%s[%d].role: missing or not one of system, user, assistant, tool", key, i);
            return TK_ERR_FORMAT;
        }
        if (!cJSON_IsString(c)) { snprintf(err, n_err, "%s[%d].content: missing or not a string", key, i); return TK_ERR_FORMAT; }
        if (last && i == n - 1 && role == TK_ROLE_ASSISTANT) return (*last = tk_strdup(c->valuestring)) ? TK_OK : TK_ERR_NOMEM;
        tk_status st = push_msg(ex, role, c->valuestring);
        if (st) return st;
        i++;
    }
    return TK_OK;
}

/* chosen / rejected: a string, or a message list whose last entry is the answer. */
static char *answer_of(const cJSON *v) {
    if (cJSON_IsString(v)) return tk_strdup(v->valuestring);
    if (cJSON_IsObject(v)) v = field(v, "content") ? v : NULL;
    if (cJSON_IsArray(v)) v = cJSON_GetArrayItem(v, cJSON_GetArraySize(v) - 1);
    const cJSON *c = v ? field(v, "content") : NULL;
    if (!c) c = v ? field(v, "value") : NULL;
    return cJSON_IsString(c) ? tk_strdup(c->valuestring) : NULL;
}

static tk_status read_mc(const cJSON *rec, tk_eval_ex *ex, char *err, size_t n_err) {
    static const char *const qk[] = {"question", "query", "prompt", "context", NULL};
    const char *q = str_field(rec, qk, NULL);
    const cJSON *ch = field(rec, "choices"), *a = field(rec, "answer");
    if (!q) { snprintf(err, n_err, "multiple choice record without \"question\""); return TK_ERR_FORMAT; }
    if (!cJSON_IsArray(ch) || cJSON_GetArraySize(ch) < 2) { snprintf(err, n_err, "\"choices\" must be a list of at least 2 strings"); return TK_ERR_FORMAT; }
    int n = cJSON_GetArraySize(ch);
    if (!(ex->choices = tk_calloc((size_t)n, sizeof(char *)))) return TK_ERR_NOMEM;
    for (int i = 0; i < n; i++) {
        const cJSON *c = cJSON_GetArrayItem(ch, i);
        if (!cJSON_IsString(c)) { snprintf(err, n_err, "choices[%d] is not a string", i); return TK_ERR_FORMAT; }
        if (!(ex->choices[i] = tk_strdup(c->valuestring))) return TK_ERR_NOMEM;
        ex->n_choices = i + 1;
    }
    ex->answer = -1;
    if (cJSON_IsNumber(a) && a->valuedouble == (int)a->valuedouble) ex->answer = (int)a->valuedouble;
    else if (cJSON_IsString(a) && strlen(a->valuestring) == 1 && isupper((unsigned char)a->valuestring[0])) ex->answer = a->valuestring[0] - 'A';
    else if (cJSON_IsString(a))
        for (int i = 0; i < n; i++)
            if (!strcmp(a->valuestring, ex->choices[i])) ex->answer = i;
    if (ex->answer < 0 || ex->answer >= n) {
        snprintf(err, n_err, "\"answer\" must be a choice index 0..%d, a letter A..%c or one of the choices", n - 1, 'A' + n - 1);
        return TK_ERR_FORMAT;
    }
    return push_msg(ex, TK_ROLE_USER, q);
}

static tk_status read_record(const cJSON *rec, bool predictions, const char *system, tk_eval_ex *ex, int *kinds, char *err, size_t n_err) {
    static const char *const prompt_keys[] = {"prompt", "question", "instruction", "input", "text", NULL};
    static const char *const ref_keys[] = {"reference", "completion", "answer", "response", "output", NULL};
    tk_status st = TK_OK;
    if (!cJSON_IsObject(rec)) { snprintf(err, n_err, "not a JSON object"); return TK_ERR_FORMAT; }
    const cJSON *id = field(rec, "id"), *sys = field(rec, "system"), *msgs = field(rec, "messages");
    if (cJSON_IsString(id) && !(ex->id = tk_strdup(id->valuestring))) return TK_ERR_NOMEM;
    if (cJSON_IsNumber(id)) {
        char b[32];
        snprintf(b, sizeof b, "%.17g", id->valuedouble);
        if (!(ex->id = tk_strdup(b))) return TK_ERR_NOMEM;
    }
    const char *sys_text = cJSON_IsString(sys) ? sys->valuestring : system;
    bool has_sys = cJSON_IsArray(msgs) && cJSON_GetArraySize(msgs) > 0 &&
                   cJSON_IsString(field(cJSON_GetArrayItem(msgs, 0), "role")) &&
                   !strcmp(field(cJSON_GetArrayItem(msgs, 0), "role")->valuestring, "system");
    if (sys_text && !has_sys && (st = push_msg(ex, TK_ROLE_SYSTEM, sys_text))) return st;
    if (predictions) {
        const cJSON *p = field(rec, "prediction");
        if (!cJSON_IsString(p)) { snprintf(err, n_err, "no \"prediction\" string"); return TK_ERR_FORMAT; }
        if (!(ex->pred[0] = tk_strdup(p->valuestring))) return TK_ERR_NOMEM;
        *kinds |= TK_EX_PRED;
    }
    if (field(rec, "choices")) { *kinds |= TK_EX_MC; return read_mc(rec, ex, err, n_err); }
    if (field(rec, "chosen") || field(rec, "rejected")) {
        const cJSON *pr = field(rec, "prompt");
        if (cJSON_IsArray(pr)) st = read_messages(pr, ex, NULL, "prompt", err, n_err);
        else if (cJSON_IsString(pr)) st = push_msg(ex, TK_ROLE_USER, pr->valuestring);
        else if (cJSON_IsArray(field(rec, "conversations"))) st = read_messages(field(rec, "conversations"), ex, NULL, "conversations", err, n_err);
        if (st) return st;
        ex->chosen = answer_of(field(rec, "chosen"));
        ex->rejected = answer_of(field(rec, "rejected"));
        if (!ex->chosen || !ex->rejected || !*ex->chosen || !*ex->rejected) {
            snprintf(err, n_err, "preference record needs non-empty \"chosen\" and \"rejected\" answers");
            return TK_ERR_FORMAT;
        }
        if (!strcmp(ex->chosen, ex->rejected)) { snprintf(err, n_err, "\"chosen\" and \"rejected\" are identical"); return TK_ERR_FORMAT; }
        *kinds |= TK_EX_PREF;
        return TK_OK;
    }
    const cJSON *tx = field(rec, "text");
    if (cJSON_IsString(tx) && !field(rec, "label") && !cJSON_IsArray(msgs) && !field(rec, "prompt") && !field(rec, "question") &&
        !field(rec, "instruction")) {
        *kinds |= TK_EX_TEXT;
        return (ex->text = tk_strdup(tx->valuestring)) ? TK_OK : TK_ERR_NOMEM;
    }
    if (cJSON_IsArray(msgs)) {
        if ((st = read_messages(msgs, ex, predictions ? NULL : &ex->reference, "messages", err, n_err))) return st;
    } else {
        const char *which = NULL, *p = str_field(rec, prompt_keys, &which);
        if (!p && !predictions) { snprintf(err, n_err, "no \"messages\", \"prompt\", \"question\", \"instruction\" or \"text\" field"); return TK_ERR_FORMAT; }
        const cJSON *in = field(rec, "input");
        if (p && which && !strcmp(which, "instruction") && cJSON_IsString(in) && *in->valuestring) {
            tk_buf b = {0};
            st = tk_buf_printf(&b, "%s\n\n%s", p, in->valuestring);
            if (!st) st = push_msg(ex, TK_ROLE_USER, b.data);
            tk_buf_free(&b);
        } else if (p) st = push_msg(ex, TK_ROLE_USER, p);
        if (st) return st;
    }
    const cJSON *label = field(rec, "label");
    if (!ex->reference) {
        const char *r = str_field(rec, ref_keys, NULL);
        if (r && !(ex->reference = tk_strdup(r))) return TK_ERR_NOMEM;
    }
    if (!ex->reference && (cJSON_IsString(label) || cJSON_IsNumber(label))) {
        char b[64];
        if (cJSON_IsNumber(label)) snprintf(b, sizeof b, "%.17g", label->valuedouble);
        if (!(ex->reference = tk_strdup(cJSON_IsString(label) ? label->valuestring : b))) return TK_ERR_NOMEM;
        ex->is_label = true;
        *kinds |= TK_EX_LABEL;
    }
    if (ex->reference) *kinds |= TK_EX_REF;
    if (ex->n_prompt && ex->prompt[ex->n_prompt - 1].role == TK_ROLE_USER) *kinds |= TK_EX_GEN;
    if (field(rec, "facts") || field(rec, "match")) *kinds |= TK_EX_FACTS;
    return TK_OK;
}

static void ex_free(tk_eval_ex *ex) {
    for (size_t i = 0; i < ex->n_prompt; i++) free((char *)ex->prompt[i].content);
    for (int i = 0; i < ex->n_choices; i++) free(ex->choices[i]);
    free(ex->prompt); free(ex->choices); free(ex->id); free(ex->reference); free(ex->text); free(ex->chosen); free(ex->rejected);
    for (int s = 0; s < 2; s++) { free(ex->pred[s]); free(ex->grade_error[s]); free(ex->choice_lp[s]); }
    cJSON_Delete(ex->item);
    memset(ex, 0, sizeof *ex);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static tk_status collect_labels(tk_eval_set *s) {
    for (size_t i = 0; i < s->n; i++) {
        if (!s->v[i].is_label) continue;
        bool seen = false;
        for (size_t j = 0; j < s->n_labels && !seen; j++) seen = !strcmp(s->labels[j], s->v[i].reference);
        if (seen) continue;
        char **l = tk_realloc(s->labels, (s->n_labels + 1) * sizeof *l);
        if (!l) return TK_ERR_NOMEM;
        s->labels = l;
        if (!(l[s->n_labels] = tk_strdup(s->v[i].reference))) return TK_ERR_NOMEM;
        s->n_labels++;
    }
    if (s->n_labels > 1) qsort(s->labels, s->n_labels, sizeof *s->labels, cmp_str);
    return TK_OK;
}

/* The first error finding of fs as a failure naming the file and line (then fs is cleared); TK_OK when fs has none. */
static tk_status first_error(const char *path, uint64_t line, tk_rfinds *fs) {
    tk_status st = TK_OK;
    for (size_t i = 0; i < fs->n && !st; i++)
        if (fs->v[i].severity == TK_DATA_ERROR)
            st = tk_fail(TK_ERR_FORMAT, "%s: line %llu: %s: %s", path, (unsigned long long)line, fs->v[i].category, fs->v[i].message ? fs->v[i].message : "");
    tk_rf_clear(fs);
    free(fs->v);
    memset(fs, 0, sizeof *fs);
    return st;
}

/* A CSV row or a record read through the map, as the data toolkit reads it (tk_layout_record); its first error names the line. */
static tk_status layout_record(const char *path, const tk_layout *lay, const tk_raw *raw, cJSON **out) {
    tk_rfinds fs = {0};
    *out = tk_layout_record(lay, raw, &fs);
    tk_status st = first_error(path, raw->line, &fs);
    if (!st && !*out) st = tk_fail(TK_ERR_FORMAT, "%s: line %llu: unreadable record", path, (unsigned long long)raw->line);
    if (st) { cJSON_Delete(*out); *out = NULL; }
    return st;
}

/* A text<TAB>label TSV line as the record {"text", "label"} (the data toolkit's TSV validation; its first error names the line). */
static tk_status tsv_record(const char *path, const tk_raw *raw, cJSON **out) {
    tk_example ex = {0};
    tk_rfinds fs = {0};
    tk_data_validate_tsv(raw->data, raw->len, &ex, &fs);
    *out = NULL;
    tk_status st = first_error(path, raw->line, &fs);
    if (!st) {
        cJSON *j = cJSON_CreateObject();
        char *t = tk_malloc(ex.msgs[0].len + 1), *l = tk_malloc(ex.label_len + 1);
        if (j && t && l) {
            memcpy(t, ex.msgs[0].text, ex.msgs[0].len); t[ex.msgs[0].len] = 0;
            memcpy(l, ex.label, ex.label_len); l[ex.label_len] = 0;
            if (cJSON_AddStringToObject(j, "text", t) && cJSON_AddStringToObject(j, "label", l)) { *out = j; j = NULL; }
        }
        cJSON_Delete(j);
        free(t); free(l);
        if (!*out) st = TK_ERR_NOMEM;
    }
    tk_example_free(&ex);
    return st;
}

tk_status tk_eval_set_load(const char *path, const tk_data_map *map, bool predictions, const char *system, tk_eval_set *out) {
    memset(out, 0, sizeof *out);
    tk_reader *r;
    tk_status st = tk_reader_open(path, TK_DATA_CONTAINER_AUTO, TK_DATA_DEFAULT_MAX_LINE, &r);
    if (st) return tk_fail_ctx(st, "%s: ", path);
    tk_data_container c = tk_reader_container(r);
    /* a CSV file (its header names the fields) or any file read through a map: the data toolkit's layout, as data check reads it */
    bool table = c == TK_DATA_CSV || map;
    if (!table && c != TK_DATA_JSONL && c != TK_DATA_JSON_ARRAY && !((c == TK_DATA_TXT || c == TK_DATA_TSV) && !predictions)) {
        tk_reader_close(r);
        return tk_fail(TK_ERR_FORMAT, "%s: %s files are not evaluation data: use JSONL, a JSON array of records, CSV with a header, "
                       "plain text or text<TAB>label TSV", path, tk_data_container_name(c));
    }
    tk_layout lay = {0};
    if (table) {
        tk_reader_close(r);
        r = NULL;
        st = tk_layout_open(path, NULL, 0, NULL, TK_DATA_CONTAINER_AUTO, TK_DATA_CHAT, map, TK_DATA_DEFAULT_MAX_LINE, &lay);
        if (!st && (st = tk_layout_reader(&lay, path, NULL, 0, NULL, TK_DATA_DEFAULT_MAX_LINE, &r))) tk_layout_free(&lay);
        if (st) return st;
    }
    tk_raw raw;
    bool has;
    char err[512];
    while (!st && (st = tk_reader_next(r, &raw, &has)) == TK_OK && has) {
        if (raw.kind == TK_RAW_BLANK || raw.kind == TK_RAW_HEADER) continue;
        if (raw.kind == TK_RAW_FATAL) { st = tk_fail(TK_ERR_FORMAT, "%s: %s", path, raw.msg ? raw.msg : "unreadable"); break; }
        if (raw.kind == TK_RAW_TOO_LONG) { st = tk_fail(TK_ERR_FORMAT, "%s: line %llu: record of %zu bytes is too long", path, (unsigned long long)raw.line, raw.len); break; }
        bool nul;
        size_t bad = tk_utf8_check(raw.data, raw.len, &nul);
        if (bad < raw.len) { st = tk_fail(TK_ERR_FORMAT, "%s: line %llu: %s", path, (unsigned long long)raw.line, nul ? "NUL byte in the record" : "invalid UTF-8"); break; }
        cJSON *j = NULL;
        if (table) { if ((st = layout_record(path, &lay, &raw, &j))) break; }
        else if (c == TK_DATA_TSV) { if ((st = tsv_record(path, &raw, &j))) break; }
        else j = c == TK_DATA_TXT ? cJSON_CreateObject() : cJSON_ParseWithLength(raw.data, raw.len);
        if (j && c == TK_DATA_TXT && !cJSON_AddStringToObject(j, "text", raw.data)) { cJSON_Delete(j); j = NULL; }
        if (!j) { st = tk_fail(TK_ERR_FORMAT, "%s: line %llu: not valid JSON", path, (unsigned long long)raw.line); break; }
        if (out->n == out->cap) {
            size_t cap = out->cap ? out->cap * 2 : 64;
            tk_eval_ex *v = tk_realloc(out->v, cap * sizeof *v);
            if (!v) { cJSON_Delete(j); st = TK_ERR_NOMEM; break; }
            out->v = v; out->cap = cap;
        }
        tk_eval_ex *ex = &out->v[out->n++];
        memset(ex, 0, sizeof *ex);
        ex->line = raw.line;
        ex->item = j;
        err[0] = 0;
        st = read_record(j, predictions, system, ex, &out->kinds, err, sizeof err);
        if (st == TK_ERR_FORMAT && err[0]) st = tk_fail(st, "%s: line %llu: %s", path, (unsigned long long)raw.line, err);
    }
    tk_reader_close(r);
    tk_layout_free(&lay);
    if (!st && out->n == 0) st = tk_fail(TK_ERR_FORMAT, "%s: no records", path);
    if (!st) st = collect_labels(out);
    if (st) tk_eval_set_free(out);
    return st;
}

void tk_eval_set_free(tk_eval_set *s) {
    for (size_t i = 0; i < s->n; i++) ex_free(&s->v[i]);
    for (size_t i = 0; i < s->n_labels; i++) free(s->labels[i]);
    free(s->v); free(s->labels);
    memset(s, 0, sizeof *s);
}
