/* Prefix tuning as an HF PEFT folder (prefix.h): adapter_config.json (peft_type "PREFIX_TUNING",
 * task_type "CAUSAL_LM", num_virtual_tokens, num_layers, token_dim = KH*D, num_attention_heads =
 * KH as PEFT sets them for grouped-query attention) + adapter_model.safetensors with one tensor,
 * "prompt_embeddings" [P, num_layers * 2 * token_dim]: the prefix after the projection (what
 * PEFT saves and what PeftModel.from_pretrained uses in inference mode). Read back it is a
 * plain embedding (no projection), trainable further. No GGUF layout: llama.cpp has no prefix
 * tuning. */
#include "peft/prefix.h"
#include "peft/lora_io.h"
#include "model/llama.h"
#include "core/core.h"
#include <cJSON.h>
#include <math.h>
#include <stdio.h>

typedef struct prefix_file {
    int32_t P, L, token_dim, heads;
    char *base_model;
    float *emb;   /* [P x L*2*token_dim] */
} prefix_file;

void tk_prefix_file_free(void *file) {
    prefix_file *f = file;
    if (!f) return;
    free(f->base_model);
    free(f->emb);
    free(f);
}

static tk_status int_field(const cJSON *cfg, const char *key, const char *file, int32_t lo, int32_t *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo || v->valuedouble > 1e7)
        return tk_fail(TK_ERR_FORMAT, "%s: \"%s\" must be a whole number >= %d", file, key, lo);
    *out = (int32_t)v->valuedouble;
    return TK_OK;
}

static tk_status read_config(prefix_file *f, const cJSON *cfg, const char *file) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, "task_type");
    if (cJSON_IsString(v) && strcmp(v->valuestring, "CAUSAL_LM"))
        return tk_fail(TK_ERR_UNSUPPORTED, "%s: \"task_type\" is %s (takumi reads CAUSAL_LM prefix adapters)", file, v->valuestring);
    tk_status st;
    int32_t sub = 1;
    if ((st = int_field(cfg, "num_virtual_tokens", file, 1, &f->P)) || (st = int_field(cfg, "num_layers", file, 1, &f->L)) ||
        (st = int_field(cfg, "token_dim", file, 1, &f->token_dim)) || (st = int_field(cfg, "num_attention_heads", file, 1, &f->heads)))
        return st;
    if (cJSON_GetObjectItemCaseSensitive(cfg, "num_transformer_submodules") &&
        (st = int_field(cfg, "num_transformer_submodules", file, 1, &sub)))
        return st;
    if (sub != 1)
        return tk_fail(TK_ERR_UNSUPPORTED, "%s: \"num_transformer_submodules\" is %d (encoder-decoder models are not supported)", file, sub);
    if (f->token_dim % f->heads)
        return tk_fail(TK_ERR_FORMAT, "%s: \"token_dim\" %d is not a multiple of \"num_attention_heads\" %d", file, f->token_dim, f->heads);
    v = cJSON_GetObjectItemCaseSensitive(cfg, "modules_to_save");
    if (v && !cJSON_IsNull(v) && !(cJSON_IsArray(v) && !v->child))
        return tk_fail(TK_ERR_UNSUPPORTED, "%s: \"modules_to_save\" is set (fully trained extra modules are not supported)", file);
    v = cJSON_GetObjectItemCaseSensitive(cfg, "base_model_name_or_path");
    return (f->base_model = tk_strdup(cJSON_IsString(v) ? v->valuestring : "")) ? TK_OK : TK_ERR_NOMEM;
}

static tk_status read_tensor(prefix_file *f, const tk_safetensors *sf, const char *st_name, const char *cfg_name) {
    int64_t W = (int64_t)f->L * 2 * f->token_dim;
    for (int64_t i = 0; i < tk_st_n_tensors(sf); i++)
        if (strcmp(tk_st_tensor(sf, i)->name, "prompt_embeddings"))
            return tk_fail(TK_ERR_UNSUPPORTED, "%s: tensor '%s' is not part of a prefix-tuning adapter (only \"prompt_embeddings\")",
                           st_name, tk_st_tensor(sf, i)->name);
    const tk_tensor_ref *t = tk_st_find(sf, "prompt_embeddings");
    if (!t) return tk_fail(TK_ERR_FORMAT, "%s: no tensor \"prompt_embeddings\"", st_name);
    if (t->n_dims != 2 || t->ne[1] != f->P || t->ne[0] != W)
        return tk_fail(TK_ERR_FORMAT, "%s: \"prompt_embeddings\" must have torch shape [%d, %lld] (num_virtual_tokens, num_layers x 2 x "
                                      "token_dim of %s)", st_name, f->P, (long long)W, cfg_name);
    if (t->dtype != TK_F32 && t->dtype != TK_F16 && t->dtype != TK_BF16)
        return tk_fail(TK_ERR_UNSUPPORTED, "%s: \"prompt_embeddings\" has dtype %s (f32, f16, bf16 are read)", st_name, tk_dtype_name(t->dtype));
    int64_t n = W * f->P;
    if (!(f->emb = tk_malloc((size_t)n * sizeof(float)))) return TK_ERR_NOMEM;
    tk_status st = tk_dequantize(t->dtype, t->data, f->emb, n);
    if (st) return tk_fail_ctx(st, "%s: \"prompt_embeddings\": ", st_name);
    for (int64_t k = 0; k < n; k++)
        if (!isfinite(f->emb[k])) return tk_fail(TK_ERR_FORMAT, "%s: \"prompt_embeddings\" holds a non-finite value", st_name);
    return TK_OK;
}

