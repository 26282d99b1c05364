/* Batched generation (tk_generate_batch) against one-sequence generation (tk_generate):
 *   - TK_MATMUL_ROWWISE products (tk_matmul_ex, tk_matmul_multi) of T rows equal T one-row
 *     products bit for bit for every weight dtype;
 *   - one decode step over B caches (tk_llama_forward_kvs): each row's logits equal a
 *     one-row forward on its cache bit for bit with TK_MATMUL_ROWWISE (tiny random Llama,
 *     stories260K), within 1e-5 of the largest logit without it; shared or missing caches refused;
 *   - stories260K: greedy results (ids, text, stop) equal sequential tk_generate's for mixed
 *     prompt lengths at max_batch 1, 2 and 7, with stop strings per sequence, caches that grow
 *     mid-batch, bare,
 *     with a LoRA adapter and with an attention-prefix adapter;
 *   - sampled generation: the same per request seed whatever max_batch and request order,
 *     equal to tk_generate with that seed;
 *   - a sequence whose context fills stops with TK_GEN_STOP_CONTEXT while others go on;
 *   - bad arguments return a status and leave the results empty;
 *   - the continuous batcher (tk_batcher): rows over no adapter, two LoRAs (per-row adapters in one forward)
 *     and an attention prefix (a forward of its own), greedy and sampled, joining one per step with
 *     chunked prefill, equal tk_generate's; a row whose callback quits ends alone; bad rows refused;
 *     on SmolLM2 Q4_1 the same with f32 and with int8 activations (equal to sessions with the same setting);
 *   - SmolLM2-135M-Instruct Q4_1 (when present): greedy batch = sequential, chat answers
 *     ending at EOS beside prompts that run to max_tokens. */
#include "test.h"
#include "tiny_llama.h"
#include "backend/backend.h"
#include "peft/lora.h"
#include "random_weight.h"

#define NP 9

typedef struct ref { tk_ivec ids; tk_buf text; tk_gen_stop stop; } ref;
static bool g_fast; /* sequential sessions with int8 activations (tk_session_set_exact false) */

static bool to_buf(void *ud, const char *t, size_t n) { return tk_buf_append(ud, t, n) == TK_OK; }

/* tk_generate in a fresh session with adapters ads and seed. */
static void sequential(tk_model *m, const tk_adapter_use *ads, int n_ads, const int32_t *prompt, int64_t n,
                       const tk_gen_params *p, uint64_t seed, ref *r) {
    memset(r, 0, sizeof *r);
    tk_gen_params q = *p;
    q.sampler.seed = seed;
    tk_session *s = NULL;
    CHECK_OK(tk_session_new(m, 0, &s));
    if (!s) return;
    CHECK_OK(tk_session_set_adapters(s, ads, n_ads));
    tk_session_set_exact(s, !g_fast);
    tk_gen_stats st;
    CHECK_OK(tk_generate(s, tk_model_tokenizer(m), prompt, n, &q, to_buf, &r->text, &r->ids, &st));
    r->stop = st.stop;
    tk_buf_append(&r->text, "", 0);
    tk_session_free(s);
}

static void ref_free(ref *r) {
    tk_ivec_free(&r->ids);
    tk_buf_free(&r->text);
}

static bool same(const ref *r, const tk_gen_result *g) {
    return g->ids && g->text && (size_t)g->n_ids == r->ids.len && !memcmp(g->ids, r->ids.data, r->ids.len * sizeof(int32_t)) &&
           !strcmp(g->text, r->text.data) && g->stop == r->stop;
}

/* Prompts of mixed lengths: BOS + a deterministic walk over the vocabulary. */
typedef struct prompts { int32_t ids[NP][48]; tk_gen_request req[NP]; } prompts;
static void make_prompts(prompts *ps, int32_t V) {
    static const int len[NP] = {1, 5, 17, 3, 40, 9, 1, 26, 12};
    for (int i = 0; i < NP; i++) {
        ps->ids[i][0] = 1;
        for (int t = 1; t < len[i]; t++) ps->ids[i][t] = (int32_t)(3 + (t * 37 + i * 101) % (V - 3));
        ps->req[i] = (tk_gen_request){ps->ids[i], len[i], 1000 + (uint64_t)i};
    }
}

