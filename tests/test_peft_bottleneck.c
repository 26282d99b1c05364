/* Bottleneck adapters (src/peft/bottleneck.h, the registry's "adapter" kind) on the tiny Llama:
 * - every parameter's gradient (down/up weights and biases) against central finite differences
 *   of the loss through the whole model (packing and padding), for Pfeiffer (the layer-output
 *   site, relu), Houlsby (attention and MLP outputs, swish) and gelu, also with recomputation and
 *   with --freeze-layers (adapters only above);
 * - shapes and names as AdapterHub's; a fresh adapter is nearly the identity ("bert" init) and
 *   at scale 0 exactly; a KV-cache session gives the same logits as the whole-sequence forward;
 * - takumi's folder (peft_type TAKUMI_BOTTLENECK) reads back as "adapter" with the same logits;
 *   bad folders, merging and a GGUF adapter are refused with messages naming the problem;
 * - options: --lora-r etc. refused with --method adapter, --adapter-* refused with other methods. */
#include "test.h"
#include "tiny_llama.h"
#include "fd_check.h"
#include "peft_check.h"
#include "peft/bottleneck.h"
#include "train/trainer.h"
#include <cJSON.h>

/* Larger random weights and biases than the init, so that every gradient is clearly non-zero. */
static void perturb(tk_param_set *ps, uint64_t seed) {
    tk_rng rng;
    tk_rng_seed(&rng, seed);
    for (int64_t i = 0; i < ps->n; i++)
        for (int64_t j = 0; j < ps->p[i].n; j++) ps->p[i].w[j] = (ps->p[i].n_dims == 2 ? 0.4f : 0.2f) * tk_rng_normal(&rng);
}

static void test_model(int placement, int act, bool recompute, int freeze, const char *what) {
    tk_model *m = tiny_llama((tiny_opts){.interleaved = 1, .bias = true, .seed = 31, .layers = 3});
    if (!m) { CHECK(0, "tiny model"); return; }
    tk_train_params p = tk_train_default_params();
    p.method = TK_TRAIN_ADAPTER;
    tk_bottleneck_config c = {.placement = placement, .reduction = 4, .act = act, .seed = 5};
    p.peft_cfg = &c;
    p.max_rows = 2;
    p.max_cols = 8;
    p.recompute = recompute;
    p.freeze_layers = freeze;
    tk_train_ctx *tc = NULL;
    CHECK_OK(tk_train_ctx_new(m, &p, &tc));
    if (tc) {
        perturb(tk_train_param_set(tc), 4);
        tiny_batch tb;
        tiny_batch_init(&tb, 8);
        int n = fd_check_step(tc, &tb, "model.layers.", 5e-3, what);
        int want = (3 - freeze) * (placement == TK_BN_HOULSBY ? 2 : 1) * 4;
        CHECK(n == want, "%s: %d adapter tensors checked (want %d)", what, n, want);
    }
    tk_train_ctx_free(tc);
    tk_model_free(m);
}

/* Logits of the last token of the tiny batch's first row, by a KV-cache session fed token by token. */
static void session_logits(tk_model *m, const tk_peft *p, const int32_t *ids, int n, float *out) {
    tk_session *s = NULL;
    CHECK_OK(tk_session_new(m, 16, &s));
    if (!s) return;
    tk_adapter_use u = {p, 1.0f};
    CHECK_OK(tk_session_set_adapters(s, &u, 1));
    for (int i = 0; i < n; i++) CHECK_OK(tk_session_eval(s, &ids[i], 1, out));
    tk_session_free(s);
}

