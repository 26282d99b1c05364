/* LoRA as an HF PEFT folder (lora_io.h): adapter_config.json + adapter_model.safetensors,
 * written from a trained tk_lora and read back into a tk_lora_file. */
#include "peft/peft_targets.h"
#include "peft/lora_io.h"
#include "peft/lora_init.h"
#include "core/core.h"
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <strings.h>

static const char *module_group(tk_linear_id w) { return w <= TK_LIN_O ? "self_attn" : "mlp"; }

/* The name of a fused module (Phi-3) that a file may use for a linear id. */
static const char *fused_peft_name(int k) { return k == TK_LIN_Q ? "qkv_proj" : k == TK_LIN_UP ? "gate_up_proj" : NULL; }

/* A float written as the shortest decimal of its float value (0.05f -> 0.05, not 0.0500000007). */
double tk_peft_tidy(float f) {
    char b[32];
    snprintf(b, sizeof b, "%.7g", (double)f);
    return strtod(b, NULL);
}

/* ---- writing -------------------------------------------------------------------------------- */

tk_status tk_peft_write_json(const char *path, const cJSON *root) {
    char *text = cJSON_Print(root);
    if (!text) return tk_fail(TK_ERR_NOMEM, "adapter: JSON");
    tk_buf b = {0};
    tk_status st = tk_buf_printf(&b, "%s\n", text);
    if (!st) st = tk_write_file_atomic(path, b.data, b.len);
    tk_buf_free(&b);
    free(text);
    return st;
}

void tk_peft_add_layers(cJSON *root, int32_t lo, int32_t hi, int32_t n_layers) {
    if (lo > 0 || hi < n_layers - 1) {
        cJSON *lt = cJSON_CreateArray();
        for (int32_t i = lo; lt && i <= hi; i++) cJSON_AddItemToArray(lt, cJSON_CreateNumber(i));
        cJSON_AddItemToObject(root, "layers_to_transform", lt);
    } else {
        cJSON_AddNullToObject(root, "layers_to_transform");
    }
}

tk_status tk_adapter_save_peft(tk_lora *l, const tk_model *m, const char *dir, const char *base_model) {
    return tk_lora_write_peft(l, m, dir, base_model, NULL);
}

