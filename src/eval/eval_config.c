/* An evaluation described in JSON (`takumi train --eval-config E.json`): the options of `takumi eval`
 * by name, with relative paths resolved against E.json's folder. */
#include "eval/eval_internal.h"
#include "data/data_internal.h"

#define MAX_ITEMS 64

struct tk_eval_config {
    tk_eval_params p;
    tk_eval_target targets[MAX_ITEMS]; int n_targets;
    int64_t every;                                   /* also every N training steps (0: only at the end) */
    char *strs[8 + 3 * MAX_ITEMS]; int n_strs;      /* owned strings the params point at */
    const char *general[MAX_ITEMS], *forbid[MAX_ITEMS];
};

static tk_status keep(tk_eval_config *c, char *s, const char **slot) {
    if (!s) return TK_ERR_NOMEM;
    c->strs[c->n_strs++] = s;
    *slot = s;
    return TK_OK;
}

static tk_status path_of(tk_eval_config *c, const char *dir, const char *v, const char **slot) {
    return keep(c, v[0] == '/' || !dir ? tk_strdup(v) : tk_path_join(dir, v), slot);
}

static tk_status list_of(tk_eval_config *c, const cJSON *v, const char *key, const char *path, const char *dir, bool paths,
                         const char **out, int *n) {
    if (cJSON_IsString(v)) return (*n = 1, paths ? path_of(c, dir, v->valuestring, &out[0]) : keep(c, tk_strdup(v->valuestring), &out[0]));
    if (!cJSON_IsArray(v)) return tk_fail(TK_ERR_FORMAT, "%s: \"%s\" must be a string or a list of strings", path, key);
    if (cJSON_GetArraySize(v) > MAX_ITEMS) return tk_fail(TK_ERR_FORMAT, "%s: \"%s\": at most %d entries", path, key, MAX_ITEMS);
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
        if (!cJSON_IsString(e)) return tk_fail(TK_ERR_FORMAT, "%s: \"%s\"[%d] is not a string", path, key, *n);
        tk_status st = paths ? path_of(c, dir, e->valuestring, &out[*n]) : keep(c, tk_strdup(e->valuestring), &out[*n]);
        if (st) return st;
        (*n)++;
    }
    return TK_OK;
}

static tk_status num_of(const cJSON *v, const char *key, const char *path, double lo, double hi, double *out) {
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi))
        return tk_fail(TK_ERR_FORMAT, "%s: \"%s\" must be a number in [%g, %g]", path, key, lo, hi);
    *out = v->valuedouble;
    return TK_OK;
}

