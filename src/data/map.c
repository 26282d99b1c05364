/* Field maps: `--map 'messages=turns,role=speaker,content=utterance,user=USER,assistant=SYSTEM'`
 * and `--map-file FILE` (the same keys as a JSON object, or a LLaMA-Factory dataset_info
 * entry with "formatting", "columns" and "tags"). Parsing only; map_apply.c reads records
 * through a map. Every mistake is refused with the key and the reason: an unknown key, a
 * key given twice, an empty value, keys of two layouts mixed, a role value given to two
 * roles. */
#include "data/data_internal.h"

typedef struct key_info { const char *name; int group; } key_info;   /* group: 1 chat, 2 prompt/completion, 3 text/label, 0 shared */
static const key_info k_keys[] = {
    {"messages", 1}, {"role", 1}, {"content", 1}, {"user", 1}, {"assistant", 1}, {"system_role", 1},
    {"prompt", 2}, {"query", 2}, {"completion", 2}, {"response", 2}, {"reference", 2}, {"history", 2},
    {"text", 3}, {"label", 3},
    {"system", 0}, {"system_field", 0}, {"train", 0},
};
#define N_KEYS (sizeof k_keys / sizeof k_keys[0])
static const char *const k_group[4] = {"", "chat (messages=…)", "prompt/completion (prompt=…, completion=…)", "classification/text (text=…, label=…)"};

static void values_free(tk_map_values *v) {
    for (size_t i = 0; i < v->n; i++) free(v->v[i]);
    free(v->v);
    memset(v, 0, sizeof *v);
}

void tk_data_map_free(tk_data_map *m) {
    if (!m) return;
    char *s[] = {m->messages, m->role, m->content, m->system_text, m->system_field, m->prompt, m->query, m->completion,
                 m->history, m->text, m->label};
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) free(s[i]);
    for (int r = 0; r < TK_MAP_N_ROLES; r++) values_free(&m->roles[r]);
    free(m);
}

tk_data_format tk_data_map_format(const tk_data_map *m) {
    if (!m) return TK_DATA_AUTO;
    return m->kind == TK_MAP_CLASS ? TK_DATA_CLASSIFICATION : m->kind == TK_MAP_TEXT ? TK_DATA_TEXT : TK_DATA_CHAT;
}

bool tk_data_map_trains_all(const tk_data_map *m) { return m && m->train == TK_MAP_TRAIN_ALL; }

/* Role values "A|B|C" -> list (empty alternatives refused). */
static tk_status set_values(tk_map_values *v, const char *key, const char *val, const char *name) {
    const char *p = val;
    for (;;) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == 0) return tk_fail(TK_ERR_ARG, "%s: %s=%s: an empty role value", name, key, val);
        char **nv = tk_realloc(v->v, (v->n + 1) * sizeof *nv);
        if (!nv) return TK_ERR_NOMEM;
        v->v = nv;
        if (!(v->v[v->n] = tk_strndup(p, n))) return TK_ERR_NOMEM;
        v->n++;
        if (!bar) return TK_OK;
        p = bar + 1;
    }
}

