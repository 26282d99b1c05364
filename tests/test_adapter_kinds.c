/* Reading adapter files goes through the PEFT method kinds (src/peft/registry.h,
 * src/peft/adapter_io.c):
 * - a PEFT folder whose peft_type no kind reads ("VERA", "LOHA", "bogus"), with or
 *   without its safetensors, and a GGUF adapter whose adapter.type no kind reads
 *   ("control_vector", "bogus") fail with TK_ERR_UNSUPPORTED naming the file, the field, the
 *   value and the supported types; a missing peft_type / adapter.type with TK_ERR_FORMAT;
 * - every kind of the registry that has files is complete (attach, describe, free_file) and
 *   its readers are reached for its own peft_type / adapter.type;
 * - among kinds sharing a peft_type (DoRA is PEFT's "LORA" + use_dora), one whose
 *   peft_claims accepts the config is chosen, in either table order;
 * - a method defined only here (an IA3-like scaling of one layer's v_proj outputs) plugs into
 *   the generic adapter machinery through its kind alone: info, apply, forward, the LoRA-only
 *   accessors (0 / NULL), save (no layout: a clear message), merge (its merge_linear, checked
 *   against the unmerged forward after an HF export and reload), detach and free (ASan sees
 *   leaks). */
#include "test.h"
#include "tiny_llama.h"
#include "peft/adapter_io.h"
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

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (f) { fputs(text, f); fclose(f); }
}

/* A PEFT folder dir/ with adapter_config.json = cfg and, when with_st, a one-tensor safetensors. */
static void make_folder(const char *dir, const char *cfg, bool with_st) {
    mkdir(dir, 0755);
    char p[600];
    snprintf(p, sizeof p, "%s/adapter_config.json", dir);
    write_text(p, cfg);
    if (!with_st) return;
    tk_st_writer *w = tk_st_writer_new();
    float v[4] = {1, 2, 3, 4};
    int64_t ne[2] = {4, 1};
    tk_st_add(w, "base_model.model.model.layers.0.self_attn.v_proj.ia3_l", TK_F32, 2, ne, v);
    snprintf(p, sizeof p, "%s/adapter_model.safetensors", dir);
    CHECK_OK(tk_st_write(w, p));
    tk_st_writer_free(w);
}

/* A GGUF adapter with adapter.type = type (NULL: none) and no tensors. */
static void make_gguf(const char *path, const char *type) {
    tk_gguf_writer *w = tk_gguf_writer_new();
    tk_gguf_set_str(w, "general.architecture", "llama");
    tk_gguf_set_str(w, "general.type", "adapter");
    if (type) tk_gguf_set_str(w, "adapter.type", type);
    CHECK_OK(tk_gguf_write(w, path));
    tk_gguf_writer_free(w);
}

/* Loading path fails with want and a message holding every needle (NULL-terminated). */
static void expect_fail(const char *path, tk_status want, const char *const *needles) {
    tk_adapter *a = NULL;
    tk_status st = tk_adapter_load(path, &a);
    CHECK(st == want && !a, "%s: got %s (%s), expected %s", path, tk_status_str(st), tk_last_error(), tk_status_str(want));
    for (int i = 0; st && needles[i]; i++)
        CHECK(strstr(tk_last_error(), needles[i]) != NULL, "message '%s' names '%s'", tk_last_error(), needles[i]);
    tk_adapter_free(a);
}