/* Batch results equal sequential ones for every request at max_batch 1, 2, 7. */
static void check_against_sequential(tk_model *m, const tk_adapter_use *ads, int n_ads, const tk_gen_params *p, const char *what) {
    prompts ps;
    make_prompts(&ps, tk_model_get_config(m)->n_vocab);
    ref r[NP];
    int64_t total = 0;
    int stops[8] = {0};
    for (int i = 0; i < NP; i++) {
        sequential(m, ads, n_ads, ps.req[i].prompt, ps.req[i].n_prompt, p, ps.req[i].seed, &r[i]);
        total += (int64_t)r[i].ids.len;
        stops[r[i].stop]++;
    }
    const int32_t mbs[3] = {1, 2, 7};
    for (int k = 0; k < 3; k++) {
        tk_gen_result g[NP];
        tk_gen_batch_stats bs;
        CHECK_OK(tk_generate_batch(m, tk_model_tokenizer(m), ads, n_ads, ps.req, NP, p, mbs[k], g, &bs));
        for (int i = 0; i < NP; i++) {
            CHECK(same(&r[i], &g[i]), "%s, max_batch %d, request %d: %lld ids '%s' stop %d; sequential %zu ids '%s' stop %d", what,
                  mbs[k], i, (long long)g[i].n_ids, g[i].text ? g[i].text : "(null)", g[i].stop, r[i].ids.len, r[i].text.data,
                  r[i].stop);
            tk_gen_result_free(&g[i]);
        }
        CHECK(bs.n_generated == total && bs.n_prompt_tokens == 1 + 5 + 17 + 3 + 40 + 9 + 1 + 26 + 12,
              "%s: stats %lld generated (want %lld), %lld prompt tokens", what, (long long)bs.n_generated, (long long)total,
              (long long)bs.n_prompt_tokens);
        CHECK(bs.max_live == mbs[k], "%s: max_live %d at max_batch %d", what, bs.max_live, mbs[k]);
    }
    printf("%s: %lld ids; stops: %d max_tokens, %d eos, %d string\n", what, (long long)total, stops[TK_GEN_STOP_MAX_TOKENS],
           stops[TK_GEN_STOP_EOS], stops[TK_GEN_STOP_STRING]);
    for (int i = 0; i < NP; i++) ref_free(&r[i]);
}

/* GRPO's shape: 3 prompts x 4 sampled answers each, consecutive requests sharing a prompt. Each prompt is evaluated
 * once and copied into its group's other caches, and every answer equals one session's with the same seed, at every
 * max_batch (1: a finished answer's slot is reused by the next of its group; 12: all live at once). */
static void check_groups(tk_model *m, const char *what) {
    enum { P = 3, G = 4 };
    static const int len[P] = {7, 1, 30};
    int32_t ids[P][32];
    tk_gen_request req[P * G];
    const int32_t V = tk_model_get_config(m)->n_vocab;
    for (int i = 0; i < P; i++) {
        ids[i][0] = 1;
        for (int t = 1; t < len[i]; t++) ids[i][t] = (int32_t)(3 + (t * 53 + i * 71) % (V - 3));
        for (int g = 0; g < G; g++) req[i * G + g] = (tk_gen_request){ids[i], len[i], 500 + (uint64_t)(i * G + g)};
    }
    tk_gen_params p = tk_gen_default_params();
    p.sampler.temperature = 1.0f;
    p.sampler.top_k = 0;
    p.sampler.top_p = 1.0f;
    p.sampler.min_p = 0.0f;
    p.max_tokens = 12;
    ref r[P * G];
    for (int k = 0; k < P * G; k++) sequential(m, NULL, 0, req[k].prompt, req[k].n_prompt, &p, req[k].seed, &r[k]);
    int distinct = 0;
    for (int g = 1; g < G; g++) distinct += r[g].ids.len != r[0].ids.len || memcmp(r[g].ids.data, r[0].ids.data, r[0].ids.len * sizeof(int32_t));
    CHECK(distinct > 0, "%s: a group's sampled answers are all the same (seeds unused?)", what);
    const int32_t mbs[3] = {1, 5, P * G};
    for (int k = 0; k < 3; k++) {
        tk_gen_result g[P * G];
        tk_gen_batch_stats bs;
        CHECK_OK(tk_generate_batch(m, tk_model_tokenizer(m), NULL, 0, req, P * G, &p, mbs[k], g, &bs));
        for (int i = 0; i < P * G; i++) {
            CHECK(same(&r[i], &g[i]), "%s, max_batch %d, request %d differs from its session", what, mbs[k], i);
            tk_gen_result_free(&g[i]);
        }
        CHECK(bs.n_prompt_tokens == 7 + 1 + 30 && bs.n_prompt_reused == (G - 1) * (7 + 1 + 30),
              "%s, max_batch %d: %lld prompt tokens evaluated, %lld reused", what, mbs[k], (long long)bs.n_prompt_tokens,
              (long long)bs.n_prompt_reused);
    }
    for (int i = 0; i < P * G; i++) ref_free(&r[i]);
}

/* ---- a test-only attention prefix adapter: fixed random keys/values [P x KH*D] per layer ---- */
typedef struct pfx { int32_t L; int64_t P; float *kv; int64_t kvd; } pfx;
static int64_t pf_prefix(void *st, const tk_peft_call *c, int32_t layer, const float **k, const float **v) {
    (void)c;
    pfx *p = st;
    if (layer < 0 || layer >= p->L) return 0;
    *k = p->kv + (int64_t)layer * 2 * p->P * p->kvd;
    *v = *k + p->P * p->kvd;
    return p->P;
}
static const tk_peft_method k_pf = {.name = "prefix-test", .attn_prefix = pf_prefix};

