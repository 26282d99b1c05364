/* Adapter files (src/peft/adapter_io.c): a LoRA set written as a PEFT folder and as a
 * llama.cpp GGUF adapter, read back and attached, reproduces the adapted logits — on the
 * same model and on the same model in the other q/k row order (Llama GGUF permuted rows vs
 * HF rows), which checks the lora_B row conversion both ways. The files are also checked
 * field by field against the layouts PEFT and llama.cpp read (names, torch shapes / ggml ne,
 * q/k rows in HF order in PEFT and permuted in a "llama" GGUF, adapter_config.json keys,
 * adapter.lora.alpha = scale x r for rsLoRA), and broken or foreign files fail with a
 * message. Real models: stories260K (adapter made on the GGUF, applied to the HF folder) and
 * SmolLM2 (round trip through both formats). Interop with PEFT and llama.cpp themselves:
 * tools/interop_check.py (result in tests/fixtures/interop/result.txt). */
#include "test.h"
#include "tiny_llama.h"
#include "peft/adapter_io.h"
#include "model/hfconfig.h"
#include <cJSON.h>
#include <sys/stat.h>

static char g_tmp[256];

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k = 0;
    char *b = buf[k++ & 3];
    snprintf(b, 512, "%s/%s", g_tmp, name);
    return b;
}

