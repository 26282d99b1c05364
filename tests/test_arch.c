/* Gemma 3, Qwen3 and Phi-3 against HF transformers / PEFT on tiny random models
 * (tests/fixtures/arch/<name>/, written by tools/make_arch_fixtures.py): logits of a
 * 2 x 12 batch, the same rows packed two examples per row and with padding, greedy
 * continuation through a KV-cache session (prefill + decode) equal to generate(do_sample=
 * False), and the gradients of full fine-tuning and of LoRA (PEFT's modules of the family:
 * Phi-3's fused qkv_proj / gate_up_proj) against PyTorch autograd. The same for the GGUF
 * forms of Qwen3 and Phi-3 (model.gguf, llama.cpp names and metadata); an export to an HF
 * folder reloads to the same logits (Gemma's norms go back to w of (1 + w)); a trained
 * adapter written as PEFT and as GGUF reloads to the same logits. Prints the max relative
 * error (max |a - b| / max |b|) of each. */
#include "test.h"
#include "train/step.h"
#include "model/llama.h"
#include "model/export.h"
#include "peft/adapter_io.h"
#include "model/hfconfig.h"
#include <sys/stat.h>

static const float *fx(const tk_safetensors *st, const char *name, int64_t n, tk_dtype dt) {
    const tk_tensor_ref *t = tk_st_find(st, name);
    CHECK(t != NULL, "fixture tensor %s", name);
    if (!t) return NULL;
    CHECK(t->dtype == dt && (n < 0 || tk_tensor_nelems(t) == n), "fixture tensor %s: %lld elements of %s, expected %lld",
          name, (long long)tk_tensor_nelems(t), tk_dtype_name(t->dtype), (long long)n);
    return t->dtype == dt && (n < 0 || tk_tensor_nelems(t) == n) ? t->data : NULL;
}

static double rel_err(const float *a, const float *b, int64_t n) {
    double md = 0, mb = 0;
    for (int64_t i = 0; i < n; i++) {
        md = fmax(md, fabs((double)a[i] - b[i]));
        mb = fmax(mb, fabs((double)b[i]));
    }
    return md / (mb > 0 ? mb : 1);
}

/* max rel err of logits rows [t0, t0+n) of token block got (row stride V) vs ref rows r0.. */
static double rows_err(const float *got, const float *ref, int64_t n, int64_t V) { return rel_err(got, ref, n * V); }