static tk_status parse(tk_eval_config *c, const cJSON *root, const char *path, const char *dir) {
    if (!cJSON_IsObject(root)) return tk_fail(TK_ERR_FORMAT, "%s: not a JSON object", path);
    tk_eval_params *p = &c->p;
    const cJSON *v;
    tk_status st = TK_OK;
    cJSON_ArrayForEach(v, root) {
        const char *k = v->string;
        double x = 0;
        const char *tg[MAX_ITEMS];
        int nt = 0;
        if (!strcmp(k, "data") || !strcmp(k, "grader") || !strcmp(k, "judge") || !strcmp(k, "train_data")) {
            if (!cJSON_IsString(v)) return tk_fail(TK_ERR_FORMAT, "%s: \"%s\" must be a path", path, k);
            st = path_of(c, dir, v->valuestring, !strcmp(k, "data") ? &p->data : !strcmp(k, "grader") ? &p->grader : !strcmp(k, "judge") ? &p->judge : &p->train_data);
        } else if (!strcmp(k, "system")) {
            if (!cJSON_IsString(v)) return tk_fail(TK_ERR_FORMAT, "%s: \"system\" must be a string", path);
            st = keep(c, tk_strdup(v->valuestring), &p->system);
        } else if (!strcmp(k, "metrics")) {
            const char *m[MAX_ITEMS];
            int nm = 0;
            tk_buf b = {0};
            st = list_of(c, v, k, path, dir, false, m, &nm);
            for (int i = 0; i < nm && !st; i++) st = tk_buf_printf(&b, "%s%s", i ? "," : "", m[i]);
            if (!st) st = keep(c, b.data ? b.data : tk_strdup(""), &p->metrics);
            else tk_buf_free(&b);
        } else if (!strcmp(k, "general")) st = list_of(c, v, k, path, dir, true, c->general, &p->n_general);
        else if (!strcmp(k, "forbid")) st = list_of(c, v, k, path, dir, false, c->forbid, &p->n_forbidden);
        else if (!strcmp(k, "targets")) {
            st = list_of(c, v, k, path, dir, false, tg, &nt);
            for (int i = 0; i < nt && !st; i++) {
                st = tk_eval_target_parse(tg[i], &c->targets[c->n_targets]);
                if (st) st = tk_fail_ctx(st, "%s: targets[%d]: ", path, i);
                else c->n_targets++;
            }
        } else if (!strcmp(k, "baseline")) {
            if (!cJSON_IsString(v) || strcmp(v->valuestring, "base"))
                return tk_fail(TK_ERR_FORMAT, "%s: \"baseline\" can only be \"base\" (the model without the trained adapter)", path);
            p->baseline_base = true;
        } else if (!strcmp(k, "every")) { if (!(st = num_of(v, k, path, 0, 1e15, &x))) c->every = (int64_t)x; }
        else if (!strcmp(k, "max_tokens")) { if (!(st = num_of(v, k, path, 1, 1 << 20, &x))) p->max_tokens = (int32_t)x; }
        else if (!strcmp(k, "batch")) { if (!(st = num_of(v, k, path, 1, 4096, &x))) p->batch = (int32_t)x; }
        else if (!strcmp(k, "max_seq_len")) { if (!(st = num_of(v, k, path, 2, 1 << 24, &x))) p->max_seq = (int32_t)x; }
        else if (!strcmp(k, "bootstrap")) { if (!(st = num_of(v, k, path, 0, 1e6, &x))) p->n_boot = (int32_t)x; }
        else if (!strcmp(k, "seed")) { if (!(st = num_of(v, k, path, 0, 9007199254740992.0, &x))) p->seed = (uint64_t)x; }
        else if (!strcmp(k, "max_grader_failures")) { if (!(st = num_of(v, k, path, -1, 1e15, &x))) p->max_grader_failures = (int64_t)x; }
        else if (!strcmp(k, "max_drop_acc")) st = num_of(v, k, path, 0, 1, &p->max_drop_acc);
        else if (!strcmp(k, "max_drop_ppl")) st = num_of(v, k, path, 0, 1e6, &p->max_drop_ppl);
        else return tk_fail(TK_ERR_FORMAT, "%s: unknown key \"%s\" (data, metrics, targets, grader, judge, general, forbid, train_data, "
                            "system, baseline, every, max_tokens, batch, max_seq_len, bootstrap, seed, max_grader_failures, max_drop_acc, max_drop_ppl)", path, k);
        if (st) return st;
    }
    if (!p->data) return tk_fail(TK_ERR_FORMAT, "%s: \"data\" (the evaluation records) is required", path);
    p->general = c->general;
    p->forbidden = c->forbid;
    return TK_OK;
}

tk_status tk_eval_config_load(const char *path, tk_eval_config **out) {
    *out = NULL;
    char *text = NULL, *dir = NULL;
    size_t len = 0;
    tk_status st = tk_read_file(path, &text, &len);
    if (st) return tk_fail_ctx(st, "--eval-config: ");
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!root) return tk_fail(TK_ERR_FORMAT, "%s: not valid JSON", path);
    tk_eval_config *c = tk_calloc(1, sizeof *c);
    const char *slash = strrchr(path, '/');
    if (c && slash && !(dir = tk_strndup(path, (size_t)(slash - path + (slash == path))))) st = TK_ERR_NOMEM;
    if (!c) st = TK_ERR_NOMEM;
    if (!st) { c->p = tk_eval_default_params(); st = parse(c, root, path, dir); }
    cJSON_Delete(root);
    free(dir);
    if (st) { tk_eval_config_free(c); return st; }
    *out = c;
    return TK_OK;
}

void tk_eval_config_free(tk_eval_config *c) {
    if (!c) return;
    for (int i = 0; i < c->n_strs; i++) free(c->strs[i]);
    free(c);
}

tk_eval_params *tk_eval_config_params(tk_eval_config *c) { return &c->p; }
int tk_eval_config_n_targets(const tk_eval_config *c) { return c->n_targets; }
int64_t tk_eval_config_every(const tk_eval_config *c) { return c->every; }
const tk_eval_target *tk_eval_config_target(const tk_eval_config *c, int i) { return i >= 0 && i < c->n_targets ? &c->targets[i] : NULL; }
