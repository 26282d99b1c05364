/* Reading a record through a field map: the record in the company's own layout becomes an
 * OpenAI chat record (or {"text","label"} / {"text"}), which the ordinary validators then
 * check. A field the map names but the record lacks, a turn whose role value the map does
 * not cover, or a value of the wrong type is an error finding that names the field, the
 * turn and what the record has instead. Fields the map does not use are kept as extra
 * top-level keys (keys the target format reserves get a "source_" prefix). */
#include "data/data_internal.h"

void tk_json_keys(const cJSON *obj, char *buf, size_t cap) {
    size_t o = 0;
    buf[0] = 0;
    const cJSON *k;
    cJSON_ArrayForEach(k, obj) {
        if (!k->string) continue;
        int w = snprintf(buf + o, cap - o, "%s%s", o ? ", " : "", k->string);
        if (w < 0 || (size_t)w >= cap - o) {
            if (cap > 4) snprintf(buf + (o < cap - 4 ? o : cap - 4), 4, "…");
            return;
        }
        o += (size_t)w;
    }
    if (!o) snprintf(buf, cap, "none");
}

/* obj[path]: the whole name first, else a dotted path through nested objects. */
static const cJSON *at(const cJSON *obj, const char *path) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, path);
    if (v || !strchr(path, '.')) return v;
    char part[256];
    const char *p = path;
    while (obj && *p) {
        size_t n = strcspn(p, ".");
        if (n >= sizeof part) return NULL;
        memcpy(part, p, n);
        part[n] = 0;
        obj = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, part) : NULL;
        p += n;
        if (*p == '.') p++;
    }
    return obj;
}

static void missing(const cJSON *obj, const char *what, const char *key, const char *field, tk_rfinds *fs) {
    char keys[240];
    tk_json_keys(obj, keys, sizeof keys);
    tk_rf_add(fs, TK_DATA_ERROR, "map_missing_field", "%s has no field \"%s\" (--map %s=%s); its fields: %s", what, field, key, field, keys);
}


/* Text of a string or number value into tmp (numbers) or the string itself; NULL otherwise. */
static const char *text_of(const cJSON *v, char *tmp, size_t cap) {
    if (cJSON_IsString(v)) return v->valuestring;
    if (cJSON_IsNumber(v)) {
        if (v->valuedouble == (double)(long long)v->valuedouble) snprintf(tmp, cap, "%lld", (long long)v->valuedouble);
        else snprintf(tmp, cap, "%.17g", v->valuedouble);
        return tmp;
    }
    return NULL;
}

static bool add_msg(cJSON *arr, const char *role, const char *text) {
    cJSON *m = cJSON_CreateObject();
    if (!m || !cJSON_AddStringToObject(m, "role", role) || !cJSON_AddStringToObject(m, "content", text)) { cJSON_Delete(m); return false; }
    return cJSON_AddItemToArray(arr, m);
}

/* The system prompt: system_field when the record has a non-empty one, else system= text. */
static bool add_system(const tk_data_map *m, const cJSON *rec, cJSON *arr, tk_rfinds *fs) {
    const char *sys = m->system_text;
    if (m->system_field) {
        const cJSON *v = at(rec, m->system_field);
        if (v && !cJSON_IsNull(v) && !cJSON_IsString(v)) {
            tk_rf_add(fs, TK_DATA_ERROR, "invalid_type", "field \"%s\" (--map system_field) is %s, expected a string", m->system_field, tk_json_type_name(v));
            return false;
        }
        if (cJSON_IsString(v) && v->valuestring[0]) sys = v->valuestring;
    }
    return !sys || add_msg(arr, "system", sys);
}

static int role_of(const tk_data_map *m, const char *v) {
    for (int r = 0; r < TK_MAP_N_ROLES; r++)
        for (size_t i = 0; i < m->roles[r].n; i++)
            if (!strcmp(m->roles[r].v[i], v)) return r;
    return -1;
}

static const char *const k_role_names[TK_MAP_N_ROLES] = {"system", "user", "assistant"};

