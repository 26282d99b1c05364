/* Adapters per request (takumi/peft.h): adapters are an argument of a forward workspace or
 * session, not a property of the model.
 * - Several threads, each with its own LoRA adapter on ONE loaded SmolLM2-135M (Q4_1 base),
 *   give logits bit-identical to single-adapter runs done one after another; a thread with
 *   no adapter gives the bare base's logits.
 * - Several adapters at once, each with a scale, equal the base with merged weights
 *   W + s1 c1 B1 A1 + s2 c2 B2 A2 (tiny f32 model), and the list order does not matter for LoRA.
 * - An extra adapter costs only its own parameters: the model's memory is unchanged and an
 *   adapter used for inference keeps no buffers besides its module table.
 * - A session that switches adapters drops its cache (no keys/values of the other adapter
 *   are reused); bad adapter lists are refused with a message. */
#include "test.h"
#include "tiny_llama.h"
#include "peft/lora.h"
#include <pthread.h>

enum { NT = 4, TOK = 24 };

typedef struct worker {
    tk_model *m;
    const tk_peft *ad;     /* NULL: the bare base */
    const int32_t *ids;
    float *logits;         /* [TOK x V] */
    int reps;
    tk_status st;
    int mismatches;
} worker;

static tk_status run_once(tk_model *m, const tk_peft *ad, const int32_t *ids, float *out) {
    tk_forward *f = NULL;
    tk_status st = tk_forward_new(m, 1, TOK, 0, &f);
    if (st) return st;
    tk_adapter_use u = {ad, 1.0f};
    if (ad) st = tk_forward_set_adapters(f, &u, 1);
    tk_batch b = {.n_rows = 1, .n_cols = TOK, .ids = ids};
    if (!st) st = tk_forward_run(f, &b, NULL, TOK, out);
    tk_forward_free(f);
    return st;
}

/* Each worker runs its forward `reps` times with its own workspace and compares every run to the first. */
static void *work(void *arg) {
    worker *w = arg;
    tk_set_threads(1); /* OpenMP's thread count is per calling thread: the same as the references' */
    int64_t V = tk_model_get_config(w->m)->n_vocab;
    float *again = malloc((size_t)TOK * (size_t)V * sizeof(float));
    if (!again) { w->st = TK_ERR_NOMEM; return NULL; }
    w->st = run_once(w->m, w->ad, w->ids, w->logits);
    for (int r = 1; r < w->reps && !w->st; r++) {
        w->st = run_once(w->m, w->ad, w->ids, again);
        if (!w->st && memcmp(again, w->logits, (size_t)TOK * (size_t)V * sizeof(float))) w->mismatches++;
    }
    free(again);
    return NULL;
}

static void randomize_b(tk_param_set *ps, uint64_t seed, float sd) {
    tk_rng rng;
    tk_rng_seed(&rng, seed);
    for (int64_t i = 0; i < ps->n; i++)
        if (strstr(ps->p[i].name, "lora_B"))
            for (int64_t j = 0; j < ps->p[i].n; j++) ps->p[i].w[j] = sd * tk_rng_normal(&rng);
}