tk_status tk_lora_write_peft(tk_lora *l, const tk_model *m, const char *dir, const char *base_model, const tk_lora_peft_extra *ex) {
    if (!l || !m || !dir) return tk_fail(TK_ERR_ARG, "adapter: NULL argument");
    const tk_lora_config *cfg = tk_lora_get_config(l);
    const tk_model_config *mc = tk_model_get_config(m);
    bool perm = tk_lora_qk_permuted(l);
    int64_t r = tk_lora_written_rank(l); /* PiSSA/OLoRA: PEFT's conversion to a rank-2r LoRA on the original base */
    if (ex && r != cfg->r) return tk_fail(TK_ERR_UNSUPPORTED, "adapter: PiSSA/OLoRA with DoRA has no PEFT layout");
    tk_status st = tk_mkdir_p(dir);
    if (st) return st;
    tk_st_writer *w = tk_st_writer_new();
    char *st_path = tk_path_join(dir, "adapter_model.safetensors"), *cfg_path = tk_path_join(dir, "adapter_config.json");
    float *tmp = NULL, *fa = NULL, *fb = NULL;
    cJSON *root = NULL;
    if (!w || !st_path || !cfg_path) { st = TK_ERR_NOMEM; goto done; }
    int32_t lo = -1, hi = -1;
    for (int32_t i = 0; i < mc->n_layers && !st; i++)
        for (int k = 0; k < TK_LIN_COUNT && !st; k++) {
            tk_param *A, *B;
            if (!tk_lora_module(l, i, (tk_linear_id)k, &A, &B)) continue;
            if (lo < 0) lo = i;
            hi = i;
            char name[160];
            const char *lin = tk_model_linear_name(m, (tk_linear_id)k), *grp = module_group((tk_linear_id)k);
            int64_t N = B->ne[1], K = A->ne[0], neA[2] = {K, r}, neB[2] = {r, N};
            free(tmp); free(fa); free(fb); /* tk_st_add copies */
            tmp = NULL;
            fa = tk_malloc((size_t)(r * K) * sizeof(float));
            fb = tk_malloc((size_t)(N * r) * sizeof(float));
            if (!fa || !fb || !(tmp = tk_malloc((size_t)(N * r) * sizeof(float)))) { st = TK_ERR_NOMEM; break; }
            tk_lora_written_module(l, i, (tk_linear_id)k, fa, fb);
            snprintf(name, sizeof name, "base_model.model.model.layers.%d.%s.%s.lora_A.weight", i, grp, lin);
            if ((st = tk_st_add(w, name, TK_F32, 2, neA, fa))) break;
            tk_lora_convert_b(tmp, fb, (tk_linear_id)k, mc, N, r, perm, false);
            snprintf(name, sizeof name, "base_model.model.model.layers.%d.%s.%s.lora_B.weight", i, grp, lin);
            st = tk_st_add(w, name, TK_F32, 2, neB, tmp);
            if (!st && ex) {
                snprintf(name, sizeof name, "base_model.model.model.layers.%d.%s.%s", i, grp, lin);
                st = ex->add(ex->ud, w, name, i, (tk_linear_id)k);
            }
        }
    if (st) goto done;
    if (lo < 0) { st = tk_fail(TK_ERR_ARG, "adapter: the LoRA set has no modules"); goto done; }
    if ((st = tk_st_set_metadata(w, "format", "pt")) || (st = tk_st_write(w, st_path))) goto done;

    /* adapter_config.json: the keys PEFT's LoraConfig has read since 0.9 (older versions
     * reject unknown keys, newer ones fill the rest with defaults) */
    root = cJSON_CreateObject();
    cJSON *tm = cJSON_CreateArray();
    if (!root || !tm) { cJSON_Delete(tm); st = TK_ERR_NOMEM; goto done; }
    cJSON_AddItemToObject(root, "alpha_pattern", cJSON_CreateObject());
    cJSON_AddItemToObject(root, "auto_mapping", cJSON_CreateNull());
    const char *bm = base_model ? base_model : tk_model_path(m);
    if (bm) cJSON_AddStringToObject(root, "base_model_name_or_path", bm);
    else cJSON_AddNullToObject(root, "base_model_name_or_path");
    cJSON_AddStringToObject(root, "bias", "none");
    cJSON_AddBoolToObject(root, "fan_in_fan_out", false);
    cJSON_AddBoolToObject(root, "inference_mode", true);
    cJSON_AddBoolToObject(root, "init_lora_weights", true);
    cJSON_AddNullToObject(root, "layers_pattern");
    tk_peft_add_layers(root, lo, hi, mc->n_layers);
    cJSON_AddNumberToObject(root, "lora_alpha", tk_peft_tidy(tk_lora_written_alpha(l)));
    cJSON_AddNumberToObject(root, "lora_dropout", tk_peft_tidy(cfg->dropout));
    cJSON_AddNullToObject(root, "modules_to_save");
    cJSON_AddStringToObject(root, "peft_type", "LORA");
    cJSON_AddNumberToObject(root, "r", (double)r);
    cJSON_AddItemToObject(root, "rank_pattern", cJSON_CreateObject());
    cJSON_AddNullToObject(root, "revision");
    for (int k = 0; k < TK_LIN_COUNT; k++) /* the modules the family has (Phi-3: qkv_proj, o_proj, gate_up_proj, down_proj) */
        if ((cfg->targets & (1u << k)) && tk_model_linear_name(m, (tk_linear_id)k))
            cJSON_AddItemToArray(tm, cJSON_CreateString(tk_model_linear_name(m, (tk_linear_id)k)));
    cJSON_AddItemToObject(root, "target_modules", tm);
    cJSON_AddStringToObject(root, "task_type", "CAUSAL_LM");
    cJSON_AddBoolToObject(root, "use_dora", ex && ex->use_dora);
    cJSON_AddBoolToObject(root, "use_rslora", cfg->rslora);
    st = tk_peft_write_json(cfg_path, root);
done:
    cJSON_Delete(root);
    free(tmp);
    free(fa);
    free(fb);
    free(st_path);
    free(cfg_path);
    tk_st_writer_free(w);
    return st ? tk_fail_ctx(st, "writing the PEFT adapter %s: ", dir) : TK_OK;
}

/* ---- reading -------------------------------------------------------------------------------- */

/* At *s: "{self_attn|mlp}.<name>." for linear k (name: HF's, or the fused module's when fused). */
static bool eat_module(const char **s, int k, bool fused) {
    const char *p = *s, *name = fused ? fused_peft_name(k) : tk_linear_name((tk_linear_id)k);
    if (!name || !tk_lora_key_eat(&p, module_group((tk_linear_id)k)) || !tk_lora_key_eat(&p, ".") ||
        !tk_lora_key_eat(&p, name) || *p != '.')
        return false;
    *s = p;
    return true;
}