static void test_identity_and_cache(int placement) {
    tk_model *m = tiny_llama((tiny_opts){.interleaved = 0, .seed = 4});
    if (!m) { CHECK(0, "tiny model"); return; }
    tk_param_set ps = {0};
    tk_bottleneck_config c = tk_bottleneck_default_config();
    c.placement = placement;
    tk_bottleneck *b = NULL;
    CHECK_OK(tk_bottleneck_new(m, &c, &ps, &b));
    if (!b) { tk_model_free(m); return; }
    const tk_peft *p = tk_bottleneck_peft(b);
    const char *name = tk_bn_placement_name(placement);
    /* reduction 16 on width 16: a bottleneck of 1; AdapterHub's names and torch shapes */
    CHECK(tk_bottleneck_width(b) == 1 && tk_bottleneck_get_config(b)->act == (placement == TK_BN_PFEIFFER ? TK_BN_RELU : TK_BN_SWISH),
          "%s: R = 16 / 16 = 1, the placement's activation", name);
    CHECK(ps.n == 2 * 4 * (placement == TK_BN_HOULSBY ? 2 : 1), "%s: %lld tensors", name, (long long)ps.n);
    tk_param *dw = tk_bottleneck_param(b, 1, placement == TK_BN_HOULSBY ? TK_BLOCK_ATTN : TK_BLOCK_LAYER, 0);
    tk_param *ub = tk_bottleneck_param(b, 1, placement == TK_BN_HOULSBY ? TK_BLOCK_MLP : TK_BLOCK_LAYER, 3);
    CHECK(dw && ub && !strcmp(dw->name, placement == TK_BN_HOULSBY ? "model.layers.1.attention_adapters.adapter_down.weight"
                                                                       : "model.layers.1.output_adapters.adapter_down.weight") &&
              dw->ne[0] == 16 && dw->ne[1] == 1 && dw->decay && !strcmp(ub->name, "model.layers.1.output_adapters.adapter_up.bias") &&
              ub->n == 16 && !ub->decay,
          "%s: parameter names and shapes", name);
    double sd = 0;
    for (int64_t j = 0; dw && j < dw->n; j++) sd += (double)dw->w[j] * dw->w[j];
    sd = sqrt(sd / 16);
    CHECK(sd > 0.005 && sd < 0.05 && ub && ub->w[0] == 0.0f, "%s: weights N(0, 0.02) (rms %.4f), biases 0", name, sd);
    float base[16 * 40], a[16 * 40];
    tiny_logits(m, NULL, base);
    tiny_logits(m, p, a);
    double d = max_abs_diff(base, a, 16 * 40), mb = 0;
    for (int i = 0; i < 16 * 40; i++) mb = fmax(mb, fabs(base[i]));
    printf("%s: fresh adapter vs base: max abs logit diff %.2e (max |logit| %.2f)\n", name, d, mb);
    CHECK(d > 0 && d < 1e-2 * mb, "%s: a fresh adapter is nearly the identity (%.3e of %.3f)", name, d, mb);
    /* scale 0: exactly the base */
    {
        tiny_batch tb;
        tiny_batch_init(&tb, 2);
        tk_forward *f = NULL;
        CHECK_OK(tk_forward_new(m, 2, 8, 0, &f));
        tk_adapter_use u = {p, 0.0f};
        if (f) CHECK_OK(tk_forward_set_adapters(f, &u, 1));
        if (f) CHECK_OK(tk_forward_run(f, &tb.b, NULL, 16, a));
        CHECK(!memcmp(base, a, sizeof a), "%s: at scale 0 the logits are the base's, bit for bit", name);
        tk_forward_free(f);
    }
    /* trained-looking weights: a session token by token equals the whole-sequence forward */
    perturb(&ps, 12);
    {
        int32_t ids[6] = {3, 17, 5, 29, 11, 2};
        tk_batch bt = {.n_rows = 1, .n_cols = 6, .ids = ids};
        tk_forward *f = NULL;
        float full[6 * 40], last[40] = {0};
        CHECK_OK(tk_forward_new(m, 1, 6, 0, &f));
        tk_adapter_use u = {p, 1.0f};
        if (f) CHECK_OK(tk_forward_set_adapters(f, &u, 1));
        if (f) CHECK_OK(tk_forward_run(f, &bt, NULL, 6, full));
        tk_forward_free(f);
        session_logits(m, p, ids, 6, last);
        double e = max_abs_diff(full + 5 * 40, last, 40);
        printf("%s: KV-cache session vs whole forward: max abs diff %.2e\n", name, e);
        CHECK(e < 1e-4, "%s: the session's logits differ (%.3e)", name, e);
        CHECK(max_abs_diff(full, base, 6 * 40) > 1e-2, "%s: trained weights change the logits", name);
    }
    tk_bottleneck_free(b);
    tk_params_free(&ps);
    tk_model_free(m);
}

