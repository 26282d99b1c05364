/* Graders in OpenAI's JSON form plus takumi's `command` grader: parsing the document into a
 * grader tree (with every error naming the file and the field), and grading one sample by
 * dispatching on the type. */
#include "eval/grader_internal.h"
#include <math.h>
#include <stdio.h>
#include <strings.h>

enum { PATH_MAX_LEN = 320 };

void tk_grader_free(tk_grader *g) {
    if (!g) return;
    free(g->name);
    tk_tmpl_free(g->input);
    tk_tmpl_free(g->reference);
    free(g->model);
    for (int i = 0; i < g->n_msgs; i++) {
        free(g->msgs[i].role);
        tk_tmpl_free(g->msgs[i].content);
    }
    free(g->msgs);
    for (int i = 0; i < g->n_subs; i++) {
        tk_grader_free(g->subs[i]);
        free(g->sub_names[i]);
    }
    free(g->subs);
    free(g->sub_names);
    tk_formula_free(g->formula);
    if (g->argv)
        for (char **a = g->argv; *a; a++) free(*a);
    free(g->argv);
    free(g);
}

/* A required template field ("input", "reference"), compiled. */
static tk_status parse_tmpl_field(const cJSON *j, const char *prefix, const char *key, tk_tmpl **out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsString(v)) return tk_fail(TK_ERR_FORMAT, "%s%s: %s (a string, may hold {{ templates }})", prefix, key, v ? "must be a string" : "missing");
    char w[PATH_MAX_LEN];
    snprintf(w, sizeof w, "%s%s", prefix, key);
    return tk_tmpl_parse(v->valuestring, w, out);
}

static tk_status parse_string_check(tk_grader *g, const cJSON *j, const char *prefix) {
    static const char *const ops[] = {"eq", "ne", "like", "ilike"};
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(j, "operation");
    if (!cJSON_IsString(op)) return tk_fail(TK_ERR_FORMAT, "%soperation: missing (eq, ne, like or ilike)", prefix);
    int k = -1;
    for (int i = 0; i < 4; i++)
        if (!strcmp(op->valuestring, ops[i])) k = i;
    if (k < 0) return tk_fail(TK_ERR_FORMAT, "%soperation: unknown operation '%s' (eq, ne, like or ilike)", prefix, op->valuestring);
    g->op = (tk_string_op)k;
    tk_status st = parse_tmpl_field(j, prefix, "input", &g->input);
    return st ? st : parse_tmpl_field(j, prefix, "reference", &g->reference);
}

static tk_status parse_command(tk_grader *g, const cJSON *j, const char *prefix) {
    const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(j, "command");
    if (!cJSON_IsArray(cmd) || cJSON_GetArraySize(cmd) == 0)
        return tk_fail(TK_ERR_FORMAT, "%scommand: must be a non-empty array of strings [\"program\", \"arg\", ...] (no shell)", prefix);
    int n = cJSON_GetArraySize(cmd);
    if (!(g->argv = tk_calloc((size_t)n + 1, sizeof *g->argv))) return TK_ERR_NOMEM;
    for (int i = 0; i < n; i++) {
        const cJSON *a = cJSON_GetArrayItem(cmd, i);
        if (!cJSON_IsString(a) || (i == 0 && !a->valuestring[0]))
            return tk_fail(TK_ERR_FORMAT, "%scommand[%d]: must be a %sstring", prefix, i, i == 0 ? "non-empty " : "");
        if (!(g->argv[i] = tk_strdup(a->valuestring))) return TK_ERR_NOMEM;
    }
    g->timeout_s = 10;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "timeout_s");
    if (t) {
        if (!cJSON_IsNumber(t) || !(t->valuedouble > 0) || t->valuedouble > 86400)
            return tk_fail(TK_ERR_FORMAT, "%stimeout_s: must be a number of seconds in (0, 86400]", prefix);
        g->timeout_s = t->valuedouble;
    }
    return TK_OK;
}

static tk_status parse_grader(const cJSON *j, const char *origin, const char *path, const char *key, int depth, tk_grader **out);

