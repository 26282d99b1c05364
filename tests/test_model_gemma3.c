/* The real Gemma-3-270M (models/gemma-3-270m-q4_k_m.gguf, scripts/fetch-gemma.sh) against HF
 * transformers run on the same file in float32 and against llama.cpp's llama-perplexity
 * (tools/make_gemma3_reference.py -> tests/fixtures/model/gemma3_ref.json).
 *
 * Logits, per stored position p: rel_p = max_i |takumi_i - hf_i| / max_i |hf_i| over HF's top-32
 * ids i of that position, with max_i |hf_i| the largest |logit| over the whole vocabulary; the
 * logsumexp is compared the same way. Required rel <= 1e-3 for the prefill path and for the exact
 * decode path (KV cache, f32 activations) over the last 4 positions (the int8-activation path: a
 * sanity bound of 0.1); top-1 equal wherever HF's top-2 is not within that tolerance. Measured
 * with the arch branch at 520b5ba: ~2e-6 everywhere. The prompts: a Gemma 3 chat turn, English, code, and a
 * 762-token passage (beyond the 512-token sliding window of 5 in every 6 layers). Then 20 greedy
 * tokens through the exact KV-cache path equal HF's (the prompts were chosen so that no greedy
 * step is a near-tie: the fixture's greedy_min_gap). takumi's tokenizer gives the fixture's ids.
 *
 * Perplexity by llama-perplexity's method (BOS-prefixed tokens of the first 10000 bytes of
 * tinyshakespeare, chunks of 512 whose first token is set to BOS, second half of each chunk
 * scored), through tk_forward_nll: within 1e-3 (relative) of HF's float32 value and within
 * PPL_TOL_LLAMA of llama.cpp's (which quantizes activations to 8 bits and keeps an f16 KV cache).
 *
 * When the library does not run the gemma3 architecture yet, the test prints SKIP (a failure when
 * CI=true), like a missing asset. */
#include "test.h"
#include "cJSON.h"
#include "core/core.h"

#define MODEL "models/gemma-3-270m-q4_k_m.gguf"
#define FIX "tests/fixtures/model/gemma3_ref.json"
/* relative tolerance of takumi's perplexity against llama.cpp's (see the fixture's numbers) */
#define PPL_TOL_LLAMA 0.01
/* The sanitizer build checks memory, not numbers: the first prompt and one perplexity chunk. */
#if defined(__SANITIZE_ADDRESS__)
#define N_PROMPTS 1
#define N_CHUNKS 1
#else
#define N_PROMPTS 1000
#define N_CHUNKS 1000
#endif

static cJSON *item(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }
static int n_of(const cJSON *a) { return cJSON_GetArraySize(a); }
static double num(const cJSON *a, int i) { return cJSON_GetArrayItem(a, i)->valuedouble; }