/* Sets one key (what spec and flat JSON share). seen: bit per key of k_keys. */
static tk_status set_key(tk_data_map *m, const char *key, const char *val, uint32_t *seen, const char *name) {
    size_t k;
    for (k = 0; k < N_KEYS; k++) if (!strcmp(k_keys[k].name, key)) break;
    if (k == N_KEYS)
        return tk_fail(TK_ERR_ARG, "%s: unknown key '%s' (keys: messages, role, content, user, assistant, system_role, system, "
                       "system_field, train, prompt, query, completion, response, reference, history, text, label)", name, key);
    if (*seen & (1u << k)) return tk_fail(TK_ERR_ARG, "%s: '%s' is given twice", name, key);
    *seen |= 1u << k;
    if (!val[0]) return tk_fail(TK_ERR_ARG, "%s: '%s' has an empty value", name, key);
    char **dst = NULL;
    if (!strcmp(key, "user")) return set_values(&m->roles[TK_MAP_USER], key, val, name);
    if (!strcmp(key, "assistant")) return set_values(&m->roles[TK_MAP_ASSISTANT], key, val, name);
    if (!strcmp(key, "system_role")) return set_values(&m->roles[TK_MAP_SYSTEM], key, val, name);
    if (!strcmp(key, "train")) {
        if (!strcmp(val, "assistant")) m->train = TK_MAP_TRAIN_ASSISTANT;
        else if (!strcmp(val, "last")) m->train = TK_MAP_TRAIN_LAST;
        else if (!strcmp(val, "all")) m->train = TK_MAP_TRAIN_ALL;
        else return tk_fail(TK_ERR_ARG, "%s: train=%s: expected assistant, last or all", name, val);
        return TK_OK;
    }
    if (!strcmp(key, "messages")) dst = &m->messages;
    else if (!strcmp(key, "role")) dst = &m->role;
    else if (!strcmp(key, "content")) dst = &m->content;
    else if (!strcmp(key, "prompt")) dst = &m->prompt;
    else if (!strcmp(key, "query")) dst = &m->query;
    else if (!strcmp(key, "completion") || !strcmp(key, "response") || !strcmp(key, "reference")) {
        if (m->completion) return tk_fail(TK_ERR_ARG, "%s: give one of completion=, response= and reference=, not two", name);
        m->completion_key = k_keys[k].name;   /* for messages: the key the user wrote */
        dst = &m->completion;
    } else if (!strcmp(key, "history")) dst = &m->history;
    else if (!strcmp(key, "text")) dst = &m->text;
    else if (!strcmp(key, "label")) dst = &m->label;
    else if (!strcmp(key, "system")) dst = &m->system_text;
    else dst = &m->system_field;
    return (*dst = tk_strdup(val)) ? TK_OK : TK_ERR_NOMEM;
}

static tk_status default_values(tk_map_values *v, const char *d) { return v->n ? TK_OK : set_values(v, "", d, ""); }

/* Checks the combination of keys and fills the defaults. */
static tk_status finish(tk_data_map *m, uint32_t seen, const char *name) {
    int group = 0;
    for (size_t k = 0; k < N_KEYS; k++) {
        if (!(seen & (1u << k)) || !k_keys[k].group) continue;
        if (group && group != k_keys[k].group)
            return tk_fail(TK_ERR_ARG, "%s: '%s' belongs to a %s layout, but the map also names a %s layout", name, k_keys[k].name,
                           k_group[k_keys[k].group], k_group[group]);
        group = k_keys[k].group;
    }
    if (!group) return tk_fail(TK_ERR_ARG, "%s: names no fields (e.g. messages=turns,role=speaker,content=utterance,user=USER,assistant=SYSTEM, "
                               "or prompt=question,completion=answer, or text=review,label=stars)", name);
    tk_status st = TK_OK;
    if (group == 1) {
        if (!m->messages) return tk_fail(TK_ERR_ARG, "%s: a chat map needs messages=FIELD (the list of turns)", name);
        m->kind = TK_MAP_CHAT;
        if (!m->role && !(m->role = tk_strdup("role"))) return TK_ERR_NOMEM;
        if (!m->content && !(m->content = tk_strdup("content"))) return TK_ERR_NOMEM;
        if ((st = default_values(&m->roles[TK_MAP_USER], "user")) || (st = default_values(&m->roles[TK_MAP_ASSISTANT], "assistant")) ||
            (st = default_values(&m->roles[TK_MAP_SYSTEM], "system")))
            return st;
        for (int a = 0; a < TK_MAP_N_ROLES; a++)
            for (int b = a + 1; b < TK_MAP_N_ROLES; b++)
                for (size_t i = 0; i < m->roles[a].n; i++)
                    for (size_t j = 0; j < m->roles[b].n; j++)
                        if (!strcmp(m->roles[a].v[i], m->roles[b].v[j]))
                            return tk_fail(TK_ERR_ARG, "%s: role value '%s' is given to two roles", name, m->roles[a].v[i]);
    } else if (group == 2) {
        if (!m->prompt || !m->completion) return tk_fail(TK_ERR_ARG, "%s: a prompt/completion map needs both prompt=FIELD and completion=FIELD", name);
        m->kind = TK_MAP_PC;
    } else {
        if (!m->text) return tk_fail(TK_ERR_ARG, "%s: label= needs text=FIELD too", name);
        m->kind = m->label ? TK_MAP_CLASS : TK_MAP_TEXT;
        if (m->system_text || m->system_field || m->train)
            return tk_fail(TK_ERR_ARG, "%s: system, system_field and train apply to conversations, not to %s", name,
                           m->label ? "classification" : "raw text");
    }
    return TK_OK;
}

