/* takumi export (src/model/export.c): a model with a LoRA adapter merged into its weights
 * gives the logits of the base model with the adapter applied unmerged (through the hook).
 *
 * Tolerances: f32 outputs must agree within max(1e-4, 1e-5 x max|logit|) (the same products
 * summed in another order: merged W' x vs W x + s (x A^T) B^T; measured: 2e-5 on stories260K,
 * 7e-5 on SmolLM2 whose logits reach 30). f16 / q8_0 outputs round every weight,
 * so the bound is derived, not guessed: exporting the *base* model to the same dtype moves
 * the logits by some e_base; merging first and rounding W' instead of W must not do much
 * worse, so merged-vs-unmerged must stay within 3 e_base (+ 1e-5 x max|logit|).
 *
 * stories260K: GGUF f32 source -> GGUF f32 / f16 / q8_0 and HF f32 (q/k rows un-permuted;
 * the folder is loaded back through takumi's HF loader); HF source -> HF (config.json and
 * dtype copied); a plain conversion without adapter is exact. SmolLM2 (Q4_1 GGUF):
 * HF f32 and GGUF q8_0. */
#include "test.h"
#include "model/export.h"
#include "peft/adapter_io.h"
#include "core/core.h"
#include <cJSON.h>

static char g_tmp[256];

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k = 0;
    char *b = buf[k++ & 3];
    snprintf(b, 512, "%s/%s", g_tmp, name);
    return b;
}

static double max_abs(const float *a, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(a[i]));
    return m;
}

