/* Prompt tuning as an HF PEFT folder (prompt.h): adapter_config.json (peft_type "PROMPT_TUNING",
 * task_type "CAUSAL_LM", num_virtual_tokens, token_dim = C, num_layers, num_attention_heads,
 * prompt_tuning_init RANDOM or TEXT with its text and tokenizer_name_or_path, as PEFT fills them)
 * + adapter_model.safetensors with one tensor, "prompt_embeddings" [P, token_dim], what PEFT
 * saves and PeftModel.from_pretrained loads. Read back it is trainable further. No GGUF layout:
 * llama.cpp has no prompt tuning. */
#include "peft/prompt.h"
#include "peft/prompt_learning.h"
#include "model/llama.h"
#include "core/core.h"
#include <cJSON.h>

typedef struct prompt_file {
    int32_t P, token_dim, L;   /* L = 0 when the config does not say */
    char *base_model;
    float *emb;                /* [P x token_dim] */
} prompt_file;

void tk_prompt_file_free(void *file) {
    prompt_file *f = file;
    if (!f) return;
    free(f->base_model);
    free(f->emb);
    free(f);
}

tk_status tk_prompt_read_peft(const cJSON *cfg, const char *cfg_name, const tk_safetensors *sf, const char *st_name, void **file) {
    *file = NULL;
    prompt_file *f = tk_calloc(1, sizeof *f);
    if (!f) return TK_ERR_NOMEM;
    tk_status st = tk_pl_read_config(cfg, cfg_name, "prompt-tuning", &f->P, &f->base_model);
    if (!st) st = tk_pl_int_field(cfg, "token_dim", cfg_name, 1, &f->token_dim);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, "num_layers");
    if (!st && v && !cJSON_IsNull(v)) st = tk_pl_int_field(cfg, "num_layers", cfg_name, 1, &f->L);
    if (!st && sf) st = tk_pl_read_embeddings(sf, st_name, "prompt-tuning", f->P, f->token_dim, "token_dim of adapter_config.json", &f->emb);
    if (st || !sf) { tk_prompt_file_free(f); return st; }
    *file = f;
    return TK_OK;
}

tk_status tk_prompt_attach_file(const void *file, const char *name, tk_model *m, tk_param_set *ps, tk_peft **out) {
    *out = NULL;
    const prompt_file *f = file;
    if (!f || !m || !ps) return tk_fail(TK_ERR_ARG, "adapter: NULL argument");
    const tk_model_config *mc = tk_model_get_config(m);
    if (f->token_dim != mc->dim || (f->L && f->L != mc->n_layers))
        return tk_fail(TK_ERR_ARG, "%s: the soft prompt is for a model of width %d (%d layers), the model has width %d (%d layers) "
                                   "(an adapter for another model?)", name, f->token_dim, f->L, mc->dim, mc->n_layers);
    tk_prompt_config c = tk_prompt_default_config();
    c.num_virtual_tokens = f->P;
    tk_prompt *a;
    tk_status st = tk_prompt_new(m, &c, ps, &a);
    if (st) return tk_fail_ctx(st, "%s: ", name);
    memcpy((float *)tk_prompt_embeddings(a), f->emb, (size_t)f->P * (size_t)f->token_dim * sizeof(float));
    *out = (tk_peft *)tk_prompt_peft(a);
    return TK_OK;
}

void tk_prompt_describe_file(const void *file, tk_adapter_info *i) {
    const prompt_file *f = file;
    i->base_model = f->base_model ? f->base_model : "";
    i->arch = "";
    i->r = 0;          /* no rank: the virtual tokens are in the config */
    i->targets = 0;
    i->min_layer = 0;
    i->max_layer = (f->L ? f->L : 1) - 1;
    i->n_modules = 1;  /* one embedding */
}

tk_status tk_prompt_save_peft(tk_prompt *a, const tk_model *m, const char *dir, const char *base_model) {
    if (!a || !m || !dir) return tk_fail(TK_ERR_ARG, "adapter: NULL argument");
    const tk_prompt_config *cfg = tk_prompt_get_config(a);
    const tk_model_config *mc = tk_model_get_config(m);
    cJSON *root = cJSON_CreateObject();
    if (root) {
        const char *bm = base_model ? base_model : tk_model_path(m);
        cJSON_AddNumberToObject(root, "num_attention_heads", mc->n_heads);
        cJSON_AddNumberToObject(root, "num_layers", mc->n_layers);
        /* PEFT's config refuses TEXT without its text and a tokenizer (used to initialise only, never on loading):
         * without them the file says RANDOM, which loads the same */
        bool text = cfg->init_ids && cfg->init_text && bm;
        cJSON_AddStringToObject(root, "prompt_tuning_init", text ? "TEXT" : "RANDOM");
        if (text) cJSON_AddStringToObject(root, "prompt_tuning_init_text", cfg->init_text);
        else cJSON_AddNullToObject(root, "prompt_tuning_init_text");
        if (text) cJSON_AddStringToObject(root, "tokenizer_name_or_path", bm);
        else cJSON_AddNullToObject(root, "tokenizer_name_or_path");
        cJSON_AddNullToObject(root, "tokenizer_kwargs");
        cJSON_AddNumberToObject(root, "token_dim", mc->dim);
    }
    return tk_pl_save(dir, m, base_model, "PROMPT_TUNING", root, tk_prompt_tokens(a), mc->dim, tk_prompt_embeddings(a));
}