static bool chat_turns(const tk_data_map *m, const cJSON *turns, cJSON *arr, tk_rfinds *fs) {
    if (!cJSON_IsArray(turns)) {
        tk_rf_add(fs, TK_DATA_ERROR, "invalid_type", "field \"%s\" (--map messages) is %s, expected a list of turns", m->messages, tk_json_type_name(turns));
        return false;
    }
    int i = 0;
    const cJSON *t;
    char tmp[64], what[64];
    cJSON_ArrayForEach(t, turns) {
        i++;
        snprintf(what, sizeof what, "turn %d", i);
        if (!cJSON_IsObject(t)) { tk_rf_add(fs, TK_DATA_ERROR, "invalid_type", "turn %d is %s, expected an object", i, tk_json_type_name(t)); return false; }
        const cJSON *rv = at(t, m->role), *cv = at(t, m->content);
        if (!rv) { missing(t, what, "role", m->role, fs); return false; }
        if (!cv) { missing(t, what, "content", m->content, fs); return false; }
        const char *rs = text_of(rv, tmp, sizeof tmp);
        int r = rs ? role_of(m, rs) : -1;
        if (r < 0) {
            if (rs)
                tk_rf_add(fs, TK_DATA_ERROR, "unmapped_role", "turn %d: role value \"%.60s\" (field \"%s\") is not in the map; add it to user=, "
                          "assistant= or system_role= (e.g. user=%s|%.40s)", i, rs, m->role, m->roles[TK_MAP_USER].v[0], rs);
            else tk_rf_add(fs, TK_DATA_ERROR, "unmapped_role", "turn %d: role field \"%s\" is %s, expected a string", i, m->role, tk_json_type_name(rv));
            return false;
        }
        if (!cJSON_IsString(cv)) {
            tk_rf_add(fs, TK_DATA_ERROR, "invalid_type", "turn %d: content field \"%s\" is %s, expected a string", i, m->content, tk_json_type_name(cv));
            return false;
        }
        if (!add_msg(arr, k_role_names[r], cv->valuestring)) { tk_rf_add(fs, TK_DATA_ERROR, "internal", "out of memory"); return false; }
    }
    return true;
}

/* history: a list of [user, assistant] pairs before the prompt (LLaMA-Factory's alpaca layout). */
static bool history_turns(const tk_data_map *m, const cJSON *h, cJSON *arr, tk_rfinds *fs) {
    if (!h || cJSON_IsNull(h)) return true;
    if (!cJSON_IsArray(h)) { tk_rf_add(fs, TK_DATA_ERROR, "invalid_type", "field \"%s\" (--map history) is %s, expected a list of pairs", m->history, tk_json_type_name(h)); return false; }
    int i = 0;
    const cJSON *pr;
    cJSON_ArrayForEach(pr, h) {
        i++;
        const cJSON *u = cJSON_GetArrayItem(pr, 0), *a = cJSON_GetArrayItem(pr, 1);
        if (!cJSON_IsArray(pr) || cJSON_GetArraySize(pr) != 2 || !cJSON_IsString(u) || !cJSON_IsString(a)) {
            tk_rf_add(fs, TK_DATA_ERROR, "invalid_type", "history item %d is not a [user, assistant] pair of strings", i);
            return false;
        }
        if (!add_msg(arr, "user", u->valuestring) || !add_msg(arr, "assistant", a->valuestring)) return false;
    }
    return true;
}

static bool pc_turns(const tk_data_map *m, const cJSON *rec, cJSON *arr, tk_rfinds *fs) {
    const cJSON *p = at(rec, m->prompt), *q = m->query ? at(rec, m->query) : NULL, *c = at(rec, m->completion);
    if (!p) { missing(rec, "the record", "prompt", m->prompt, fs); return false; }
    if (!c) { missing(rec, "the record", m->completion_key ? m->completion_key : "completion", m->completion, fs); return false; }
    char t1[64], t2[64], t3[64];
    const char *ps = text_of(p, t1, sizeof t1), *cs = text_of(c, t2, sizeof t2), *qs = q && !cJSON_IsNull(q) ? text_of(q, t3, sizeof t3) : NULL;
    if (!ps) { tk_rf_add(fs, TK_DATA_ERROR, "invalid_type", "field \"%s\" (--map prompt) is %s, expected a string", m->prompt, tk_json_type_name(p)); return false; }
    if (!cs) { tk_rf_add(fs, TK_DATA_ERROR, "invalid_type", "field \"%s\" (--map completion) is %s, expected a string", m->completion, tk_json_type_name(c)); return false; }
    if (q && !cJSON_IsNull(q) && !qs) { tk_rf_add(fs, TK_DATA_ERROR, "invalid_type", "field \"%s\" (--map query) is %s, expected a string", m->query, tk_json_type_name(q)); return false; }
    if (!history_turns(m, m->history ? at(rec, m->history) : NULL, arr, fs)) return false;
    bool ok;
    if (qs && qs[0]) {
        tk_buf b = {0};
        tk_buf_printf(&b, "%s\n%s", ps, qs);
        ok = b.data && add_msg(arr, "user", b.data);
        tk_buf_free(&b);
    } else ok = add_msg(arr, "user", ps);
    return ok && add_msg(arr, "assistant", cs);
}