static void test_concurrent(void) {
    const char *path = getenv("TAKUMI_MODEL") ? getenv("TAKUMI_MODEL") : "models/SmolLM2-135M-Instruct.Q4_1.gguf";
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        if (getenv("CI") && !strcmp(getenv("CI"), "true")) { CHECK(0, "%s missing in CI", path); return; }
        printf("SKIP: %s not found (run scripts/fetch-model.sh)\n", path);
        return;
    }
    fclose(fp);
    tk_model_params mp = tk_model_default_params();
    mp.tokenizer = TK_TOKENIZER_NONE;
    tk_model *m = NULL;
    CHECK_OK(tk_model_load(path, &mp, &m));
    if (!m) return;
    size_t owned0 = tk_model_owned_bytes(m);
    int64_t V = tk_model_get_config(m)->n_vocab;
    /* three adapters of different ranks and targets on the one base */
    tk_param_set ps[NT - 1] = {{0}};
    tk_lora *l[NT - 1] = {0};
    size_t state0[NT - 1] = {0};
    const int ranks[NT - 1] = {4, 8, 2};
    const uint32_t targets[NT - 1] = {0, (1u << TK_LIN_Q) | (1u << TK_LIN_V), (1u << TK_LIN_DOWN) | (1u << TK_LIN_UP)};
    for (int i = 0; i < NT - 1; i++) {
        tk_lora_config c = tk_lora_default_config();
        c.r = ranks[i];
        c.alpha = 2.0f * ranks[i];
        c.targets = targets[i];
        c.seed = 100 + (uint64_t)i;
        CHECK_OK(tk_lora_new(m, &c, &ps[i], &l[i]));
        if (!l[i]) goto out;
        randomize_b(&ps[i], 7 + (uint64_t)i, 0.02f);
        state0[i] = tk_lora_state_bytes(l[i]);
        /* an extra adapter costs its parameters only */
        int64_t nparam = 0;
        for (int64_t k = 0; k < ps[i].n; k++) nparam += ps[i].p[k].n;
        CHECK(nparam == ps[i].total, "adapter %d: %lld parameters", i, (long long)nparam);
    }
    CHECK(tk_model_owned_bytes(m) == owned0, "attaching adapters leaves the model's memory as it was");
    int32_t ids[NT][TOK];
    for (int t = 0; t < NT; t++)
        for (int j = 0; j < TOK; j++) ids[t][j] = (int32_t)((j * 97 + t * 31 + 11) % 4000);
    /* the single-adapter references, one after another */
    float *ref[NT], *got[NT];
    for (int t = 0; t < NT; t++) {
        ref[t] = malloc((size_t)TOK * (size_t)V * sizeof(float));
        got[t] = malloc((size_t)TOK * (size_t)V * sizeof(float));
        CHECK_OK(run_once(m, t ? tk_lora_peft(l[t - 1]) : NULL, ids[t], ref[t]));
    }
    /* the adapters move the logits, each differently */
    for (int t = 1; t < NT; t++) {
        double d = 0;
        for (int64_t i = 0; i < TOK * V; i++) d = fmax(d, fabs(ref[t][i] - ref[0][i]));
        CHECK(d > 1e-3, "adapter %d moves the logits (%.3e)", t - 1, d);
    }
    /* all at once, in threads, on the same model */
    pthread_t th[NT];
    worker w[NT];
    for (int t = 0; t < NT; t++) {
        w[t] = (worker){.m = m, .ad = t ? tk_lora_peft(l[t - 1]) : NULL, .ids = ids[t], .logits = got[t], .reps = 3};
        CHECK(pthread_create(&th[t], NULL, work, &w[t]) == 0, "thread %d", t);
    }
    for (int t = 0; t < NT; t++) pthread_join(th[t], NULL);
    for (int t = 0; t < NT; t++) {
        CHECK_OK(w[t].st);
        CHECK(w[t].mismatches == 0, "thread %d: %d runs differ from its first", t, w[t].mismatches);
        CHECK(!memcmp(got[t], ref[t], (size_t)TOK * (size_t)V * sizeof(float)),
              "thread %d (%s): concurrent logits equal the single-adapter run", t, t ? "adapter" : "base");
    }
    /* inference kept no buffers in the adapters: they hold what they held when created (their module tables) */
    for (int i = 0; i < NT - 1; i++)
        CHECK(tk_lora_state_bytes(l[i]) == state0[i], "adapter %d grew from %zu to %zu bytes besides its parameters", i, state0[i],
              tk_lora_state_bytes(l[i]));
    CHECK(tk_model_owned_bytes(m) == owned0, "serving adapters leaves the model's memory as it was");
    printf("SmolLM2: %d threads (base + 3 LoRA adapters) on one model: logits equal to single runs\n", NT);
    for (int t = 0; t < NT; t++) { free(ref[t]); free(got[t]); }
out:
    for (int i = 0; i < NT - 1; i++) { tk_lora_free(l[i]); tk_params_free(&ps[i]); }
    tk_model_free(m);
}

/* W += s * c * B A for every module of l, into the f32 weights of mm. */
static void merge_into(tk_model *mm, tk_lora *l, float s) {
    for (int layer = 0; layer < mm->cfg.n_layers; layer++)
        for (int w = 0; w < TK_LIN_COUNT; w++) {
            tk_param *A, *B;
            if (!tk_lora_module(l, layer, (tk_linear_id)w, &A, &B)) continue;
            float *W = (float *)tk_model_linear(mm, layer, (tk_linear_id)w)->data;
            int64_t K = A->ne[0], N = B->ne[1], r = A->ne[1];
            for (int64_t n = 0; n < N; n++)
                for (int64_t k = 0; k < K; k++) {
                    double acc = 0;
                    for (int64_t j = 0; j < r; j++) acc += (double)B->w[n * r + j] * A->w[j * K + k];
                    W[n * K + k] += (float)(s * tk_lora_scale(l) * acc);
                }
        }
}

