/* HF config.json reader: every config in tests/fixtures/hf/configs.json (real Llama 3.1,
 * SmolLM2, TinyLlama, Mistral, Qwen2.5 configs, default-only configs, configs saved by
 * transformers 5) must resolve to what transformers itself resolved
 * (tools/hf_config_reference.py), including which tensors the model has; the stories260K
 * config; corrupt and unsupported configs fail with messages naming file and field; the
 * HF <-> llama.cpp weight-name table and the q/k row permutation round trip. */
#include "test.h"
#include "core/core.h"
#include "model/hfconfig.h"
#include <cJSON.h>

static double jnum(const cJSON *o, const char *k) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(j) ? j->valuedouble : cJSON_IsBool(j) ? cJSON_IsTrue(j) : -12345;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* HF names of layer 0 and the global weights that a model with cfg/extra has. */
static int expected_tensors(const tk_model_config *c, const tk_hf_config_extra *x, char names[][96]) {
    static const char *const glob[] = {"token_embd.weight", "output_norm.weight", "output.weight"};
    static const char *const lay[] = {"attn_norm.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight",
                                      "attn_output.weight", "ffn_norm.weight", "ffn_gate.weight", "ffn_up.weight",
                                      "ffn_down.weight"};
    int n = 0;
    for (int i = 0; i < 3; i++) {
        if (i == 2 && c->tied_embeddings) continue;
        CHECK(tk_hf_weight_name(names[n], 96, glob[i], -1) != NULL, "name of %s", glob[i]);
        n++;
    }
    for (int i = 0; i < 9; i++) { CHECK(tk_hf_weight_name(names[n], 96, lay[i], 0) != NULL, "name of %s", lay[i]); n++; }
    if (c->qkv_bias)
        for (int i = 0; i < 3; i++) {
            const char *k = (const char *[]){"attn_q.bias", "attn_k.bias", "attn_v.bias"}[i];
            CHECK(tk_hf_weight_name(names[n], 96, k, 0) != NULL, "name of %s", k);
            n++;
        }
    if (x->o_bias) { CHECK(tk_hf_weight_name(names[n], 96, "attn_output.bias", 0) != NULL, "o bias"); n++; }
    return n;
}

static void test_reference_configs(void) {
    char *text = NULL;
    size_t len = 0;
    CHECK_OK(tk_read_file("tests/fixtures/hf/configs.json", &text, &len));
    cJSON *doc = text ? cJSON_Parse(text) : NULL;
    free(text);
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(doc, "cases");
    CHECK(cJSON_GetArraySize(cases) >= 10, "fixture has %d cases", cJSON_GetArraySize(cases));
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        const char *name = cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring;
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(c, "expect");
        char *json = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(c, "config"));
        tk_model_config cfg;
        tk_hf_config_extra x;
        CHECK_OK(tk_hf_config_parse(json, strlen(json), name, &cfg, &x));
        free(json);
        const char *arch = cJSON_GetObjectItemCaseSensitive(e, "arch")->valuestring;
        CHECK(!strcmp(cfg.arch, arch), "%s: arch %s vs %s", name, cfg.arch, arch);
#define EQ(field, key) CHECK((double)cfg.field == jnum(e, key), "%s: %s = %g, transformers says %g", name, key, (double)cfg.field, jnum(e, key))
        EQ(n_vocab, "n_vocab"); EQ(dim, "dim"); EQ(n_layers, "n_layers"); EQ(n_heads, "n_heads");
        EQ(n_kv_heads, "n_kv_heads"); EQ(head_dim, "head_dim"); EQ(hidden_dim, "hidden_dim"); EQ(max_seq, "max_seq");
        EQ(tied_embeddings, "tied"); EQ(qkv_bias, "qkv_bias"); EQ(rope_factor, "rope_factor");
