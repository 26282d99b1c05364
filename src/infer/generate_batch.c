/* Batched generation of a fixed request list (contract in include/takumi/generate_batch.h) on
 * the continuous batcher (src/infer/batcher.c): requests join as rows free up, in order, each
 * with the same adapters and parameters and its own seed; prompts are prefilled without a token
 * budget (nothing waits on them); each result collects its row's text and ids. Results depend
 * neither on max_batch nor on the order of the requests (the batcher's rows are exact). */
#include "takumi/generate_batch.h"
#include "infer/gen_text.h"
#include "core/core.h"

typedef struct req_state {
    tk_gen_result *r;
    tk_buf text;
    tk_status err;         /* an append to text failed, or the row failed */
    bool done;
} req_state;

static bool append_text(void *ud, const char *t, size_t n) {
    req_state *q = ud;
    if (!q->err) q->err = tk_buf_append(&q->text, t, n);
    return !q->err;
}

static void on_done(void *ud, const tk_batch_done *d) {
    req_state *q = ud;
    q->done = true;
    if (!q->err) q->err = d->status;
    if (!q->err && !q->text.data) q->err = tk_buf_append(&q->text, "", 0);
    if (!q->err && d->n_ids > 0) {
        if (!(q->r->ids = tk_malloc((size_t)d->n_ids * sizeof(int32_t)))) q->err = TK_ERR_NOMEM;
        else memcpy(q->r->ids, d->ids, (size_t)d->n_ids * sizeof(int32_t));
    }
    if (q->err) return;
    q->r->n_ids = d->n_ids;
    q->r->text = q->text.data;
    q->r->stop = d->stop;
    memset(&q->text, 0, sizeof q->text);
}

static tk_status check_args(const tk_model *m, const tk_tokenizer *tok, const tk_gen_request *reqs, int32_t n,
                            const tk_gen_params *p, int32_t max_batch, const tk_gen_result *results) {
    if (!m) return tk_fail(TK_ERR_ARG, "generate_batch: no model");
    if (!tok) return tk_fail(TK_ERR_ARG, "generate_batch: the model has no tokenizer");
    if (n < 0 || (n > 0 && (!reqs || !results)))
        return tk_fail(TK_ERR_ARG, "generate_batch: %d requests without request or result arrays", n);
    if (max_batch < 1) return tk_fail(TK_ERR_ARG, "generate_batch: max_batch %d (at least 1)", max_batch);
    tk_status st = tk_gen_stops_check(p, "generate_batch");
    if (st) return st;
    const int32_t V = tk_model_get_config(m)->n_vocab;
    for (int32_t i = 0; i < n; i++) {
        if (!reqs[i].prompt || reqs[i].n_prompt < 1)
            return tk_fail(TK_ERR_ARG, "generate_batch: request %d has an empty prompt", i);
        for (int64_t t = 0; t < reqs[i].n_prompt; t++)
            if (reqs[i].prompt[t] < 0 || reqs[i].prompt[t] >= V)
                return tk_fail(TK_ERR_ARG, "generate_batch: request %d, prompt token %lld: id %d outside the vocabulary [0, %d)", i,
                               (long long)t, reqs[i].prompt[t], V);
    }
    return TK_OK;
}

tk_status tk_generate_batch(tk_model *m, const tk_tokenizer *tok, const tk_adapter_use *ads, int n_ads,
                            const tk_gen_request *reqs, int32_t n, const tk_gen_params *p, int32_t max_batch,
                            tk_gen_result *results, tk_gen_batch_stats *stats) {
    if (stats) memset(stats, 0, sizeof *stats);
    if (results && n > 0) memset(results, 0, (size_t)n * sizeof *results);
    tk_gen_params gp = p ? *p : tk_gen_default_params();
    tk_status st = check_args(m, tok, reqs, n, &gp, max_batch, results);
    if (st) return st;
    if (n == 0) return TK_OK;
    req_state *q = tk_calloc((size_t)n, sizeof *q);
    tk_gen_params *ps = tk_calloc((size_t)n, sizeof *ps);
    tk_batcher *b = NULL;
    if (!q || !ps) st = TK_ERR_NOMEM;
    if (!st) st = tk_batcher_new(m, tok, max_batch < n ? max_batch : n, 0, gp.exact, &b);
    int32_t next = 0;
    while (!st) {
        while (next < n && tk_batcher_free_rows(b) > 0) {
            q[next].r = &results[next];
            ps[next] = gp;
            ps[next].sampler.seed = reqs[next].seed;
            tk_batch_row row = {.prompt = reqs[next].prompt, .n_prompt = reqs[next].n_prompt, .p = &ps[next], .ads = ads, .n_ads = n_ads,
                                .on_text = append_text, .on_done = on_done, .ud = &q[next]};
            if ((st = tk_batcher_add(b, &row))) break;
            next++;
        }
        if (st || (next == n && tk_batcher_rows(b) == 0)) break;
        st = tk_batcher_step(b);
    }
    for (int32_t i = 0; !st && i < n; i++) st = q[i].err;
    if (!st && stats) tk_batcher_stats(b, stats);
    tk_batcher_free(b);
    for (int32_t i = 0; q && i < n; i++) tk_buf_free(&q[i].text);
    free(q);
    free(ps);
    if (st) {
        for (int32_t i = 0; i < n; i++) tk_gen_result_free(&results[i]);
        return st;
    }
    return TK_OK;
}

void tk_gen_result_free(tk_gen_result *r) {
    if (!r) return;
    free(r->ids);
    free(r->text);
    memset(r, 0, sizeof *r);
}