tk_status tk_data_map_parse(const char *spec, tk_data_map **out) {
    *out = NULL;
    const char *name = "--map";
    if (!spec) return tk_fail(TK_ERR_ARG, "--map: no value");
    tk_data_map *m = tk_calloc(1, sizeof *m);
    if (!m) return TK_ERR_NOMEM;
    uint32_t seen = 0;
    tk_status st = TK_OK;
    tk_buf key = {0}, val = {0};
    const char *p = spec;
    while (!st && *p) {
        key.len = val.len = 0;
        while (*p == ' ') p++;
        const char *eq = strchr(p, '=');
        const char *comma = strchr(p, ',');
        if (!eq || (comma && comma < eq)) {
            size_t n = comma ? (size_t)(comma - p) : strlen(p);
            st = tk_fail(TK_ERR_ARG, "--map: '%.*s' is not key=value", (int)n, p);
            break;
        }
        size_t kn = (size_t)(eq - p);
        while (kn > 0 && p[kn - 1] == ' ') kn--;
        if ((st = tk_buf_append(&key, p, kn)) || (st = tk_buf_append(&key, "", 1))) break;
        p = eq + 1;
        if (*p == '"') {
            p++;
            for (;;) {
                if (!*p) { st = tk_fail(TK_ERR_ARG, "--map: the quoted value of '%s' is not closed", key.data); break; }
                if (*p == '"' && p[1] == '"') { st = tk_buf_append(&val, "\"", 1); p += 2; }
                else if (*p == '"') { p++; break; }
                else st = tk_buf_append(&val, p++, 1);
                if (st) break;
            }
            if (!st && *p && *p != ',') st = tk_fail(TK_ERR_ARG, "--map: text after the quoted value of '%s'", key.data);
        } else {
            size_t vn = strcspn(p, ",");
            st = tk_buf_append(&val, p, vn);
            p += vn;
        }
        if (!st) st = tk_buf_append(&val, "", 1);
        if (!st) st = set_key(m, key.data, val.data, &seen, name);
        if (!st && *p == ',') { p++; if (!*p) st = tk_fail(TK_ERR_ARG, "--map: a trailing comma"); }
    }
    if (!st) st = finish(m, seen, name);
    tk_buf_free(&key);
    tk_buf_free(&val);
    if (st) { tk_data_map_free(m); return st; }
    *out = m;
    return TK_OK;
}

/* A string member of obj (NULL when absent); fails when present and not a string. */
static tk_status str_member(const cJSON *obj, const char *k, const char *where, const char *name, const char **out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, k);
    *out = NULL;
    if (!v) return TK_OK;
    if (!cJSON_IsString(v)) return tk_fail(TK_ERR_FORMAT, "%s: %s\"%s\" must be a string", name, where, k);
    *out = v->valuestring;
    return TK_OK;
}

/* Sets key from obj[member] (or dflt when absent; nothing when both are NULL). */
static tk_status take(tk_data_map *m, uint32_t *seen, const cJSON *obj, const char *member, const char *key, const char *dflt,
                      const char *where, const char *name) {
    const char *v;
    tk_status st = str_member(obj, member, where, name, &v);
    if (st) return st;
    if (!v) v = dflt;
    return v ? set_key(m, key, v, seen, name) : TK_OK;
}

/* Refuses members of obj not in allowed (NULL-terminated). */
static tk_status only(const cJSON *obj, const char *const *allowed, const char *where, const char *why, const char *name) {
    const cJSON *k;
    cJSON_ArrayForEach(k, obj) {
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++) ok = !strcmp(*a, k->string);
        if (!ok) return tk_fail(TK_ERR_UNSUPPORTED, "%s: %s\"%s\" is not supported (%s)", name, where, k->string, why);
    }
    return TK_OK;
}