static tk_status parse_multi(tk_grader *g, const cJSON *j, const char *origin, const char *path, const char *prefix, int depth) {
    const cJSON *subs = cJSON_GetObjectItemCaseSensitive(j, "graders");
    if (!cJSON_IsObject(subs) || !subs->child)
        return tk_fail(TK_ERR_FORMAT, "%sgraders: must be a non-empty object {\"name\": grader, ...}", prefix);
    int n = cJSON_GetArraySize(subs);
    if (!(g->subs = tk_calloc((size_t)n, sizeof *g->subs)) || !(g->sub_names = tk_calloc((size_t)n, sizeof *g->sub_names)))
        return TK_ERR_NOMEM;
    const cJSON *s;
    cJSON_ArrayForEach(s, subs) {
        for (int i = 0; i < g->n_subs; i++)
            if (!strcmp(g->sub_names[i], s->string)) return tk_fail(TK_ERR_FORMAT, "%sgraders: '%s' appears twice", prefix, s->string);
        char sp[PATH_MAX_LEN];
        snprintf(sp, sizeof sp, "%s%sgraders.%s", path, *path ? "." : "", s->string);
        if (!(g->sub_names[g->n_subs] = tk_strdup(s->string))) return TK_ERR_NOMEM;
        tk_status st = parse_grader(s, origin, sp, s->string, depth + 1, &g->subs[g->n_subs]);
        g->n_subs++;
        if (st) return st;
        if (g->subs[g->n_subs - 1]->type == TK_GRADER_MULTI)
            return tk_fail(TK_ERR_UNSUPPORTED, "%s: %s: a multi grader inside a multi grader is not supported", origin, sp);
    }
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, "calculate_output");
    if (!cJSON_IsString(f)) return tk_fail(TK_ERR_FORMAT, "%scalculate_output: %s (a formula over the graders' names)", prefix, f ? "must be a string" : "missing");
    return tk_formula_parse(f->valuestring, (const char *const *)g->sub_names, g->n_subs, prefix, &g->formula);
}

static tk_status parse_grader(const cJSON *j, const char *origin, const char *path, const char *key, int depth, tk_grader **out) {
    *out = NULL;
    char prefix[PATH_MAX_LEN + 64];
    snprintf(prefix, sizeof prefix, "%s: %s%s", origin, path, *path ? "." : "");
    if (!cJSON_IsObject(j)) return tk_fail(TK_ERR_FORMAT, "%s: %s: a grader must be a JSON object", origin, *path ? path : "the document");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
    if (!cJSON_IsString(type))
        return tk_fail(TK_ERR_FORMAT, "%stype: missing (string_check, text_similarity, score_model, multi or command)", prefix);
    const char *t = type->valuestring;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(j, "name");
    if (name && !cJSON_IsString(name)) return tk_fail(TK_ERR_FORMAT, "%sname: must be a string", prefix);
    tk_grader *g = tk_calloc(1, sizeof *g);
    if (!g) return TK_ERR_NOMEM;
    tk_status st = TK_OK;
    if (!(g->name = tk_strdup(key ? key : name && name->valuestring[0] ? name->valuestring : t))) st = TK_ERR_NOMEM;
    const cJSON *thr = cJSON_GetObjectItemCaseSensitive(j, "pass_threshold");
    if (!st && thr) {
        if (!cJSON_IsNumber(thr) || !isfinite(thr->valuedouble)) st = tk_fail(TK_ERR_FORMAT, "%spass_threshold: must be a number", prefix);
        g->has_pass_threshold = true;
        g->pass_threshold = thr ? thr->valuedouble : 0;
    }
    if (st) {
    } else if (!strcmp(t, "string_check")) {
        g->type = TK_GRADER_STRING_CHECK;
        st = parse_string_check(g, j, prefix);
    } else if (!strcmp(t, "text_similarity")) {
        g->type = TK_GRADER_TEXT_SIMILARITY;
        st = tk_grader_parse_similarity(g, j, prefix);
        if (!st) st = parse_tmpl_field(j, prefix, "input", &g->input);
        if (!st) st = parse_tmpl_field(j, prefix, "reference", &g->reference);
    } else if (!strcmp(t, "score_model")) {
        g->type = TK_GRADER_SCORE_MODEL;
        st = tk_grader_parse_score_model(g, j, prefix);
    } else if (!strcmp(t, "multi")) {
        g->type = TK_GRADER_MULTI;
        st = depth > 0 ? tk_fail(TK_ERR_UNSUPPORTED, "%stype: a multi grader inside a multi grader is not supported", prefix)
                       : parse_multi(g, j, origin, path, prefix, depth);
    } else if (!strcmp(t, "command")) {
        g->type = TK_GRADER_COMMAND;
        st = parse_command(g, j, prefix);
    } else if (!strcmp(t, "python") || !strcmp(t, "label_model") || !strcmp(t, "endpoint")) {
        st = tk_fail(TK_ERR_UNSUPPORTED, "%stype: '%s' graders are not supported (use a 'command' grader: a program that reads the sample as JSON on stdin and prints a score)", prefix, t);
    } else {
        st = tk_fail(TK_ERR_FORMAT, "%stype: unknown type '%s' (string_check, text_similarity, score_model, multi or command)", prefix, t);
    }
    if (st) { tk_grader_free(g); return st; }
    *out = g;
    return TK_OK;
}

