/* score_model graders: the rubric messages (templated), the score range, and one judge call
 * per sample whose reply must hold a score inside the range. */
#include "eval/grader_internal.h"
#include <math.h>
#include <stdio.h>

static const char *const roles[] = {"system", "user", "assistant", "developer"};

/* A message's content: a string, an {"type":"input_text","text":...} object, or an array of those. */
static tk_status content_text(const cJSON *c, const char *where, tk_buf *out) {
    if (cJSON_IsString(c)) return tk_buf_append(out, c->valuestring, strlen(c->valuestring));
    if (cJSON_IsObject(c)) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(c, "text");
        if (!cJSON_IsString(t))
            return tk_fail(TK_ERR_UNSUPPORTED, "%s: only text content is supported (a string or {\"type\":\"input_text\",\"text\":...})", where);
        return tk_buf_append(out, t->valuestring, strlen(t->valuestring));
    }
    if (cJSON_IsArray(c)) {
        const cJSON *e;
        cJSON_ArrayForEach(e, c) {
            if (cJSON_IsArray(e)) return tk_fail(TK_ERR_FORMAT, "%s: nested content arrays", where);
            tk_status st = content_text(e, where, out);
            if (st) return st;
        }
        return out->data ? TK_OK : tk_buf_append(out, "", 0);
    }
    return tk_fail(TK_ERR_FORMAT, "%s: must be a string, a text object or an array of them", where);
}

tk_status tk_grader_parse_score_model(tk_grader *g, const cJSON *j, const char *where) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(j, "model");
    if (model && !cJSON_IsString(model)) return tk_fail(TK_ERR_FORMAT, "%smodel: must be a string", where);
    if (model && !(g->model = tk_strdup(model->valuestring))) return TK_ERR_NOMEM;
    g->lo = 0, g->hi = 1;
    const cJSON *range = cJSON_GetObjectItemCaseSensitive(j, "range");
    if (range) {
        const cJSON *a = cJSON_GetArrayItem(range, 0), *b = cJSON_GetArrayItem(range, 1);
        if (!cJSON_IsArray(range) || cJSON_GetArraySize(range) != 2 || !cJSON_IsNumber(a) || !cJSON_IsNumber(b) ||
            !isfinite(a->valuedouble) || !isfinite(b->valuedouble) || !(a->valuedouble < b->valuedouble))
            return tk_fail(TK_ERR_FORMAT, "%srange: must be [low, high] with low < high", where);
        g->lo = a->valuedouble, g->hi = b->valuedouble;
    }
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(j, "input");
    if (!cJSON_IsArray(input) || cJSON_GetArraySize(input) == 0)
        return tk_fail(TK_ERR_FORMAT, "%sinput: must be a non-empty array of messages {\"role\", \"content\"}", where);
    int n = cJSON_GetArraySize(input);
    if (!(g->msgs = tk_calloc((size_t)n, sizeof *g->msgs))) return TK_ERR_NOMEM;
    const cJSON *m;
    cJSON_ArrayForEach(m, input) {
        char w[320];
        snprintf(w, sizeof w, "%sinput[%d]", where, g->n_msgs);
        tk_judge_msg *jm = &g->msgs[g->n_msgs++];
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsString(role)) return tk_fail(TK_ERR_FORMAT, "%s.role: missing (system, user, assistant or developer)", w);
        bool known = false;
        for (int r = 0; r < 4; r++) known |= !strcmp(role->valuestring, roles[r]);
        if (!known)
            return tk_fail(TK_ERR_FORMAT, "%s.role: unknown role '%s' (system, user, assistant or developer)", w,
                           role->valuestring);
        if (!(jm->role = tk_strdup(role->valuestring))) return TK_ERR_NOMEM;
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!content) return tk_fail(TK_ERR_FORMAT, "%s.content: missing", w);
        tk_buf text = {0};
        size_t wl = strlen(w);
        snprintf(w + wl, sizeof w - wl, ".content");
        tk_status st = content_text(content, w, &text);
        if (!st) st = tk_tmpl_parse(text.data, w, &jm->content);
        tk_buf_free(&text);
        if (st) return st;
    }
    return TK_OK;
}

tk_status tk_grader_judge_score(const tk_grader *g, const cJSON *item, const char *output_text, const tk_judge *judge,
                                double *score, bool *failed, char *err, size_t errlen) {
    if (!judge || !judge->reply)
        return tk_fail(TK_ERR_ARG, "grader '%s' (score_model) needs a judge model (--judge)", g->name);
    int n = g->n_msgs;
    tk_buf *texts = tk_calloc((size_t)n, sizeof *texts);
    const char **rs = tk_calloc((size_t)n, sizeof *rs), **cs = tk_calloc((size_t)n, sizeof *cs);
    tk_status st = texts && rs && cs ? TK_OK : TK_ERR_NOMEM;
    for (int i = 0; i < n && !st && !*failed; i++) {
        st = tk_tmpl_render(g->msgs[i].content, item, output_text, &texts[i], failed, err, errlen);
        rs[i] = g->msgs[i].role;
        cs[i] = texts[i].data;
    }
    char *reply = NULL;
    if (!st && !*failed) {
        st = judge->reply(judge->ud, g->model, rs, cs, n, &reply);
        if (st && st != TK_ERR_NOMEM) {
            /* the judge could not answer this sample: counted as the grader's failure */
            *failed = true;
            snprintf(err, errlen, "the judge gave no reply: %s", tk_last_error());
            st = TK_OK;
        } else if (st) {
        } else if (!reply) {
            *failed = true;
            snprintf(err, errlen, "the judge gave no reply");
        } else if (!tk_judge_reply_score(reply, score)) {
            *failed = true;
            snprintf(err, errlen, "the judge's reply holds no score: \"%.120s\"", reply);
        } else if (*score < g->lo || *score > g->hi) {
            *failed = true;
            snprintf(err, errlen, "the judge's score %g is outside the range [%g, %g]", *score, g->lo, g->hi);
        }
    }
    free(reply);
    if (texts)
        for (int i = 0; i < n; i++) tk_buf_free(&texts[i]);
    free(texts);
    free(rs);
    free(cs);
    return st;
}