static void check_forward(tk_model *m, const tk_safetensors *st, const char *name) {
    const tk_model_config *c = tk_model_get_config(m);
    const tk_tensor_ref *ti = tk_st_find(st, "ids");
    if (!ti) { CHECK(0, "%s: ids", name); return; }
    int32_t T = (int32_t)ti->ne[0], B = (int32_t)ti->ne[1], V = c->n_vocab;
    const int32_t *ids = ti->data;
    const float *ref = fx(st, "logits", (int64_t)B * T * V, TK_F32);
    if (!ref) return;
    float *lg = malloc((size_t)B * T * V * sizeof(float));
    tk_forward *f = NULL;
    CHECK_OK(tk_forward_new(m, B, T, 0, &f));
    tk_batch b = {.n_rows = B, .n_cols = T, .ids = ids};
    CHECK_OK(tk_forward_run(f, &b, NULL, (int64_t)B * T, lg));
    double e = rows_err(lg, ref, (int64_t)B * T, V);
    printf("  %s logits (%d x %d): max rel err %.2e\n", name, B, T, e);
    CHECK(e <= 1e-4, "%s logits: %.3e", name, e);

    /* packing: the first h tokens of both rows in one row (segments 0 / 1, positions restart),
     * then padding: row 0's first T-4 tokens and 4 padding tokens */
    int32_t h = T / 2, pids[64], ppos[64], pseg[64];
    for (int32_t t = 0; t < T; t++) {
        int32_t r = t < h ? 0 : 1, u = t < h ? t : t - h;
        pids[t] = ids[r * T + u];
        ppos[t] = u;
        pseg[t] = r;
    }
    tk_batch pb = {.n_rows = 1, .n_cols = T, .ids = pids, .pos = ppos, .seg = pseg};
    CHECK_OK(tk_forward_run(f, &pb, NULL, T, lg));
    double ep = fmax(rows_err(lg, ref, h, V), rows_err(lg + (int64_t)h * V, ref + (int64_t)T * V, h, V));
    int32_t qids[64], qseg[64];
    for (int32_t t = 0; t < T; t++) { qids[t] = t < T - 4 ? ids[t] : 0; qseg[t] = t < T - 4 ? 0 : -1; }
    tk_batch qb = {.n_rows = 1, .n_cols = T, .ids = qids, .seg = qseg};
    CHECK_OK(tk_forward_run(f, &qb, NULL, T, lg));
    ep = fmax(ep, rows_err(lg, ref, T - 4, V));
    printf("  %s packed (2 examples in a row) and padded rows: max rel err %.2e\n", name, ep);
    CHECK(ep <= 1e-4, "%s packed/padded logits: %.3e", name, ep);
    tk_forward_free(f);

    /* greedy continuation through the KV cache: prefill the prompt, then one token at a time */
    const tk_tensor_ref *gp = tk_st_find(st, "greedy_prompt"), *gi = tk_st_find(st, "greedy_ids");
    CHECK(gp && gi, "%s greedy fixtures", name);
    if (gp && gi) {
        tk_session *s = NULL;
        CHECK_OK(tk_session_new(m, 64, &s));
        int64_t n = gi->ne[0];
        int32_t got[64];
        const int32_t *want = gi->data;
        bool same = s != NULL;
        if (s && tk_session_eval(s, gp->data, gp->ne[0], lg) == TK_OK) {
            for (int64_t i = 0; i < n && i < 64; i++) {
                int32_t best = 0;
                for (int32_t v = 1; v < V; v++) if (lg[v] > lg[best]) best = v;
                got[i] = best;
                same = same && best == want[i];
                if (tk_session_eval(s, &best, 1, lg) != TK_OK) { same = false; break; }
            }
        } else same = false;
        printf("  %s greedy (prefill %lld + %lld decode steps): %s\n", name, (long long)gp->ne[0], (long long)n,
               same ? "equal to HF generate" : "DIFFERENT");
        CHECK(same, "%s greedy ids differ from HF generate (first got %d, want %d)", name, got[0], want[0]);
        tk_session_free(s);
    }
    free(lg);
}

typedef struct ref_batch { tk_batch b; const int32_t *target; const float *weight; double wsum; } ref_batch;

/* Logits of batch b into a new buffer (NULL on failure). */
/* All logits of b under m with adapter ad applied (NULL: the base). */
static float *logits_of(tk_model *m, const tk_peft *ad, const tk_batch *b) {
    int64_t T = (int64_t)b->n_rows * b->n_cols, V = tk_model_get_config(m)->n_vocab;
    float *lg = malloc((size_t)(T * V) * sizeof(float));
    tk_forward *f = NULL;
    CHECK_OK(tk_forward_new(m, b->n_rows, b->n_cols, 0, &f));
    tk_adapter_use u = {ad, 1.0f};
    if (f && ad) CHECK_OK(tk_forward_set_adapters(f, &u, 1));
    if (!f || !lg || tk_forward_run(f, b, NULL, T, lg) != TK_OK) { free(lg); lg = NULL; }
    tk_forward_free(f);
    return lg;
}

/* The trained LoRA (applied by tc's workspace) saved as PEFT and as GGUF, reloaded onto m: same logits. */
static void adapter_roundtrip(tk_model *m, tk_train_ctx *tc, ref_batch *rb, const char *name) {
    int64_t n = (int64_t)rb->b.n_rows * rb->b.n_cols * tk_model_get_config(m)->n_vocab;
    float *want = logits_of(m, tk_lora_peft(tk_train_lora(tc)), &rb->b);
    char dir[128], gg[160];
    snprintf(dir, sizeof dir, "/tmp/takumi_test_arch_%d_%s_peft", (int)getpid(), name);
    snprintf(gg, sizeof gg, "/tmp/takumi_test_arch_%d_%s.gguf", (int)getpid(), name);
    CHECK_OK(tk_adapter_save_peft(tk_train_lora(tc), m, dir, NULL));
    CHECK_OK(tk_adapter_save_gguf(tk_train_lora(tc), m, gg));
    const char *paths[2] = {dir, gg};
    double worst = 0;
    for (int i = 0; i < 2 && want; i++) {
        tk_adapter_handle *h = NULL;
        CHECK_OK(tk_adapter_apply(m, paths[i], &h));
        float *got = h ? logits_of(m, tk_adapter_handle_peft(h), &rb->b) : NULL;
        if (got) worst = fmax(worst, rel_err(got, want, n));
        CHECK(got != NULL, "%s adapter %s: forward", name, paths[i]);
        free(got);
        if (h) tk_adapter_detach(m, h);
    }
    printf("  %s adapter written as PEFT and GGUF, reloaded: logits max rel err %.2e\n", name, worst);
    CHECK(worst <= 1e-5, "%s adapter roundtrip logits: %.3e", name, worst);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", dir, gg);
    CHECK(system(cmd) == 0, "cleanup");
    free(want);
}