#undef EQ
        CHECK((double)x.o_bias == jnum(e, "o_bias"), "%s: o_bias", name);
        CHECK((double)x.sliding_window == jnum(e, "sliding_window"), "%s: sliding_window %d vs %g", name, x.sliding_window, jnum(e, "sliding_window"));
        CHECK(cfg.rms_eps == (float)jnum(e, "rms_eps"), "%s: rms_eps %g vs %g", name, cfg.rms_eps, jnum(e, "rms_eps"));
        CHECK(cfg.rope_theta == (float)jnum(e, "rope_theta"), "%s: rope_theta %g vs %g", name, cfg.rope_theta, jnum(e, "rope_theta"));
        CHECK(cfg.rope_interleaved == 0, "%s: HF q/k rows are rotate_half", name);
        const char *rs = cJSON_GetObjectItemCaseSensitive(e, "rope_scaling")->valuestring;
        tk_rope_scaling want = !strcmp(rs, "linear") ? TK_ROPE_SCALING_LINEAR : !strcmp(rs, "llama3") ? TK_ROPE_SCALING_LLAMA3 : TK_ROPE_SCALING_NONE;
        CHECK(!strcmp(rs, "none") || want != TK_ROPE_SCALING_NONE, "%s: fixture rope type %s", name, rs);
        CHECK(cfg.rope_scaling == want, "%s: rope_scaling %d vs %s", name, (int)cfg.rope_scaling, rs);
        if (want == TK_ROPE_SCALING_LLAMA3) {
            CHECK(cfg.rope_low_freq_factor == (float)jnum(e, "rope_low"), "%s: low_freq_factor", name);
            CHECK(cfg.rope_high_freq_factor == (float)jnum(e, "rope_high"), "%s: high_freq_factor", name);
            CHECK(cfg.rope_orig_max_seq == jnum(e, "rope_orig"), "%s: original_max_position_embeddings", name);
        }
        /* the tensors transformers builds for this config = the ones the name table predicts */
        const cJSON *tl = cJSON_GetObjectItemCaseSensitive(e, "tensors");
        char names[16][96];
        int n = expected_tensors(&cfg, &x, names);
        char *ptrs[16];
        for (int i = 0; i < n; i++) ptrs[i] = names[i];
        qsort(ptrs, (size_t)n, sizeof *ptrs, cmp_str);
        CHECK(n == cJSON_GetArraySize(tl), "%s: %d tensors predicted, transformers has %d", name, n, cJSON_GetArraySize(tl));
        int i = 0;
        const cJSON *t;
        cJSON_ArrayForEach(t, tl) {
            if (i < n) CHECK(!strcmp(ptrs[i], t->valuestring), "%s: tensor %s vs %s", name, ptrs[i], t->valuestring);
            char key[64];
            int layer = -2;
            CHECK(tk_hf_weight_key(t->valuestring, key, sizeof key, &layer) == TK_OK, "%s: no key for %s", name, t->valuestring);
            i++;
        }
    }
    /* bos/eos as written (ints or a list) */
    const char *l31 = NULL;
    cJSON_ArrayForEach(c, cases)
        if (!strcmp(cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring, "llama31_8b"))
            l31 = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(c, "config"));
    tk_model_config cfg;
    tk_hf_config_extra x;
    CHECK(l31 != NULL, "llama31_8b case");
    if (l31) {
        CHECK_OK(tk_hf_config_parse(l31, strlen(l31), "llama31", &cfg, &x));
        CHECK(x.bos_id == 128000 && x.eos_id == 128001 && x.n_eos_ids == 3 && x.eos_ids[2] == 128009, "llama 3.1 bos/eos");
        CHECK(!strcmp(x.torch_dtype, "bfloat16"), "torch_dtype");
        free((char *)l31);
    }
    cJSON_Delete(doc);
}

static void test_stories(void) {
    const char *dir = tk_test_shared("models/stories260K/hf");
    if (tk_test_require(dir, "models/stories260K/hf")) return;
    tk_model_config cfg;
    tk_hf_config_extra x;
    /* folder and file forms; values from the model card (shared/README.md) */
    for (int form = 0; form < 2; form++) {
        char path[4096];
        snprintf(path, sizeof path, form ? "%s/config.json" : "%s", dir);
        CHECK_OK(tk_hf_config_load(path, &cfg, &x));
        CHECK(!strcmp(cfg.arch, "llama") && cfg.dim == 64 && cfg.hidden_dim == 172 && cfg.n_layers == 5 &&
              cfg.n_heads == 8 && cfg.n_kv_heads == 4 && cfg.head_dim == 8 && cfg.n_vocab == 512 &&
              cfg.max_seq == 512 && cfg.tied_embeddings && !cfg.qkv_bias && cfg.rope_interleaved == 0, "stories config");
        CHECK(cfg.rms_eps == 1e-5f && cfg.rope_theta == 10000.0f, "stories eps/theta");
        CHECK(x.bos_id == 1 && x.eos_id == 2 && x.n_eos_ids == 1, "stories bos/eos");
        CHECK(!strcmp(cfg.name, "hf"), "name from the folder: %s", cfg.name);
    }
    CHECK(tk_hf_config_load("/nonexistent/config.json", &cfg, &x) == TK_ERR_IO, "missing config");
    CHECK(strstr(tk_last_error(), "/nonexistent/config.json"), "message: %s", tk_last_error());
}