/* rel error of one position's logits against HF's top-N; *lse_rel the logsumexp error. */
static double pos_error(const float *row, int V, const cJSON *top_ids, const cJSON *top_vals, double lse_ref,
                        double maxabs, double *lse_rel) {
    double e = 0;
    for (int i = 0; i < n_of(top_ids); i++) {
        int id = cJSON_GetArrayItem(top_ids, i)->valueint;
        e = fmax(e, fabs(row[id] - num(top_vals, i)));
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

/* Index of position t in the prompt's stored positions, or -1. */
static int stored(const cJSON *positions, int t) {
    for (int i = 0; i < n_of(positions); i++) if (cJSON_GetArrayItem(positions, i)->valueint == t) return i;
    return -1;
}

static void check_prompt(tk_model *m, const cJSON *p, int V, double *worst_pre, double *worst_dec) {
    const char *name = item(p, "name")->valuestring, *text = item(p, "text")->valuestring;
    const cJSON *jids = item(p, "ids"), *pos = item(p, "positions"), *tids = item(p, "top_ids"),
                *tvals = item(p, "top_logits"), *lse = item(p, "logsumexp"), *mabs = item(p, "max_abs_logit"),
                *greedy = item(p, "greedy_ids");
    int T = n_of(jids), NP = n_of(pos);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)T);
    for (int t = 0; t < T; t++) ids[t] = cJSON_GetArrayItem(jids, t)->valueint;

    /* tokenizer: the fixture's ids (BOS added for the plain-text prompts; the chat text has its own <bos>) */
    tk_ivec tv = {0};
    int flags = TK_TOK_PARSE_SPECIAL | (cJSON_IsTrue(item(p, "add_bos")) ? TK_TOK_ADD_SPECIAL : 0);
    CHECK_OK(tk_tokenize(tk_model_tokenizer(m), text, strlen(text), flags, &tv));
    bool same = tv.len == (size_t)T;
    for (int t = 0; same && t < T; t++) same = tv.data[t] == ids[t];
    CHECK(same, "%s: takumi's token ids differ from HF's (%zu vs %d tokens)", name, tv.len, T);
    tk_ivec_free(&tv);

    /* prefill: one forward over the prompt, logits at the stored positions */
    int64_t *out_idx = malloc(sizeof(int64_t) * (size_t)NP);
    for (int i = 0; i < NP; i++) out_idx[i] = cJSON_GetArrayItem(pos, i)->valueint;
    float *lg = malloc(sizeof(float) * (size_t)NP * (size_t)V);
    tk_forward *f = NULL;
    CHECK_OK(tk_forward_new(m, 1, T, 0, &f));
    tk_batch b = {.n_rows = 1, .n_cols = T, .ids = ids};
    double tf = tk_time_s();
    if (f && lg) CHECK_OK(tk_forward_run(f, &b, out_idx, NP, lg));
    tf = tk_time_s() - tf;
    tk_forward_free(f);
    double e_pre = 0, e_lse = 0;
    int top1_bad = 0;
    for (int i = 0; lg && i < NP; i++) {
        double le, maxabs = num(mabs, i);
        const float *row = lg + (size_t)i * V;
        e_pre = fmax(e_pre, pos_error(row, V, cJSON_GetArrayItem(tids, i), cJSON_GetArrayItem(tvals, i), num(lse, i), maxabs, &le));
        e_lse = fmax(e_lse, le);
        const cJSON *tv0 = cJSON_GetArrayItem(tvals, i);
        double gap = num(tv0, 0) - num(tv0, 1);
        if (argmax(row, V) != cJSON_GetArrayItem(cJSON_GetArrayItem(tids, i), 0)->valueint && gap > 2e-3 * maxabs) top1_bad++;
    }
    printf("%-8s %3d tokens  prefill: max rel err %.2e (top-32 at %d positions), logsumexp %.2e, %.0f tok/s\n",
           name, T, e_pre, NP, e_lse, T / tf);
    CHECK(e_pre <= 1e-3 && e_lse <= 1e-3, "%s: prefill logits differ from HF: rel %g, logsumexp %g", name, e_pre, e_lse);
    CHECK(top1_bad == 0, "%s: %d positions with a different top-1 token", name, top1_bad);
    *worst_pre = fmax(*worst_pre, fmax(e_pre, e_lse));

    /* decode: prefill all but the last ND tokens, decode those one at a time (exact, f32 activations, then
     * the int8-activation kernels), then 20 greedy tokens from the exact path's cache */
    enum { ND = 4 };
    float *row = malloc(sizeof(float) * (size_t)V);
    for (int exact = 1; exact >= 0; exact--) {
        tk_session *s = NULL;
        CHECK_OK(tk_session_new(m, T + n_of(greedy) + 8, &s));
        if (!s) break;
        tk_session_set_exact(s, exact);
        double e_dec = 0;
        int top1_dec = 0;
        CHECK_OK(tk_session_eval(s, ids, T - ND, NULL));
        for (int t = T - ND; t < T; t++) {
            CHECK_OK(tk_session_eval(s, &ids[t], 1, row));
            int i = stored(pos, t);
            CHECK(i >= 0, "%s: position %d not in the fixture", name, t);
            if (i < 0) continue;
            double le, e = pos_error(row, V, cJSON_GetArrayItem(tids, i), cJSON_GetArrayItem(tvals, i), num(lse, i), num(mabs, i), &le);
            e_dec = fmax(e_dec, fmax(e, le));
            top1_dec += argmax(row, V) == cJSON_GetArrayItem(cJSON_GetArrayItem(tids, i), 0)->valueint;
        }
        int ng = n_of(greedy), match = 0;
        for (int g = 0; exact && g < ng; g++) {
            int32_t next = argmax(row, V);
            if (next != cJSON_GetArrayItem(greedy, g)->valueint) break;
            match++;
            if (g + 1 < ng) CHECK_OK(tk_session_eval(s, &next, 1, row));
        }
        printf("%-8s           decode %s: max rel err %.2e over the last %d positions, top-1 = HF's at %d",
               name, exact ? "(f32 x, exact) " : "(int8 x, fast)", e_dec, ND, top1_dec);
        if (exact) printf("; greedy %d of %d = HF's (HF's smallest top-2 gap %.3f)", match, ng, item(p, "greedy_min_gap")->valuedouble);
        printf("\n");
        if (exact) {
            CHECK(e_dec <= 1e-3, "%s: exact decode logits differ from HF: rel %g", name, e_dec);
            CHECK(match == ng, "%s: greedy diverges from HF at token %d", name, match);
            *worst_dec = fmax(*worst_dec, e_dec);
        } else {
            /* 8-bit activations: no 1e-3 claim; a sanity bound (measured 0.8-1.3e-2 with the arch branch at
             * 520b5ba) and top-1 mostly kept, so that a broken fused kernel still fails */
            CHECK(e_dec <= 0.1, "%s: int8 decode logits differ from HF: rel %g", name, e_dec);
            CHECK(top1_dec >= ND - 1, "%s: int8 decode top-1 agrees at only %d/%d positions", name, top1_dec, ND);
        }
        tk_session_free(s);
    }
    free(row);
    free(lg);
    free(out_idx);
    free(ids);
}

