/* SmolLM2-135M-Instruct (GGUF Q4_1, the default model) against HF transformers run on
 * the same file (tools/make_smollm2_reference.py -> tests/fixtures/model/smollm2_ref.*).
 *
 * Error measure, per position p: rel_p = max_i |takumi_i - hf_i| / max_i |hf_i| over the
 * compared logits i (the whole vocabulary where the fixture stores it, i.e. the last
 * position of two prompts; else HF's top-5 ids of that position), with max_i |hf_i| the
 * position's largest |logit| over the WHOLE vocabulary (stored by the script). The
 * logsumexp of each position is compared the same way. Required: rel <= 1e-3 for the
 * prefill path (T >= 8 rows: per-block dequantized panels + sgemm, exact f32) and for
 * the exact decode path (one token at a time through the KV cache, f32 activations).
 * The default decode path (fused kernels that quantize x to 8 bits per 32-block, as
 * llama.cpp) is reported and held to a sanity bound only. Also: takumi's tokenizer gives
 * the fixture's ids, and 20 greedy tokens through the exact KV-cache path equal HF's
 * greedy tokens (computed by full forwards). */
#include "test.h"
#include "cJSON.h"
#include "core/core.h"

#define MODEL "models/SmolLM2-135M-Instruct.Q4_1.gguf"
/* The sanitizer build checks memory, not numbers: one prompt keeps it quick. */
#if defined(__SANITIZE_ADDRESS__)
#define N_PROMPTS 1
#else
#define N_PROMPTS 1000
#endif
#define FIX "tests/fixtures/model/smollm2_ref.json"
#define FIXBIN "tests/fixtures/model/smollm2_ref_logits.bin"

static int n_ids(cJSON *a) { return cJSON_GetArraySize(a); }

/* rel error of one position's logits against the fixture; *lse_rel the logsumexp error. */
static double pos_error(const float *row, int V, cJSON *top_ids, cJSON *top_vals, double lse_ref, double maxabs,
                        const float *full_ref, double *lse_rel) {
    double e = 0;
    if (full_ref) {
        for (int v = 0; v < V; v++) e = fmax(e, fabs(row[v] - full_ref[v]));
    } else {
        for (int i = 0; i < n_ids(top_ids); i++) {
            int id = cJSON_GetArrayItem(top_ids, i)->valueint;
            e = fmax(e, fabs(row[id] - cJSON_GetArrayItem(top_vals, i)->valuedouble));
        }
    }
    double mx = row[0], z = 0;
    for (int v = 1; v < V; v++) mx = fmax(mx, row[v]);
    for (int v = 0; v < V; v++) z += exp(row[v] - mx);
    *lse_rel = fabs(mx + log(z) - lse_ref) / maxabs;
    return e / maxabs;
}

static int argmax(const float *row, int V) {
    int b = 0;
    for (int v = 1; v < V; v++) if (row[v] > row[b]) b = v;
    return b;
}