static void test_unsupported_types(void) {
    static const char *const types[] = {"VERA", "LOHA", "bogus"};
    for (int i = 0; i < 3; i++)
        for (int with_st = 0; with_st < 2; with_st++) {
            char dir[64], cfg[160], val[64];
            snprintf(dir, sizeof dir, "peft_%s_%d", types[i], with_st);
            snprintf(cfg, sizeof cfg, "{\"peft_type\": \"%s\", \"r\": 2, \"lora_alpha\": 4, \"target_modules\": [\"v_proj\"]}", types[i]);
            snprintf(val, sizeof val, "peft_type \"%s\" is not supported", types[i]);
            make_folder(tmp_path(dir), cfg, with_st);
            const char *needles[] = {"adapter_config.json", val, "(supported: LORA, IA3, PREFIX_TUNING, PROMPT_TUNING", NULL};
            expect_fail(tmp_path(dir), TK_ERR_UNSUPPORTED, needles);
        }
    /* the same through the in-memory reader (the fuzz target's), and through apply */
    make_folder(tmp_path("mem"), "{}", true);
    tk_safetensors *sf = NULL;
    CHECK_OK(tk_st_open(tmp_path("mem/adapter_model.safetensors"), &sf));
    if (sf) {
        static const char cfg[] = "{\"peft_type\": \"VERA\"}";
        tk_adapter *a = NULL;
        tk_status st = tk_adapter_from_peft(cfg, sizeof cfg - 1, sf, "mem.json", &a);
        CHECK(st == TK_ERR_UNSUPPORTED && !a && strstr(tk_last_error(), "mem.json: peft_type \"VERA\" is not supported (supported: LORA, IA3, PREFIX_TUNING, PROMPT_TUNING"),
              "in-memory VERA config: %s", tk_last_error());
        tk_adapter_free(a);
        tk_st_close(sf);
    }
    tk_model *m = tiny_llama((tiny_opts){.seed = 1});
    tk_adapter_handle *h = NULL;
    if (m) {
        tk_status st = tk_adapter_apply(m, tmp_path("peft_VERA_1"), &h);
        CHECK(st == TK_ERR_UNSUPPORTED && !h && strstr(tk_last_error(), "VERA"), "apply VERA: %s", tk_last_error());
    }
    tk_adapter_detach(m, h);
    tk_model_free(m);

    const char *missing[] = {"adapter_config.json", "\"peft_type\" is missing", "supported: LORA, IA3, PREFIX_TUNING, PROMPT_TUNING", NULL};
    make_folder(tmp_path("peft_none"), "{\"r\": 2, \"lora_alpha\": 4}", true);
    expect_fail(tmp_path("peft_none"), TK_ERR_FORMAT, missing);
    make_folder(tmp_path("peft_num"), "{\"peft_type\": 7, \"r\": 2, \"lora_alpha\": 4}", false);
    expect_fail(tmp_path("peft_num"), TK_ERR_FORMAT, missing);

    const char *cv[] = {"cv.gguf", "adapter.type \"control_vector\" is not supported (supported: lora)", NULL};
    make_gguf(tmp_path("cv.gguf"), "control_vector");
    expect_fail(tmp_path("cv.gguf"), TK_ERR_UNSUPPORTED, cv);
    const char *bogus[] = {"bogus.gguf", "adapter.type \"bogus\"", "supported: lora", NULL};
    make_gguf(tmp_path("bogus.gguf"), "bogus");
    expect_fail(tmp_path("bogus.gguf"), TK_ERR_UNSUPPORTED, bogus);
    const char *none[] = {"none.gguf", "adapter.type", NULL};
    make_gguf(tmp_path("none.gguf"), NULL);
    expect_fail(tmp_path("none.gguf"), TK_ERR_FORMAT, none);
}

/* Every kind with files is complete and reached by its own types (its reader, not the
 * dispatcher, rejects a file holding nothing but the type). */