static void write_text(const char *dir, const char *file, const char *text) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    CHECK_OK(tk_write_file_atomic(path, text, strlen(text)));
}

/* adapter_config.json with one or two fields replaced (a JSON value text) or removed (NULL). */
static void edit_config2(const char *dir, const char *orig, const char *key, const char *value, const char *key2, const char *value2) {
    cJSON *root = cJSON_Parse(orig);
    cJSON_DeleteItemFromObjectCaseSensitive(root, key);
    if (value) cJSON_AddItemToObject(root, key, cJSON_Parse(value));
    if (key2) {
        cJSON_DeleteItemFromObjectCaseSensitive(root, key2);
        cJSON_AddItemToObject(root, key2, cJSON_Parse(value2));
    }
    char *s = cJSON_PrintUnformatted(root);
    write_text(dir, "adapter_config.json", s);
    free(s);
    cJSON_Delete(root);
}
static void edit_config(const char *dir, const char *orig, const char *key, const char *value) { edit_config2(dir, orig, key, value, NULL, NULL); }

static void expect_load_error(const char *dir, tk_status code, const char *needle, const char *what) {
    tk_adapter *ad = NULL;
    tk_status st = tk_adapter_load(dir, &ad);
    CHECK(st == code && !ad && strstr(tk_last_error(), needle), "%s: %s (%s)", what, tk_last_error(), tk_status_str(st));
    tk_adapter_free(ad);
}