static double grads(tk_train_ctx *tc, ref_batch *rb) {
    tk_params_zero_grad(tk_train_param_set(tc));
    double ls = 0, ws = 0;
    CHECK_OK(tk_train_step_fwd_bwd(tc, &rb->b, rb->target, rb->weight, (float)(1.0 / rb->wsum), &ls, &ws));
    return ws > 0 ? ls / ws : NAN;
}

static void check_training(tk_model *m, const tk_safetensors *st, const char *name, bool recompute) {
    const tk_tensor_ref *ti = tk_st_find(st, "ids");
    if (!ti) return;
    ref_batch rb = {.b = {.n_rows = (int32_t)ti->ne[1], .n_cols = (int32_t)ti->ne[0], .ids = ti->data}};
    int64_t T = (int64_t)rb.b.n_rows * rb.b.n_cols;
    rb.target = (const int32_t *)fx(st, "target", T, TK_I32);
    rb.weight = fx(st, "weight", T, TK_F32);
    if (!rb.target || !rb.weight) return;
    for (int64_t t = 0; t < T; t++) if (rb.target[t] >= 0) rb.wsum += rb.weight[t];
    const char *how = recompute ? " (recompute)" : "";

    /* LoRA r=4, alpha=8 on PEFT's modules */
    tk_train_params p = tk_train_default_params();
    p.lora.r = 4;
    p.lora.alpha = 8;
    p.lora.dropout = 0;
    p.max_rows = rb.b.n_rows;
    p.max_cols = rb.b.n_cols;
    p.recompute = recompute;
    tk_train_ctx *tc = NULL;
    CHECK_OK(tk_train_ctx_new(m, &p, &tc));
    if (tc) {
        tk_param_set *ps = tk_train_param_set(tc);
        const char *ln = tk_st_metadata(st, "lora_n");
        CHECK(ln && ps->n == atoll(ln), "%s LoRA: %lld params, PEFT %s", name, (long long)ps->n, ln ? ln : "?");
        char key[256];
        for (int64_t i = 0; i < ps->n; i++) {
            snprintf(key, sizeof key, "init.%s", ps->p[i].name);
            const float *v = fx(st, key, ps->p[i].n, TK_F32);
            if (v) memcpy(ps->p[i].w, v, (size_t)ps->p[i].n * sizeof(float));
        }
        double loss = grads(tc, &rb), ref = atof(tk_st_metadata(st, "lora_loss"));
        double worst = 0;
        for (int64_t i = 0; i < ps->n; i++) {
            snprintf(key, sizeof key, "grad.%s", ps->p[i].name);
            const float *g = fx(st, key, ps->p[i].n, TK_F32);
            if (!g) continue;
            double e = rel_err(ps->p[i].g, g, ps->p[i].n);
            CHECK(e <= 1e-4, "%s LoRA gradient %s: %.3e", name, ps->p[i].name, e);
            worst = fmax(worst, e);
        }
        printf("  %s LoRA%s: loss %.7f (torch %.7f), %lld gradients: max rel err %.2e\n", name, how, loss, ref,
               (long long)ps->n, worst);
        CHECK(fabs(loss - ref) <= 1e-5 * ref, "%s LoRA loss %.7f vs %.7f", name, loss, ref);
        if (!recompute) adapter_roundtrip(m, tc, &rb, name);
        tk_train_ctx_free(tc);
    }

    /* full fine-tuning: every weight */
    p.method = TK_TRAIN_FULL;
    tc = NULL;
    CHECK_OK(tk_train_ctx_new(m, &p, &tc));
    if (tc) {
        tk_param_set *ps = tk_train_param_set(tc);
        double loss = grads(tc, &rb), ref = atof(tk_st_metadata(st, "full_loss"));
        double worst = 0;
        int64_t nfix = 0;
        char key[256];
        for (int64_t i = 0; i < ps->n; i++) {
            snprintf(key, sizeof key, "fgrad.%s", ps->p[i].name);
            const float *g = fx(st, key, ps->p[i].n, TK_F32);
            if (!g) continue;
            nfix++;
            double e = rel_err(ps->p[i].g, g, ps->p[i].n);
            CHECK(e <= 1e-4, "%s full gradient %s: %.3e", name, ps->p[i].name, e);
            worst = fmax(worst, e);
        }
        /* every torch parameter has its takumi counterpart */
        int64_t ntorch = 0;
        for (int64_t i = 0; i < tk_st_n_tensors(st); i++)
            if (!strncmp(tk_st_tensor(st, i)->name, "fgrad.", 6)) ntorch++;
        CHECK(nfix == ps->n && ps->n == ntorch, "%s full: %lld params, %lld compared, torch has %lld", name, (long long)ps->n,
              (long long)nfix, (long long)ntorch);
        printf("  %s full%s: loss %.7f (torch %.7f), %lld gradients: max rel err %.2e\n", name, how, loss, ref,
               (long long)ps->n, worst);
        CHECK(fabs(loss - ref) <= 1e-5 * ref, "%s full loss %.7f vs %.7f", name, loss, ref);
        tk_train_ctx_free(tc);
    }
}

