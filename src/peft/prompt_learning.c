/* The files HF PEFT's prompt-learning methods share (prompt_learning.h). */
#include "peft/prompt_learning.h"
#include "peft/lora_io.h"
#include "core/core.h"
#include <cJSON.h>
#include <math.h>

tk_status tk_pl_int_field(const cJSON *cfg, const char *key, const char *file, int32_t lo, int32_t *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo || v->valuedouble > 1e7)
        return tk_fail(TK_ERR_FORMAT, "%s: \"%s\" must be a whole number >= %d", file, key, lo);
    *out = (int32_t)v->valuedouble;
    return TK_OK;
}

tk_status tk_pl_read_config(const cJSON *cfg, const char *file, const char *what, int32_t *P, char **base_model) {
    *base_model = NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, "task_type");
    if (cJSON_IsString(v) && strcmp(v->valuestring, "CAUSAL_LM"))
        return tk_fail(TK_ERR_UNSUPPORTED, "%s: \"task_type\" is %s (takumi reads CAUSAL_LM %s adapters)", file, v->valuestring, what);
    tk_status st;
    int32_t sub = 1;
    if ((st = tk_pl_int_field(cfg, "num_virtual_tokens", file, 1, P))) return st;
    v = cJSON_GetObjectItemCaseSensitive(cfg, "num_transformer_submodules");
    if (v && !cJSON_IsNull(v) && (st = tk_pl_int_field(cfg, "num_transformer_submodules", file, 1, &sub))) return st;
    if (sub != 1)
        return tk_fail(TK_ERR_UNSUPPORTED, "%s: \"num_transformer_submodules\" is %d (encoder-decoder models are not supported)", file, sub);
    v = cJSON_GetObjectItemCaseSensitive(cfg, "modules_to_save");
    if (v && !cJSON_IsNull(v) && !(cJSON_IsArray(v) && !v->child))
        return tk_fail(TK_ERR_UNSUPPORTED, "%s: \"modules_to_save\" is set (fully trained extra modules are not supported)", file);
    v = cJSON_GetObjectItemCaseSensitive(cfg, "base_model_name_or_path");
    return (*base_model = tk_strdup(cJSON_IsString(v) ? v->valuestring : "")) ? TK_OK : TK_ERR_NOMEM;
}

tk_status tk_pl_read_embeddings(const tk_safetensors *sf, const char *st_name, const char *what, int32_t P, int64_t W,
                                const char *shape, float **out) {
    *out = NULL;
    for (int64_t i = 0; i < tk_st_n_tensors(sf); i++)
        if (strcmp(tk_st_tensor(sf, i)->name, "prompt_embeddings"))
            return tk_fail(TK_ERR_UNSUPPORTED, "%s: tensor '%s' is not part of a %s adapter (only \"prompt_embeddings\")", st_name,
                           tk_st_tensor(sf, i)->name, what);
    const tk_tensor_ref *t = tk_st_find(sf, "prompt_embeddings");
    if (!t) return tk_fail(TK_ERR_FORMAT, "%s: no tensor \"prompt_embeddings\"", st_name);
    if (t->n_dims != 2 || t->ne[1] != P || t->ne[0] != W)
        return tk_fail(TK_ERR_FORMAT, "%s: \"prompt_embeddings\" must have torch shape [%d, %lld] (num_virtual_tokens, %s)", st_name, P,
                       (long long)W, shape);
    if (t->dtype != TK_F32 && t->dtype != TK_F16 && t->dtype != TK_BF16)
        return tk_fail(TK_ERR_UNSUPPORTED, "%s: \"prompt_embeddings\" has dtype %s (f32, f16, bf16 are read)", st_name, tk_dtype_name(t->dtype));
    int64_t n = W * P;
    float *e = tk_malloc((size_t)n * sizeof(float));
    if (!e) return TK_ERR_NOMEM;
    tk_status st = tk_dequantize(t->dtype, t->data, e, n);
    if (st) { free(e); return tk_fail_ctx(st, "%s: \"prompt_embeddings\": ", st_name); }
    for (int64_t k = 0; k < n; k++)
        if (!isfinite(e[k])) { free(e); return tk_fail(TK_ERR_FORMAT, "%s: \"prompt_embeddings\" holds a non-finite value", st_name); }
    *out = e;
    return TK_OK;
}

tk_status tk_pl_save(const char *dir, const tk_model *m, const char *base_model, const char *peft_type, cJSON *root,
                     int64_t P, int64_t W, const float *emb) {
    tk_status st = root ? tk_mkdir_p(dir) : TK_ERR_NOMEM;
    tk_st_writer *w = st ? NULL : tk_st_writer_new();
    char *st_path = tk_path_join(dir, "adapter_model.safetensors"), *cfg_path = tk_path_join(dir, "adapter_config.json");
    if (!st && (!w || !st_path || !cfg_path)) st = TK_ERR_NOMEM;
    int64_t ne[2] = {W, P};
    if (!st && !(st = tk_st_add(w, "prompt_embeddings", TK_F32, 2, ne, emb)) && !(st = tk_st_set_metadata(w, "format", "pt")))
        st = tk_st_write(w, st_path);
    if (!st) {
        const char *bm = base_model ? base_model : tk_model_path(m);
        if (bm) cJSON_AddStringToObject(root, "base_model_name_or_path", bm);
        else cJSON_AddNullToObject(root, "base_model_name_or_path");
        cJSON_AddBoolToObject(root, "inference_mode", true);
        cJSON_AddNullToObject(root, "modules_to_save");
        cJSON_AddNumberToObject(root, "num_transformer_submodules", 1);
        cJSON_AddNumberToObject(root, "num_virtual_tokens", (double)P);
        cJSON_AddStringToObject(root, "peft_type", peft_type);
        cJSON_AddNullToObject(root, "revision");
        cJSON_AddStringToObject(root, "task_type", "CAUSAL_LM");
        st = tk_peft_write_json(cfg_path, root);
    }
    cJSON_Delete(root);
    free(st_path);
    free(cfg_path);
    tk_st_writer_free(w);
    return st ? tk_fail_ctx(st, "writing the PEFT adapter %s: ", dir) : TK_OK;
}