tk_status tk_prefix_read_peft(const cJSON *cfg, const char *cfg_name, const tk_safetensors *sf, const char *st_name, void **file) {
    *file = NULL;
    prefix_file *f = tk_calloc(1, sizeof *f);
    if (!f) return TK_ERR_NOMEM;
    tk_status st = read_config(f, cfg, cfg_name);
    if (!st && sf) st = read_tensor(f, sf, st_name, cfg_name);
    if (st || !sf) { tk_prefix_file_free(f); return st; }
    *file = f;
    return TK_OK;
}

tk_status tk_prefix_attach_file(const void *file, const char *name, tk_model *m, tk_param_set *ps, tk_peft **out) {
    *out = NULL;
    const prefix_file *f = file;
    if (!f || !m || !ps) return tk_fail(TK_ERR_ARG, "adapter: NULL argument");
    const tk_model_config *mc = tk_model_get_config(m);
    if (f->L != mc->n_layers || f->heads != mc->n_kv_heads || f->token_dim != mc->n_kv_heads * mc->head_dim)
        return tk_fail(TK_ERR_ARG, "%s: the prefix is for %d layers of %d key/value heads x %d dims, the model has %d layers of %d x %d "
                                   "(an adapter for another model?)", name, f->L, f->heads, f->token_dim / f->heads, mc->n_layers,
                       mc->n_kv_heads, mc->head_dim);
    tk_prefix_config c = tk_prefix_default_config();
    c.num_virtual_tokens = f->P;
    tk_prefix *a;
    tk_status st = tk_prefix_new(m, &c, ps, &a);
    if (st) return tk_fail_ctx(st, "%s: ", name);
    tk_param *e = tk_params_find(ps, "prompt_encoder.embedding.weight");
    if (!e || e->n != (int64_t)f->P * tk_prefix_width(a)) { tk_prefix_free(a); return tk_fail(TK_ERR_INTERNAL, "%s: prefix embedding missing", name); }
    memcpy(e->w, f->emb, (size_t)e->n * sizeof(float));
    *out = (tk_peft *)tk_prefix_peft(a);
    return TK_OK;
}

void tk_prefix_describe_file(const void *file, tk_adapter_info *i) {
    const prefix_file *f = file;
    i->base_model = f->base_model ? f->base_model : "";
    i->arch = "";
    i->r = 0;          /* no rank: the virtual tokens are in the config */
    i->targets = 0;
    i->min_layer = 0;
    i->max_layer = f->L - 1;
    i->n_modules = f->L;
}

/* ---- writing -------------------------------------------------------------------------------- */

tk_status tk_prefix_save_peft(tk_prefix *a, const tk_model *m, const char *dir, const char *base_model) {
    if (!a || !m || !dir) return tk_fail(TK_ERR_ARG, "adapter: NULL argument");
    const tk_prefix_config *cfg = tk_prefix_get_config(a);
    const tk_model_config *mc = tk_model_get_config(m);
    int64_t W = tk_prefix_width(a), P = cfg->num_virtual_tokens, kvd = (int64_t)mc->n_kv_heads * mc->head_dim;
    tk_status st = tk_mkdir_p(dir);
    if (st) return st;
    tk_st_writer *w = tk_st_writer_new();
    char *st_path = tk_path_join(dir, "adapter_model.safetensors"), *cfg_path = tk_path_join(dir, "adapter_config.json");
    float *emb = tk_malloc((size_t)(P * W) * sizeof(float));
    cJSON *root = NULL;
    if (!w || !st_path || !cfg_path || !emb) { st = TK_ERR_NOMEM; goto done; }
    int64_t ne[2] = {W, P};
    if ((st = tk_prefix_embeddings(a, emb)) || (st = tk_st_add(w, "prompt_embeddings", TK_F32, 2, ne, emb))) goto done;
    if ((st = tk_st_set_metadata(w, "format", "pt")) || (st = tk_st_write(w, st_path))) goto done;
    if (!(root = cJSON_CreateObject())) { st = TK_ERR_NOMEM; goto done; }
    const char *bm = base_model ? base_model : tk_model_path(m);
    if (bm) cJSON_AddStringToObject(root, "base_model_name_or_path", bm);
    else cJSON_AddNullToObject(root, "base_model_name_or_path");
    cJSON_AddNumberToObject(root, "encoder_hidden_size", cfg->encoder_hidden_size);
    cJSON_AddBoolToObject(root, "inference_mode", true);
    cJSON_AddNullToObject(root, "modules_to_save");
    cJSON_AddNumberToObject(root, "num_attention_heads", mc->n_kv_heads);
    cJSON_AddNumberToObject(root, "num_layers", mc->n_layers);
    cJSON_AddNumberToObject(root, "num_transformer_submodules", 1);
    cJSON_AddNumberToObject(root, "num_virtual_tokens", (double)P);
    cJSON_AddStringToObject(root, "peft_type", "PREFIX_TUNING");
    /* the saved embeddings are the projection's output: PEFT reads them in inference mode either way */
    cJSON_AddBoolToObject(root, "prefix_projection", cfg->projection);
    cJSON_AddNullToObject(root, "revision");
    cJSON_AddStringToObject(root, "task_type", "CAUSAL_LM");
    cJSON_AddNumberToObject(root, "token_dim", (double)kvd);
    st = tk_peft_write_json(cfg_path, root);
done:
    cJSON_Delete(root);
    free(emb);
    free(st_path);
    free(cfg_path);
    tk_st_writer_free(w);
    return st ? tk_fail_ctx(st, "writing the PEFT adapter %s: ", dir) : TK_OK;
}