bool tk_peft_module_key(const char *name, int32_t *layer, int *which, const char **rest) {
    const char *s = name;
    if (!tk_lora_key_eat(&s, "base_model.model.model.layers.") || !tk_lora_key_layer(&s, layer) || !tk_lora_key_eat(&s, "."))
        return false;
    int w = -1;
    /* a fused module (Phi-3) stands for its first linear; its shape is checked against the model's weight when applied */
    for (int k = 0; k < TK_LIN_COUNT && w < 0; k++)
        if (eat_module(&s, k, false) || eat_module(&s, k, true)) w = k;
    if (w < 0) return false;
    *which = w;
    *rest = s;
    return true;
}

/* "base_model.model.model.layers.{i}.{self_attn|mlp}.{x}_proj.lora_{A|B}[.<adapter>].weight" */
static bool parse_peft_key(const char *name, int32_t *layer, int *which, int *is_b) {
    const char *s;
    int w;
    if (!tk_peft_module_key(name, layer, &w, &s)) return false;
    if (tk_lora_key_eat(&s, ".lora_A")) *is_b = 0;
    else if (tk_lora_key_eat(&s, ".lora_B")) *is_b = 1;
    else return false;
    if (!strcmp(s, ".weight")) { *which = w; return true; }
    /* an adapter name left in the key (saved from the module's state_dict, not save_pretrained) */
    if (*s++ != '.') return false;
    const char *dot = strchr(s, '.');
    if (!dot || dot == s || strcmp(dot, ".weight")) return false;
    *which = w;
    return true;
}

static const cJSON *jget(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

/* A JSON value that is absent, null, false, or an empty object/array. */
static bool j_off(const cJSON *v) {
    return !v || cJSON_IsNull(v) || cJSON_IsFalse(v) || ((cJSON_IsObject(v) || cJSON_IsArray(v)) && !v->child);
}

/* The LoRA fields of adapter_config.json (peft_type is checked by the dispatcher) into a. */
static tk_status parse_config(tk_lora_file *a, const cJSON *root, const char *file, bool dora) {
    const cJSON *v = jget(root, "r");
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 1 || v->valuedouble > 4096)
        return tk_fail(TK_ERR_FORMAT, "%s: \"r\" must be an integer in [1, 4096]", file);
    int32_t r = (int32_t)v->valuedouble;
    v = jget(root, "lora_alpha");
    if (!cJSON_IsNumber(v) || !(v->valuedouble > 0) || !isfinite(v->valuedouble))
        return tk_fail(TK_ERR_FORMAT, "%s: \"lora_alpha\" must be a positive number", file);
    a->alpha = (float)v->valuedouble;
    v = jget(root, "lora_dropout");
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble < 1))
            return tk_fail(TK_ERR_FORMAT, "%s: \"lora_dropout\" must be a number in [0, 1)", file);
        a->dropout = (float)v->valuedouble;
    }
    v = jget(root, "use_rslora");
    if (v && !cJSON_IsNull(v) && !cJSON_IsBool(v)) return tk_fail(TK_ERR_FORMAT, "%s: \"use_rslora\" must be true or false", file);
    a->rslora = cJSON_IsTrue(v);
    /* initialisations that rewrite the base: PEFT runs them again on loading, on the base it is given */
    v = jget(root, "init_lora_weights");
    if (cJSON_IsString(v)) {
        const char *iw = v->valuestring;
        if (!strcmp(iw, "pissa")) a->init = TK_LORA_INIT_PISSA;
        else if (!strcasecmp(iw, "olora")) a->init = TK_LORA_INIT_OLORA;
        else if (!strncmp(iw, "pissa", 5) || !strncmp(iw, "corda", 5) || !strcmp(iw, "loftq") || !strcmp(iw, "lora_ga"))
            return tk_fail(TK_ERR_UNSUPPORTED, "%s: \"init_lora_weights\" is \"%s\": PEFT rewrites the base weights on loading such an "
                                               "adapter (randomly or from data), which takumi cannot repeat; convert it to a plain LoRA "
                                               "with save_pretrained(path_initial_model_for_weight_conversion=...)", file, iw);
        if (a->init != TK_LORA_INIT_KAIMING && dora)
            return tk_fail(TK_ERR_UNSUPPORTED, "%s: DoRA with \"init_lora_weights\": \"%s\" is not supported", file, iw);
        if (a->init != TK_LORA_INIT_KAIMING && !tk_lora_init_available(a->init))
            return tk_fail(TK_ERR_UNSUPPORTED, "%s: \"init_lora_weights\": \"%s\" needs LAPACK's SVD: this build has no OpenBLAS", file, iw);
    }
    static const char *const off_keys[] = {"use_dora", "fan_in_fan_out", "rank_pattern", "alpha_pattern", "layer_replication",
                                           "use_qalora", "lora_bias", "target_parameters", "trainable_token_indices",
                                           "alora_invocation_tokens"};
    for (size_t i = dora ? 1 : 0; i < sizeof off_keys / sizeof off_keys[0]; i++)
        if (!j_off(jget(root, off_keys[i])))
            return tk_fail(TK_ERR_UNSUPPORTED, "%s: \"%s\" is set; takumi reads plain LoRA adapters only", file, off_keys[i]);
    v = jget(root, "bias");
    if (v && !cJSON_IsNull(v) && !(cJSON_IsString(v) && !strcmp(v->valuestring, "none")))
        return tk_fail(TK_ERR_UNSUPPORTED, "%s: \"bias\" must be \"none\" (trained biases are not supported)", file);
    if (!j_off(jget(root, "modules_to_save")))
        return tk_fail(TK_ERR_UNSUPPORTED, "%s: \"modules_to_save\" is set (fully trained extra modules are not supported)", file);
    v = jget(root, "base_model_name_or_path");
    if (!(a->base_model = tk_strdup(cJSON_IsString(v) ? v->valuestring : ""))) return TK_ERR_NOMEM;
    a->r = r;
    return TK_OK;
}