/* llama-perplexity's method through tk_forward_nll; compared with HF's and llama.cpp's numbers. */
static void check_perplexity(tk_model *m, const cJSON *P) {
    const char *path = tk_test_shared("data/tinyshakespeare/input.txt");
    if (tk_test_require(path, "data/tinyshakespeare/input.txt")) return;
    char *all = NULL;
    size_t all_len = 0;
    CHECK_OK(tk_read_file(path, &all, &all_len));
    if (!all) return;
    size_t nb = (size_t)item(P, "bytes")->valueint;
    if (nb > all_len) nb = all_len;
    int ctx = item(P, "ctx")->valueint, first = ctx / 2;
    const cJSON *hf = item(P, "hf"), *llama = item(P, "llama_cpp"), *per = item(hf, "chunk_nll_sums");
    tk_ivec ids = {0};
    CHECK_OK(tk_tokenize(tk_model_tokenizer(m), all, nb, TK_TOK_ADD_SPECIAL, &ids));
    free(all);
    CHECK(ids.len == (size_t)item(P, "n_tokens")->valueint, "perplexity text: %zu tokens, HF has %d", ids.len,
          item(P, "n_tokens")->valueint);
    const cJSON *fi = item(P, "first_ids"), *la = item(P, "last_ids");
    bool ends = ids.len >= 8;
    for (int i = 0; ends && i < 8; i++)
        ends = ids.data[i] == cJSON_GetArrayItem(fi, i)->valueint && ids.data[ids.len - 8 + i] == cJSON_GetArrayItem(la, i)->valueint;
    CHECK(ends, "perplexity text: first/last token ids differ from HF's");
    int n_chunk = (int)(ids.len / (size_t)ctx);
    CHECK(n_chunk == item(P, "chunks")->valueint, "%d chunks, fixture %d", n_chunk, item(P, "chunks")->valueint);
    if (n_chunk > N_CHUNKS) n_chunk = N_CHUNKS;
    tk_forward *f = NULL;
    CHECK_OK(tk_forward_new(m, 1, ctx, 0, &f));
    int32_t *chunk = malloc(sizeof(int32_t) * (size_t)ctx), *target = malloc(sizeof(int32_t) * (size_t)ctx);
    double loss = 0, count = 0, worst_chunk = 0, t0 = tk_time_s();
    for (int c = 0; f && c < n_chunk; c++) {
        const int32_t *src = ids.data + (size_t)c * (size_t)ctx;
        memcpy(chunk, src, sizeof(int32_t) * (size_t)ctx);
        chunk[0] = tk_tokenizer_bos(tk_model_tokenizer(m));
        for (int t = 0; t < ctx; t++) target[t] = t >= first && t < ctx - 1 ? src[t + 1] : -1;
        tk_batch b = {.n_rows = 1, .n_cols = ctx, .ids = chunk};
        double l0 = loss;
        CHECK_OK(tk_forward_nll(f, &b, target, NULL, &loss, &count));
        double ref = num(per, c);
        worst_chunk = fmax(worst_chunk, fabs((loss - l0) - ref) / fabs(ref));
    }
    double secs = tk_time_s() - t0;
    tk_forward_free(f);
    free(chunk);
    free(target);
    tk_ivec_free(&ids);
    CHECK(count == (double)n_chunk * (ctx - 1 - first), "scored %.0f tokens", count);
    double ppl = exp(loss / count);
    printf("perplexity (%d chunks of %d, %.0f scored, %.1f s): takumi %.4f; per-chunk nll vs HF: max rel %.2e\n",
           n_chunk, ctx, count, secs, ppl, worst_chunk);
    CHECK(worst_chunk <= 1e-3, "per-chunk nll differs from HF by %g (relative)", worst_chunk);
    if (n_chunk < item(P, "chunks")->valueint) return;   /* the totals need every chunk */
    double hf_ppl = item(hf, "ppl")->valuedouble;
    printf("perplexity: HF float32 %.4f (takumi %+.3f%%)", hf_ppl, 100 * (ppl / hf_ppl - 1));
    CHECK(fabs(ppl / hf_ppl - 1) <= 1e-3, "perplexity %.4f vs HF %.4f", ppl, hf_ppl);
    CHECK(cJSON_IsObject(llama), "the fixture has no llama.cpp perplexity (build bench/.peers, rerun the script)");
    if (cJSON_IsObject(llama)) {
        double lp = item(llama, "ppl")->valuedouble;
        printf(", llama.cpp %.4f (takumi %+.3f%%, bound %.0f%%): %s", lp, 100 * (ppl / lp - 1), 100 * PPL_TOL_LLAMA,
               item(llama, "command")->valuestring);
        CHECK(fabs(ppl / lp - 1) <= PPL_TOL_LLAMA, "perplexity %.4f vs llama.cpp %.4f", ppl, lp);
    }
    printf("\n");
}