/* One decode step over 3 caches vs one-row forwards on copies of them. */
static void row_logits(tk_model *m, const char *what) {
    const tk_model_config *c = tk_model_get_config(m);
    const int32_t V = c->n_vocab, B = 3;
    const int32_t lens[3] = {7, 1, 12};
    tk_kv_cache kb[3], ks[3];
    tk_kv_cache *kp[3];
    tk_acts one, dec, dec_plain;
    CHECK_OK(tk_acts_init(&one, m, 1, 16, 0));
    CHECK_OK(tk_acts_init(&dec, m, B, 1, 0));
    CHECK_OK(tk_acts_init(&dec_plain, m, B, 1, 0));
    one.mm_flags = dec_plain.mm_flags = TK_MATMUL_EXACT;
    dec.mm_flags = TK_MATMUL_EXACT | TK_MATMUL_ROWWISE;
    float *lb = malloc((size_t)B * V * sizeof(float)), *lp = malloc((size_t)B * V * sizeof(float)), *ls = malloc((size_t)V * sizeof(float));
    int32_t step[3];
    for (int r = 0; r < B; r++) {
        int32_t ids[16];
        for (int t = 0; t < lens[r]; t++) ids[t] = (int32_t)((t * 7 + r * 5 + 1) % V);
        step[r] = (int32_t)((r * 11 + 3) % V);
        CHECK_OK(tk_kv_init(&kb[r], m, 64));
        CHECK_OK(tk_kv_init(&ks[r], m, 64));
        CHECK_OK(tk_kv_eval(m, &one, &kb[r], ids, lens[r], NULL));
        CHECK_OK(tk_kv_eval(m, &one, &ks[r], ids, lens[r], NULL));
        CHECK_OK(tk_kv_reserve(&kb[r], lens[r] + 2));
        kp[r] = &kb[r];
    }
    tk_batch b = {.n_rows = B, .n_cols = 1, .ids = step};
    CHECK_OK(tk_llama_forward_kvs(m, &dec, &b, kp, NULL, B, lb));
    for (int r = 0; r < B; r++) kb[r].n--; /* the same step again without ROWWISE */
    CHECK_OK(tk_llama_forward_kvs(m, &dec_plain, &b, kp, NULL, B, lp));
    for (int r = 0; r < B; r++) {
        CHECK(kb[r].n == lens[r] + 1 && kb[r].tokens[lens[r]] == step[r] && kb[r].pos[lens[r]] == lens[r], "%s: row %d cache", what, r);
        CHECK_OK(tk_kv_eval(m, &one, &ks[r], &step[r], 1, ls));
        CHECK(!memcmp(ls, lb + (size_t)r * V, (size_t)V * sizeof(float)), "%s: row %d logits differ from the one-row forward's", what, r);
        float mx = 0, d = 0;
        for (int32_t j = 0; j < V; j++) {
            mx = fmaxf(mx, fabsf(ls[j]));
            d = fmaxf(d, fabsf(ls[j] - lp[(size_t)r * V + j]));
        }
        CHECK(d <= 1e-5f * mx, "%s: row %d without ROWWISE: max diff %g of max %g", what, r, d, mx);
    }
    /* two rows on one cache, a missing cache */
    tk_kv_cache *dup[3] = {&kb[0], &kb[1], &kb[0]}, *none[3] = {&kb[0], NULL, &kb[2]};
    CHECK(tk_llama_forward_kvs(m, &dec, &b, dup, NULL, 0, NULL) == TK_ERR_ARG, "%s: shared cache refused", what);
    CHECK(tk_llama_forward_kvs(m, &dec, &b, none, NULL, 0, NULL) == TK_ERR_ARG, "%s: missing cache refused", what);
    CHECK(kb[0].n == lens[0] + 1, "%s: a refused step leaves the cache", what);
    for (int r = 0; r < B; r++) { tk_kv_free(&kb[r]); tk_kv_free(&ks[r]); }
    tk_acts_free(&one);
    tk_acts_free(&dec);
    tk_acts_free(&dec_plain);
    free(lb); free(lp); free(ls);
}

