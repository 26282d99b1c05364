/* The generation step of synth and augment: conversations rendered with the generating model's
 * chat template, answered by tk_generate_batch (many sequences decoded together, each request
 * seeded from the run's seed and the request's own key, so results depend neither on the batch
 * size nor on which other requests ran), and the paraphrase request both commands send. */
#include "data/docs_internal.h"

tk_status tk_synth_generate(const tk_synth_gen *g, const tk_chat_msg *const *msgs, const size_t *n_msgs, const uint64_t *keys,
                            size_t n, int32_t max_tokens, char **texts, bool *over, int64_t *n_generated, double *secs) {
    if (!n) return TK_OK;
    if (g->fn) {
        const char **pr = tk_calloc(n, sizeof *pr);
        uint64_t *seeds = tk_calloc(n, sizeof *seeds);
        tk_status st = pr && seeds ? TK_OK : TK_ERR_NOMEM;
        for (size_t i = 0; i < n && !st; i++) {
            pr[i] = msgs[i][n_msgs[i] - 1].content;
            seeds[i] = tk_mix64(g->seed ^ tk_mix64(keys[i] + 0x9E3779B97F4A7C15ull));
        }
        if (!st) st = g->fn(g->fn_ud, pr, seeds, n, texts);
        for (size_t i = 0; i < n && !st; i++)
            if (!texts[i] && !(texts[i] = tk_strdup(""))) st = TK_ERR_NOMEM;
        if (over) memset(over, 0, n * sizeof *over);
        free(pr), free(seeds);
        return st;
    }
    if (!g->model || n > INT32_MAX) return tk_fail(TK_ERR_ARG, "synth: no model, or too many requests");
    const tk_tokenizer *tok = tk_model_tokenizer(g->model);
    tk_gen_request *req = tk_calloc(n, sizeof *req);
    tk_gen_result *res = tk_calloc(n, sizeof *res);
    tk_chat_tokens *ct = tk_calloc(n, sizeof *ct);
    tk_status st = req && res && ct ? TK_OK : TK_ERR_NOMEM;
    for (size_t i = 0; i < n && !st; i++) {
        st = tk_chat_render(tok, g->family, msgs[i], n_msgs[i], true, &ct[i]);
        if (st) st = tk_fail_ctx(st, "synth: rendering request %zu with the %s template: ", i + 1, tk_chat_family_name(g->family));
        req[i] = (tk_gen_request){ct[i].ids.data, (int64_t)ct[i].ids.len, tk_mix64(g->seed ^ tk_mix64(keys[i] + 0x9E3779B97F4A7C15ull))};
    }
    if (!st) {
        tk_gen_params gp = tk_gen_default_params();
        gp.sampler.temperature = g->temperature;
        gp.max_tokens = max_tokens;
        tk_gen_batch_stats gs = {0};
        double t0 = tk_time_s();
        st = tk_generate_batch(g->model, tok, NULL, 0, req, (int32_t)n, &gp, g->max_batch > 0 ? g->max_batch : 16, res, &gs);
        if (st) st = tk_fail_ctx(st, "synth: generating: ");
        if (n_generated) *n_generated += gs.n_generated;
        if (secs) *secs += tk_time_s() - t0;
    }
    for (size_t i = 0; i < n && !st; i++) {
        if (over) over[i] = res[i].stop == TK_GEN_STOP_CONTEXT && res[i].n_ids == 0;
        texts[i] = res[i].text ? res[i].text : tk_strdup("");
        res[i].text = NULL;
        if (!texts[i]) st = TK_ERR_NOMEM;
    }
    for (size_t i = 0; ct && i < n; i++) tk_chat_tokens_free(&ct[i]);
    for (size_t i = 0; res && i < n; i++) tk_gen_result_free(&res[i]);
    free(req), free(res), free(ct);
    return st;
}

tk_status tk_synth_para_prompt(const char *question, int n, tk_buf *out) {
    return tk_buf_printf(out,
                         "Rewrite the question below in %d different ways. Keep its meaning and every name and number, "
                         "change the wording, and keep the language of the question. Write one rewrite per line, numbered "
                         "1. to %d., and nothing else.\n\nQuestion: %s",
                         n, n, question);
}