static void forward_logits(tk_model *m, const tk_peft *ad, tiny_batch *tb, float *logits) {
    tk_forward *f = NULL;
    CHECK_OK(tk_forward_new(m, 2, 8, 0, &f));
    if (f && ad) { tk_adapter_use u = {ad, 1.0f}; CHECK_OK(tk_forward_set_adapters(f, &u, 1)); }
    if (f) CHECK_OK(tk_forward_run(f, &tb->b, NULL, 16, logits));
    tk_forward_free(f);
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

/* Random nonzero B (A is already random) so that every module matters. */
static void randomize_b(tk_param_set *ps, uint64_t seed) {
    tk_rng rng;
    tk_rng_seed(&rng, seed);
    for (int64_t i = 0; i < ps->n; i++)
        if (strstr(ps->p[i].name, "lora_B"))
            for (int64_t j = 0; j < ps->p[i].n; j++) ps->p[i].w[j] = 0.3f * tk_rng_normal(&rng);
}

/* The tiny model in HF row order: the same weights as a permuted (interleaved) one, q/k rows
 * (and biases) converted with tk_permute_qk_rows_to_hf; RoPE on halves. */
static tk_model *tiny_hf_twin(tiny_opts o) {
    tiny_opts oi = o, oh = o;
    oi.interleaved = 1;
    oh.interleaved = 0;
    tk_model *mi = tiny_llama(oi), *mh = tiny_llama(oh);
    if (!mi || !mh) { tk_model_free(mi); tk_model_free(mh); return NULL; }
    const tk_model_config *c = &mi->cfg;
    for (int l = 0; l < c->n_layers; l++) {
        tk_layer_weights *s = &mi->w.layers[l], *d = &mh->w.layers[l];
        tk_permute_qk_rows_to_hf((void *)d->wq.data, s->wq.data, c->n_heads, c->head_dim, (size_t)c->dim * 4);
        tk_permute_qk_rows_to_hf((void *)d->wk.data, s->wk.data, c->n_kv_heads, c->head_dim, (size_t)c->dim * 4);
        if (o.bias) {
            tk_permute_qk_rows_to_hf((void *)d->bq.data, s->bq.data, c->n_heads, c->head_dim, 4);
            tk_permute_qk_rows_to_hf((void *)d->bk.data, s->bk.data, c->n_kv_heads, c->head_dim, 4);
        }
    }
    tk_model_free(mi);
    return mh;
}

/* Attaches the adapter file at path to m and returns m's logits on tb (hook removed after). */
static bool attached_logits(tk_model *m, const char *path, tiny_batch *tb, float *logits) {
    tk_adapter *a = NULL;
    CHECK_OK(tk_adapter_load(path, &a));
    if (!a) return false;
    tk_param_set ps = {0};
    tk_lora *l = NULL;
    CHECK_OK(tk_adapter_attach(a, m, &ps, &l));
    tk_adapter_free(a);
    if (!l) { tk_params_free(&ps); return false; }
    forward_logits(m, tk_lora_peft(l), tb, logits);
    tk_lora_free(l);
    tk_params_free(&ps);
    return true;
}

static cJSON *read_json(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return cJSON_Parse(buf);
}

/* Writes a LoRA made on the `interleaved` tiny model, then attaches each file to the tiny
 * model in both row orders; all four logit sets must equal the original adapted logits. */
static void test_roundtrip(int interleaved, bool rslora, uint32_t targets, int first_layer) {
    tiny_opts o = {.interleaved = 1, .bias = true, .seed = 11};
    tk_model *mp = tiny_llama(o), *mh = tiny_hf_twin(o);
    if (!mp || !mh) { CHECK(0, "tiny models"); tk_model_free(mp); tk_model_free(mh); return; }
    tk_model *src = interleaved ? mp : mh;
    tiny_batch tb;
    tiny_batch_init(&tb, 4);
    float base_p[640], base_h[640], want[640], got[640];
    forward_logits(mp, NULL, &tb, base_p);
    forward_logits(mh, NULL, &tb, base_h);
    CHECK(max_diff(base_p, base_h, 640) <= 1e-5 * max_abs(base_p, 640), "the twins agree without adapters: %.3e",
          max_diff(base_p, base_h, 640));
    tk_param_set ps = {0};
    tk_lora_config c = tk_lora_default_config();
    c.r = 3;
    c.alpha = 7;
    c.rslora = rslora;
    c.targets = targets;
    c.first_layer = first_layer;
    c.seed = 5;
    tk_lora *l = NULL;
    CHECK_OK(tk_lora_new(src, &c, &ps, &l));
    if (!l) { tk_model_free(mp); tk_model_free(mh); return; }
    randomize_b(&ps, 99);
    forward_logits(src, tk_lora_peft(l), &tb, want);
    CHECK(max_diff(want, base_p, 640) > 1e-2, "the adapter moves the logits");
    const char *peft = tmp_path("peft"), *gguf = tmp_path("a.gguf");
    CHECK_OK(tk_adapter_save_peft(l, src, peft, "tiny-base"));
    CHECK_OK(tk_adapter_save_gguf(l, src, gguf));
    double tol = 1e-5 * max_abs(want, 640);
    const char *files[2] = {peft, gguf};
    tk_model *dst[2] = {mp, mh};
    for (int f = 0; f < 2; f++)
        for (int d = 0; d < 2; d++) {
            memset(got, 0, sizeof got);
            if (!attached_logits(dst[d], files[f], &tb, got)) continue;
            double md = max_diff(want, got, 640);
            if (dst[d] == src) CHECK(md == 0, "%s on the same model: logits differ by %.3e", f ? "gguf" : "peft", md);
            else CHECK(md <= tol, "%s written from the %s model, applied to the %s one: max diff %.3e (tol %.1e)", f ? "gguf" : "peft",
                       interleaved ? "permuted" : "HF", d ? "HF" : "permuted", md, tol);
        }

    /* the PEFT folder, field by field */
    cJSON *j = read_json(tmp_path("peft/adapter_config.json"));
    CHECK(j != NULL, "adapter_config.json parses");
    if (j) {
        const cJSON *v;
        CHECK((v = cJSON_GetObjectItem(j, "peft_type")) && cJSON_IsString(v) && !strcmp(v->valuestring, "LORA"), "peft_type");
        CHECK((v = cJSON_GetObjectItem(j, "task_type")) && cJSON_IsString(v) && !strcmp(v->valuestring, "CAUSAL_LM"), "task_type");
        CHECK((v = cJSON_GetObjectItem(j, "r")) && v->valuedouble == 3, "r");
        CHECK((v = cJSON_GetObjectItem(j, "lora_alpha")) && v->valuedouble == 7, "lora_alpha");
        CHECK((v = cJSON_GetObjectItem(j, "lora_dropout")) && v->valuedouble == 0.05, "lora_dropout %g", v ? v->valuedouble : -1);
        CHECK((v = cJSON_GetObjectItem(j, "use_rslora")) && cJSON_IsBool(v) && cJSON_IsTrue(v) == rslora, "use_rslora");
        CHECK((v = cJSON_GetObjectItem(j, "bias")) && !strcmp(v->valuestring, "none"), "bias");
        CHECK((v = cJSON_GetObjectItem(j, "base_model_name_or_path")) && !strcmp(v->valuestring, "tiny-base"), "base model");
        v = cJSON_GetObjectItem(j, "target_modules");
        uint32_t seen = 0;
        for (const cJSON *e = v ? v->child : NULL; e; e = e->next)
            for (int k = 0; k < TK_LIN_COUNT; k++)
                if (cJSON_IsString(e) && !strcmp(e->valuestring, tk_linear_name((tk_linear_id)k))) seen |= 1u << k;
        CHECK(seen == (targets ? targets : TK_LORA_ALL_TARGETS), "target_modules 0x%x", seen);
        v = cJSON_GetObjectItem(j, "layers_to_transform");
        if (first_layer) CHECK(cJSON_IsArray(v) && cJSON_GetArraySize(v) == 2 - first_layer && v->child->valueint == first_layer,
                               "layers_to_transform");
        else CHECK(cJSON_IsNull(v), "layers_to_transform null");
        cJSON_Delete(j);
    }
    tk_safetensors *sf = NULL;
    CHECK_OK(tk_st_open(tmp_path("peft/adapter_model.safetensors"), &sf));
    tk_gguf *g = NULL;
    CHECK_OK(tk_gguf_open(gguf, &g));
    if (sf && g) {
        int64_t n_mod = 0;
        for (int layer = 0; layer < 2; layer++)
            for (int k = 0; k < TK_LIN_COUNT; k++) {
                tk_param *A, *B;
                if (!tk_lora_module(l, layer, (tk_linear_id)k, &A, &B)) continue;
                n_mod++;
                char nA[160], nB[160], gA[64], gB[64];
                const char *grp = k <= TK_LIN_O ? "self_attn" : "mlp";
                static const char *gb[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
                snprintf(nA, sizeof nA, "base_model.model.model.layers.%d.%s.%s.lora_A.weight", layer, grp, tk_linear_name((tk_linear_id)k));
                snprintf(nB, sizeof nB, "base_model.model.model.layers.%d.%s.%s.lora_B.weight", layer, grp, tk_linear_name((tk_linear_id)k));
                snprintf(gA, sizeof gA, "blk.%d.%s.weight.lora_a", layer, gb[k]);
                snprintf(gB, sizeof gB, "blk.%d.%s.weight.lora_b", layer, gb[k]);
                const tk_tensor_ref *ta = tk_st_find(sf, nA), *tb2 = tk_st_find(sf, nB);
                const tk_tensor_ref *ga = tk_gguf_find_tensor(g, gA), *gbt = tk_gguf_find_tensor(g, gB);
                CHECK(ta && tb2 && ga && gbt, "tensors of layer %d %s present", layer, tk_linear_name((tk_linear_id)k));
                if (!ta || !tb2 || !ga || !gbt) continue;
                int64_t K = A->ne[0], N = B->ne[1];
                /* torch shapes [r x in] and [out x r] = ggml ne {in, r} and {r, out}; f32 */
                CHECK(ta->dtype == TK_F32 && ta->ne[0] == K && ta->ne[1] == 3, "%s shape", nA);
                CHECK(tb2->dtype == TK_F32 && tb2->ne[0] == 3 && tb2->ne[1] == N, "%s shape", nB);
                CHECK(ga->dtype == TK_F32 && ga->ne[0] == K && ga->ne[1] == 3, "%s ne", gA);
                CHECK(gbt->dtype == TK_F32 && gbt->ne[0] == 3 && gbt->ne[1] == N, "%s ne", gB);
                CHECK(!memcmp(ta->data, A->w, (size_t)K * 3 * 4) && !memcmp(ga->data, A->w, (size_t)K * 3 * 4), "%s values", nA);
                /* B rows: HF order in PEFT, permuted in a llama GGUF; the source's own rows are
                 * permuted iff it is the interleaved twin */
                float hf[64 * 3], pm[64 * 3];
                bool qk = k == TK_LIN_Q || k == TK_LIN_K;
                int heads = k == TK_LIN_Q ? 4 : 2;
                if (qk && interleaved) { tk_permute_qk_rows_to_hf(hf, B->w, heads, 4, 12); memcpy(pm, B->w, (size_t)N * 12); }
                else if (qk) { memcpy(hf, B->w, (size_t)N * 12); tk_permute_qk_rows_from_hf(pm, B->w, heads, 4, 12); }
                else { memcpy(hf, B->w, (size_t)N * 12); memcpy(pm, B->w, (size_t)N * 12); }
                CHECK(!memcmp(tb2->data, hf, (size_t)N * 12), "%s rows in HF order", nB);
                CHECK(!memcmp(gbt->data, pm, (size_t)N * 12), "%s rows in llama.cpp order", gB);
            }
        CHECK(tk_st_n_tensors(sf) == 2 * n_mod && tk_gguf_n_tensors(g) == 2 * n_mod, "two tensors per module");
        const char *s;
        size_t n;
        double alpha = 0;
        CHECK(tk_gguf_get_str(g, "general.type", &s, &n) && !strcmp(s, "adapter"), "general.type");
        CHECK(tk_gguf_get_str(g, "adapter.type", &s, &n) && !strcmp(s, "lora"), "adapter.type");
        CHECK(tk_gguf_get_str(g, "general.architecture", &s, &n) && !strcmp(s, "llama"), "general.architecture");
        CHECK(tk_gguf_get_f64(g, "adapter.lora.alpha", &alpha), "adapter.lora.alpha");
        CHECK(tk_gguf_kv_type(g, tk_gguf_find_key(g, "adapter.lora.alpha")) == TK_GGUF_FLOAT32, "alpha is f32");
        /* llama.cpp applies alpha / r: with rsLoRA the file carries (7 / sqrt(3)) * 3 */
        CHECK_NEAR(alpha, rslora ? 7.0 / sqrt(3.0) * 3.0 : 7.0, 1e-5);
    }
    tk_st_close(sf);
    tk_gguf_close(g);
    tk_lora_free(l);
    tk_params_free(&ps);
    tk_model_free(mp);
    tk_model_free(mh);
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (f) { fputs(text, f); fclose(f); }
}

static void write_st(const char *path, int n, const char *const *names, const int64_t (*ne)[2], float fill) {
    tk_st_writer *w = tk_st_writer_new();
    float buf[4096];
    for (int i = 0; i < 4096; i++) buf[i] = fill * (float)((i % 7) - 3);
    for (int i = 0; i < n; i++) tk_st_add(w, names[i], TK_F32, 2, ne[i], buf);
    CHECK_OK(tk_st_write(w, path));
    tk_st_writer_free(w);
}

static void expect_load_error(const char *path, tk_status want, const char *needle) {
    tk_adapter *a = NULL;
    tk_status st = tk_adapter_load(path, &a);
    CHECK(st == want, "%s: got %s (%s), expected %s", path, tk_status_str(st), tk_last_error(), tk_status_str(want));
    CHECK(!a, "no adapter on failure");
    if (st && needle) CHECK(strstr(tk_last_error(), needle) != NULL, "message '%s' names '%s'", tk_last_error(), needle);
    tk_adapter_free(a);
}

static void expect_attach_error(const char *path, tk_model *m, const char *needle) {
    tk_adapter *a = NULL;
    CHECK_OK(tk_adapter_load(path, &a));
    if (!a) return;
    tk_param_set ps = {0};
    tk_lora *l = NULL;
    tk_status st = tk_adapter_attach(a, m, &ps, &l);
    CHECK(st != TK_OK && !l, "attaching %s must fail", path);
    if (st) CHECK(strstr(tk_last_error(), needle) != NULL, "message '%s' names '%s'", tk_last_error(), needle);
    tk_lora_free(l);
    tk_params_free(&ps);
    tk_adapter_free(a);
}

static const char *CFG = "{\"peft_type\": \"LORA\", \"r\": 2, \"lora_alpha\": 4, \"target_modules\": [\"q_proj\"]%s}";

static void make_peft(const char *dir, const char *extra_cfg, int n, const char *const *names, const int64_t (*ne)[2], float fill) {
    mkdir(dir, 0755);
    char cfg[512], p[512];
    snprintf(cfg, sizeof cfg, CFG, extra_cfg);
    snprintf(p, sizeof p, "%s/adapter_config.json", dir);
    write_text(p, cfg);
    snprintf(p, sizeof p, "%s/adapter_model.safetensors", dir);
    write_st(p, n, names, ne, fill);
}

static void test_errors(void) {
    static const char *const qA = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight";
    static const char *const qB = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight";
    const char *ok2[] = {qA, qB};
    const int64_t ne_ok[2][2] = {{16, 2}, {2, 16}};
    /* a valid hand-made folder loads, also with the adapter name left in the keys */
    const char *d = tmp_path("e_ok");
    make_peft(d, "", 2, ok2, ne_ok, 0.1f);
    tk_adapter *a = NULL;
    CHECK_OK(tk_adapter_load(d, &a));
    if (a) {
        const tk_lora_file *f = tk_adapter_lora_file(a);
        CHECK(f && f->r == 2 && f->n_mods == 1 && f->targets == 1u && f->scale == 2.0f && !f->qk_permuted, "hand-made adapter fields");
        tk_adapter_free(a);
    }
    const char *named[] = {"base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight",
                           "base_model.model.model.layers.0.self_attn.q_proj.lora_B.default.weight"};
    d = tmp_path("e_named");
    make_peft(d, "", 2, named, ne_ok, 0.1f);
    a = NULL;
    CHECK_OK(tk_adapter_load(tmp_path("e_named/adapter_config.json"), &a));
    tk_adapter_free(a);

    d = tmp_path("e_dora");
    make_peft(d, ", \"use_dora\": true", 2, ok2, ne_ok, 0.1f); /* read by the dora kind, which needs the magnitudes */
    expect_load_error(d, TK_ERR_FORMAT, "lora_magnitude_vector (use_dora is set)");
    d = tmp_path("e_ia3");
    mkdir(d, 0755);
    write_text(tmp_path("e_ia3/adapter_config.json"), "{\"peft_type\": \"VERA\", \"r\": 2, \"lora_alpha\": 4}");
    expect_load_error(d, TK_ERR_UNSUPPORTED, "peft_type");
    d = tmp_path("e_json");
    mkdir(d, 0755);
    write_text(tmp_path("e_json/adapter_config.json"), "{\"peft_type\": \"LORA\", \"r\": 2,");
    expect_load_error(d, TK_ERR_FORMAT, "JSON");
    d = tmp_path("e_r");
    make_peft(d, ", \"bias\": \"all\"", 2, ok2, ne_ok, 0.1f);
    expect_load_error(d, TK_ERR_UNSUPPORTED, "bias");
    d = tmp_path("e_pair");
    make_peft(d, "", 1, ok2, ne_ok, 0.1f);
    expect_load_error(d, TK_ERR_FORMAT, "partner");
    const int64_t ne_r3[2][2] = {{16, 3}, {3, 16}};
    d = tmp_path("e_rank");
    make_peft(d, "", 2, ok2, ne_r3, 0.1f);
    expect_load_error(d, TK_ERR_FORMAT, "rank");
    const int64_t ne_mixed[2][2] = {{16, 2}, {3, 16}};
    d = tmp_path("e_mixed");
    make_peft(d, "", 2, ok2, ne_mixed, 0.1f);
    expect_load_error(d, TK_ERR_UNSUPPORTED, "rank");
    const char *head[] = {qA, qB, "base_model.model.lm_head.weight"};
    const int64_t ne_head[3][2] = {{16, 2}, {2, 16}, {16, 40}};
    d = tmp_path("e_head");
    make_peft(d, "", 3, head, ne_head, 0.1f);
    expect_load_error(d, TK_ERR_UNSUPPORTED, "lm_head");
    d = tmp_path("e_nan");
    make_peft(d, "", 2, ok2, ne_ok, NAN);
    expect_load_error(d, TK_ERR_FORMAT, "non-finite");
    d = tmp_path("e_nofile");
    mkdir(d, 0755);
    write_text(tmp_path("e_nofile/adapter_config.json"), "{\"peft_type\": \"LORA\", \"r\": 2, \"lora_alpha\": 4}");
    write_text(tmp_path("e_nofile/adapter_model.bin"), "pickle");
    expect_load_error(d, TK_ERR_UNSUPPORTED, "adapter_model.bin");
    expect_load_error(tmp_path("missing"), TK_ERR_IO, "missing");
    write_text(tmp_path("junk.bin"), "not an adapter at all");
    expect_load_error(tmp_path("junk.bin"), TK_ERR_FORMAT, "neither");

    /* GGUF: a model file is not an adapter; layer / shape / architecture mismatches at attach */
    tk_gguf_writer *w = tk_gguf_writer_new();
    tk_gguf_set_str(w, "general.architecture", "llama");
    tk_gguf_set_str(w, "general.type", "model");
    float z[64] = {0};
    int64_t ne1[2] = {16, 2};
    tk_gguf_add_tensor(w, "blk.0.attn_q.weight.lora_a", TK_F32, 2, ne1, z);
    CHECK_OK(tk_gguf_write(w, tmp_path("model.gguf")));
    tk_gguf_writer_free(w);
    expect_load_error(tmp_path("model.gguf"), TK_ERR_FORMAT, "general.type");

    tk_model *m = tiny_llama((tiny_opts){.interleaved = 1, .seed = 2});
    if (!m) { CHECK(0, "tiny"); return; }
    const char *deep[] = {"base_model.model.model.layers.2.self_attn.q_proj.lora_A.weight",
                          "base_model.model.model.layers.2.self_attn.q_proj.lora_B.weight"};
    d = tmp_path("e_layer");
    make_peft(d, "", 2, deep, ne_ok, 0.1f);
    expect_attach_error(d, m, "layers");
    const int64_t ne_wide[2][2] = {{32, 2}, {2, 16}};
    d = tmp_path("e_shape");
    make_peft(d, "", 2, ok2, ne_wide, 0.1f);
    expect_attach_error(d, m, "another model");
    w = tk_gguf_writer_new();
    tk_gguf_set_str(w, "general.architecture", "qwen2");
    tk_gguf_set_str(w, "general.type", "adapter");
    tk_gguf_set_str(w, "adapter.type", "lora");
    tk_gguf_set_f32(w, "adapter.lora.alpha", 4.0f);
    int64_t ne2[2] = {2, 16};
    tk_gguf_add_tensor(w, "blk.0.attn_q.weight.lora_a", TK_F32, 2, ne1, z);
    tk_gguf_add_tensor(w, "blk.0.attn_q.weight.lora_b", TK_F32, 2, ne2, z);
    CHECK_OK(tk_gguf_write(w, tmp_path("qwen.gguf")));
    tk_gguf_writer_free(w);
    expect_attach_error(tmp_path("qwen.gguf"), m, "architecture");
    tk_model_free(m);
}

/* A module the file lacks (layer 1 here) is attached as zeros: the forward equals the one of
 * an adapter set holding only the file's modules. Also: GGUF alpha 0 means scale 1. */
static void test_partial_and_alpha0(void) {
    tk_model *m = tiny_llama((tiny_opts){.interleaved = 0, .seed = 8});
    if (!m) { CHECK(0, "tiny"); return; }
    tk_gguf_writer *w = tk_gguf_writer_new();
    tk_gguf_set_str(w, "general.architecture", "llama");
    tk_gguf_set_str(w, "general.type", "adapter");
    tk_gguf_set_str(w, "adapter.type", "lora");
    tk_gguf_set_f32(w, "adapter.lora.alpha", 0.0f);
    float A[16 * 2], B[24 * 2];
    for (int i = 0; i < 32; i++) A[i] = 0.1f * (float)(i % 5) - 0.2f;
    for (int i = 0; i < 48; i++) B[i] = 0.05f * (float)(i % 9) - 0.2f;
    int64_t neA[2] = {16, 2}, neB[2] = {2, 24};
    tk_gguf_add_tensor(w, "blk.0.ffn_up.weight.lora_a", TK_F32, 2, neA, A);
    tk_gguf_add_tensor(w, "blk.0.ffn_up.weight.lora_b", TK_F32, 2, neB, B);
    CHECK_OK(tk_gguf_write(w, tmp_path("up.gguf")));
    tk_gguf_writer_free(w);
    tiny_batch tb;
    tiny_batch_init(&tb, 6);
    float got[640], want[640];
    if (!attached_logits(m, tmp_path("up.gguf"), &tb, got)) { tk_model_free(m); return; }
    /* reference: the same product merged by hand into W_up of layer 0 (scale 1) */
    float *W = (float *)m->w.layers[0].w_up.data;
    for (int n = 0; n < 24; n++)
        for (int k = 0; k < 16; k++) W[n * 16 + k] += B[n * 2] * A[k] + B[n * 2 + 1] * A[16 + k];
    forward_logits(m, NULL, &tb, want);
    double md = max_diff(got, want, 640);
    CHECK(md <= 1e-5 * max_abs(want, 640), "one-module GGUF adapter (alpha 0 = scale 1) vs merged by hand: %.3e", md);
    tk_model_free(m);
}

/* stories260K: an adapter made on the GGUF (permuted q/k) applied to the HF folder (HF rows). */
static void test_stories(void) {
    const char *g = tk_test_shared("models/stories260K/gguf/stories260K-f32.gguf");
    const char *hf = tk_test_shared("models/stories260K/hf");
    if (tk_test_require(g && hf ? g : NULL, "models/stories260K (gguf f32 + hf)")) return;
    char gp[4096], hp[4096];
    snprintf(gp, sizeof gp, "%s", g);
    snprintf(hp, sizeof hp, "%s", hf);
    tk_model_params mp = tk_model_default_params();
    mp.tokenizer = TK_TOKENIZER_NONE;
    tk_model *mg = NULL, *mh = NULL;
    CHECK_OK(tk_model_load(gp, &mp, &mg));
    CHECK_OK(tk_model_load(hp, &mp, &mh));
    if (!mg || !mh) { tk_model_free(mg); tk_model_free(mh); return; }
    CHECK(tk_model_get_config(mg)->rope_interleaved && !tk_model_get_config(mh)->rope_interleaved, "row orders differ");
    int32_t ids[12] = {1, 403, 407, 261, 378, 261, 504, 282, 301, 289, 419, 270};
    tk_batch b = {.n_rows = 1, .n_cols = 12, .ids = ids};
    int64_t V = tk_model_get_config(mg)->n_vocab;
    float *lw = malloc((size_t)(12 * V) * sizeof(float)), *lg = malloc((size_t)(12 * V) * sizeof(float)),
          *lb = malloc((size_t)(12 * V) * sizeof(float));
    tk_param_set ps = {0};
    tk_lora_config c = tk_lora_default_config();
    c.r = 4;
    c.alpha = 8;
    c.seed = 3;
    tk_lora *l = NULL;
    CHECK_OK(tk_lora_new(mg, &c, &ps, &l));
    tk_forward *f = NULL;
    if (l && lw && lg && lb) {
        randomize_b(&ps, 17);
        tk_adapter_use u = {tk_lora_peft(l), 1.0f};
        CHECK_OK(tk_forward_new(mg, 1, 12, 0, &f));
        if (f) CHECK_OK(tk_forward_run(f, &b, NULL, 12, lb));
        if (f) CHECK_OK(tk_forward_set_adapters(f, &u, 1));
        if (f) CHECK_OK(tk_forward_run(f, &b, NULL, 12, lw));
        tk_forward_free(f);
        f = NULL;
        CHECK_OK(tk_adapter_save_peft(l, mg, tmp_path("st_peft"), NULL));
        CHECK_OK(tk_adapter_save_gguf(l, mg, tmp_path("st.gguf")));
        const char *files[2] = {tmp_path("st_peft"), tmp_path("st.gguf")};
        for (int k = 0; k < 2; k++) {
            tk_adapter_handle *ah = NULL;
            CHECK_OK(tk_adapter_apply(mh, files[k], &ah));
            if (!ah) continue;
            CHECK_OK(tk_forward_new(mh, 1, 12, 0, &f));
            tk_adapter_use ua = {tk_adapter_handle_peft(ah), 1.0f};
            if (f) CHECK_OK(tk_forward_set_adapters(f, &ua, 1));
            if (f) CHECK_OK(tk_forward_run(f, &b, NULL, 12, lg));
            tk_forward_free(f);
            f = NULL;
            tk_adapter_detach(mh, ah);
            double md = max_diff(lw, lg, 12 * V), moved = max_diff(lw, lb, 12 * V);
            /* the same f32 weights in two containers: only the summation order differs */
            CHECK(md <= 1e-4 * max_abs(lw, 12 * V), "stories260K %s adapter on the HF folder: max diff %.3e (logits move %.3f)",
                  k ? "GGUF" : "PEFT", md, moved);
            CHECK(moved > 0.1, "the adapter moves stories260K's logits (%.3e)", moved);
            printf("stories260K: %s adapter from the GGUF model applied to the HF folder: max |diff| %.2e (adapter moved logits by %.2f)\n",
                   k ? "GGUF" : "PEFT", md, moved);
        }
    }
    free(lw); free(lg); free(lb);
    tk_lora_free(l);
    tk_params_free(&ps);
    tk_model_free(mg);
    tk_model_free(mh);
}

/* SmolLM2 (Q4_1 GGUF): round trip through both formats on the real model. */
static void test_smollm2(void) {
    const char *path = "models/SmolLM2-135M-Instruct.Q4_1.gguf";
    if (tk_test_require(access(path, F_OK) == 0 ? path : NULL, path)) return;
    tk_model_params mp = tk_model_default_params();
    mp.tokenizer = TK_TOKENIZER_NONE;
    tk_model *m = NULL;
    CHECK_OK(tk_model_load(path, &mp, &m));
    if (!m) return;
    int32_t ids[6] = {1, 504, 3458, 314, 253, 1345};
    tk_batch b = {.n_rows = 1, .n_cols = 6, .ids = ids};
    int64_t V = tk_model_get_config(m)->n_vocab;
    float *lw = malloc((size_t)(6 * V) * sizeof(float)), *lg = malloc((size_t)(6 * V) * sizeof(float));
    tk_param_set ps = {0};
    tk_lora_config c = tk_lora_default_config();
    c.r = 4;
    c.alpha = 8;
    c.rslora = true;
    c.seed = 1;
    tk_lora *l = NULL;
    CHECK_OK(tk_lora_new(m, &c, &ps, &l));
    tk_forward *f = NULL;
    CHECK_OK(tk_forward_new(m, 1, 6, 0, &f));
    if (l && f && lw && lg) {
        randomize_b(&ps, 5);
        tk_adapter_use u = {tk_lora_peft(l), 1.0f};
        CHECK_OK(tk_forward_set_adapters(f, &u, 1));
        CHECK_OK(tk_forward_run(f, &b, NULL, 6, lw));
        CHECK_OK(tk_forward_set_adapters(f, NULL, 0));
        CHECK_OK(tk_adapter_save_peft(l, m, tmp_path("sm_peft"), "HuggingFaceTB/SmolLM2-135M-Instruct"));
        CHECK_OK(tk_adapter_save_gguf(l, m, tmp_path("sm.gguf")));
        const char *files[2] = {tmp_path("sm_peft"), tmp_path("sm.gguf")};
        for (int k = 0; k < 2; k++) {
            tk_adapter_handle *ah = NULL;
            CHECK_OK(tk_adapter_apply(m, files[k], &ah));
            if (!ah) continue;
            tk_adapter_use ua = {tk_adapter_handle_peft(ah), 1.0f};
            CHECK_OK(tk_forward_set_adapters(f, &ua, 1));
            CHECK_OK(tk_forward_run(f, &b, NULL, 6, lg));
            CHECK_OK(tk_forward_set_adapters(f, NULL, 0));
            tk_adapter_detach(m, ah);
            /* rsLoRA through GGUF: scale stored as alpha = scale x r, so it may differ in the last bit */
            double md = max_diff(lw, lg, 6 * V);
            CHECK(md <= 1e-5 * max_abs(lw, 6 * V), "SmolLM2 %s round trip: max diff %.3e", k ? "GGUF" : "PEFT", md);
        }
    }
    tk_forward_free(f);
    free(lw); free(lg);
    tk_lora_free(l);
    tk_params_free(&ps);
    tk_model_free(m);
}

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "/tmp/tk_adapter_io_XXXXXX");
    if (!mkdtemp(g_tmp)) { fprintf(stderr, "mkdtemp failed\n"); return 1; }
    test_roundtrip(1, false, 0, 0);
    test_roundtrip(0, false, 0, 0);
    test_roundtrip(1, true, (1u << TK_LIN_Q) | (1u << TK_LIN_K) | (1u << TK_LIN_DOWN), 1);
    test_roundtrip(0, true, (1u << TK_LIN_K) | (1u << TK_LIN_V), 0);
    test_errors();
    test_partial_and_alpha0();
    test_stories();
    test_smollm2();
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    if (system(cmd) != 0) fprintf(stderr, "note: could not remove %s\n", g_tmp);
    return tk_test_done("test_adapter_io");
}