/* Every weight dtype: a ROWWISE product of T rows = T one-row products, bit for bit. */
static void rowwise_matmul(void) {
    tk_rng rng;
    tk_rng_seed(&rng, 77);
    const int64_t N = 37, K = 256, Ts[4] = {2, 4, 9, 13};
    for (size_t d = 0; d < sizeof k_weight_types / sizeof k_weight_types[0]; d++) {
        tk_dtype dt = k_weight_types[d];
        size_t nb0, nb1;
        void *w0 = random_weight(&rng, dt, N, K, &nb0), *w1 = random_weight(&rng, dt, N + 5, K, &nb1);
        tk_tensor_ref r0 = {.name = "w0", .dtype = dt, .n_dims = 2, .ne = {K, N, 1, 1}, .data = w0, .nbytes = nb0};
        tk_tensor_ref r1 = {.name = "w1", .dtype = dt, .n_dims = 2, .ne = {K, N + 5, 1, 1}, .data = w1, .nbytes = nb1};
        float *x = malloc((size_t)(13 * K) * sizeof(float)), *y = malloc((size_t)(13 * (N + 5)) * sizeof(float));
        float *ym = malloc((size_t)(13 * (N + 5)) * sizeof(float)), *y1 = malloc((size_t)(N + 5) * sizeof(float));
        for (int64_t i = 0; i < 13 * K; i++) x[i] = tk_rng_normal(&rng);
        for (int k = 0; k < 4; k++) {
            int64_t T = Ts[k];
            const tk_tensor_ref *ws[2] = {&r0, &r1};
            float *ys[2] = {ym, y};
            CHECK_OK(tk_matmul_multi(ys, x, ws, 2, T, TK_MATMUL_EXACT | TK_MATMUL_ROWWISE));
            bool same = true;
            for (int64_t t = 0; t < T; t++) {
                CHECK_OK(tk_matmul_ex(y1, x + t * K, &r1, 1, false, TK_MATMUL_EXACT));
                same = same && !memcmp(y1, y + t * (N + 5), (size_t)(N + 5) * sizeof(float));
                CHECK_OK(tk_matmul_ex(y1, x + t * K, &r0, 1, false, TK_MATMUL_EXACT));
                same = same && !memcmp(y1, ym + t * N, (size_t)N * sizeof(float));
            }
            CHECK_OK(tk_matmul_ex(y, x, &r0, T, false, TK_MATMUL_EXACT | TK_MATMUL_ROWWISE));
            for (int64_t t = 0; t < T; t++) {
                CHECK_OK(tk_matmul_ex(y1, x + t * K, &r0, 1, false, TK_MATMUL_EXACT));
                same = same && !memcmp(y1, y + t * N, (size_t)N * sizeof(float));
            }
            CHECK(same, "%s, %lld rows: a ROWWISE product differs from one-row products", tk_dtype_name(dt), (long long)T);
        }
        free(w0); free(w1); free(x); free(y); free(ym); free(y1);
    }
}

static tk_gen_params greedy(int max_tokens) {
    tk_gen_params p = tk_gen_default_params();
    p.sampler.temperature = 0;
    p.max_tokens = max_tokens;
    return p;
}

static void sampled(tk_model *m) {
    prompts ps;
    make_prompts(&ps, tk_model_get_config(m)->n_vocab);
    /* requests 0 and 6 have the same prompt (BOS) and different seeds */
    tk_gen_params p = tk_gen_default_params();
    p.max_tokens = 20;
    tk_gen_result a[NP], b[NP], c[NP];
    tk_gen_request rev[NP];
    for (int i = 0; i < NP; i++) rev[i] = ps.req[NP - 1 - i];
    CHECK_OK(tk_generate_batch(m, tk_model_tokenizer(m), NULL, 0, ps.req, NP, &p, 1, a, NULL));
    CHECK_OK(tk_generate_batch(m, tk_model_tokenizer(m), NULL, 0, ps.req, NP, &p, 5, b, NULL));
    CHECK_OK(tk_generate_batch(m, tk_model_tokenizer(m), NULL, 0, rev, NP, &p, 4, c, NULL));
    for (int i = 0; i < NP; i++) {
        ref r;
        sequential(m, NULL, 0, ps.req[i].prompt, ps.req[i].n_prompt, &p, ps.req[i].seed, &r);
        CHECK(same(&r, &a[i]) && same(&r, &b[i]) && same(&r, &c[NP - 1 - i]), "sampled request %d: batch 1 '%s', batch 5 '%s', reversed '%s', sequential '%s'",
              i, a[i].text, b[i].text, c[NP - 1 - i].text, r.text.data);
        ref_free(&r);
    }
    CHECK(strcmp(a[0].text, a[6].text) != 0, "the same prompt with two seeds gave the same text '%s'", a[0].text);
    for (int i = 0; i < NP; i++) { tk_gen_result_free(&a[i]); tk_gen_result_free(&b[i]); tk_gen_result_free(&c[i]); }
}