tk_status tk_grader_parse(const char *json, size_t len, const char *origin, tk_grader **out) {
    if (!out) return tk_fail(TK_ERR_ARG, "tk_grader_parse: out is NULL");
    *out = NULL;
    if (!json) return tk_fail(TK_ERR_ARG, "tk_grader_parse: json is NULL");
    if (!origin) origin = "grader";
    cJSON *j = cJSON_ParseWithLength(json, len);
    if (!j) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = at && at >= json && at <= json + len ? (size_t)(at - json) : 0;
        return tk_fail(TK_ERR_FORMAT, "%s: not valid JSON (near byte %zu)", origin, off);
    }
    /* {"grader": {...}} (OpenAI's run-grader and fine-tuning payloads) holds the grader one level down */
    const cJSON *inner = cJSON_IsObject(j) && !cJSON_GetObjectItemCaseSensitive(j, "type") ? cJSON_GetObjectItemCaseSensitive(j, "grader") : NULL;
    tk_status st = inner ? parse_grader(inner, origin, "grader", NULL, 0, out) : parse_grader(j, origin, "", NULL, 0, out);
    cJSON_Delete(j);
    return st;
}

tk_status tk_grader_load(const char *path, tk_grader **out) {
    if (!path || !out) return tk_fail(TK_ERR_ARG, "tk_grader_load: path or out is NULL");
    *out = NULL;
    char *text = NULL;
    size_t len = 0;
    tk_status st = tk_read_file(path, &text, &len);
    if (st) return tk_fail_ctx(st, "grader %s: ", path);
    st = tk_grader_parse(text, len, path, out);
    free(text);
    return st;
}

int tk_grader_n_scores(const tk_grader *g) { return g ? 1 + g->n_subs : 0; }

const char *tk_grader_score_name(const tk_grader *g, int i) {
    if (!g || i < 0 || i > g->n_subs) return NULL;
    return i == 0 ? g->name : g->sub_names[i - 1];
}

bool tk_grader_needs_judge(const tk_grader *g) {
    if (!g) return false;
    if (g->type == TK_GRADER_SCORE_MODEL) return true;
    for (int i = 0; i < g->n_subs; i++)
        if (tk_grader_needs_judge(g->subs[i])) return true;
    return false;
}

bool tk_grader_pass_threshold(const tk_grader *g, double *out) {
    if (!g || !g->has_pass_threshold) return false;
    if (out) *out = g->pass_threshold;
    return true;
}

void tk_grade_free(tk_grade *r) {
    if (!r) return;
    free(r->sub);
    r->sub = NULL;
}

/* ilike: a case-insensitive substring test (ASCII case folding; other bytes compare exactly). */
static bool contains_nocase(const char *h, const char *n) {
    size_t ln = strlen(n);
    for (; *h; h++)
        if (!strncasecmp(h, n, ln)) return true;
    return ln == 0;
}

static tk_status render_two(const tk_grader *g, const cJSON *item, const char *output_text, tk_buf *a, tk_buf *b,
                            bool *failed, char *err, size_t errlen) {
    tk_status st = tk_tmpl_render(g->input, item, output_text, a, failed, err, errlen);
    if (!st && !*failed) st = tk_tmpl_render(g->reference, item, output_text, b, failed, err, errlen);
    return st;
}