static void test_registry_kinds(void) {
    int n = 0;
    const tk_peft_kind *k = tk_peft_kinds(&n);
    CHECK(n >= 1 && tk_peft_kind_find("lora"), "the registry lists lora");
    int with_files = 0;
    for (int i = 0; i < n; i++) {
        const tk_peft_kind *kd = &k[i];
        CHECK(kd->name && kd->name[0] && kd->create && kd->destroy && tk_peft_kind_find(kd->name) == kd, "kind %d complete", i);
        if (!kd->read_peft && !kd->read_gguf) continue;
        with_files++;
        CHECK(kd->attach && kd->describe && kd->free_file, "%s: a kind with readers attaches, describes and frees", kd->name);
        CHECK(!kd->read_peft == !kd->peft_type && !kd->read_gguf == !kd->gguf_type, "%s: a reader per type", kd->name);
        if (kd->read_peft) {
            char dir[96], cfg[128];
            snprintf(dir, sizeof dir, "reach_%s", kd->name);
            snprintf(cfg, sizeof cfg, "{\"peft_type\": \"%s\"}", kd->peft_type);
            make_folder(tmp_path(dir), cfg, false);
            if (!kd->peft_claims) {
                cJSON *j = cJSON_Parse(cfg);
                CHECK(tk_peft_kind_for_peft(k, n, kd->peft_type, j) == kd, "%s: chosen for peft_type %s", kd->name, kd->peft_type);
                cJSON_Delete(j);
            }
            tk_adapter *a = NULL;
            tk_status st = tk_adapter_load(tmp_path(dir), &a);
            CHECK(st != TK_OK && !strstr(tk_last_error(), "is not supported (supported:"),
                  "%s: its PEFT reader judges the config (%s)", kd->name, tk_last_error());
            tk_adapter_free(a);
        }
        if (kd->read_gguf) {
            char path[96];
            snprintf(path, sizeof path, "reach_%s.gguf", kd->name);
            make_gguf(tmp_path(path), kd->gguf_type);
            CHECK(tk_peft_kind_for_gguf(k, n, kd->gguf_type) == kd, "%s: chosen for adapter.type %s", kd->name, kd->gguf_type);
            tk_adapter *a = NULL;
            tk_status st = tk_adapter_load(tmp_path(path), &a);
            CHECK(st != TK_OK && !strstr(tk_last_error(), "is not supported (supported:"),
                  "%s: its GGUF reader judges the file (%s)", kd->name, tk_last_error());
            tk_adapter_free(a);
        }
    }
    CHECK(with_files >= 1, "at least one kind reads files");
}

/* ---- a method defined here: y_v *= 1 + s (l - 1) on one layer's v_proj (IA3-like) ---------- */

typedef struct scl_file { int32_t layer; int64_t N; float *l; } scl_file;
typedef struct scl { tk_peft peft; int32_t layer; int64_t N; tk_param_set *ps; int64_t idx; } scl;

static bool scl_has(const void *st, int32_t layer, tk_linear_id which) {
    const scl *s = st;
    return layer == s->layer && which == TK_LIN_V;
}

static tk_status scl_fwd(void *st, const tk_peft_call *c, int32_t layer, tk_linear_id which, const tk_tensor_ref *w,
                         const float *x, float *y, int64_t n) {
    scl *s = st;
    if (!scl_has(s, layer, which)) return TK_OK;
    const float *l = s->ps->p[s->idx].w;
    for (int64_t t = 0; t < n; t++)
        for (int64_t j = 0; j < s->N; j++) y[t * s->N + j] *= 1.0f + c->scale * (l[j] - 1.0f);
    return TK_OK;
}

static tk_status scl_merge(const void *st, int32_t layer, tk_linear_id which, float *W, int64_t N, int64_t K, float scale) {
    const scl *s = st;
    if (!scl_has(s, layer, which)) return TK_OK;
    if (N != s->N) return tk_fail(TK_ERR_ARG, "scale-test merge: %lld rows, expected %lld", (long long)N, (long long)s->N);
    const float *l = s->ps->p[s->idx].w;
    for (int64_t j = 0; j < N; j++)
        for (int64_t k = 0; k < K; k++) W[j * K + k] *= 1.0f + scale * (l[j] - 1.0f);
    return TK_OK;
}

static const tk_peft_method k_scl = {.name = "scale-test", .has_linear = scl_has, .linear_fwd = scl_fwd, .merge_linear = scl_merge};

static tk_status scl_attach(const void *file, const char *name, tk_model *m, tk_param_set *ps, tk_peft **out) {
    const scl_file *f = file;
    *out = NULL;
    const tk_tensor_ref *wv = f->layer < m->cfg.n_layers ? tk_model_linear(m, f->layer, TK_LIN_V) : NULL;
    if (!wv || wv->ne[1] != f->N) return tk_fail(TK_ERR_ARG, "%s: no v_proj of %lld rows in layer %d", name, (long long)f->N, f->layer);
    scl *s = calloc(1, sizeof *s);
    if (!s) return TK_ERR_NOMEM;
    char pname[64];
    snprintf(pname, sizeof pname, "scale_test.layers.%d.v", f->layer);
    int64_t ne[1] = {f->N};
    tk_param *p;
    tk_status st = tk_params_add(ps, pname, 1, ne, NULL, false, &p);
    if (st) { free(s); return st; }
    memcpy(p->w, f->l, (size_t)f->N * sizeof(float));
    *s = (scl){.peft = {&k_scl, s}, .layer = f->layer, .N = f->N, .ps = ps, .idx = ps->n - 1};
    *out = &s->peft;
    return TK_OK;
}