/* Context 40: a 35-token prompt fills it after 6 ids, a 41-token one does not fit, the others go on. */
static void context(const char *path) {
    tk_model_params mp = tk_model_default_params();
    mp.n_ctx = 40;
    tk_model *m = NULL;
    CHECK_OK(tk_model_load(path, &mp, &m));
    if (!m) return;
    int32_t lo[41];
    for (int t = 0; t < 41; t++) lo[t] = t ? (int32_t)(3 + t * 13 % 500) : 1;
    const int32_t bos = 1;
    tk_gen_request q[4] = {{&bos, 1, 1}, {lo, 35, 2}, {lo, 41, 3}, {lo, 4, 4}};
    tk_gen_params p = greedy(20);
    p.stop_at_eos = false;
    tk_gen_result g[4];
    CHECK_OK(tk_generate_batch(m, tk_model_tokenizer(m), NULL, 0, q, 4, &p, 3, g, NULL));
    CHECK(g[1].stop == TK_GEN_STOP_CONTEXT && g[1].n_ids == 6, "filled context: stop %d after %lld ids", g[1].stop, (long long)g[1].n_ids);
    CHECK(g[2].stop == TK_GEN_STOP_CONTEXT && g[2].n_ids == 0 && g[2].text && !g[2].text[0], "prompt beyond the context: stop %d, %lld ids",
          g[2].stop, (long long)g[2].n_ids);
    CHECK(g[0].stop == TK_GEN_STOP_MAX_TOKENS && g[0].n_ids == 20 && g[3].n_ids == 20, "the others: %lld and %lld ids", (long long)g[0].n_ids,
          (long long)g[3].n_ids);
    for (int i = 0; i < 4; i++) {
        if (i != 2) {
            ref r;
            sequential(m, NULL, 0, q[i].prompt, q[i].n_prompt, &p, q[i].seed, &r);
            CHECK(same(&r, &g[i]), "context test, request %d differs from tk_generate", i);
            ref_free(&r);
        }
        tk_gen_result_free(&g[i]);
    }
    tk_model_free(m);
}

static void bad_args(tk_model *m) {
    const tk_tokenizer *tok = tk_model_tokenizer(m);
    const int32_t ok_ids[2] = {1, 5}, bad_ids[2] = {1, 100000};
    tk_gen_request q[2] = {{ok_ids, 2, 0}, {ok_ids, 2, 0}};
    tk_gen_params p = greedy(4);
    tk_gen_result g[2];
    memset(g, 0x5a, sizeof g);
    CHECK(tk_generate_batch(NULL, tok, NULL, 0, q, 2, &p, 2, g, NULL) == TK_ERR_ARG, "no model");
    CHECK(tk_generate_batch(m, NULL, NULL, 0, q, 2, &p, 2, g, NULL) == TK_ERR_ARG, "no tokenizer");
    CHECK(tk_generate_batch(m, tok, NULL, 0, q, -1, &p, 2, g, NULL) == TK_ERR_ARG, "negative count");
    CHECK(tk_generate_batch(m, tok, NULL, 0, NULL, 2, &p, 2, g, NULL) == TK_ERR_ARG, "no requests");
    CHECK(tk_generate_batch(m, tok, NULL, 0, q, 2, &p, 2, NULL, NULL) == TK_ERR_ARG, "no results");
    CHECK(tk_generate_batch(m, tok, NULL, 0, q, 2, &p, 0, g, NULL) == TK_ERR_ARG, "max_batch 0");
    CHECK(!g[0].ids && !g[0].text && !g[1].ids && !g[1].text, "a refused call leaves the results empty");
    q[1].n_prompt = 0;
    CHECK(tk_generate_batch(m, tok, NULL, 0, q, 2, &p, 2, g, NULL) == TK_ERR_ARG && strstr(tk_last_error(), "request 1"), "empty prompt: %s",
          tk_last_error());
    q[1] = (tk_gen_request){bad_ids, 2, 0};
    CHECK(tk_generate_batch(m, tok, NULL, 0, q, 2, &p, 2, g, NULL) == TK_ERR_ARG && strstr(tk_last_error(), "100000"), "bad id: %s",
          tk_last_error());
    q[1] = q[0];
    const char *stops[1] = {""};
    p.stop = stops;
    p.n_stop = 1;
    CHECK(tk_generate_batch(m, tok, NULL, 0, q, 2, &p, 2, g, NULL) == TK_ERR_ARG, "empty stop string");
    p.n_stop = 0;
    tk_adapter_use nul = {NULL, 1.0f};
    memset(g, 0x5a, sizeof g);
    CHECK(tk_generate_batch(m, tok, &nul, 1, q, 2, &p, 2, g, NULL) == TK_ERR_ARG, "adapter without a method");
    CHECK(!g[0].ids && !g[0].text && !g[1].ids, "a failed call leaves the results empty");
    CHECK_OK(tk_generate_batch(m, tok, NULL, 0, q, 0, &p, 2, NULL, NULL));
}


/* ---- the continuous batcher: rows with different adapters, params and lengths joining at different steps ---- */
typedef struct crow { tk_buf text; tk_ivec ids; tk_gen_stop stop; tk_status st; int done, pieces, quit_after; tk_token_logprobs *lps; int n_lps; } crow;
static void crow_logprobs(void *ud, const tk_token_logprobs *lp) {
    crow *c = ud;
    tk_token_logprobs *v = realloc(c->lps, (size_t)(c->n_lps + 1) * sizeof *v);
    if (!v) return;
    c->lps = v;
    c->lps[c->n_lps++] = *lp;
}

/* A row's log-probabilities against a fresh session's logits over its prompt and ids (a row's logits equal
 * one-sequence decode's): the log-softmax of the raw logits in double at each sampled id, and the top k ids in
 * descending order with theirs. */