/* LLaMA-Factory dataset_info entry: formatting, columns, tags. */
static tk_status from_llamafactory(tk_data_map *m, uint32_t *seen, const cJSON *j, const char *name) {
    static const char *const top[] = {"formatting", "columns", "tags", "file_name", "hf_hub_url", "ms_hub_url", "om_hub_url",
                                      "script_url", "split", "subset", "folder", "num_samples", NULL};
    tk_status st = only(j, top, "", "takumi reads SFT layouts: sharegpt or alpaca formatting, columns and tags", name);
    if (st) return st;
    const char *fmt;
    if ((st = str_member(j, "formatting", "", name, &fmt))) return st;
    const cJSON *cols = cJSON_GetObjectItemCaseSensitive(j, "columns"), *tags = cJSON_GetObjectItemCaseSensitive(j, "tags");
    if (cols && !cJSON_IsObject(cols)) return tk_fail(TK_ERR_FORMAT, "%s: \"columns\" must be an object", name);
    if (tags && !cJSON_IsObject(tags)) return tk_fail(TK_ERR_FORMAT, "%s: \"tags\" must be an object", name);
    if (!fmt || !strcmp(fmt, "alpaca")) {
        static const char *const ac[] = {"prompt", "query", "response", "system", "history", NULL};
        if (cols && (st = only(cols, ac, "columns.", "alpaca columns: prompt, query, response, system, history", name))) return st;
        if (tags && cJSON_GetArraySize(tags) > 0) return tk_fail(TK_ERR_FORMAT, "%s: \"tags\" apply to sharegpt formatting only", name);
        if ((st = take(m, seen, cols, "prompt", "prompt", "instruction", "columns.", name)) ||
            (st = take(m, seen, cols, "query", "query", "input", "columns.", name)) ||
            (st = take(m, seen, cols, "response", "completion", "output", "columns.", name)) ||
            (st = take(m, seen, cols, "system", "system_field", NULL, "columns.", name)) ||
            (st = take(m, seen, cols, "history", "history", NULL, "columns.", name)))
            return st;
        return TK_OK;
    }
    if (strcmp(fmt, "sharegpt")) return tk_fail(TK_ERR_UNSUPPORTED, "%s: formatting \"%s\": expected sharegpt or alpaca", name, fmt);
    static const char *const sc[] = {"messages", "system", NULL};
    if (cols && (st = only(cols, sc, "columns.", "tool definitions and images, audio or video have no place in a mapped chat record", name))) return st;
    static const char *const st_[] = {"role_tag", "content_tag", "user_tag", "assistant_tag", "system_tag", "observation_tag", "function_tag", NULL};
    if (tags && (st = only(tags, st_, "tags.", "unknown tag", name))) return st;
    if ((st = take(m, seen, cols, "messages", "messages", "conversations", "columns.", name)) ||
        (st = take(m, seen, cols, "system", "system_field", NULL, "columns.", name)) ||
        (st = take(m, seen, tags, "role_tag", "role", "from", "tags.", name)) ||
        (st = take(m, seen, tags, "content_tag", "content", "value", "tags.", name)) ||
        (st = take(m, seen, tags, "user_tag", "user", "human", "tags.", name)) ||
        (st = take(m, seen, tags, "assistant_tag", "assistant", "gpt", "tags.", name)) ||
        (st = take(m, seen, tags, "system_tag", "system_role", "system", "tags.", name)))
        return st;
    /* observation_tag / function_tag: tool turns; a record holding one is reported as an unmapped role */
    return TK_OK;
}