static void test_files(int placement) {
    tk_model *m = tiny_llama((tiny_opts){.interleaved = 1, .seed = 8});
    if (!m) { CHECK(0, "tiny model"); return; }
    tk_param_set ps = {0};
    tk_bottleneck_config c = {.placement = placement, .reduction = 4, .act = TK_BN_GELU, .first_layer = 1};
    tk_bottleneck *b = NULL;
    CHECK_OK(tk_bottleneck_new(m, &c, &ps, &b));
    if (!b) { tk_model_free(m); return; }
    perturb(&ps, 9);
    const tk_peft *p = tk_bottleneck_peft(b);
    const char *name = tk_bn_placement_name(placement);
    CHECK(p->method->merge_linear == NULL && p->method->save_gguf == NULL, "%s: no merge, no GGUF layout", name);
    char dir[] = "/tmp/takumi_bn_XXXXXX", cmd[300];
    CHECK(mkdtemp(dir) != NULL, "temp dir");
    roundtrip_check(m, p, dir, "adapter", placement == TK_BN_HOULSBY ? "houlsby folder" : "pfeiffer folder");
    char *cfg = NULL, path[256];
    size_t len = 0;
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    CHECK_OK(tk_read_file(path, &cfg, &len));
    CHECK(cfg && strstr(cfg, "\"TAKUMI_BOTTLENECK\"") && strstr(cfg, name) && strstr(cfg, "\"gelu\""), "%s: config %s", name, cfg ? cfg : "");
    tk_adapter *ad = NULL;
    CHECK_OK(tk_adapter_load(dir, &ad));
    if (ad) {
        tk_adapter_info i = tk_adapter_get_info(ad);
        CHECK(i.min_layer == 1 && i.max_layer == 1 && i.r == 4 && i.n_modules == (placement == TK_BN_HOULSBY ? 2 : 1),
              "%s: info layers %d..%d, R %d, %lld modules", name, i.min_layer, i.max_layer, i.r, (long long)i.n_modules);
        /* merged / written as GGUF: refused, naming why */
        tk_adapter_handle *h = NULL;
        CHECK_OK(tk_adapter_apply_loaded(m, ad, &h));
        if (h) {
            snprintf(path, sizeof path, "%s/merged.gguf", dir);
            CHECK_ERR(tk_adapter_merge(m, h, path, NULL), TK_ERR_UNSUPPORTED);
            CHECK(strstr(tk_last_error(), "cannot be merged") && strstr(tk_last_error(), "bottleneck"), "merge: %s", tk_last_error());
            snprintf(path, sizeof path, "%s/a.gguf", dir);
            CHECK_ERR(tk_adapter_save(h, m, path, NULL), TK_ERR_UNSUPPORTED);
            CHECK(strstr(tk_last_error(), "no GGUF layout") && strstr(tk_last_error(), "llama.cpp"), "gguf: %s", tk_last_error());
            CHECK(tk_adapter_handle_lora(h) == NULL, "not LoRA");
            tk_adapter_detach(m, h);
        }
        tk_param_set ps2 = {0};
        tk_lora *l = NULL;
        CHECK_ERR(tk_adapter_attach(ad, m, &ps2, &l), TK_ERR_ARG);
        CHECK(strstr(tk_last_error(), "not LoRA"), "LoRA expected: %s", tk_last_error());
        tk_params_free(&ps2);
        tk_adapter_free(ad);
    }
    /* another model: width */
    tk_model *m2 = tiny_llama((tiny_opts){.interleaved = 1, .seed = 8, .layers = 3});
    CHECK_OK(tk_adapter_load(dir, &ad));
    if (ad && m2) {
        tk_param_set ps2 = {0};
        tk_peft *q = NULL;
        CHECK_ERR(tk_adapter_attach_peft(ad, m2, &ps2, &q), TK_ERR_ARG);
        CHECK(strstr(tk_last_error(), "another model"), "3 layers: %s", tk_last_error());
        tk_params_free(&ps2);
    }
    tk_adapter_free(ad);
    tk_model_free(m2);
    /* bad configs */
    if (cfg) {
        edit_config(dir, cfg, "architecture", "\"parallel\"");
        expect_load_error(dir, TK_ERR_FORMAT, "\"architecture\" must be one of pfeiffer, houlsby (parallel)", "architecture");
        edit_config(dir, cfg, "non_linearity", NULL);
        expect_load_error(dir, TK_ERR_FORMAT, "\"non_linearity\" must be one of relu, swish, gelu (missing)", "non_linearity");
        edit_config(dir, cfg, "bottleneck_size", "5");
        expect_load_error(dir, TK_ERR_FORMAT, "\"bottleneck_size\" is 5, but hidden_size 16 / reduction_factor 4 gives 4", "bottleneck_size");
        edit_config2(dir, cfg, "hidden_size", "32", "reduction_factor", "8");
        expect_load_error(dir, TK_ERR_FORMAT, "must have torch shape", "hidden_size");
        edit_config(dir, cfg, "architecture", placement == TK_BN_HOULSBY ? "\"pfeiffer\"" : "\"houlsby\"");
        expect_load_error(dir, TK_ERR_FORMAT, placement == TK_BN_HOULSBY ? "is an attention adapter" : "attention_adapters.adapter_down.weight",
                          "placement");
        write_text(dir, "adapter_config.json", cfg);
        /* a missing tensor */
        tk_st_writer *w = tk_st_writer_new();
        for (int64_t i = 1; i < ps.n; i++) CHECK_OK(tk_st_add(w, ps.p[i].name, TK_F32, ps.p[i].n_dims, ps.p[i].ne, ps.p[i].w));
        snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
        CHECK_OK(tk_st_write(w, path));
        tk_st_writer_free(w);
        expect_load_error(dir, TK_ERR_FORMAT, "adapter_down.weight' (a", "missing tensor");
        /* a LoRA tensor in a bottleneck folder */
        w = tk_st_writer_new();
        int64_t ne[2] = {16, 4};
        CHECK_OK(tk_st_add(w, "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", TK_F32, 2, ne, ps.p[0].w));
        CHECK_OK(tk_st_write(w, path));
        tk_st_writer_free(w);
        expect_load_error(dir, TK_ERR_FORMAT, "is not part of a bottleneck adapter", "foreign tensor");
    }
    free(cfg);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
    tk_bottleneck_free(b);
    tk_params_free(&ps);
    tk_model_free(m);
}