static void check_row_logprobs(tk_model *m, const tk_adapter_use *ads, int n_ads, const int32_t *prompt, int64_t n, const crow *c, int k,
                               const char *what, int row) {
    const int32_t V = tk_model_get_config(m)->n_vocab;
    CHECK(c->n_lps == (int)c->ids.len, "%s row %d: %d log-probabilities for %zu ids", what, row, c->n_lps, c->ids.len);
    tk_session *s = NULL;
    float *lg = malloc((size_t)V * sizeof *lg);
    CHECK_OK(tk_session_new(m, 0, &s));
    if (!s || !lg) { tk_session_free(s); free(lg); return; }
    CHECK_OK(tk_session_set_adapters(s, ads, n_ads));
    tk_session_set_exact(s, !g_fast);
    CHECK_OK(tk_session_eval(s, prompt, n, lg));
    for (int t = 0; t < c->n_lps && t < (int)c->ids.len; t++) {
        const tk_token_logprobs *lp = &c->lps[t];
        double mx = -INFINITY, sum = 0;
        for (int32_t i = 0; i < V; i++) mx = lg[i] > mx ? lg[i] : mx;
        for (int32_t i = 0; i < V; i++) sum += exp((double)lg[i] - mx);
        double lse = mx + log(sum);
        CHECK(lp->id == c->ids.data[t], "%s row %d token %d: id %d vs %d", what, row, t, lp->id, c->ids.data[t]);
        CHECK_NEAR(lp->logprob, (double)lg[lp->id] - lse, 1e-5);
        CHECK(lp->n_top == k, "%s row %d: %d top ids (want %d)", what, row, lp->n_top, k);
        for (int j = 0; j < lp->n_top; j++) {
            CHECK_NEAR(lp->top_logprob[j], (double)lg[lp->top_id[j]] - lse, 1e-5);
            if (j == 0) CHECK(lg[lp->top_id[0]] == (float)mx, "%s row %d token %d: the top id is not the most likely", what, row, t);
            else CHECK(lg[lp->top_id[j]] <= lg[lp->top_id[j - 1]], "%s row %d token %d: top ids out of order", what, row, t);
        }
        if (t + 1 < c->n_lps) CHECK_OK(tk_session_eval(s, &lp->id, 1, lg));
    }
    tk_session_free(s);
    free(lg);
}
static bool crow_text(void *ud, const char *t, size_t n) {
    crow *c = ud;
    if (c->quit_after && ++c->pieces > c->quit_after) return false; /* a client that leaves */
    return tk_buf_append(&c->text, t, n) == TK_OK;
}
static void crow_done(void *ud, const tk_batch_done *d) {
    crow *c = ud;
    c->done++;
    c->st = d->status;
    c->stop = d->stop;
    for (int64_t i = 0; i < d->n_ids; i++) tk_ivec_push(&c->ids, d->ids[i]);
    tk_buf_append(&c->text, "", 0);
}

/* NP rows of make_prompts and one of 300 tokens over the adapter lists and none (two LoRAs and an attention prefix:
 * batched per row, the prefix in its own forward), greedy and sampled, max_tokens 6..33, one row joining per step into
 * a batcher of 4 rows (prefill budget 1 token: one prompt chunk per step while rows decode, so the long prompt takes
 * two steps); row 5's client leaves after 2 pieces. Every other row equals
 * tk_generate in a fresh session with its adapters and params. Even rows ask for log-probabilities (0..20 top ids):
 * those of a fresh session's raw logits (sampled rows too: before temperature). */
