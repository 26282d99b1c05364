/* The trainer's options as RUN/config.json holds them (the table is in options.c): writing the
 * resolved configuration, reading it back for --resume, reading one option as text, and the
 * resume check — every walk over the table's rows. */
#include "train/trainer.h"
#include "core/core.h"
#include <cjson/cJSON.h>
#include <stdio.h>

#define CFIELD(c, o, T) ((const T *)((const char *)(c) + (o)->offset))

void tk_json_string(tk_buf *b, const char *v) {
    if (!v) { tk_buf_append(b, "null", 4); return; }
    tk_buf_append(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p == '"' || *p == '\\') { char e[2] = {'\\', (char)*p}; tk_buf_append(b, e, 2); }
        else if (*p < 0x20) tk_buf_printf(b, "\\u%04x", *p);
        else tk_buf_append(b, p, 1);
    }
    tk_buf_append(b, "\"", 1);
}

/* One option's value as config.json holds it: "auto" for unresolved autos, numbers, strings,
 * booleans; the seed as a decimal string (a JSON number would lose its low bits). */
static void value_json(const tk_trainer_config *c, const tk_trainer_option *o, tk_buf *b, bool abs_paths) {
    char tmp[64];
    switch (o->type) {
    case TK_OPT_STR: {
        const char *s = *CFIELD(c, o, char *);
        char *abs = abs_paths && o->is_path && s ? tk_path_abs(s) : NULL; /* config.json: --resume works from any folder */
        tk_json_string(b, !s && o->is_auto ? "auto" : abs ? abs : s);
        free(abs);
        break;
    }
    case TK_OPT_ENUM: tk_json_string(b, o->value_name(*CFIELD(c, o, int))); break;
    case TK_OPT_TARGETS: tk_trainer_targets_text(*CFIELD(c, o, uint32_t), tmp, sizeof tmp); tk_json_string(b, tmp); break;
    case TK_OPT_BOOL: tk_buf_printf(b, "%s", *CFIELD(c, o, bool) ? "true" : "false"); break;
    case TK_OPT_I32:
        if (o->is_auto && *CFIELD(c, o, int32_t) == 0) tk_json_string(b, "auto");
        else tk_buf_printf(b, "%d", *CFIELD(c, o, int32_t));
        break;
    case TK_OPT_I64:
        if (o->is_auto && *CFIELD(c, o, int64_t) == 0) tk_json_string(b, "auto");
        else tk_buf_printf(b, "%lld", (long long)*CFIELD(c, o, int64_t));
        break;
    case TK_OPT_F64:
        if (o->is_auto && *CFIELD(c, o, double) == o->auto_value) tk_json_string(b, "auto");
        else tk_buf_printf(b, "%.17g", *CFIELD(c, o, double));
        break;
    case TK_OPT_U64: snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)*CFIELD(c, o, uint64_t)); tk_json_string(b, tmp); break;
    }
}

tk_status tk_trainer_config_json(const tk_trainer_config *c, tk_buf *b) {
    int n_opts;
    const tk_trainer_option *opts = tk_trainer_options(&n_opts);
    tk_buf_append(b, "{", 1);
    bool first = true;
    for (int i = 0; i < n_opts; i++) {
        if (opts[i].not_saved) continue;
        tk_buf_printf(b, "%s\"%s\":", first ? "" : ",", tk_trainer_option_key(&opts[i]));
        value_json(c, &opts[i], b, true);
        first = false;
    }
    tk_buf_append(b, "}", 1);
    return b->data ? TK_OK : TK_ERR_NOMEM;
}

tk_status tk_trainer_config_get(const tk_trainer_config *c, const char *name, tk_buf *out) {
    const tk_trainer_option *o = tk_trainer_option_find(name);
    if (!o) return tk_fail(TK_ERR_ARG, "unknown option --%s ('takumi train --help' lists the options)", name);
    if (o->type == TK_OPT_BOOL) {   /* --no-packing reads as the flag, "packing" as the field */
        bool b = *CFIELD(c, o, bool);
        if (o->negated && strcmp(name, tk_trainer_option_key(o)) != 0) b = !b;
        return tk_buf_printf(out, "%s", b ? "true" : "false");
    }
    tk_buf j = {0};
    value_json(c, o, &j, false);
    if (!j.data) return TK_ERR_NOMEM;
    tk_status st;
    if (!strcmp(j.data, "null")) st = tk_buf_append(out, "", 0);   /* unset */
    else if (j.data[0] == '"') {
        cJSON *s = cJSON_Parse(j.data);
        st = s && cJSON_IsString(s) ? tk_buf_append(out, s->valuestring, strlen(s->valuestring)) : TK_ERR_NOMEM;
        cJSON_Delete(s);
    } else st = tk_buf_append(out, j.data, j.len);
    tk_buf_free(&j);
    return st;
}

tk_status tk_trainer_config_apply_json(tk_trainer_config *c, const char *json, const char *where) {
    cJSON *obj = cJSON_Parse(json);
    if (!obj || !cJSON_IsObject(obj)) { cJSON_Delete(obj); return tk_fail(TK_ERR_FORMAT, "%s: not a JSON object", where); }
    tk_status st = TK_OK;
    char num[64];
    for (const cJSON *e = obj->child; e && !st; e = e->next) {
        const tk_trainer_option *o = tk_trainer_option_find(e->string);
        /* unknown keys (the "info" object…) are informational; resume is the caller's choice */
        if (!o || o->not_saved || cJSON_IsNull(e)) continue;
        const char *v = NULL;
        if (cJSON_IsString(e)) v = e->valuestring;
        else if (cJSON_IsBool(e)) v = cJSON_IsTrue(e) ? "true" : "false";
        else if (cJSON_IsNumber(e)) { snprintf(num, sizeof num, "%.17g", e->valuedouble); v = num; }
        else continue;
        uint64_t given[2] = {c->given[0], c->given[1]}; /* values read back were not given now */
        st = tk_trainer_config_set(c, e->string, v);
        c->given[0] = given[0];
        c->given[1] = given[1];
    }
    cJSON_Delete(obj);
    return st ? tk_fail_ctx(st, "%s: ", where) : TK_OK;
}

tk_status tk_trainer_config_diff(const char *saved, const char *now, tk_buf *diff) {
    int n_opts;
    const tk_trainer_option *opts = tk_trainer_options(&n_opts);
    cJSON *a = cJSON_Parse(saved), *b = cJSON_Parse(now);
    tk_status st = a && b ? TK_OK : tk_fail(TK_ERR_FORMAT, "the saved configuration is not JSON");
    for (int i = 0; i < n_opts && !st; i++) {
        if (!opts[i].resume) continue;
        const char *key = tk_trainer_option_key(&opts[i]);
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(a, key), *y = cJSON_GetObjectItemCaseSensitive(b, key);
        if (x && y && cJSON_Compare(x, y, true)) continue;
        /* an option newer than the checkpoint: the run it saved had its default ("auto") */
        if (!x && cJSON_IsString(y) && opts[i].init && !strcmp(y->valuestring, opts[i].init)) continue;
        char *xs = x ? cJSON_PrintUnformatted(x) : NULL, *ys = y ? cJSON_PrintUnformatted(y) : NULL;
        st = tk_buf_printf(diff, "\n  --%s: checkpoint %s, now %s", key, xs ? xs : "(none)", ys ? ys : "(none)");
        free(xs); free(ys);
    }
    cJSON_Delete(a);
    cJSON_Delete(b);
    return st;
}