int main(void) {
    if (tk_test_require(access(MODEL, R_OK) == 0 ? MODEL : NULL, MODEL " (scripts/fetch-gemma.sh)"))
        return tk_test_done("test_model_gemma3");
    char *txt = NULL;
    CHECK_OK(tk_read_file(FIX, &txt, NULL));
    cJSON *j = txt ? cJSON_Parse(txt) : NULL;
    CHECK(j != NULL, "cannot parse %s", FIX);
    tk_model *m = NULL;
    double t0 = tk_time_s();
    tk_status st = tk_model_load(MODEL, NULL, &m);
    if (st == TK_ERR_UNSUPPORTED && strstr(tk_last_error(), "unsupported architecture 'gemma3'")) {
        /* a build without the Gemma 3 forward: skipped like a missing asset, a failure in CI */
        const char *ci = getenv("CI");
        CHECK(!(ci && !strcmp(ci, "true")), "CI: this build does not run the gemma3 architecture: %s", tk_last_error());
        if (!tk_test_failures) {
            printf("SKIP: this build does not run the gemma3 architecture (%s)\n", tk_last_error());
            cJSON_Delete(j);
            free(txt);
            return 0;
        }
        goto out;
    }
    CHECK(st == TK_OK, "loading %s: %s", MODEL, tk_last_error());
    if (!j || !m) goto out;
    printf("loaded in %.2f s: %lld params, %.1f MB of weights mapped, %.1f MB owned\n", tk_time_s() - t0,
           (long long)tk_model_n_params(m), tk_model_weight_bytes(m) / 1e6, tk_model_owned_bytes(m) / 1e6);
    const int V = tk_model_get_config(m)->n_vocab;
    CHECK(V == 262144, "n_vocab %d", V);
    const cJSON *prompts = item(j, "prompts");
    double worst_pre = 0, worst_dec = 0;
    for (int pi = 0; pi < n_of(prompts) && pi < N_PROMPTS; pi++)
        check_prompt(m, cJSON_GetArrayItem(prompts, pi), V, &worst_pre, &worst_dec);
    printf("worst relative error: prefill %.2e, exact decode %.2e (bound 1e-3)\n", worst_pre, worst_dec);
    check_perplexity(m, item(j, "perplexity"));
out:
    tk_model_free(m);
    cJSON_Delete(j);
    free(txt);
    return tk_test_done("test_model_gemma3");
}
