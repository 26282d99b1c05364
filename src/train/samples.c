/* Samples: the first validation prompts (else training prompts) answered greedily before
 * and after training, kept in RUN/samples.json and shown in the report. */
#include "train/run.h"
#include <cjson/cJSON.h>

static bool gen_text(void *ud, const char *text, size_t len) { return tk_buf_append(ud, text, len) == TK_OK; }

static tk_status answer(tk_run *r, const tk_sft_prompt *p, char **out) {
    *out = NULL;
    tk_session *s = NULL;
    int64_t ctx = p->n + r->c.sample_tokens + 8;
    const tk_model_config *mc = tk_model_get_config(r->m);
    if (ctx > mc->max_seq) ctx = mc->max_seq;
    if (p->n + 1 >= ctx) { *out = tk_strdup("(prompt longer than the model's context)"); return *out ? TK_OK : TK_ERR_NOMEM; }
    tk_status st = tk_session_new(r->m, (int32_t)ctx, &s);
    if (st) return st;
    tk_session_set_exact(s, true);
    int n_ads = 0;
    const tk_adapter_use *ads = tk_train_adapters(r->tc, &n_ads); /* the adapters being trained */
    if ((st = tk_session_set_adapters(s, ads, n_ads))) { tk_session_free(s); return st; }
    tk_gen_params gp = tk_gen_default_params();
    gp.sampler.temperature = 0;
    gp.max_tokens = r->c.sample_tokens;
    tk_buf text = {0};
    st = tk_generate(s, r->tok, p->ids, p->n, &gp, gen_text, &text, NULL, NULL);
    tk_session_free(s);
    if (st) { tk_buf_free(&text); return st; }
    *out = text.data ? text.data : tk_strdup("");
    return *out ? TK_OK : TK_ERR_NOMEM;
}

tk_status tk_run_answer_all(tk_run *r, char ***out) {
    *out = tk_calloc((size_t)(r->n_prompts ? r->n_prompts : 1), sizeof **out);
    if (!*out) return TK_ERR_NOMEM;
    for (int32_t i = 0; i < r->n_prompts; i++) {
        tk_status st = answer(r, &r->prompts[i], &(*out)[i]);
        if (st) return tk_fail_ctx(st, "answering sample prompt %d: ", i + 1);
    }
    return TK_OK;
}

void tk_run_free_answers(char **a, int32_t n) {
    if (!a) return;
    for (int32_t i = 0; i < n; i++) free(a[i]);
    free(a);
}

tk_status tk_run_write_samples(tk_run *r) {
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "samples");
    cJSON_AddStringToObject(o, "source", r->sample_path);
    for (int32_t i = 0; i < r->n_prompts && arr; i++) {
        cJSON *s = cJSON_CreateObject();
        cJSON_AddNumberToObject(s, "line", (double)r->prompts[i].line);
        cJSON_AddStringToObject(s, "question", r->prompts[i].question);
        cJSON_AddStringToObject(s, "reference", r->prompts[i].reference);
        if (r->before && r->before[i]) cJSON_AddStringToObject(s, "before", r->before[i]);
        if (r->after && r->after[i]) cJSON_AddStringToObject(s, "after", r->after[i]);
        cJSON_AddItemToArray(arr, s);
    }
    char *t = cJSON_Print(o);
    cJSON_Delete(o);
    if (!t) return TK_ERR_NOMEM;
    tk_status st = tk_write_file_atomic(r->path_samples, t, strlen(t));
    free(t);
    return st;
}

/* Resume: the "before" answers were produced by the first process. */
tk_status tk_run_read_before(tk_run *r) {
    char *js = NULL;
    r->before = tk_calloc((size_t)(r->n_prompts ? r->n_prompts : 1), sizeof *r->before);
    if (!r->before) return TK_ERR_NOMEM;
    if (tk_read_file(r->path_samples, &js, NULL) != TK_OK) { tk_clear_error(); return TK_OK; }
    cJSON *o = cJSON_Parse(js);
    free(js);
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, "samples");
    int32_t i = 0;
    for (const cJSON *s = arr ? arr->child : NULL; s && i < r->n_prompts; s = s->next, i++) {
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(s, "before");
        if (cJSON_IsString(b)) r->before[i] = tk_strdup(b->valuestring);
    }
    cJSON_Delete(o);
    return TK_OK;
}