static void test_several_with_scales(void) {
    tiny_opts o = {.interleaved = 0, .bias = true, .layers = 3, .seed = 5};
    tk_model *m = tiny_llama(o), *mm = tiny_llama(o);
    if (!m || !mm) { CHECK(0, "tiny models"); tk_model_free(m); tk_model_free(mm); return; }
    tk_param_set p1 = {0}, p2 = {0};
    tk_lora *l1 = NULL, *l2 = NULL;
    tk_lora_config c1 = tk_lora_default_config(), c2 = tk_lora_default_config();
    c1.r = 3; c1.alpha = 6; c1.seed = 1;
    c2.r = 5; c2.alpha = 5; c2.seed = 2; c2.rslora = true; c2.targets = (1u << TK_LIN_O) | (1u << TK_LIN_GATE) | (1u << TK_LIN_K);
    CHECK_OK(tk_lora_new(m, &c1, &p1, &l1));
    CHECK_OK(tk_lora_new(m, &c2, &p2, &l2));
    if (!l1 || !l2) goto out;
    randomize_b(&p1, 3, 0.3f);
    randomize_b(&p2, 4, 0.3f);
    const float s1 = 0.7f, s2 = -1.6f;
    merge_into(mm, l1, s1);
    merge_into(mm, l2, s2);
    tiny_batch tb;
    tiny_batch_init(&tb, 9);
    float a[16 * 40], b[16 * 40], want[16 * 40];
    tk_forward *f = NULL, *g = NULL;
    CHECK_OK(tk_forward_new(m, 2, 8, 0, &f));
    CHECK_OK(tk_forward_new(mm, 2, 8, 0, &g));
    if (!f || !g) { tk_forward_free(f); tk_forward_free(g); goto out; }
    tk_adapter_use both[2] = {{tk_lora_peft(l1), s1}, {tk_lora_peft(l2), s2}}, rev[2] = {both[1], both[0]};
    CHECK_OK(tk_forward_set_adapters(f, both, 2));
    CHECK_OK(tk_forward_run(f, &tb.b, NULL, 16, a));
    CHECK_OK(tk_forward_set_adapters(f, rev, 2));
    CHECK_OK(tk_forward_run(f, &tb.b, NULL, 16, b));
    CHECK_OK(tk_forward_run(g, &tb.b, NULL, 16, want));
    double d = 0, dr = 0, mx = 0, moved = 0;
    float base[16 * 40];
    CHECK_OK(tk_forward_set_adapters(f, NULL, 0));
    CHECK_OK(tk_forward_run(f, &tb.b, NULL, 16, base));
    for (int i = 0; i < 16 * 40; i++) {
        d = fmax(d, fabs(a[i] - want[i]));
        dr = fmax(dr, fabs(a[i] - b[i]));
        mx = fmax(mx, fabs(want[i]));
        moved = fmax(moved, fabs(base[i] - want[i]));
    }
    printf("two adapters with scales %.1f, %.1f vs merged weights: max diff %.2e (max |logit| %.2f); order swap %.2e\n",
           (double)s1, (double)s2, d, mx, dr);
    CHECK(moved > 1e-2, "the adapters move the logits (%.3e)", moved);
    CHECK(d <= 1e-5 * mx + 1e-6, "several adapters with scales equal the merged weights (%.3e)", d);
    CHECK(dr <= 1e-5 * mx + 1e-6, "LoRA adapters commute (%.3e)", dr);
    /* bad lists are refused */
    tk_adapter_use bad[TK_MAX_ADAPTERS + 1];
    for (int i = 0; i <= TK_MAX_ADAPTERS; i++) bad[i] = both[0];
    CHECK(tk_forward_set_adapters(f, bad, TK_MAX_ADAPTERS + 1) == TK_ERR_ARG, "too many adapters refused");
    tk_adapter_use nul = {NULL, 1.0f}, nan_scale = {tk_lora_peft(l1), NAN};
    CHECK(tk_forward_set_adapters(f, &nul, 1) == TK_ERR_ARG, "an entry without adapter refused");
    CHECK(tk_forward_set_adapters(f, &nan_scale, 1) == TK_ERR_ARG, "a NaN scale refused");
    CHECK(strstr(tk_last_error(), "scale") != NULL, "message names the scale: %s", tk_last_error());
    /* a session switching adapters: the cache is dropped, so logits equal a fresh session's */
    tk_session *s = NULL, *sb = NULL;
    CHECK_OK(tk_session_new(m, 16, &s));
    CHECK_OK(tk_session_new(m, 16, &sb));
    if (s && sb) {
        tk_session_set_exact(s, true);
        tk_session_set_exact(sb, true);
        float l_a[40], l_b[40];
        tk_adapter_use one = {tk_lora_peft(l1), 1.0f};
        CHECK_OK(tk_session_set_adapters(s, &one, 1));
        CHECK_OK(tk_session_eval(s, tb.ids, 6, l_a));
        CHECK(tk_session_n_past(s) == 6, "6 cached");
        CHECK_OK(tk_session_set_adapters(s, &one, 1));
        CHECK(tk_session_n_past(s) == 6, "same list: the cache stays");
        CHECK_OK(tk_session_set_adapters(s, NULL, 0));
        CHECK(tk_session_n_past(s) == 0, "another list: the cache is dropped");
        CHECK_OK(tk_session_eval_reuse(s, tb.ids, 6, l_a, NULL));
        CHECK_OK(tk_session_eval(sb, tb.ids, 6, l_b));
        CHECK(!memcmp(l_a, l_b, sizeof l_a), "after switching to the base: a fresh base session's logits");
    }
    tk_session_free(s);
    tk_session_free(sb);
    tk_forward_free(f);
    tk_forward_free(g);
out:
    tk_lora_free(l1); tk_lora_free(l2);
    tk_params_free(&p1); tk_params_free(&p2);
    tk_model_free(m); tk_model_free(mm);
}

int main(void) {
    tk_set_threads(1); /* bit-identical comparisons across threads of the caller */
    test_several_with_scales();
    test_concurrent();
    return tk_test_done("test_adapters");
}