/* A config that must fail with status want and a message naming the file and containing needle. */
static void bad(const char *json, tk_status want, const char *needle) {
    tk_model_config cfg;
    tk_hf_config_extra x;
    memset(&cfg, 0x5a, sizeof cfg);
    tk_status s = tk_hf_config_parse(json, strlen(json), "bad/config.json", &cfg, &x);
    CHECK(s == want, "%s: status %s, want %s (%s)", json, tk_status_str(s), tk_status_str(want), tk_last_error());
    CHECK(strstr(tk_last_error(), "bad/config.json") != NULL, "message does not name the file: %s", tk_last_error());
    if (needle) CHECK(strstr(tk_last_error(), needle) != NULL, "message lacks '%s': %s", needle, tk_last_error());
    CHECK(cfg.n_layers == 0 && cfg.dim == 0, "config left half-filled after failure");
}

#define BASE "\"architectures\":[\"LlamaForCausalLM\"],\"vocab_size\":100,\"intermediate_size\":128,\"num_hidden_layers\":2"
static void test_bad(void) {
    bad("", TK_ERR_FORMAT, "not valid JSON");
    bad("{\"vocab_size\": 3", TK_ERR_FORMAT, "not valid JSON");
    bad("{} trailing", TK_ERR_FORMAT, "not valid JSON");
    bad("[1,2]", TK_ERR_FORMAT, "not a JSON object");
    bad("{\"architectures\":[\"GPT2LMHeadModel\"]}", TK_ERR_UNSUPPORTED, "unsupported architecture GPT2LMHeadModel");
    bad("{\"model_type\":\"gemma\"}", TK_ERR_UNSUPPORTED, "gemma");
    bad("{\"hidden_size\":64}", TK_ERR_FORMAT, "architectures");
    bad("{\"architectures\":\"LlamaForCausalLM\"}", TK_ERR_FORMAT, "architectures");
    bad("{\"architectures\":[\"LlamaForCausalLM\"]}", TK_ERR_FORMAT, "\"vocab_size\"");
    bad("{" BASE ",\"num_attention_heads\":4}", TK_ERR_FORMAT, "missing required field \"hidden_size\"");
    bad("{" BASE ",\"hidden_size\":64}", TK_ERR_FORMAT, "num_attention_heads");
    bad("{" BASE ",\"hidden_size\":64,\"num_attention_heads\":0}", TK_ERR_RANGE, "num_attention_heads");
    bad("{" BASE ",\"hidden_size\":64,\"num_attention_heads\":\"4\"}", TK_ERR_FORMAT, "\"num_attention_heads\" must be an integer (got a string)");
    bad("{" BASE ",\"hidden_size\":64.5,\"num_attention_heads\":4}", TK_ERR_FORMAT, "hidden_size");
    bad("{" BASE ",\"hidden_size\":-64,\"num_attention_heads\":4}", TK_ERR_RANGE, "hidden_size");
    bad("{" BASE ",\"hidden_size\":1e30,\"num_attention_heads\":4}", TK_ERR_FORMAT, "hidden_size");
    bad("{" BASE ",\"hidden_size\":64,\"num_attention_heads\":4,\"num_key_value_heads\":3}", TK_ERR_RANGE, "num_key_value_heads");
    bad("{" BASE ",\"hidden_size\":64,\"num_attention_heads\":4,\"num_key_value_heads\":8}", TK_ERR_RANGE, "num_key_value_heads");
    bad("{" BASE ",\"hidden_size\":64,\"num_attention_heads\":5}", TK_ERR_RANGE, "not divisible");
    bad("{" BASE ",\"hidden_size\":64,\"num_attention_heads\":4,\"head_dim\":7}", TK_ERR_RANGE, "head_dim");
    bad("{" BASE ",\"hidden_size\":64,\"num_attention_heads\":4,\"rms_norm_eps\":0}", TK_ERR_RANGE, "rms_norm_eps");
    bad("{" BASE ",\"hidden_size\":64,\"num_attention_heads\":4,\"rms_norm_eps\":\"1e-5\"}", TK_ERR_FORMAT, "rms_norm_eps");
    bad("{" BASE ",\"hidden_size\":64,\"num_attention_heads\":4,\"rope_theta\":-1}", TK_ERR_RANGE, "rope_theta");
    bad("{" BASE ",\"hidden_size\":64,\"num_attention_heads\":4,\"tie_word_embeddings\":1}", TK_ERR_FORMAT, "tie_word_embeddings");
    bad("{" BASE ",\"hidden_size\":64,\"num_attention_heads\":4,\"hidden_act\":\"gelu\"}", TK_ERR_UNSUPPORTED, "hidden_act gelu");
    bad("{" BASE ",\"hidden_size\":64,\"num_attention_heads\":4,\"mlp_bias\":true}", TK_ERR_UNSUPPORTED, "mlp_bias");
    bad("{" BASE ",\"hidden_size\":64,\"num_attention_heads\":4,\"rope_scaling\":{\"rope_type\":\"yarn\",\"factor\":4}}", TK_ERR_UNSUPPORTED, "yarn");
    bad("{" BASE ",\"hidden_size\":64,\"num_attention_heads\":4,\"rope_scaling\":{\"factor\":4}}", TK_ERR_FORMAT, "rope_type");
    bad("{" BASE ",\"hidden_size\":64,\"num_attention_heads\":4,\"rope_scaling\":{\"type\":\"linear\"}}", TK_ERR_FORMAT, "factor");
    bad("{" BASE ",\"hidden_size\":64,\"num_attention_heads\":4,\"rope_scaling\":[1]}", TK_ERR_FORMAT, "rope_scaling");
    bad("{" BASE ",\"hidden_size\":64,\"num_attention_heads\":4,\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8,"
        "\"low_freq_factor\":4,\"high_freq_factor\":1,\"original_max_position_embeddings\":8192}}", TK_ERR_RANGE, "high_freq_factor");
    bad("{" BASE ",\"hidden_size\":64,\"num_attention_heads\":4,\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8}}", TK_ERR_FORMAT, "low_freq_factor");
    bad("{" BASE ",\"hidden_size\":64,\"num_attention_heads\":4,\"rope_parameters\":{\"rope_type\":\"dynamic\",\"factor\":2}}", TK_ERR_UNSUPPORTED, "dynamic");
    bad("{" BASE ",\"hidden_size\":64,\"num_attention_heads\":4,\"eos_token_id\":[2,\"x\"]}", TK_ERR_FORMAT, "eos_token_id");
    bad("{" BASE ",\"hidden_size\":64,\"num_attention_heads\":4,\"bos_token_id\":-1}", TK_ERR_FORMAT, "bos_token_id");
    bad("{" BASE ",\"hidden_size\":64,\"num_attention_heads\":4,\"max_position_embeddings\":0}", TK_ERR_RANGE, "max_position_embeddings");
    bad("{\"architectures\":[\"LlamaForCausalLM\"],\"vocab_size\":100,\"intermediate_size\":128,\"num_hidden_layers\":0,"
        "\"hidden_size\":64,\"num_attention_heads\":4}", TK_ERR_RANGE, "num_hidden_layers");
    bad("{" BASE ",\"hidden_size\":64,\"num_attention_heads\":4,\"num_hidden_layers\":3}", TK_ERR_FORMAT, "\"num_hidden_layers\" appears twice");

    /* the good base parses, and rope_parameters carrying only rope_theta is plain RoPE */
    const char *ok = "{" BASE ",\"hidden_size\":64,\"num_attention_heads\":4,\"rope_parameters\":{\"rope_theta\":5e5},"
                     "\"eos_token_id\":null,\"head_dim\":null,\"hidden_act\":\"swish\"}";
    tk_model_config cfg;
    tk_hf_config_extra x;
    CHECK_OK(tk_hf_config_parse(ok, strlen(ok), "ok", &cfg, &x));
    CHECK(cfg.rope_theta == 5e5f && cfg.rope_scaling == TK_ROPE_SCALING_NONE && cfg.head_dim == 16 && x.eos_id == -1 && x.bos_id == -1,
          "rope_parameters theta only");
    CHECK_OK(tk_hf_config_parse(ok, strlen(ok), "ok", &cfg, NULL));
    /* a truncation of a valid config never passes as something else */
    int accepted = 0;
    for (size_t n = 0; n < strlen(ok); n++)
        if (tk_hf_config_parse(ok, n, "trunc", &cfg, &x) == TK_OK) accepted++;
    CHECK(accepted == 0, "%d truncations accepted", accepted);
}