/* The tensors of adapter_model.safetensors into a (its rank must be the config's). */
static tk_status read_tensors(tk_lora_file *a, const cJSON *cfg, const tk_safetensors *sf, const char *st_name, const char *cfg_name,
                              bool dora) {
    tk_lora_entries L = {0};
    tk_status st = TK_OK;
    int32_t r_cfg = a->r;
    a->r = 0;
    for (int64_t i = 0; i < tk_st_n_tensors(sf) && !st; i++) {
        const tk_tensor_ref *t = tk_st_tensor(sf, i);
        int32_t layer;
        int which, is_b;
        if (dora && tk_ends_with(t->name, ".lora_magnitude_vector")) continue; /* DoRA's (dora_file.c) */
        if (!parse_peft_key(t->name, &layer, &which, &is_b)) {
            st = tk_fail(TK_ERR_UNSUPPORTED, "%s: tensor '%s' is not a LoRA A/B weight of a Llama-family linear "
                                             "(base_model.model.model.layers.N.{self_attn,mlp}.X_proj.lora_{A,B}.weight)",
                         st_name, t->name);
            break;
        }
        /* the config must declare what the tensors adapt (PEFT applies the config, not the tensors) */
        char path[96];
        const char *mod = strstr(t->name, ".self_attn.") ? "self_attn" : "mlp";
        const char *leaf = strstr(t->name, mod) + strlen(mod) + 1, *end = strchr(leaf, '.');
        snprintf(path, sizeof path, "model.layers.%d.%s.%.*s", (int)layer, mod, (int)(end - leaf), leaf);
        if (!(st = tk_peft_check_target(cfg, cfg_name, st_name, t->name, path, layer)))
            st = tk_lora_entries_push(&L, layer, which, is_b, t);
    }
    if (!st) st = tk_lora_file_build(a, &L, st_name);
    if (!st && a->r != r_cfg)
        st = tk_fail(TK_ERR_FORMAT, "%s: the tensors have rank %d but %s says r = %d", st_name, a->r, cfg_name, r_cfg);
    free(L.e);
    return st;
}

tk_status tk_lora_read_peft(const cJSON *cfg, const char *cfg_name, const tk_safetensors *sf, const char *st_name, void **file) {
    return tk_lora_read_peft_ex(cfg, cfg_name, sf, st_name, false, file);
}

tk_status tk_lora_read_peft_ex(const cJSON *cfg, const char *cfg_name, const tk_safetensors *sf, const char *st_name, bool dora,
                               void **file) {
    *file = NULL;
    tk_lora_file *a = tk_calloc(1, sizeof *a);
    if (!a) return TK_ERR_NOMEM;
    tk_status st = parse_config(a, cfg, cfg_name, dora);
    if (!st && sf) st = read_tensors(a, cfg, sf, st_name, cfg_name, dora);
    if (st || !sf) { tk_lora_file_free(a); return st; }
    a->scale = a->rslora ? a->alpha / sqrtf((float)a->r) : a->alpha / (float)a->r;
    *file = a;
    return TK_OK;
}