static void scl_destroy(tk_peft *p) {
    if (p) free(p->state);
}

static void scl_describe(const void *file, tk_adapter_info *i) {
    const scl_file *f = file;
    i->targets = 1u << TK_LIN_V;
    i->min_layer = i->max_layer = f->layer;
    i->n_modules = 1;
}

static void scl_free_file(void *file) {
    scl_file *f = file;
    if (f) free(f->l);
    free(f);
}

static const tk_peft_kind k_scl_kind = {.name = "scale-test", .summary = "test-only IA3-like output scaling", .destroy = scl_destroy,
                                        .attach = scl_attach, .describe = scl_describe, .free_file = scl_free_file};

static scl_file *scl_file_new(int32_t layer, int64_t N) {
    scl_file *f = calloc(1, sizeof *f);
    if (!f || !(f->l = malloc((size_t)N * sizeof(float)))) { free(f); return NULL; }
    f->layer = layer;
    f->N = N;
    for (int64_t j = 0; j < N; j++) f->l[j] = 0.5f + 0.125f * (float)(j % 9);
    return f;
}

static bool logits(tk_model *m, const tk_peft *ad, tiny_batch *tb, float *out) {
    tk_forward *f = NULL;
    CHECK_OK(tk_forward_new(m, 2, 8, 0, &f));
    if (!f) return false;
    if (ad) { tk_adapter_use u = {ad, 1.0f}; CHECK_OK(tk_forward_set_adapters(f, &u, 1)); }
    tk_status st = tk_forward_run(f, &tb->b, NULL, 16, out);
    CHECK_OK(st);
    tk_forward_free(f);
    return st == TK_OK;
}

static double max_diff(const float *a, const float *b, int64_t n) {
    double d = 0;
    for (int64_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

static void test_plugged_kind(void) {
    tk_model *m = tiny_llama((tiny_opts){.interleaved = 0, .seed = 5});
    if (!m) { CHECK(0, "tiny"); return; }
    int64_t N = tk_model_linear(m, 1, TK_LIN_V)->ne[1];
    tk_adapter *a = NULL;
    CHECK_OK(tk_adapter_of_file(&k_scl_kind, "toy-ia3", "peft", scl_file_new(1, N), &a));
    /* a kind without describe is refused, and the file is freed all the same (ASan) */
    tk_peft_kind half = k_scl_kind;
    half.describe = NULL;
    tk_adapter *b = NULL;
    CHECK(tk_adapter_of_file(&half, "half", "peft", scl_file_new(1, N), &b) == TK_ERR_ARG && !b, "a kind without describe");
    if (!a) { tk_model_free(m); return; }
    tk_adapter_info i = tk_adapter_get_info(a);
    CHECK(!strcmp(i.method, "scale-test") && !strcmp(i.path, "toy-ia3") && !strcmp(i.format, "peft") && i.n_modules == 1 &&
              i.min_layer == 1 && i.targets == 1u << TK_LIN_V && i.r == 0 && !strcmp(i.arch, "") && !strcmp(i.base_model, ""),
          "info of the test kind's file");
    tk_param_set ps = {0};
    tk_lora *l = NULL;
    CHECK(tk_adapter_attach(a, m, &ps, &l) == TK_ERR_ARG && !l && strstr(tk_last_error(), "scale-test adapter, not LoRA"),
          "LoRA attach of another method: %s", tk_last_error());
    tk_peft *p = NULL;
    CHECK_OK(tk_adapter_attach_peft(a, m, &ps, &p));
    CHECK(p && p->method == &k_scl && ps.n == 1 && !strcmp(ps.p[0].name, "scale_test.layers.1.v"), "attached through the kind, params in ps");
    if (p) a->kind->destroy(p);
    tk_params_free(&ps);

    tk_adapter_handle *h = NULL;
    CHECK_OK(tk_adapter_apply_loaded(m, a, &h));
    tk_adapter_free(a);
    if (!h) { tk_model_free(m); return; }
    CHECK(tk_adapter_handle_peft(h)->method == &k_scl && !tk_adapter_handle_lora(h) && tk_adapter_handle_rank(h) == 0 &&
              tk_adapter_handle_scale(h) == 0.0f, "handle of the test method: the LoRA accessors say none");
    CHECK(tk_adapter_save(h, m, tmp_path("toy.gguf"), NULL) == TK_ERR_UNSUPPORTED &&
              strstr(tk_last_error(), "scale-test adapters have no GGUF layout"), "save GGUF: %s", tk_last_error());
    CHECK(tk_adapter_save(h, m, tmp_path("toy_peft"), NULL) == TK_ERR_UNSUPPORTED &&
              strstr(tk_last_error(), "scale-test adapters have no PEFT layout"), "save PEFT: %s", tk_last_error());

    tiny_batch tb;
    tiny_batch_init(&tb, 3);
    float base[640], adapted[640], merged[640];
    bool ok = logits(m, NULL, &tb, base) && logits(m, tk_adapter_handle_peft(h), &tb, adapted);
    CHECK(ok && max_diff(base, adapted, 640) > 1e-3, "the test method changes the logits");
    /* merged through the method's merge_linear, written as an HF folder and loaded back */
    tk_export_params ep = {.dtype = TK_F32};
    CHECK_OK(tk_adapter_merge(m, h, tmp_path("merged"), &ep));
    tk_model_params mp = tk_model_default_params();
    mp.tokenizer = TK_TOKENIZER_NONE;
    tk_model *mm = NULL;
    CHECK_OK(tk_model_load(tmp_path("merged"), &mp, &mm));
    if (mm && ok && logits(mm, NULL, &tb, merged))
        CHECK(max_diff(merged, adapted, 640) <= 1e-4, "merged vs applied: %.3e", max_diff(merged, adapted, 640));
    tk_model_free(mm);
    tk_adapter_detach(m, h);
    tk_model_free(m);
}

/* ---- choosing among kinds that share a peft_type ----------------------------------------- */

static bool claims_dora(const cJSON *cfg) { return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cfg, "use_dora")); }