/* Loads path, checks its family and runs the forward checks (and the training checks when train). */
static tk_model *load_checked(const char *path, const tk_safetensors *st, const char *name, const char *what, bool train) {
    tk_model_params mp = tk_model_default_params();
    mp.tokenizer = TK_TOKENIZER_NONE;
    tk_model *m = NULL;
    CHECK_OK(tk_model_load(path, &mp, &m));
    if (!m) return NULL;
    const tk_model_config *c = tk_model_get_config(m);
    printf("%s (%s): C %d, L %d, H %d/%d, D %d, F %d\n", name, what, c->dim, c->n_layers, c->n_heads, c->n_kv_heads,
           c->head_dim, c->hidden_dim);
    CHECK(!strcmp(c->arch, name), "arch %s", c->arch);
    check_forward(m, st, name);
    if (train) {
        check_training(m, st, name, false);
        check_training(m, st, name, true);
    }
    return m;
}

/* Exports m to an HF folder (f32) and checks the reloaded model against the reference. */
static void export_roundtrip(tk_model *m, const tk_safetensors *st, const char *name, const char *from) {
    char dir[160], what[64], cmd[300];
    snprintf(dir, sizeof dir, "/tmp/takumi_test_arch_%d_%s_export", (int)getpid(), name);
    snprintf(what, sizeof what, "exported from %s to an HF folder", from);
    tk_export_params ep = tk_export_default_params();
    ep.dtype = TK_F32;
    CHECK_OK(tk_export_model(m, dir, &ep));
    tk_model_free(load_checked(dir, st, name, what, false));
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "cleanup");
}

static void one(const char *name, const char *hf_arch) {
    char dir[256], ref[300], gguf[300];
    snprintf(dir, sizeof dir, "tests/fixtures/arch/%s", name);
    snprintf(ref, sizeof ref, "%s/ref.safetensors", dir);
    snprintf(gguf, sizeof gguf, "%s/model.gguf", dir);
    tk_safetensors *st = NULL;
    CHECK_OK(tk_st_open(ref, &st));
    if (!st) return;
    tk_model *m = load_checked(dir, st, name, hf_arch, true);
    if (m) export_roundtrip(m, st, name, "HF");
    tk_model_free(m);
    if (access(gguf, F_OK) == 0) {
        m = load_checked(gguf, st, name, "GGUF", true);
        if (m) export_roundtrip(m, st, name, "GGUF");
        tk_model_free(m);
    }
    tk_st_close(st);
}