/* One grader other than multi: its score, or a per-sample failure. */
static tk_status grade_one(const tk_grader *g, const cJSON *item, const char *output_text, const tk_judge *judge,
                           double *score, bool *failed, char *err, size_t errlen) {
    *failed = false;
    *score = NAN;
    tk_buf a = {0}, b = {0};
    tk_status st = TK_OK;
    switch (g->type) {
    case TK_GRADER_STRING_CHECK:
        st = render_two(g, item, output_text, &a, &b, failed, err, errlen);
        if (st || *failed) break;
        switch (g->op) {
        case TK_STR_EQ: *score = strcmp(a.data, b.data) == 0; break;
        case TK_STR_NE: *score = strcmp(a.data, b.data) != 0; break;
        case TK_STR_LIKE: *score = strstr(a.data, b.data) != NULL; break;
        case TK_STR_ILIKE: *score = contains_nocase(a.data, b.data); break;
        }
        break;
    case TK_GRADER_TEXT_SIMILARITY:
        st = render_two(g, item, output_text, &a, &b, failed, err, errlen);
        if (!st && !*failed) st = tk_grader_similarity_score(g, a.data, b.data, score, failed, err, errlen);
        break;
    case TK_GRADER_SCORE_MODEL:
        st = tk_grader_judge_score(g, item, output_text, judge, score, failed, err, errlen);
        break;
    case TK_GRADER_COMMAND: {
        cJSON *doc = cJSON_CreateObject(), *sample = cJSON_CreateObject();
        cJSON *it = item ? cJSON_CreateObjectReference(item->child) : cJSON_CreateObject(); /* item's members, not copied */
        char *text = NULL;
        if (doc && sample && it && cJSON_AddItemToObject(doc, "item", it) && (it = NULL, true) &&
            cJSON_AddItemToObject(doc, "sample", sample) && (sample = NULL, true) &&
            cJSON_AddStringToObject(cJSON_GetObjectItem(doc, "sample"), "output_text", output_text ? output_text : ""))
            text = cJSON_PrintUnformatted(doc);
        cJSON_Delete(doc);
        cJSON_Delete(sample);
        cJSON_Delete(it);
        if (!text) { st = tk_fail(TK_ERR_NOMEM, "grader '%s': out of memory", g->name); break; }
        st = tk_command_score(g->argv, g->timeout_s, text, strlen(text), score, failed, err, errlen);
        cJSON_free(text);
        break;
    }
    case TK_GRADER_MULTI:
        st = tk_fail(TK_ERR_INTERNAL, "grader '%s': nested multi", g->name);
        break;
    }
    tk_buf_free(&a);
    tk_buf_free(&b);
    if (!st && !*failed && !isfinite(*score)) {
        *failed = true;
        snprintf(err, errlen, "the score is not a finite number");
    }
    return st;
}

tk_status tk_grader_grade(const tk_grader *g, const void *item_cjson, const char *output_text, const tk_judge *judge,
                          tk_grade *r) {
    if (!r) return tk_fail(TK_ERR_ARG, "tk_grader_grade: result is NULL");
    memset(r, 0, sizeof *r);
    if (!g) return tk_fail(TK_ERR_ARG, "tk_grader_grade: grader is NULL");
    const cJSON *item = item_cjson;
    if (item && !cJSON_IsObject(item)) return tk_fail(TK_ERR_ARG, "grader '%s': the data record is not a JSON object", g->name);
    int n = tk_grader_n_scores(g);
    if (!(r->sub = tk_malloc((size_t)n * sizeof *r->sub))) return TK_ERR_NOMEM;
    for (int i = 0; i < n; i++) r->sub[i] = NAN;
    r->score = NAN;
    char err[sizeof r->error - 64];
    tk_status st = TK_OK;
    if (g->type != TK_GRADER_MULTI) {
        st = grade_one(g, item, output_text, judge, &r->score, &r->failed, err, sizeof err);
        if (!st && r->failed) snprintf(r->error, sizeof r->error, "grader '%s': %s", g->name, err);
    } else {
        for (int i = 0; i < g->n_subs && !st; i++) {
            bool failed = false;
            st = grade_one(g->subs[i], item, output_text, judge, &r->sub[1 + i], &failed, err, sizeof err);
            if (!st && failed && !r->failed) {
                r->failed = true;
                snprintf(r->error, sizeof r->error, "grader '%s': %s", g->sub_names[i], err);
            }
        }
        if (!st && !r->failed) {
            r->score = tk_formula_eval(g->formula, r->sub + 1);
            if (!isfinite(r->score)) {
                r->failed = true;
                snprintf(r->error, sizeof r->error, "grader '%s': calculate_output gave %g (not a finite number)", g->name, r->score);
                r->score = NAN;
            }
        }
    }
    if (st) { tk_grade_free(r); return st; }
    if (r->failed) r->score = NAN;
    r->sub[0] = r->score;
    return TK_OK;
}
