/* IA3 as an HF PEFT folder (ia3.h): adapter_config.json (peft_type "IA3", target_modules,
 * feedforward_modules) + adapter_model.safetensors with one
 * "base_model.model.model.layers.{i}.{self_attn|mlp}.{x}_proj.ia3_l" per module, torch shape
 * [1, in] for feed-forward modules and [out, 1] for the others, q/k rows in HF order. No GGUF
 * layout: llama.cpp has no IA3 adapters. */
#include "peft/ia3.h"
#include "peft/lora_io.h"
#include "core/core.h"
#include <cJSON.h>
#include <math.h>
#include <stdio.h>

typedef struct ia3_file_mod { int32_t layer; tk_linear_id which; int64_t n; float *v; } ia3_file_mod;

typedef struct ia3_file {
    uint32_t targets, feedforward;   /* from target_modules / feedforward_modules */
    int32_t min_layer, max_layer;
    char *base_model;
    ia3_file_mod *mods;
    int64_t n_mods;
} ia3_file;

void tk_ia3_file_free(void *file) {
    ia3_file *f = file;
    if (!f) return;
    for (int64_t i = 0; i < f->n_mods; i++) free(f->mods[i].v);
    free(f->mods);
    free(f->base_model);
    free(f);
}

/* A list of module names (HF linear names; Phi-3's fused names count as their first linear) into bits. */
static tk_status module_bits(const cJSON *v, const char *key, const char *file, uint32_t *out) {
    *out = 0;
    if (!v || cJSON_IsNull(v)) return TK_OK;
    if (!cJSON_IsArray(v))
        return tk_fail(TK_ERR_UNSUPPORTED, "%s: \"%s\" must be a list of module names (a regular expression is not supported)", file, key);
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
        int w = -1;
        for (int k = 0; k < TK_LIN_COUNT && w < 0 && cJSON_IsString(e); k++)
            if (!strcmp(e->valuestring, tk_linear_name((tk_linear_id)k)) || (k == TK_LIN_Q && !strcmp(e->valuestring, "qkv_proj")) ||
                (k == TK_LIN_UP && !strcmp(e->valuestring, "gate_up_proj")))
                w = k;
        if (w < 0)
            return tk_fail(TK_ERR_UNSUPPORTED, "%s: \"%s\" names '%s', not a linear of a Llama-family block (q_proj … down_proj)", file, key,
                           cJSON_IsString(e) ? e->valuestring : "(not a string)");
        *out |= 1u << w;
    }
    return TK_OK;
}

static int mod_cmp(const void *x, const void *y) {
    const ia3_file_mod *a = x, *b = y;
    return a->layer != b->layer ? (a->layer < b->layer ? -1 : 1) : (int)a->which - (int)b->which;
}

static tk_status read_config(ia3_file *f, const cJSON *cfg, const char *file) {
    tk_status st;
    const cJSON *tm = cJSON_GetObjectItemCaseSensitive(cfg, "target_modules"), *ff = cJSON_GetObjectItemCaseSensitive(cfg, "feedforward_modules");
    if ((st = module_bits(tm, "target_modules", file, &f->targets)) || (st = module_bits(ff, "feedforward_modules", file, &f->feedforward)))
        return st;
    if (!f->targets) return tk_fail(TK_ERR_FORMAT, "%s: \"target_modules\" is missing or empty", file);
    if (f->feedforward & ~f->targets)
        return tk_fail(TK_ERR_FORMAT, "%s: \"feedforward_modules\" is not a subset of \"target_modules\" (PEFT requires it)", file);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, "fan_in_fan_out");
    if (cJSON_IsTrue(v)) return tk_fail(TK_ERR_UNSUPPORTED, "%s: \"fan_in_fan_out\" is set (Conv1D bases are not supported)", file);
    v = cJSON_GetObjectItemCaseSensitive(cfg, "modules_to_save");
    if (v && !cJSON_IsNull(v) && !(cJSON_IsArray(v) && !v->child))
        return tk_fail(TK_ERR_UNSUPPORTED, "%s: \"modules_to_save\" is set (fully trained extra modules are not supported)", file);
    v = cJSON_GetObjectItemCaseSensitive(cfg, "base_model_name_or_path");
    return (f->base_model = tk_strdup(cJSON_IsString(v) ? v->valuestring : "")) ? TK_OK : TK_ERR_NOMEM;
}