/* config.json features takumi does not run are refused with a message naming the field. */
static void config_errors(void) {
    static const struct { const char *json, *field; } bad[] = {
        {"{\"architectures\":[\"Qwen3ForCausalLM\"],\"vocab_size\":8,\"hidden_size\":8,\"num_hidden_layers\":2,"
         "\"num_attention_heads\":2,\"num_key_value_heads\":1,\"intermediate_size\":8,\"final_logit_softcapping\":30.0}", "final_logit_softcapping"},
        {"{\"architectures\":[\"Gemma3ForCausalLM\"],\"vocab_size\":8,\"hidden_size\":8,\"num_hidden_layers\":3,"
         "\"num_attention_heads\":2,\"num_key_value_heads\":1,\"intermediate_size\":8,\"layer_types\":[\"full_attention\",\"sliding_attention\",\"sliding_attention\"]}",
         "layer_types"},
        {"{\"architectures\":[\"Gemma3ForCausalLM\"],\"vocab_size\":8,\"hidden_size\":8,\"num_hidden_layers\":2,"
         "\"num_attention_heads\":2,\"num_key_value_heads\":1,\"intermediate_size\":8,\"hidden_activation\":\"relu\"}", "hidden_activation"},
        {"{\"architectures\":[\"Phi3ForCausalLM\"],\"vocab_size\":8,\"hidden_size\":8,\"num_hidden_layers\":2,"
         "\"num_attention_heads\":2,\"num_key_value_heads\":1,\"intermediate_size\":8,\"rope_parameters\":{\"rope_type\":\"default\",\"partial_rotary_factor\":0.5}}",
         "partial_rotary_factor"},
        {"{\"architectures\":[\"Qwen3ForCausalLM\"],\"vocab_size\":8,\"hidden_size\":8,\"num_hidden_layers\":2,"
         "\"num_attention_heads\":2,\"num_key_value_heads\":1,\"intermediate_size\":8,\"use_sliding_window\":true}", "use_sliding_window"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tk_model_config c;
        tk_status st = tk_hf_config_parse(bad[i].json, strlen(bad[i].json), "x/config.json", &c, NULL);
        CHECK(st == TK_ERR_UNSUPPORTED && strstr(tk_last_error(), bad[i].field) && strstr(tk_last_error(), "x/config.json"),
              "config %zu: %s (%s)", i, tk_status_str(st), tk_last_error());
    }
    /* a Gemma 3 config of transformers 4 (rope_local_base_freq, sliding_window_pattern) */
    const char *v4 = "{\"architectures\":[\"Gemma3ForCausalLM\"],\"vocab_size\":8,\"hidden_size\":8,\"num_hidden_layers\":4,"
                     "\"num_attention_heads\":2,\"num_key_value_heads\":1,\"intermediate_size\":8,\"rope_theta\":1000000.0,\"rope_local_base_freq\":10000.0,"
                     "\"rope_scaling\":{\"rope_type\":\"linear\",\"factor\":8.0},\"sliding_window\":512,\"sliding_window_pattern\":2,"
                     "\"query_pre_attn_scalar\":64}";
    tk_model_config c;
    CHECK_OK(tk_hf_config_parse(v4, strlen(v4), "v4/config.json", &c, NULL));
    CHECK(c.sliding_window == 512 && c.swa_period == 2 && tk_layer_sliding(&c, 0) && !tk_layer_sliding(&c, 1) &&
          c.rope_theta_local == 10000.0f && c.rope_theta == 1e6f && c.rope_scaling == TK_ROPE_SCALING_LINEAR &&
          c.rope_factor == 8.0f && fabsf(c.attn_scale - 0.125f) < 1e-7f && c.tied_embeddings && c.head_dim == 256 &&
          c.act == TK_ACT_GELU_TANH && c.qk_norm && c.sandwich_norm && fabsf(c.embed_scale - sqrtf(8.0f)) < 1e-6f,
          "gemma3 transformers-4 config read as the description says");
    printf("config.json: %zu unsupported features refused by name; a transformers-4 Gemma 3 config read\n", sizeof bad / sizeof bad[0]);
}

int main(void) {
    tk_set_threads(2);
    config_errors();
    one("gemma3", "Gemma3ForCausalLM");
    one("qwen3", "Qwen3ForCausalLM");
    one("phi3", "Phi3ForCausalLM");
    one("gemma2", "Gemma2ForCausalLM");
    return tk_test_done("test_arch");
}
