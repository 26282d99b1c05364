/* Rollouts (rollout.h): answers sampled as one batch and graded. */
#include "train/rollout.h"
#include "dist/dist.h"
#include <cjson/cJSON.h>
#include <math.h>

tk_status tk_rollout_grading_open(const char *grader, const char *judge, tk_eval_grading *g) {
    tk_eval_params ep;
    memset(&ep, 0, sizeof ep);
    ep.grader = grader;
    ep.judge = judge;
    return tk_eval_grading_open(g, &ep);
}

tk_status tk_rollout_sample(tk_model *m, const tk_tokenizer *tok, const tk_adapter_use *ads, int n_ads, const tk_sft_data *d,
                            const int64_t *ex, const int64_t *slot, int32_t P, int32_t per_prompt, double temperature, int32_t max_new_tokens,
                            uint64_t seed, tk_gen_result *res, tk_gen_batch_stats *gs) {
    if (P < 0 || per_prompt < 1 || (P > 0 && (!ex || !d || !res))) return tk_fail(TK_ERR_ARG, "rollout: bad prompts or results");
    const int32_t n = P * per_prompt;
    if (n == 0) return TK_OK;
    tk_gen_request *rq = tk_calloc((size_t)n, sizeof *rq);
    if (!rq) return TK_ERR_NOMEM;
    for (int32_t k = 0; k < n; k++) {
        int64_t e = ex[k / per_prompt], g = slot ? slot[k / per_prompt] * per_prompt + k % per_prompt : k;   /* the answer's global index */
        rq[k] = (tk_gen_request){.prompt = d->ids + d->off[e], .n_prompt = tk_sft_len(d, e),
                                 .seed = tk_mix64(seed ^ tk_mix64((uint64_t)g ^ 0x9e3779b97f4a7c15ull))};
    }
    tk_gen_params p = tk_gen_default_params();
    p.sampler.temperature = temperature > 0 ? (float)temperature : 0.0f;
    p.sampler.top_k = 0;
    p.sampler.top_p = 1.0f;
    p.sampler.min_p = 0.0f;
    p.max_tokens = max_new_tokens;
    tk_status st = tk_generate_batch(m, tok, ads, n_ads, rq, n, &p, n < 64 ? n : 64, res, gs);
    free(rq);
    return st;
}

tk_status tk_rollout_grade(const tk_eval_grading *g, char *const *items, const int64_t *ex, int32_t per_prompt, const tk_gen_result *res,
                           int32_t n, double *scores, double *sub, int n_scores, int64_t *n_fail, char *err, size_t err_len) {
    const tk_judge *judge = g->cb.reply ? &g->cb : NULL;
    *n_fail = 0;
    for (int32_t i = 0; i < n; i += per_prompt) {
        cJSON *item = cJSON_Parse(items[ex[i / per_prompt]]);
        if (!item) return tk_fail(TK_ERR_NOMEM, "grader item: cannot parse the record again");
        for (int32_t k = i; k < i + per_prompt && k < n; k++) {
            tk_grade gr = {0};
            tk_status st = tk_grader_grade(g->grader, item, res[k].text ? res[k].text : "", judge, &gr);
            if (st) { tk_grade_free(&gr); cJSON_Delete(item); return st; }
            if (gr.failed) {
                (*n_fail)++;
                scores[k] = NAN;
                if (err && err_len) snprintf(err, err_len, "%s", gr.error);
            } else {
                scores[k] = gr.score;
            }
            for (int j = 0; sub && j < n_scores; j++) sub[(size_t)k * n_scores + j] = gr.failed ? NAN : gr.sub ? gr.sub[j] : gr.score;
            tk_grade_free(&gr);
        }
        cJSON_Delete(item);
    }
    return TK_OK;
}

double tk_rollout_mean(const double *v, int32_t n, int32_t stride, double *sd) {
    double s = 0, q = 0;
    int32_t k = 0;
    for (int32_t i = 0; i < n; i++) if (isfinite(v[(size_t)i * stride])) { s += v[(size_t)i * stride]; k++; }
    const double m = k ? s / k : NAN;
    for (int32_t i = 0; i < n && sd; i++) if (isfinite(v[(size_t)i * stride])) q += (v[(size_t)i * stride] - m) * (v[(size_t)i * stride] - m);
    if (sd) *sd = k > 1 ? sqrt(q / (k - 1)) : 0;
    return m;
}

tk_status tk_rollout_shared(tk_model *m, const tk_tokenizer *tok, const tk_adapter_use *ads, int n_ads, const tk_sft_data *d, char *const *items,
                            int32_t P, int32_t per_prompt, double temperature, int32_t max_new_tokens, uint64_t seed,
                            const tk_eval_grading *g, double *scores, char **texts, int64_t *n_fail, char *err, size_t err_len) {
    const int n_ranks = tk_dist_size(), rank = tk_dist_rank();
    const int32_t Pm = P > rank ? (P - rank + n_ranks - 1) / n_ranks : 0, nm = Pm * per_prompt, n = P * per_prompt;
    int64_t *ex = tk_malloc((size_t)(Pm ? Pm : 1) * sizeof *ex);
    tk_gen_result *res = tk_calloc((size_t)(nm ? nm : 1), sizeof *res);
    double *sc = tk_malloc((size_t)(nm ? nm : 1) * sizeof *sc);
    tk_status st = ex && res && sc ? TK_OK : TK_ERR_NOMEM;
    for (int32_t i = 0; i < Pm && !st; i++) ex[i] = rank + (int64_t)i * n_ranks;   /* prompt i is rank i mod N's */
    int64_t nf = 0;
    if (!st) st = tk_rollout_sample(m, tok, ads, n_ads, d, ex, ex, Pm, per_prompt, temperature, max_new_tokens, seed, res, NULL);
    if (!st) st = tk_rollout_grade(g, items, ex, per_prompt, res, nm, sc, NULL, 0, &nf, err, err_len);
    for (int32_t k = 0; k < n && !st; k++) { scores[k] = 0; free(texts[k]); texts[k] = NULL; }
    for (int32_t a = 0; a < nm && !st; a++) {   /* answer a of this rank is answer k of the set */
        const int64_t k = ex[a / per_prompt] * per_prompt + a % per_prompt;
        scores[k] = sc[a];
        texts[k] = res[a].text;
        res[a].text = NULL;
        if (!texts[k] && !(texts[k] = tk_strdup(""))) st = TK_ERR_NOMEM;
    }
    if (!st && n_ranks > 1) {   /* the others hold 0 at this rank's places: the sums are every rank's scores, exactly */
        st = tk_dist_sum_f64(scores, n);
        if (!st) st = tk_dist_sum_i64(&nf, 1);
        if (!st) st = tk_dist_share_texts(texts, n, per_prompt);
    }
    *n_fail = nf;
    for (int32_t a = 0; res && a < nm; a++) tk_gen_result_free(&res[a]);
    free(res);
    free(ex);
    free(sc);
    return st;
}