static void test_names(void) {
    char buf[128], key[64];
    int layer;
    CHECK(tk_hf_weight_name(buf, sizeof buf, "attn_q.weight", 3) && !strcmp(buf, "model.layers.3.self_attn.q_proj.weight"), "q name");
    CHECK(tk_hf_weight_name(buf, sizeof buf, "ffn_down.weight", 12) && !strcmp(buf, "model.layers.12.mlp.down_proj.weight"), "down name");
    CHECK(tk_hf_weight_name(buf, sizeof buf, "output.weight", -1) && !strcmp(buf, "lm_head.weight"), "lm_head");
    CHECK(tk_hf_weight_name(buf, sizeof buf, "attn_q.weight", -1) == NULL, "per-layer key without a layer");
    CHECK(tk_hf_weight_name(buf, sizeof buf, "token_embd.weight", 0) == NULL, "global key with a layer");
    CHECK(tk_hf_weight_name(buf, sizeof buf, "nope", 0) == NULL, "unknown key");
    CHECK(tk_hf_weight_name(buf, 10, "attn_q.weight", 3) == NULL, "small buffer");
    CHECK(tk_hf_weight_key("model.layers.7.mlp.gate_proj.weight", key, sizeof key, &layer) == TK_OK &&
          !strcmp(key, "ffn_gate.weight") && layer == 7, "gate key");
    CHECK(tk_hf_weight_key("layers.2.self_attn.o_proj.weight", key, sizeof key, &layer) == TK_OK &&
          !strcmp(key, "attn_output.weight") && layer == 2, "bare LlamaModel name");
    CHECK(tk_hf_weight_key("embed_tokens.weight", key, sizeof key, &layer) == TK_OK && layer == -1, "bare embed");
    CHECK(tk_hf_weight_key("lm_head.weight", key, sizeof key, &layer) == TK_OK && !strcmp(key, "output.weight"), "lm_head key");
    CHECK(tk_hf_weight_key("model.layers.0.self_attn.rotary_emb.inv_freq", key, sizeof key, &layer) == TK_ERR_NOT_FOUND, "inv_freq");
    CHECK(tk_hf_weight_key("model.layers.01.mlp.up_proj.weight", key, sizeof key, &layer) == TK_ERR_NOT_FOUND, "leading zero");
    CHECK(tk_hf_weight_key("model.layers.-1.mlp.up_proj.weight", key, sizeof key, &layer) == TK_ERR_NOT_FOUND, "negative layer");
    CHECK(tk_hf_weight_key("model.layers.99999999999.mlp.up_proj.weight", key, sizeof key, &layer) == TK_ERR_NOT_FOUND, "huge layer");
    CHECK(tk_hf_weight_key("model.layers.1.mlp.up_proj.weightx", key, sizeof key, &layer) == TK_ERR_NOT_FOUND, "suffix");
    CHECK(tk_hf_weight_key("model.lm_head.weight", key, sizeof key, &layer) == TK_ERR_NOT_FOUND, "model.lm_head");
    /* every key round trips */
    static const char *const keys[] = {"attn_norm.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight",
        "attn_output.weight", "attn_q.bias", "attn_k.bias", "attn_v.bias", "attn_output.bias", "ffn_norm.weight",
        "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        for (int l = 0; l < 40; l += 13) {
            CHECK(tk_hf_weight_name(buf, sizeof buf, keys[i], l) != NULL, "%s", keys[i]);
            CHECK(tk_hf_weight_key(buf, key, sizeof key, &layer) == TK_OK && !strcmp(key, keys[i]) && layer == l, "round trip %s", buf);
        }
}