tk_status tk_data_map_from_json(const char *text, size_t len, const char *name, tk_data_map **out) {
    *out = NULL;
    if (!name) name = "--map-file";
    cJSON *j = cJSON_ParseWithLength(text ? text : "", len);
    if (!j) return tk_fail(TK_ERR_FORMAT, "%s: not valid JSON", name);
    tk_status st = TK_OK;
    tk_data_map *m = NULL;
    if (!cJSON_IsObject(j)) st = tk_fail(TK_ERR_FORMAT, "%s: expected a JSON object", name);
    else if (!(m = tk_calloc(1, sizeof *m))) st = TK_ERR_NOMEM;
    uint32_t seen = 0;
    bool lf = !st && (cJSON_GetObjectItemCaseSensitive(j, "formatting") || cJSON_GetObjectItemCaseSensitive(j, "columns") ||
                      cJSON_GetObjectItemCaseSensitive(j, "tags") || cJSON_GetObjectItemCaseSensitive(j, "file_name"));
    bool entries = !st && !lf && cJSON_GetArraySize(j) > 0;
    const cJSON *k;
    if (entries) cJSON_ArrayForEach(k, j) entries = entries && cJSON_IsObject(k);
    if (entries) {
        char keys[200];
        tk_json_keys(j, keys, sizeof keys);
        st = tk_fail(TK_ERR_FORMAT, "%s: holds several dataset entries (%s); put the one entry to use in its own file", name, keys);
    } else if (lf) st = from_llamafactory(m, &seen, j, name);
    else if (!st) {
        cJSON_ArrayForEach(k, j) {
            if (cJSON_IsArray(k) && (!strcmp(k->string, "user") || !strcmp(k->string, "assistant") || !strcmp(k->string, "system_role"))) {
                tk_buf b = {0};
                const cJSON *v;
                cJSON_ArrayForEach(v, k) {
                    if (!cJSON_IsString(v)) { st = tk_fail(TK_ERR_FORMAT, "%s: \"%s\" must list strings", name, k->string); break; }
                    if (b.len) tk_buf_append(&b, "|", 1);
                    tk_buf_append(&b, v->valuestring, strlen(v->valuestring));
                }
                tk_buf_append(&b, "", 1);
                if (!st) st = b.data ? set_key(m, k->string, b.data, &seen, name) : TK_ERR_NOMEM;
                tk_buf_free(&b);
            } else if (!cJSON_IsString(k)) st = tk_fail(TK_ERR_FORMAT, "%s: \"%s\" must be a string", name, k->string);
            else st = set_key(m, k->string, k->valuestring, &seen, name);
            if (st) break;
        }
    }
    if (!st) st = finish(m, seen, name);
    cJSON_Delete(j);
    if (st) { tk_data_map_free(m); return st; }
    *out = m;
    return TK_OK;
}

tk_status tk_data_map_load(const char *path, tk_data_map **out) {
    *out = NULL;
    tk_mapped_file f;
    tk_status st = tk_map_file(path, &f);
    if (st) return tk_fail_ctx(st, "--map-file: ");
    st = tk_data_map_from_json((const char *)f.data, f.size, path, out);
    tk_unmap_file(&f);
    return st;
}

static void put(tk_buf *o, const char *k, const char *v) {
    if (!v) return;
    tk_buf_printf(o, "%s%s=", o->len ? "," : "", k);
    if (!strpbrk(v, ",\"")) { tk_buf_append(o, v, strlen(v)); return; }
    tk_buf_append(o, "\"", 1);
    for (const char *p = v; *p; p++) {
        if (*p == '"') tk_buf_append(o, "\"\"", 2);
        else tk_buf_append(o, p, 1);
    }
    tk_buf_append(o, "\"", 1);
}

static void put_values(tk_buf *o, const char *k, const tk_map_values *v) {
    tk_buf b = {0};
    for (size_t i = 0; i < v->n; i++) tk_buf_printf(&b, "%s%s", i ? "|" : "", v->v[i]);
    put(o, k, b.data);
    tk_buf_free(&b);
}

tk_status tk_data_map_describe(const tk_data_map *m, tk_buf *out) {
    tk_buf o = {0};
    put(&o, "messages", m->messages); put(&o, "role", m->role); put(&o, "content", m->content);
    if (m->kind == TK_MAP_CHAT) {
        put_values(&o, "user", &m->roles[TK_MAP_USER]);
        put_values(&o, "assistant", &m->roles[TK_MAP_ASSISTANT]);
        put_values(&o, "system_role", &m->roles[TK_MAP_SYSTEM]);
    }
    put(&o, "prompt", m->prompt); put(&o, "query", m->query); put(&o, "completion", m->completion); put(&o, "history", m->history);
    put(&o, "text", m->text); put(&o, "label", m->label);
    put(&o, "system", m->system_text); put(&o, "system_field", m->system_field);
    if (m->train) put(&o, "train", m->train == TK_MAP_TRAIN_LAST ? "last" : "all");
    tk_status st = o.data ? tk_buf_append(out, o.data, o.len) : TK_OK;
    tk_buf_free(&o);
    return st;
}