static void continuous(tk_model *m, const tk_adapter_use *lists, int n_lists, bool exact, const char *what) {
    prompts ps;
    const int32_t V = tk_model_get_config(m)->n_vocab;
    make_prompts(&ps, V);
    /* row NR-1: a prompt of 300 tokens, prefilled in two chunks (256 + 44) over two steps while others decode */
    enum { NR = NP + 1, LONG = 300 };
    int32_t long_ids[LONG];
    long_ids[0] = 1;
    for (int t = 1; t < LONG; t++) long_ids[t] = (int32_t)(3 + (t * 29 + 7) % (V - 3));
    tk_gen_request req[NR];
    for (int i = 0; i < NP; i++) req[i] = ps.req[i];
    req[NP] = (tk_gen_request){long_ids, LONG, 0};
    tk_batcher *b = NULL;
    CHECK_OK(tk_batcher_new(m, tk_model_tokenizer(m), 4, 1, exact, &b));
    g_fast = !exact;
    if (!b) return;
    crow rows[NR];
    tk_gen_params gp[NR];
    memset(rows, 0, sizeof rows);
    int next = 0, steps = 0, max_rows = 0;
    while (next < NR || tk_batcher_rows(b) > 0) {
        if (next < NR && tk_batcher_free_rows(b) > 0) {
            int i = next++;
            gp[i] = greedy(6 + 3 * i);
            if (i % 3 == 1) gp[i].sampler.temperature = 0.9f;
            rows[i].quit_after = i == 5 ? 2 : 0;
            int na = i % (n_lists + 1);
            tk_batch_row r = {.prompt = req[i].prompt, .n_prompt = req[i].n_prompt, .p = &gp[i], .ads = na ? &lists[na - 1] : NULL,
                              .n_ads = na ? 1 : 0, .on_text = crow_text, .on_done = crow_done, .ud = &rows[i],
                              .on_logprobs = i % 2 ? NULL : crow_logprobs, .top_logprobs = (i * 7) % 21}; /* even rows: logprobs */
            gp[i].sampler.seed = 77 + (uint64_t)i;
            CHECK_OK(tk_batcher_add(b, &r));
        }
        CHECK_OK(tk_batcher_step(b));
        if (tk_batcher_last_rows(b) > max_rows) max_rows = tk_batcher_last_rows(b);
        if (++steps > 10000) { CHECK(0, "%s: the batcher does not finish", what); break; }
    }
    CHECK(max_rows == 4, "%s: at most %d rows decoded together (want 4)", what, max_rows);
    for (int i = 0; i < NR; i++) {
        int na = i % (n_lists + 1);
        ref r;
        sequential(m, na ? &lists[na - 1] : NULL, na ? 1 : 0, req[i].prompt, req[i].n_prompt, &gp[i], gp[i].sampler.seed, &r);
        CHECK(rows[i].done == 1 && rows[i].st == TK_OK, "%s row %d: done %d times, status %d", what, i, rows[i].done, rows[i].st);
        if (i == 5) {
            CHECK(rows[i].stop == TK_GEN_STOP_CALLBACK && rows[i].ids.len < r.ids.len, "%s: the leaving row stopped (%d) after %zu ids",
                  what, rows[i].stop, rows[i].ids.len);
        } else {
            tk_gen_result g = {rows[i].ids.data, (int64_t)rows[i].ids.len, rows[i].text.data, rows[i].stop};
            CHECK(same(&r, &g), "%s row %d (adapters %d): '%s' stop %d; alone '%s' stop %d", what, i, na, rows[i].text.data, rows[i].stop,
                  r.text.data, r.stop);
        }
        if (i % 2 == 0) check_row_logprobs(m, na ? &lists[na - 1] : NULL, na ? 1 : 0, req[i].prompt, req[i].n_prompt, &rows[i], (i * 7) % 21, what, i);
        else CHECK(rows[i].n_lps == 0, "%s row %d: log-probabilities without on_logprobs", what, i);
        ref_free(&r);
        tk_ivec_free(&rows[i].ids);
        tk_buf_free(&rows[i].text);
        free(rows[i].lps);
    }
    /* bad rows are refused without a call of on_done */
    int32_t bad_id = tk_model_get_config(m)->n_vocab;
    tk_batch_row bad = {.prompt = &bad_id, .n_prompt = 1, .on_done = crow_done, .ud = &rows[0]};
    CHECK(tk_batcher_add(b, &bad) == TK_ERR_ARG, "%s: an id outside the vocabulary accepted", what);
    bad.prompt = NULL;
    CHECK(tk_batcher_add(b, &bad) == TK_ERR_ARG, "%s: an empty prompt accepted", what);
    bad = (tk_batch_row){.prompt = long_ids, .n_prompt = 2, .on_done = crow_done, .ud = &rows[0], .on_logprobs = crow_logprobs, .top_logprobs = 21};
    CHECK(tk_batcher_add(b, &bad) == TK_ERR_ARG, "%s: top_logprobs 21 accepted", what);
    tk_batcher_free(b);
    g_fast = false;
}

/* A LoRA (r 4, every linear) with random B (0.05 N(0, 1), rng seed bseed) so that it changes the answers. */
static tk_lora *random_lora(tk_model *m, uint64_t seed, uint64_t bseed, tk_param_set *ps) {
    tk_lora_config lc = tk_lora_default_config();
    lc.r = 4;
    lc.alpha = 8;
    lc.targets = 0x7f;
    lc.seed = seed;
    tk_lora *l = NULL;
    CHECK_OK(tk_lora_new(m, &lc, ps, &l));
    if (!l) return NULL;
    tk_rng rng;
    tk_rng_seed(&rng, bseed);
    for (int64_t i = 0; i < ps->n; i++)
        if (strstr(ps->p[i].name, "lora_B"))
            for (int64_t j = 0; j < ps->p[i].n; j++) ps->p[i].w[j] = 0.05f * tk_rng_normal(&rng);
    return l;
}