static tk_status read_tensors(ia3_file *f, const tk_safetensors *sf, const char *st_name, const char *cfg_name) {
    int64_t n = tk_st_n_tensors(sf);
    if (n == 0) return tk_fail(TK_ERR_FORMAT, "%s: no IA3 tensors", st_name);
    if (!(f->mods = tk_calloc((size_t)n, sizeof *f->mods))) return TK_ERR_NOMEM;
    for (int64_t i = 0; i < n; i++) {
        const tk_tensor_ref *t = tk_st_tensor(sf, i);
        ia3_file_mod *md = &f->mods[f->n_mods];
        int which;
        const char *rest;
        if (!tk_peft_module_key(t->name, &md->layer, &which, &rest) || strcmp(rest, ".ia3_l"))
            return tk_fail(TK_ERR_UNSUPPORTED, "%s: tensor '%s' is not an IA3 vector of a Llama-family linear "
                                               "(base_model.model.model.layers.N.{self_attn,mlp}.X_proj.ia3_l)", st_name, t->name);
        md->which = (tk_linear_id)which;
        bool ff = (f->feedforward >> which) & 1u;
        if (!((f->targets >> which) & 1u))
            return tk_fail(TK_ERR_FORMAT, "%s: tensor '%s' is for a module %s does not list in target_modules", st_name, t->name, cfg_name);
        /* torch [1, in] (feed-forward) is ggml ne {in, 1}; [out, 1] is ne {1, out} */
        if (t->n_dims != 2 || (ff ? t->ne[1] : t->ne[0]) != 1)
            return tk_fail(TK_ERR_FORMAT, "%s: tensor '%s' must have torch shape %s (%s in feedforward_modules)", st_name, t->name,
                           ff ? "[1, in]" : "[out, 1]", ff ? "listed" : "not listed");
        if (t->dtype != TK_F32 && t->dtype != TK_F16 && t->dtype != TK_BF16)
            return tk_fail(TK_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s (f32, f16, bf16 are read)", st_name, t->name, tk_dtype_name(t->dtype));
        md->n = ff ? t->ne[0] : t->ne[1];
        if (!(md->v = tk_malloc((size_t)md->n * sizeof(float)))) return TK_ERR_NOMEM;
        f->n_mods++;
        tk_status st = tk_dequantize(t->dtype, t->data, md->v, md->n);
        if (st) return tk_fail_ctx(st, "%s: tensor '%s': ", st_name, t->name);
        for (int64_t k = 0; k < md->n; k++)
            if (!isfinite(md->v[k])) return tk_fail(TK_ERR_FORMAT, "%s: tensor '%s' holds a non-finite value", st_name, t->name);
    }
    qsort(f->mods, (size_t)f->n_mods, sizeof *f->mods, mod_cmp);
    for (int64_t i = 1; i < f->n_mods; i++)
        if (!mod_cmp(&f->mods[i - 1], &f->mods[i]))
            return tk_fail(TK_ERR_FORMAT, "%s: layer %d %s appears twice", st_name, f->mods[i].layer, tk_linear_name(f->mods[i].which));
    f->min_layer = f->mods[0].layer;
    f->max_layer = f->mods[f->n_mods - 1].layer;
    return TK_OK;
}

tk_status tk_ia3_read_peft(const cJSON *cfg, const char *cfg_name, const tk_safetensors *sf, const char *st_name, void **file) {
    *file = NULL;
    ia3_file *f = tk_calloc(1, sizeof *f);
    if (!f) return TK_ERR_NOMEM;
    tk_status st = read_config(f, cfg, cfg_name);
    if (!st && sf) st = read_tensors(f, sf, st_name, cfg_name);
    if (st || !sf) { tk_ia3_file_free(f); return st; }
    *file = f;
    return TK_OK;
}

tk_status tk_ia3_attach_file(const void *file, const char *name, tk_model *m, tk_param_set *ps, tk_peft **out) {
    *out = NULL;
    const ia3_file *f = file;
    if (!f || !m || !ps) return tk_fail(TK_ERR_ARG, "adapter: NULL argument");
    const tk_model_config *mc = tk_model_get_config(m);
    if (f->max_layer >= mc->n_layers)
        return tk_fail(TK_ERR_ARG, "%s: the adapter has layer %d but the model has %d layers", name, f->max_layer, mc->n_layers);
    for (int64_t i = 0; i < f->n_mods; i++) {
        const ia3_file_mod *md = &f->mods[i];
        const tk_tensor_ref *wt = tk_model_linear(m, md->layer, md->which);
        if (!wt->data)
            return tk_fail(TK_ERR_ARG, "%s: layer %d %s: the model has no such linear (its family fuses it into another weight)", name,
                           md->layer, tk_linear_name(md->which));
        int64_t want = (f->feedforward >> md->which) & 1u ? wt->ne[0] : wt->ne[1];
        if (md->n != want)
            return tk_fail(TK_ERR_ARG, "%s: layer %d %s: the vector has %lld entries but the model's linear needs %lld (an adapter for "
                                       "another model?)", name, md->layer, tk_linear_name(md->which), (long long)md->n, (long long)want);
    }
    tk_ia3_config c = {.targets = f->targets, .feedforward = f->feedforward, .first_layer = f->min_layer};
    tk_ia3 *a;
    tk_status st = tk_ia3_new(m, &c, ps, &a);
    if (st) return tk_fail_ctx(st, "%s: ", name);
    bool perm = mc->rope_interleaved != 0;
    for (int64_t i = 0; i < f->n_mods; i++) {
        const ia3_file_mod *md = &f->mods[i];
        tk_param *p = tk_ia3_vector(a, md->layer, md->which);
        if (!p) { tk_ia3_free(a); return tk_fail(TK_ERR_INTERNAL, "%s: IA3 module missing", name); }
        bool rows = !((f->feedforward >> md->which) & 1u);
        tk_lora_convert_b(p->w, md->v, md->which, mc, md->n, 1, false, perm && rows);
    }
    *out = (tk_peft *)tk_ia3_peft(a);
    return TK_OK;
}

void tk_ia3_describe_file(const void *file, tk_adapter_info *i) {
    const ia3_file *f = file;
    i->base_model = f->base_model ? f->base_model : "";
    i->arch = "";
    i->targets = f->targets;
    i->min_layer = f->min_layer;
    i->max_layer = f->max_layer;
    i->n_modules = f->n_mods;
}

/* ---- writing -------------------------------------------------------------------------------- */

static cJSON *module_list(const tk_model *m, uint32_t bits) {
    cJSON *a = cJSON_CreateArray();
    for (int k = 0; a && k < TK_LIN_COUNT; k++)
        if ((bits >> k) & 1u && tk_model_linear_name(m, (tk_linear_id)k))
            cJSON_AddItemToArray(a, cJSON_CreateString(tk_model_linear_name(m, (tk_linear_id)k)));
    return a;
}

tk_status tk_ia3_save_peft(tk_ia3 *a, const tk_model *m, const char *dir, const char *base_model) {
    if (!a || !m || !dir) return tk_fail(TK_ERR_ARG, "adapter: NULL argument");
    const tk_ia3_config *cfg = tk_ia3_get_config(a);
    const tk_model_config *mc = tk_model_get_config(m);
    bool perm = mc->rope_interleaved != 0;
    tk_status st = tk_mkdir_p(dir);
    if (st) return st;
    tk_st_writer *w = tk_st_writer_new();
    char *st_path = tk_path_join(dir, "adapter_model.safetensors"), *cfg_path = tk_path_join(dir, "adapter_config.json");
    float *tmp = NULL;
    cJSON *root = NULL;
    bool any = false;
    if (!w || !st_path || !cfg_path) { st = TK_ERR_NOMEM; goto done; }
    for (int32_t i = 0; i < mc->n_layers && !st; i++)
        for (int k = 0; k < TK_LIN_COUNT && !st; k++) {
            tk_param *p = tk_ia3_vector(a, i, (tk_linear_id)k);
            if (!p) continue;
            any = true;
            free(tmp);
            if (!(tmp = tk_malloc((size_t)p->n * sizeof(float)))) { st = TK_ERR_NOMEM; break; }
            bool rows = !((cfg->feedforward >> k) & 1u);
            tk_lora_convert_b(tmp, p->w, (tk_linear_id)k, mc, p->n, 1, perm && rows, false);
            char name[160];
            snprintf(name, sizeof name, "base_model.model.model.layers.%d.%s.%s.ia3_l", i, k <= TK_LIN_O ? "self_attn" : "mlp",
                     tk_model_linear_name(m, (tk_linear_id)k));
            st = tk_st_add(w, name, TK_F32, 2, p->ne, tmp);
        }
    if (st) goto done;
    if (!any) { st = tk_fail(TK_ERR_ARG, "adapter: the IA3 set has no modules"); goto done; }
    if ((st = tk_st_set_metadata(w, "format", "pt")) || (st = tk_st_write(w, st_path))) goto done;
    if (!(root = cJSON_CreateObject())) { st = TK_ERR_NOMEM; goto done; }
    const char *bm = base_model ? base_model : tk_model_path(m);
    if (bm) cJSON_AddStringToObject(root, "base_model_name_or_path", bm);
    else cJSON_AddNullToObject(root, "base_model_name_or_path");
    cJSON_AddBoolToObject(root, "fan_in_fan_out", false);
    cJSON_AddItemToObject(root, "feedforward_modules", module_list(m, cfg->feedforward));
    cJSON_AddBoolToObject(root, "inference_mode", true);
    /* IA3Config has no layers_to_transform (PEFT 0.21): with --freeze-layers the lower layers get
     * vectors of ones from PEFT's init, which is what their absence from the file means here */
    cJSON_AddBoolToObject(root, "init_ia3_weights", true);
    cJSON_AddNullToObject(root, "modules_to_save");
    cJSON_AddStringToObject(root, "peft_type", "IA3");
    cJSON_AddNullToObject(root, "revision");
    cJSON_AddItemToObject(root, "target_modules", module_list(m, cfg->targets));
    cJSON_AddStringToObject(root, "task_type", "CAUSAL_LM");
    st = tk_peft_write_json(cfg_path, root);
done:
    cJSON_Delete(root);
    free(tmp);
    free(st_path);
    free(cfg_path);
    tk_st_writer_free(w);
    return st ? tk_fail_ctx(st, "writing the PEFT adapter %s: ", dir) : TK_OK;
}