/* Keys of rec the map did not use, kept at the top level of out. */
static void copy_extra(const tk_data_map *m, const cJSON *rec, cJSON *out) {
    const char *used[] = {m->messages, m->system_field, m->prompt, m->query, m->completion, m->history, m->text, m->label};
    static const char *const reserved[] = {"messages", "tools", "functions", "parallel_tool_calls", "text", "label", "sentence"};
    const cJSON *k;
    cJSON_ArrayForEach(k, rec) {
        if (!k->string) continue;
        bool skip = false;
        for (size_t i = 0; i < sizeof used / sizeof used[0] && !skip; i++) {
            if (!used[i]) continue;
            size_t n = strcspn(used[i], ".");
            skip = strlen(k->string) == n && !strncmp(k->string, used[i], n);
        }
        if (skip) continue;
        char name[300];
        snprintf(name, sizeof name, "%s", k->string);
        for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
            if (!strcmp(k->string, reserved[i])) snprintf(name, sizeof name, "source_%s", k->string);
        if (!cJSON_GetObjectItemCaseSensitive(out, name)) cJSON_AddItemToObject(out, name, cJSON_Duplicate(k, true));
    }
}

cJSON *tk_map_apply(const tk_data_map *m, const cJSON *rec, tk_rfinds *fs) {
    if (!cJSON_IsObject(rec)) {
        tk_rf_add(fs, TK_DATA_ERROR, "data_type", "record is %s, expected a JSON object", tk_json_type_name(rec));
        return NULL;
    }
    cJSON *out = cJSON_CreateObject();
    if (!out) { tk_rf_add(fs, TK_DATA_ERROR, "internal", "out of memory"); return NULL; }
    bool ok = true;
    if (m->kind == TK_MAP_CHAT || m->kind == TK_MAP_PC) {
        cJSON *arr = cJSON_AddArrayToObject(out, "messages");
        const cJSON *turns = m->kind == TK_MAP_CHAT ? at(rec, m->messages) : NULL;
        if (m->kind == TK_MAP_CHAT && !turns) { missing(rec, "the record", "messages", m->messages, fs); ok = false; }
        ok = ok && arr && add_system(m, rec, arr, fs);
        ok = ok && (m->kind == TK_MAP_CHAT ? chat_turns(m, turns, arr, fs) : pc_turns(m, rec, arr, fs));
        if (ok && m->train == TK_MAP_TRAIN_LAST) {
            cJSON *last = NULL, *x;
            cJSON_ArrayForEach(x, arr) if (!strcmp(cJSON_GetObjectItemCaseSensitive(x, "role")->valuestring, "assistant")) last = x;
            cJSON_ArrayForEach(x, arr)
                if (x != last && !strcmp(cJSON_GetObjectItemCaseSensitive(x, "role")->valuestring, "assistant")) cJSON_AddNumberToObject(x, "weight", 0);
        }
    } else {
        const cJSON *t = at(rec, m->text), *l = m->label ? at(rec, m->label) : NULL;
        if (!t) { missing(rec, "the record", "text", m->text, fs); ok = false; }
        else if (!cJSON_IsString(t)) { tk_rf_add(fs, TK_DATA_ERROR, "invalid_type", "field \"%s\" (--map text) is %s, expected a string", m->text, tk_json_type_name(t)); ok = false; }
        else if (m->label && !l) { missing(rec, "the record", "label", m->label, fs); ok = false; }
        if (ok) {
            cJSON_AddStringToObject(out, "text", t->valuestring);
            if (l) cJSON_AddItemToObject(out, "label", cJSON_Duplicate(l, true));
        }
    }
    if (!ok) { cJSON_Delete(out); return NULL; }
    copy_extra(m, rec, out);
    return out;
}

tk_status tk_map_check_fields(const tk_data_map *m, const cJSON *rec, const char *name, const char *what, const char *noun) {
    const char *need[3] = {NULL, NULL, NULL}, *keys[3] = {NULL, NULL, NULL};
    if (m->kind == TK_MAP_CHAT) { need[0] = m->messages; keys[0] = "messages"; }
    else if (m->kind == TK_MAP_PC) { need[0] = m->prompt; keys[0] = "prompt"; need[1] = m->completion; keys[1] = m->completion_key ? m->completion_key : "completion"; }
    else { need[0] = m->text; keys[0] = "text"; need[1] = m->label; keys[1] = "label"; }
    for (int i = 0; i < 3; i++) {
        if (!need[i] || at(rec, need[i])) continue;
        char have[240];
        tk_json_keys(rec, have, sizeof have);
        return tk_fail(TK_ERR_FORMAT, "%s: --map %s=%s names a %s that %s does not have; its %ss: %s", name, keys[i], need[i], noun, what,
                       noun, have);
    }
    return TK_OK;
}