static void test_permute(void) {
    /* rows labelled by their index: to_hf must take, per head, even rows then odd rows */
    enum { H = 3, D = 8, COLS = 5 };
    float src[H * D * COLS], hf[H * D * COLS], back[H * D * COLS];
    for (int i = 0; i < H * D * COLS; i++) src[i] = (float)i;
    tk_permute_qk_rows_to_hf(hf, src, H, D, COLS * sizeof(float));
    int ok = 1;
    for (int h = 0; h < H; h++)
        for (int r = 0; r < D; r++) {
            int meta_row = r < D / 2 ? 2 * r : 2 * (r - D / 2) + 1;
            for (int c = 0; c < COLS; c++)
                ok &= hf[(h * D + r) * COLS + c] == src[(h * D + meta_row) * COLS + c];
        }
    CHECK(ok, "to_hf row order");
    tk_permute_qk_rows_from_hf(back, hf, H, D, COLS * sizeof(float));
    CHECK(!memcmp(back, src, sizeof src), "from_hf(to_hf(x)) == x");
    tk_permute_qk_rows_from_hf(hf, src, H, D, COLS * sizeof(float));
    tk_permute_qk_rows_to_hf(back, hf, H, D, COLS * sizeof(float));
    CHECK(!memcmp(back, src, sizeof src), "to_hf(from_hf(x)) == x");
}

int main(void) {
    test_reference_configs();
    test_stories();
    test_bad();
    test_names();
    test_permute();
    return tk_test_done("test_hfconfig");
}