static void stories(void) {
    const char *path = tk_test_shared("models/stories260K/llama2c/stories260K.bin");
    if (tk_test_require(path, "models/stories260K")) return;
    tk_model *m = NULL;
    CHECK_OK(tk_model_load(path, NULL, &m));
    if (!m) return;
    row_logits(m, "stories260K");

    tk_gen_params p = greedy(40);
    check_against_sequential(m, NULL, 0, &p, "greedy");
    const char *stops[] = {"girl", "."};
    p.stop = stops;
    p.n_stop = 2;
    check_against_sequential(m, NULL, 0, &p, "greedy, stop strings");
    p = greedy(230); /* the 40-token prompt's cache grows past its first 256 slots mid-batch */
    check_against_sequential(m, NULL, 0, &p, "greedy, 230 tokens");
    check_groups(m, "groups of one prompt");

    /* LoRA on every linear with random B */
    p = greedy(24);
    tk_param_set ps = {0}, ps2 = {0};
    tk_lora *l = random_lora(m, 3, 9, &ps);
    if (l) {
        tk_adapter_use u = {tk_lora_peft(l), 1.0f};
        check_against_sequential(m, &u, 1, &p, "greedy, LoRA");
    }
    tk_lora *l2 = random_lora(m, 5, 11, &ps2); /* a second LoRA for the continuous batcher's rows */

    /* an attention prefix of 3 keys per layer */
    const tk_model_config *c = tk_model_get_config(m);
    pfx pf = {c->n_layers, 3, NULL, (int64_t)c->n_kv_heads * c->head_dim};
    pf.kv = malloc((size_t)(pf.L * 2 * pf.P * pf.kvd) * sizeof(float));
    if (pf.kv) {
        tk_rng rng;
        tk_rng_seed(&rng, 4);
        for (int64_t i = 0; i < pf.L * 2 * pf.P * pf.kvd; i++) pf.kv[i] = 0.5f * tk_rng_normal(&rng);
        tk_peft pe = {&k_pf, &pf};
        tk_adapter_use u = {&pe, 1.0f};
        check_against_sequential(m, &u, 1, &p, "greedy, attention prefix");
        if (l && l2) {
            const tk_adapter_use lists[3] = {{tk_lora_peft(l), 1.0f}, {tk_lora_peft(l2), 0.5f}, u};
            continuous(m, lists, 3, true, "continuous, mixed adapters");
        }
    }
    free(pf.kv);
    tk_lora_free(l);
    tk_params_free(&ps);
    tk_lora_free(l2);
    tk_params_free(&ps2);

    sampled(m);
    bad_args(m);
    tk_model_free(m);
    context(path);
}

static void tiny(void) {
    tk_model *m = tiny_llama((tiny_opts){.interleaved = 1, .bias = true, .seed = 12});
    if (!m) { CHECK(0, "tiny model"); return; }
    row_logits(m, "tiny Llama");
    tk_model_free(m);
}

static void smollm2(void) {
    const char *path = getenv("TAKUMI_MODEL") ? getenv("TAKUMI_MODEL") : "models/SmolLM2-135M-Instruct.Q4_1.gguf";
    if (access(path, R_OK) != 0) {
        if (getenv("CI") && !strcmp(getenv("CI"), "true")) CHECK(0, "%s missing in CI", path);
        else printf("SKIP: %s not found (SmolLM2 part)\n", path);
        return;
    }
    tk_model *m = NULL;
    CHECK_OK(tk_model_load(path, NULL, &m));
    if (!m) return;
    const tk_tokenizer *tok = tk_model_tokenizer(m);
    /* two chat prompts that end in <|im_end|> (EOS) early, two plain ones that run to max_tokens */
    const char *texts[4] = {"<|im_start|>user\nReply with one word: yes or no?<|im_end|>\n<|im_start|>assistant\n",
                            "def fibonacci(n):", "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", "1, 2, 3, 4,"};
    tk_ivec ids[4] = {{0}};
    tk_gen_request q[4];
    for (int i = 0; i < 4; i++) {
        CHECK_OK(tk_tokenize(tok, texts[i], strlen(texts[i]), TK_TOK_PARSE_SPECIAL, &ids[i]));
        q[i] = (tk_gen_request){ids[i].data, (int64_t)ids[i].len, (uint64_t)i};
    }
    tk_gen_params p = greedy(24);
    tk_gen_result g[4];
    CHECK_OK(tk_generate_batch(m, tok, NULL, 0, q, 4, &p, 3, g, NULL));
    CHECK(g[0].stop == TK_GEN_STOP_EOS && g[1].stop == TK_GEN_STOP_MAX_TOKENS && g[1].n_ids == 24,
          "SmolLM2: a chat answer ends at EOS (stop %d after %lld ids: '%s'), code runs on (stop %d)", g[0].stop, (long long)g[0].n_ids,
          g[0].text ? g[0].text : "", g[1].stop);
    for (int i = 0; i < 4; i++) {
        ref r;
        sequential(m, NULL, 0, q[i].prompt, q[i].n_prompt, &p, q[i].seed, &r);
        CHECK(same(&r, &g[i]), "SmolLM2 request %d: batch '%s', sequential '%s'", i, g[i].text ? g[i].text : "", r.text.data);
        ref_free(&r);
        tk_gen_result_free(&g[i]);
        tk_ivec_free(&ids[i]);
    }
    continuous(m, NULL, 0, true, "SmolLM2 continuous, f32 activations");
    continuous(m, NULL, 0, false, "SmolLM2 continuous, int8 activations (generate --fast)");
    tk_model_free(m);
}

int main(void) {
    (void)tiny_batch_init;
    rowwise_matmul();
    tiny();
    stories();
    smollm2();
    return tk_test_done("test_generate_batch");
}