static tk_status no_read(const cJSON *cfg, const char *cn, const tk_safetensors *sf, const char *sn, void **file) {
    *file = NULL;
    return tk_fail(TK_ERR_INTERNAL, "not called");
}

static void test_claims(void) {
    const tk_peft_kind plain = {.name = "plain", .peft_type = "LORA", .read_peft = no_read};
    const tk_peft_kind dora = {.name = "dora", .peft_type = "LORA", .peft_claims = claims_dora, .read_peft = no_read};
    const tk_peft_kind nofile = {.name = "nofile", .peft_type = "LORA"}; /* no reader: never chosen */
    cJSON *with = cJSON_Parse("{\"peft_type\": \"LORA\", \"use_dora\": true}"), *without = cJSON_Parse("{\"peft_type\": \"LORA\"}");
    tk_peft_kind t1[3] = {nofile, plain, dora}, t2[3] = {dora, nofile, plain};
    CHECK(tk_peft_kind_for_peft(t1, 3, "LORA", with) == &t1[2] && tk_peft_kind_for_peft(t2, 3, "LORA", with) == &t2[0],
          "use_dora: the claiming kind, in either order");
    CHECK(tk_peft_kind_for_peft(t1, 3, "LORA", without) == &t1[1] && tk_peft_kind_for_peft(t2, 3, "LORA", without) == &t2[2],
          "plain LoRA: the kind without peft_claims");
    CHECK(!tk_peft_kind_for_peft(t1, 1, "LORA", without) && !tk_peft_kind_for_peft(t1, 3, "IA3", with) &&
              !tk_peft_kind_for_peft(t1, 3, NULL, with), "no reader / another type / no type: none");
    cJSON_Delete(with);
    cJSON_Delete(without);
}

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "/tmp/tk_adapter_kinds_XXXXXX");
    if (!mkdtemp(g_tmp)) { fprintf(stderr, "mkdtemp failed\n"); return 1; }
    test_unsupported_types();
    test_registry_kinds();
    test_plugged_kind();
    test_claims();
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    if (system(cmd) != 0) fprintf(stderr, "note: could not remove %s\n", g_tmp);
    return tk_test_done("test_adapter_kinds");
}