static void test_options(void) {
    tk_trainer_config c = tk_trainer_config_default();
    CHECK_OK(tk_trainer_config_set(&c, "method", "adapter"));
    CHECK_OK(tk_trainer_config_set(&c, "adapter-placement", "houlsby"));
    CHECK_OK(tk_trainer_config_set(&c, "adapter-reduction", "8"));
    CHECK_OK(tk_trainer_config_set(&c, "adapter-act", "gelu"));
    CHECK_OK(tk_trainer_config_set(&c, "freeze-layers", "1"));
    CHECK_OK(tk_trainer_config_check_method(&c));
    CHECK(c.adapter_placement == TK_BN_HOULSBY && c.adapter_reduction == 8 && c.adapter_act == 1 + TK_BN_GELU, "adapter options parsed");
    CHECK_ERR(tk_trainer_config_set(&c, "adapter-placement", "parallel"), TK_ERR_ARG);
    CHECK(strstr(tk_last_error(), "--adapter-placement") && strstr(tk_last_error(), "pfeiffer or houlsby"), "message: %s", tk_last_error());
    const char *nots[] = {"lora-r", "lora-alpha", "lora-dropout", "lora-targets", "rslora", "lora-init", "lora-plus-ratio"};
    const char *vals[] = {"16", "8", "0.1", "q,v", "true", "gaussian", "4"};
    for (int i = 0; i < 7; i++) {
        tk_trainer_config d = tk_trainer_config_default();
        CHECK_OK(tk_trainer_config_set(&d, "method", "adapter"));
        CHECK_OK(tk_trainer_config_set(&d, nots[i], vals[i]));
        CHECK_ERR(tk_trainer_config_check_method(&d), TK_ERR_ARG);
        CHECK(strstr(tk_last_error(), nots[i]) && strstr(tk_last_error(), "--method adapter"), "--%s: %s", nots[i], tk_last_error());
        tk_trainer_config_free(&d);
    }
    const char *only[] = {"adapter-placement", "adapter-reduction", "adapter-act"};
    const char *ovals[] = {"houlsby", "4", "relu"};
    for (int i = 0; i < 3; i++) {
        tk_trainer_config d = tk_trainer_config_default();
        CHECK_OK(tk_trainer_config_set(&d, "method", i == 2 ? "ia3" : "lora"));
        CHECK_OK(tk_trainer_config_set(&d, only[i], ovals[i]));
        CHECK_ERR(tk_trainer_config_check_method(&d), TK_ERR_ARG);
        CHECK(strstr(tk_last_error(), only[i]) && strstr(tk_last_error(), "applies to --method adapter only"), "--%s: %s", only[i], tk_last_error());
        tk_trainer_config_free(&d);
    }
    /* config.json read back does not count as given */
    tk_trainer_config d = tk_trainer_config_default();
    CHECK_OK(tk_trainer_config_apply_json(&d, "{\"method\": \"lora\", \"adapter-placement\": \"pfeiffer\", \"adapter-reduction\": 16}", "config.json"));
    CHECK_OK(tk_trainer_config_check_method(&d));
    tk_trainer_config_free(&c);
    tk_trainer_config_free(&d);
}

int main(void) {
    (void)merge_check;   /* peft_check.h's linear-method checks: no linears here */
    (void)lin_fd_check;
    tk_set_threads(1);
    test_identity_and_cache(TK_BN_PFEIFFER);
    test_identity_and_cache(TK_BN_HOULSBY);
    test_model(TK_BN_PFEIFFER, TK_BN_ACT_AUTO, false, 0, "pfeiffer (relu)");
    test_model(TK_BN_HOULSBY, TK_BN_ACT_AUTO, false, 0, "houlsby (swish)");
    test_model(TK_BN_PFEIFFER, TK_BN_GELU, false, 0, "pfeiffer (gelu)");
    test_model(TK_BN_HOULSBY, TK_BN_GELU, true, 0, "houlsby (gelu), recompute");
    test_model(TK_BN_PFEIFFER, TK_BN_ACT_AUTO, true, 1, "pfeiffer (relu), recompute, layer 0 frozen");
    test_model(TK_BN_HOULSBY, TK_BN_RELU, false, 2, "houlsby (relu), layers 0-1 frozen");
    test_files(TK_BN_PFEIFFER);
    test_files(TK_BN_HOULSBY);
    test_options();
    return tk_test_done("test_peft_bottleneck");
}