static double max_diff(const float *a, const float *b, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

static void randomize_b(tk_param_set *ps, uint64_t seed, float s) {
    tk_rng rng;
    tk_rng_seed(&rng, seed);
    for (int64_t i = 0; i < ps->n; i++)
        if (strstr(ps->p[i].name, "lora_B"))
            for (int64_t j = 0; j < ps->p[i].n; j++) ps->p[i].w[j] = s * tk_rng_normal(&rng);
}

typedef struct probe { const int32_t *ids; int n; } probe;

/* Logits of all tokens of the probe under m with adapter ad (NULL = none). */
static bool logits_of(tk_model *m, const tk_peft *ad, probe pr, float *out) {
    tk_batch b = {.n_rows = 1, .n_cols = pr.n, .ids = pr.ids};
    tk_forward *f = NULL;
    CHECK_OK(tk_forward_new(m, 1, pr.n, 0, &f));
    if (!f) return false;
    if (ad) { tk_adapter_use u = {ad, 1.0f}; CHECK_OK(tk_forward_set_adapters(f, &u, 1)); }
    tk_status st = tk_forward_run(f, &b, NULL, pr.n, out);
    CHECK_OK(st);
    tk_forward_free(f);
    return st == TK_OK;
}

/* Loads path (no tokenizer) and returns its logits on the probe. */
static bool logits_of_file(const char *path, probe pr, float *out) {
    tk_model_params mp = tk_model_default_params();
    mp.tokenizer = TK_TOKENIZER_NONE;
    tk_model *m = NULL;
    CHECK_OK(tk_model_load(path, &mp, &m));
    if (!m) return false;
    bool ok = logits_of(m, NULL, pr, out);
    tk_model_free(m);
    return ok;
}

static void export_ok(tk_model *m, tk_lora *l, const char *out, tk_dtype dt) {
    tk_export_params p = {.dtype = dt};
    CHECK_OK(tk_lora_export_merged(m, l, out, &p));
}

static const char *dn(tk_dtype dt) { return tk_dtype_name(dt); }

/* Exports base and merged model to out_base / out_merged in dtype dt and checks the bound. */
static void check_rounded(tk_model *m, tk_lora *l, probe pr, int64_t V, const float *want, const float *base,
                          const char *out_base, const char *out_merged, tk_dtype dt, const char *what) {
    int64_t n = pr.n * V;
    float *lb = malloc((size_t)n * sizeof(float)), *lm = malloc((size_t)n * sizeof(float));
    if (!lb || !lm) { CHECK(0, "oom"); free(lb); free(lm); return; }
    export_ok(m, NULL, out_base, dt);
    export_ok(m, l, out_merged, dt);
    if (logits_of_file(out_base, pr, lb) && logits_of_file(out_merged, pr, lm)) {
        double e_base = max_diff(lb, base, n), e = max_diff(lm, want, n), tol = 3 * e_base + 1e-5 * max_abs(want, n);
        printf("%s %s: base export error %.3e, merged vs unmerged %.3e (bound %.3e)\n", what, dn(dt), e_base, e, tol);
        CHECK(e_base > 0, "%s %s: rounding the base changes something", what, dn(dt));
        CHECK(e <= tol, "%s %s merged vs unmerged: %.3e > %.3e", what, dn(dt), e, tol);
    }
    free(lb);
    free(lm);
}

static void test_stories(void) {
    const char *g = tk_test_shared("models/stories260K/gguf/stories260K-f32.gguf");
    const char *hf = tk_test_shared("models/stories260K/hf");
    if (tk_test_require(g && hf ? g : NULL, "models/stories260K (gguf f32 + hf)")) return;
    char gp[4096], hp[4096];
    snprintf(gp, sizeof gp, "%s", g);
    snprintf(hp, sizeof hp, "%s", hf);
    tk_model_params mp = tk_model_default_params();
    mp.tokenizer = TK_TOKENIZER_NONE;
    tk_model *m = NULL, *mh = NULL;
    CHECK_OK(tk_model_load(gp, &mp, &m));
    CHECK_OK(tk_model_load(hp, &mp, &mh));
    if (!m || !mh) { tk_model_free(m); tk_model_free(mh); return; }
    static const int32_t ids[16] = {1, 403, 407, 261, 378, 261, 504, 282, 301, 289, 419, 270, 333, 262, 291, 406};
    probe pr = {ids, 16};
    int64_t V = tk_model_get_config(m)->n_vocab, n = 16 * V;
    float *base = malloc((size_t)n * 4), *want = malloc((size_t)n * 4), *got = malloc((size_t)n * 4);
    tk_param_set ps = {0};
    tk_lora_config c = tk_lora_default_config();
    c.r = 4;
    c.alpha = 8;
    c.seed = 7;
    tk_lora *l = NULL;
    CHECK_OK(tk_lora_new(m, &c, &ps, &l));
    if (!l || !base || !want || !got) goto done;
    randomize_b(&ps, 3, 0.3f);
    logits_of(m, NULL, pr, base);
    logits_of(m, tk_lora_peft(l), pr, want);
    double mx = max_abs(want, n), tol = fmax(1e-4, 1e-5 * mx);
    CHECK(max_diff(base, want, n) > 0.1, "the adapter moves the logits");

    /* a plain f32 -> f32 conversion copies every tensor: exact */
    export_ok(m, NULL, tmp_path("plain.gguf"), TK_F32);
    if (logits_of_file(tmp_path("plain.gguf"), pr, got)) CHECK(max_diff(got, base, n) == 0, "plain f32 GGUF copy is exact");

    export_ok(m, l, tmp_path("merged.gguf"), TK_F32);
    if (logits_of_file(tmp_path("merged.gguf"), pr, got)) {
        double d = max_diff(got, want, n);
        printf("stories260K GGUF f32 merged vs unmerged: %.3e (tol %.3e)\n", d, tol);
        CHECK(d <= tol, "GGUF f32 merged: %.3e > %.3e", d, tol);
    }
    /* the merged GGUF keeps the source's metadata and its tensor order */
    tk_gguf *gs = NULL, *go = NULL;
    CHECK_OK(tk_gguf_open(gp, &gs));
    CHECK_OK(tk_gguf_open(tmp_path("merged.gguf"), &go));
    if (gs && go) {
        CHECK(tk_gguf_n_kv(go) == tk_gguf_n_kv(gs) + (tk_gguf_find_key(gs, "general.file_type") < 0), "metadata copied");
        CHECK(tk_gguf_n_tensors(go) == tk_gguf_n_tensors(gs), "same tensors");
        for (int64_t i = 0; i < tk_gguf_n_tensors(gs) && i < tk_gguf_n_tensors(go); i++)
            CHECK(!strcmp(tk_gguf_tensor(gs, i)->name, tk_gguf_tensor(go, i)->name), "tensor %lld order", (long long)i);
        int64_t ft = -1;
        CHECK(tk_gguf_get_i64(go, "general.file_type", &ft) && ft == 0, "file_type ALL_F32");
    }
    tk_gguf_close(gs);
    tk_gguf_close(go);

    /* HF folder from the GGUF: q/k rows back in HF order, config.json written */
    export_ok(m, l, tmp_path("merged_hf"), TK_F32);
    if (logits_of_file(tmp_path("merged_hf"), pr, got)) {
        double d = max_diff(got, want, n);
        printf("stories260K HF f32 (from GGUF) merged vs unmerged: %.3e (tol %.3e)\n", d, tol);
        CHECK(d <= tol, "HF f32 merged: %.3e > %.3e", d, tol);
    }
    check_rounded(m, l, pr, V, want, base, tmp_path("b16.gguf"), tmp_path("m16.gguf"), TK_F16, "stories260K GGUF");
    check_rounded(m, l, pr, V, want, base, tmp_path("b8.gguf"), tmp_path("m8.gguf"), TK_Q8_0, "stories260K GGUF");
    /* q8_0: ffn_down rows (172) are not whole 32-blocks -> f16, as llama.cpp does */
    if (!tk_gguf_open(tmp_path("m8.gguf"), &go)) {
        const tk_tensor_ref *t = tk_gguf_find_tensor(go, "blk.0.ffn_down.weight"), *q = tk_gguf_find_tensor(go, "blk.0.attn_q.weight"),
                            *nrm = tk_gguf_find_tensor(go, "blk.0.attn_norm.weight");
        CHECK(t && t->dtype == TK_F16, "ffn_down falls back to f16");
        CHECK(q && q->dtype == TK_Q8_0, "attn_q is q8_0");
        CHECK(nrm && nrm->dtype == TK_F32, "norms stay f32");
        tk_gguf_close(go);
    }
    check_rounded(m, l, pr, V, want, base, tmp_path("b16_hf"), tmp_path("m16_hf"), TK_BF16, "stories260K HF");

    /* HF source: the same adapter (through a PEFT file) on the HF folder, merged into an HF folder */
    CHECK_OK(tk_adapter_save_peft(l, m, tmp_path("peft"), NULL));
    tk_adapter_handle *ah = NULL;
    CHECK_OK(tk_adapter_apply(mh, tmp_path("peft"), &ah));
    if (ah) {
        export_ok(mh, tk_adapter_handle_lora(ah), tmp_path("hf_from_hf"), TK_F32);
        if (logits_of_file(tmp_path("hf_from_hf"), pr, got)) {
            double d = max_diff(got, want, n);
            printf("stories260K HF f32 (from HF) merged vs unmerged on the GGUF: %.3e (tol %.3e)\n", d, tol);
            CHECK(d <= tol, "HF from HF merged: %.3e > %.3e", d, tol);
        }
        /* the source's config.json, with the new dtype */
        char cfgp[600];
        snprintf(cfgp, sizeof cfgp, "%s/config.json", tmp_path("hf_from_hf"));
        char *cj = NULL;
        size_t len = 0;
        CHECK_OK(tk_read_file(cfgp, &cj, &len));
        cJSON *j = cj ? cJSON_Parse(cj) : NULL;
        const cJSON *v = j ? cJSON_GetObjectItem(j, "torch_dtype") : NULL;
        CHECK(cJSON_IsString(v) && !strcmp(v->valuestring, "float32"), "torch_dtype float32");
        v = j ? cJSON_GetObjectItem(j, "hidden_size") : NULL;
        CHECK(cJSON_IsNumber(v) && v->valueint == 64, "config copied (hidden_size 64)");
        cJSON_Delete(j);
        free(cj);
        /* a GGUF needs a GGUF source (tokenizer metadata) */
        tk_export_params p = {.dtype = TK_F32};
        tk_status st = tk_lora_export_merged(mh, tk_adapter_handle_lora(ah), tmp_path("nope.gguf"), &p);
        CHECK(st == TK_ERR_UNSUPPORTED && strstr(tk_last_error(), "GGUF source"), "GGUF from HF: %s", tk_last_error());
        p.dtype = TK_Q8_0;
        st = tk_export_model(mh, tmp_path("q8_hf"), &p);
        CHECK(st == TK_ERR_ARG && strstr(tk_last_error(), "q8_0"), "q8_0 HF folder refused: %s", tk_last_error());
        tk_adapter_detach(mh, ah);
    }
done:
    free(base); free(want); free(got);
    tk_lora_free(l);
    tk_params_free(&ps);
    tk_model_free(m);
    tk_model_free(mh);
}

/* SmolLM2 Q4_1: merged into an HF f32 folder (GQA q/k rows un-permuted on a real model)
 * and into a q8_0 GGUF. */
static void test_smollm2(void) {
    const char *path = "models/SmolLM2-135M-Instruct.Q4_1.gguf";
    if (tk_test_require(access(path, F_OK) == 0 ? path : NULL, path)) return;
    tk_model_params mp = tk_model_default_params();
    mp.tokenizer = TK_TOKENIZER_NONE;
    tk_model *m = NULL;
    CHECK_OK(tk_model_load(path, &mp, &m));
    if (!m) return;
    static const int32_t ids[6] = {1, 504, 3458, 314, 253, 1345};
    probe pr = {ids, 6};
    int64_t V = tk_model_get_config(m)->n_vocab, n = 6 * V;
    float *base = malloc((size_t)n * 4), *want = malloc((size_t)n * 4), *got = malloc((size_t)n * 4);
    tk_param_set ps = {0};
    tk_lora_config c = tk_lora_default_config();
    c.seed = 2;
    tk_lora *l = NULL;
    CHECK_OK(tk_lora_new(m, &c, &ps, &l));
    if (l && base && want && got) {
        randomize_b(&ps, 9, 0.05f);
        logits_of(m, NULL, pr, base);
        logits_of(m, tk_lora_peft(l), pr, want);
        double mx = max_abs(want, n), tol = fmax(1e-4, 1e-5 * mx);
        CHECK(max_diff(base, want, n) > 0.1, "the adapter moves the logits (%.3f)", max_diff(base, want, n));
        export_ok(m, l, tmp_path("sm_hf"), TK_F32);
        if (logits_of_file(tmp_path("sm_hf"), pr, got)) {
            double d = max_diff(got, want, n);
            printf("SmolLM2 HF f32 merged vs unmerged: %.3e (tol %.3e, max |logit| %.1f)\n", d, tol, mx);
            CHECK(d <= tol, "SmolLM2 HF f32 merged: %.3e > %.3e", d, tol);
        }
#if !defined(__SANITIZE_ADDRESS__)
        check_rounded(m, l, pr, V, want, base, tmp_path("sm_b8.gguf"), tmp_path("sm_m8.gguf"), TK_Q8_0, "SmolLM2 GGUF");
#endif
    }
    free(base); free(want); free(got);
    tk_lora_free(l);
    tk_params_free(&ps);
    tk_model_free(m);
}

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "/tmp/tk_export_XXXXXX");
    if (!mkdtemp(g_tmp)) { fprintf(stderr, "mkdtemp failed\n"); return 1; }
    test_stories();
    test_smollm2();
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    if (system(cmd) != 0) fprintf(stderr, "note: could not remove %s\n", g_tmp);
    return tk_test_done("test_export");
}
