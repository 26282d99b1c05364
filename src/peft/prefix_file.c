/* Prefix tuning as an HF PEFT folder (prefix.h): adapter_config.json (peft_type "PREFIX_TUNING",
 * task_type "CAUSAL_LM", num_virtual_tokens, num_layers, token_dim = KH*D, num_attention_heads =
 * KH as PEFT sets them for grouped-query attention) + adapter_model.safetensors with one tensor,
 * "prompt_embeddings" [P, num_layers * 2 * token_dim]: the prefix after the projection (what
 * PEFT saves and what PeftModel.from_pretrained uses in inference mode). Read back it is a
 * plain embedding (no projection), trainable further. No GGUF layout: llama.cpp has no prefix
 * tuning. */
#include "peft/prefix.h"
#include "peft/prompt_learning.h"
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

static tk_status read_config(prefix_file *f, const cJSON *cfg, const char *file) {
    tk_status st;
    if ((st = tk_pl_read_config(cfg, file, "prefix", &f->P, &f->base_model)) || (st = tk_pl_int_field(cfg, "num_layers", file, 1, &f->L)) ||
        (st = tk_pl_int_field(cfg, "token_dim", file, 1, &f->token_dim)) ||
        (st = tk_pl_int_field(cfg, "num_attention_heads", file, 1, &f->heads)))
        return st;
    if (f->token_dim % f->heads)
        return tk_fail(TK_ERR_FORMAT, "%s: \"token_dim\" %d is not a multiple of \"num_attention_heads\" %d", file, f->token_dim, f->heads);
    return TK_OK;
}

tk_status tk_prefix_read_peft(const cJSON *cfg, const char *cfg_name, const tk_safetensors *sf, const char *st_name, void **file) {
    *file = NULL;
    prefix_file *f = tk_calloc(1, sizeof *f);
    if (!f) return TK_ERR_NOMEM;
    tk_status st = read_config(f, cfg, cfg_name);
    if (!st && sf) st = tk_pl_read_embeddings(sf, st_name, "prefix-tuning", f->P, (int64_t)f->L * 2 * f->token_dim,
                                              "num_layers x 2 x token_dim of adapter_config.json", &f->emb);
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
    float *emb = tk_malloc((size_t)(P * W) * sizeof(float));
    if (!emb) return TK_ERR_NOMEM;
    tk_status st = tk_prefix_embeddings(a, emb);
    cJSON *root = st ? NULL : cJSON_CreateObject();
    if (root) {
        cJSON_AddNumberToObject(root, "encoder_hidden_size", cfg->encoder_hidden_size);
        cJSON_AddNumberToObject(root, "num_attention_heads", mc->n_kv_heads);
        cJSON_AddNumberToObject(root, "num_layers", mc->n_layers);
        /* the saved embeddings are the projection's output: PEFT reads them in inference mode either way */
        cJSON_AddBoolToObject(root, "prefix_projection", cfg->projection);
        cJSON_AddNumberToObject(root, "token_dim", (double)kvd);
    }
    if (!st) st = tk_pl_save(dir, m, base_model, "PREFIX_TUNING", root, P, W, emb);
    free(emb);
    return st;
}