int main(void) {
    if (tk_test_require(access(MODEL, R_OK) == 0 ? MODEL : NULL, MODEL " (scripts/fetch-model.sh)"))
        return tk_test_done("test_model_smollm2");
    char *txt = NULL, *bin = NULL;
    size_t bin_len = 0;
    CHECK_OK(tk_read_file(FIX, &txt, NULL));
    CHECK_OK(tk_read_file(FIXBIN, &bin, &bin_len));
    cJSON *j = txt ? cJSON_Parse(txt) : NULL;
    CHECK(j != NULL, "cannot parse %s", FIX);
    tk_model *m = NULL;
    double t0 = tk_time_s();
    CHECK_OK(tk_model_load(MODEL, NULL, &m));
    if (!j || !m || !bin) goto out;
    printf("loaded in %.2f s: %lld params, %.1f MB of weights mapped, %.1f MB owned\n", tk_time_s() - t0,
           (long long)tk_model_n_params(m), tk_model_weight_bytes(m) / 1e6, tk_model_owned_bytes(m) / 1e6);
    const int V = tk_model_get_config(m)->n_vocab;
    cJSON *prompts = cJSON_GetObjectItem(j, "prompts");
    double worst_pre = 0, worst_dec = 0, worst_fast = 0;
    for (int pi = 0; pi < n_ids(prompts) && pi < N_PROMPTS; pi++) {
        cJSON *p = cJSON_GetArrayItem(prompts, pi);
        const char *name = cJSON_GetObjectItem(p, "name")->valuestring;
        cJSON *jids = cJSON_GetObjectItem(p, "ids"), *tids = cJSON_GetObjectItem(p, "top5_ids"),
              *tvals = cJSON_GetObjectItem(p, "top5_logits"), *lse = cJSON_GetObjectItem(p, "logsumexp"),
              *mabs = cJSON_GetObjectItem(p, "max_abs_logit"), *greedy = cJSON_GetObjectItem(p, "greedy_ids"),
              *off = cJSON_GetObjectItem(p, "full_logits_offset");
        const char *text = cJSON_GetObjectItem(p, "text")->valuestring;
        int T = n_ids(jids);
        int32_t *ids = malloc(sizeof(int32_t) * (size_t)T);
        for (int t = 0; t < T; t++) ids[t] = cJSON_GetArrayItem(jids, t)->valueint;
        const float *full_ref = NULL;
        if (off && (size_t)off->valueint + (size_t)V * 4 <= bin_len) full_ref = (const float *)(bin + off->valueint);
        CHECK(!off || full_ref, "%s: fixture logits out of range", name);

        /* tokenizer agreement with HF on this prompt */
        tk_ivec tv = {0};
        CHECK_OK(tk_tokenize(tk_model_tokenizer(m), text, strlen(text), TK_TOK_PARSE_SPECIAL, &tv));
        bool same = tv.len == (size_t)T;
        for (int t = 0; same && t < T; t++) same = tv.data[t] == ids[t];
        CHECK(same, "%s: takumi's token ids differ from HF's (%zu vs %d tokens)", name, tv.len, T);
        tk_ivec_free(&tv);

        /* prefill path: one forward over all positions */
        float *lg = malloc(sizeof(float) * (size_t)T * V);
        tk_forward *f = NULL;
        CHECK_OK(tk_forward_new(m, 1, T, 0, &f));
        tk_batch b = {.n_rows = 1, .n_cols = T, .ids = ids};
        double tf = tk_time_s();
        if (f) CHECK_OK(tk_forward_run(f, &b, NULL, T, lg));
        tf = tk_time_s() - tf;
        tk_forward_free(f);
        double e_pre = 0, e_lse = 0, e_full = 0;
        int top1_bad = 0;
        for (int t = 0; t < T; t++) {
            double le, maxabs = cJSON_GetArrayItem(mabs, t)->valuedouble;
            const float *fr = t == T - 1 ? full_ref : NULL;
            double e = pos_error(lg + (size_t)t * V, V, cJSON_GetArrayItem(tids, t), cJSON_GetArrayItem(tvals, t),
                                 cJSON_GetArrayItem(lse, t)->valuedouble, maxabs, fr, &le);
            if (fr) e_full = e;
            e_pre = fmax(e_pre, e);
            e_lse = fmax(e_lse, le);
            /* top-1 must agree unless HF's top-2 is within the tolerance of its top-1 */
            cJSON *tv0 = cJSON_GetArrayItem(tvals, t);
            double gap = cJSON_GetArrayItem(tv0, 0)->valuedouble - cJSON_GetArrayItem(tv0, 1)->valuedouble;
            if (argmax(lg + (size_t)t * V, V) != cJSON_GetArrayItem(cJSON_GetArrayItem(tids, t), 0)->valueint &&
                gap > 2e-3 * maxabs)
                top1_bad++;
        }
        printf("%-9s %2d tokens  prefill: max rel err %.2e (top-5 of every position%s), logsumexp %.2e, %.0f tok/s\n",
               name, T, e_pre, full_ref ? ", full vocabulary at the last" : "", e_lse, T / tf);
        if (full_ref) printf("%-9s           last position, all %d logits: rel err %.2e\n", name, V, e_full);
        CHECK(e_pre <= 1e-3 && e_lse <= 1e-3, "%s: prefill logits differ from HF: rel %g, logsumexp %g", name, e_pre, e_lse);
        CHECK(top1_bad == 0, "%s: %d positions with a different top-1 token", name, top1_bad);
        worst_pre = fmax(worst_pre, fmax(e_pre, e_lse));

        /* decode path: prefill all but the last ND prompt tokens, then decode those one at a
         * time through the KV cache, with f32 activations (exact) and with the default
         * int8-activation kernels (fast); then 20 greedy tokens (exact path for all
         * prompts; the fast path only for the first, to keep the test short) */
        enum { ND = 6 };
        float *row = malloc(sizeof(float) * (size_t)V);
        for (int exact = 1; exact >= 0; exact--) {
            tk_session *s = NULL;
            CHECK_OK(tk_session_new(m, 512, &s));
            if (!s) break;
            tk_session_set_exact(s, exact);
            double e_dec = 0;
            int top1_dec = 0;
            CHECK_OK(tk_session_eval(s, ids, T - ND, NULL));
            for (int t = T - ND; t < T; t++) {
                CHECK_OK(tk_session_eval(s, &ids[t], 1, row));
                double le, maxabs = cJSON_GetArrayItem(mabs, t)->valuedouble;
                double e = pos_error(row, V, cJSON_GetArrayItem(tids, t), cJSON_GetArrayItem(tvals, t),
                                     cJSON_GetArrayItem(lse, t)->valuedouble, maxabs, t == T - 1 ? full_ref : NULL, &le);
                e_dec = fmax(e_dec, fmax(e, le));
                top1_dec += argmax(row, V) == cJSON_GetArrayItem(cJSON_GetArrayItem(tids, t), 0)->valueint;
            }
            int ng = n_ids(greedy), match = 0;
            bool do_greedy = exact || pi == 0;
            /* continue from the cache: the prompt is already there */
            for (int g = 0; do_greedy && g < ng; g++) {
                int32_t next = argmax(row, V);
                if (next != cJSON_GetArrayItem(greedy, g)->valueint) break;
                match++;
                if (g + 1 < ng) CHECK_OK(tk_session_eval(s, &next, 1, row));
            }
            printf("%-9s           decode %s: max rel err %.2e over the last %d positions, top-1 = HF's at %d",
                   name, exact ? "(f32 x, exact) " : "(int8 x, fast)", e_dec, ND, top1_dec);
            if (do_greedy) printf("; greedy %d of %d = HF's", match, ng);
            printf("\n");
            if (exact) {
                CHECK(e_dec <= 1e-3, "%s: exact decode logits differ from HF: rel %g", name, e_dec);
                CHECK(match == ng, "%s: greedy diverges from HF at token %d", name, match);
                worst_dec = fmax(worst_dec, e_dec);
            } else {
                /* 8-bit activations: no 1e-3 claim; a sanity bound (measured 4-7e-2 on all
                 * positions) and top-1 mostly kept, so a broken fused kernel still fails */
                CHECK(e_dec <= 0.15, "%s: int8 decode logits differ from HF: rel %g", name, e_dec);
                CHECK(top1_dec >= ND - 1, "%s: int8 decode top-1 agrees at only %d/%d positions", name, top1_dec, ND);
                worst_fast = fmax(worst_fast, e_dec);
            }
            tk_session_free(s);
        }
        free(row);
        free(lg);
        free(ids);
    }
    printf("worst relative error: prefill %.2e, exact decode %.2e (bound 1e-3); int8-activation decode %.2e\n",
           worst_pre, worst_dec, worst_fast);
out:
    tk_model_free(m);
    cJSON_Delete(j);
    free(txt);
    free(bin);
    return tk_test_done("test_model_smollm2");
}
