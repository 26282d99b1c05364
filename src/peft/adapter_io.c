/* LoRA adapter files (see adapter_io.h): PEFT folders and llama.cpp GGUF adapters, written
 * from a trained tk_lora and read back into a model-independent tk_adapter, which
 * tk_adapter_attach turns into a tk_lora on a model. Both readers reduce a file to a list of
 * (layer, linear, A or B, tensor view) entries, checked here in one place (names, shapes,
 * ranks, pairs, duplicates) before any value is copied. */
#include "peft/adapter_io.h"
#include "model/arch.h"
#include "model/hfconfig.h"
#include "core/core.h"
#include "takumi/gguf.h"
#include "takumi/safetensors.h"
#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

/* Layers above this are not a real model: a guard against absurd indices in names. */
#define MAX_LAYER 100000

static const char *const k_gguf_base[TK_LIN_COUNT] = {"attn_q", "attn_k", "attn_v", "attn_output",
                                                      "ffn_gate", "ffn_up", "ffn_down"};

static const char *module_group(tk_linear_id w) { return w <= TK_LIN_O ? "self_attn" : "mlp"; }

const char *tk_adapter_gguf_arch(const char *arch, bool *qk_permuted) {
    /* the family's description: llama.cpp converts Llama and Mistral checkpoints to its "llama"
     * architecture (rotating interleaved pairs, hence permuted q/k rows), the others keep HF rows */
    const tk_arch *d = tk_arch_by_name(arch);
    if (!d) return NULL;
    if (qk_permuted) *qk_permuted = d->gguf_qk_permuted;
    return d->gguf;
}

/* The GGUF base name of linear k in m's family ("attn_qkv" for Phi-3's fused q|k|v). */
static const char *gguf_base(const tk_model_config *mc, int k) {
    const tk_arch *d = tk_arch_by_name(mc->arch);
    return d && d->lin_gguf[k] ? d->lin_gguf[k] : k_gguf_base[k];
}

/* Names of fused modules (Phi-3) that a file may use for a linear id: PEFT and GGUF. */
static const char *fused_peft_name(int k) { return k == TK_LIN_Q ? "qkv_proj" : k == TK_LIN_UP ? "gate_up_proj" : NULL; }
static const char *fused_gguf_name(int k) { return k == TK_LIN_Q ? "attn_qkv" : NULL; }

/* Copies B [N x r] of (which) from a layout with q/k rows permuted (from_perm) to one with
 * (to_perm); other linears and equal layouts are copied unchanged. */
static void convert_b(float *dst, const float *src, tk_linear_id which, const tk_model_config *mc, int64_t N, int64_t r,
                      bool from_perm, bool to_perm) {
    if ((which != TK_LIN_Q && which != TK_LIN_K) || from_perm == to_perm) {
        memcpy(dst, src, (size_t)(N * r) * sizeof(float));
        return;
    }
    int heads = which == TK_LIN_Q ? mc->n_heads : mc->n_kv_heads;
    if (from_perm) tk_permute_qk_rows_to_hf(dst, src, heads, mc->head_dim, (size_t)r * sizeof(float));
    else tk_permute_qk_rows_from_hf(dst, src, heads, mc->head_dim, (size_t)r * sizeof(float));
}


/* A float written as the shortest decimal of its float value (0.05f -> 0.05, not 0.0500000007). */
static double tidy(float f) {
    char b[32];
    snprintf(b, sizeof b, "%.7g", (double)f);
    return strtod(b, NULL);
}

/* ---- writers ------------------------------------------------------------------------------ */

tk_status tk_adapter_save_peft(tk_lora *l, const tk_model *m, const char *dir, const char *base_model) {
    if (!l || !m || !dir) return tk_fail(TK_ERR_ARG, "adapter: NULL argument");
    const tk_lora_config *cfg = tk_lora_get_config(l);
    const tk_model_config *mc = tk_model_get_config(m);
    bool perm = tk_lora_qk_permuted(l);
    int64_t r = cfg->r;
    tk_status st = tk_mkdir_p(dir);
    if (st) return st;
    tk_st_writer *w = tk_st_writer_new();
    char *st_path = tk_path_join(dir, "adapter_model.safetensors"), *cfg_path = tk_path_join(dir, "adapter_config.json");
    float *tmp = NULL;
    cJSON *root = NULL;
    char *text = NULL;
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
            int64_t N = B->ne[1];
            snprintf(name, sizeof name, "base_model.model.model.layers.%d.%s.%s.lora_A.weight", i, grp, lin);
            if ((st = tk_st_add(w, name, TK_F32, 2, A->ne, A->w))) break;
            free(tmp);
            if (!(tmp = tk_malloc((size_t)(N * r) * sizeof(float)))) { st = TK_ERR_NOMEM; break; }
            convert_b(tmp, B->w, (tk_linear_id)k, mc, N, r, perm, false);
            snprintf(name, sizeof name, "base_model.model.model.layers.%d.%s.%s.lora_B.weight", i, grp, lin);
            st = tk_st_add(w, name, TK_F32, 2, B->ne, tmp);
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
    if (lo > 0 || hi < mc->n_layers - 1) {
        cJSON *lt = cJSON_CreateArray();
        for (int32_t i = lo; lt && i <= hi; i++) cJSON_AddItemToArray(lt, cJSON_CreateNumber(i));
        cJSON_AddItemToObject(root, "layers_to_transform", lt);
    } else {
        cJSON_AddNullToObject(root, "layers_to_transform");
    }
    cJSON_AddNumberToObject(root, "lora_alpha", tidy(cfg->alpha));
    cJSON_AddNumberToObject(root, "lora_dropout", tidy(cfg->dropout));
    cJSON_AddNullToObject(root, "modules_to_save");
    cJSON_AddStringToObject(root, "peft_type", "LORA");
    cJSON_AddNumberToObject(root, "r", (double)cfg->r);
    cJSON_AddItemToObject(root, "rank_pattern", cJSON_CreateObject());
    cJSON_AddNullToObject(root, "revision");
    for (int k = 0; k < TK_LIN_COUNT; k++) /* the modules the family has (Phi-3: qkv_proj, o_proj, gate_up_proj, down_proj) */
        if ((cfg->targets & (1u << k)) && tk_model_linear_name(m, (tk_linear_id)k))
            cJSON_AddItemToArray(tm, cJSON_CreateString(tk_model_linear_name(m, (tk_linear_id)k)));
    cJSON_AddItemToObject(root, "target_modules", tm);
    cJSON_AddStringToObject(root, "task_type", "CAUSAL_LM");
    cJSON_AddBoolToObject(root, "use_dora", false);
    cJSON_AddBoolToObject(root, "use_rslora", cfg->rslora);
    if (!(text = cJSON_Print(root))) { st = tk_fail(TK_ERR_NOMEM, "adapter: JSON"); goto done; }
    tk_buf b = {0};
    if (!(st = tk_buf_printf(&b, "%s\n", text))) st = tk_write_file_atomic(cfg_path, b.data, b.len);
    tk_buf_free(&b);
done:
    free(text);
    cJSON_Delete(root);
    free(tmp);
    free(st_path);
    free(cfg_path);
    tk_st_writer_free(w);
    return st ? tk_fail_ctx(st, "writing the PEFT adapter %s: ", dir) : TK_OK;
}

tk_status tk_adapter_save_gguf(tk_lora *l, const tk_model *m, const char *path) {
    if (!l || !m || !path) return tk_fail(TK_ERR_ARG, "adapter: NULL argument");
    const tk_lora_config *cfg = tk_lora_get_config(l);
    const tk_model_config *mc = tk_model_get_config(m);
    bool gperm = false, perm = tk_lora_qk_permuted(l);
    const char *ga = tk_adapter_gguf_arch(mc->arch, &gperm);
    if (!ga) return tk_fail(TK_ERR_UNSUPPORTED, "%s: no llama.cpp architecture for '%s'", path, mc->arch);
    int64_t r = cfg->r;
    tk_gguf_writer *w = tk_gguf_writer_new();
    if (!w) return TK_ERR_NOMEM;
    char name[96];
    snprintf(name, sizeof name, "%.80s LoRA", mc->name[0] ? mc->name : "takumi");
    /* llama.cpp scales by alpha / r whatever the file says about rsLoRA: store the scale x r */
    float alpha = tk_lora_scale(l) * (float)r;
    tk_status st;
    if ((st = tk_gguf_set_str(w, "general.architecture", ga)) || (st = tk_gguf_set_str(w, "general.type", "adapter")) ||
        (st = tk_gguf_set_str(w, "general.name", name)) || (st = tk_gguf_set_str(w, "adapter.type", "lora")) ||
        (st = tk_gguf_set_f32(w, "adapter.lora.alpha", alpha)))
        goto done;
    int n = 0;
    for (int32_t i = 0; i < mc->n_layers && !st; i++)
        for (int k = 0; k < TK_LIN_COUNT && !st; k++) {
            tk_param *A, *B;
            if (!tk_lora_module(l, i, (tk_linear_id)k, &A, &B)) continue;
            int64_t N = B->ne[1];
            float *tmp = tk_malloc((size_t)(N * r) * sizeof(float));
            if (!tmp) { st = TK_ERR_NOMEM; break; }
            convert_b(tmp, B->w, (tk_linear_id)k, mc, N, r, perm, gperm);
            char tn[64];
            snprintf(tn, sizeof tn, "blk.%d.%s.weight.lora_a", i, gguf_base(mc, k));
            st = tk_gguf_add_tensor(w, tn, TK_F32, 2, A->ne, A->w);
            snprintf(tn, sizeof tn, "blk.%d.%s.weight.lora_b", i, gguf_base(mc, k));
            if (!st) st = tk_gguf_add_tensor(w, tn, TK_F32, 2, B->ne, tmp);
            free(tmp);
            n++;
        }
    if (!st && !n) st = tk_fail(TK_ERR_ARG, "adapter: the LoRA set has no modules");
    if (!st) st = tk_gguf_write(w, path);
done:
    tk_gguf_writer_free(w);
    return st ? tk_fail_ctx(st, "writing the GGUF adapter %s: ", path) : TK_OK;
}

/* ---- readers ------------------------------------------------------------------------------ */

typedef struct entry {
    int32_t layer;
    int which;
    int is_b;
    const tk_tensor_ref *t;
} entry;

typedef struct entry_list { entry *e; int64_t n, cap; } entry_list;

static tk_status entries_push(entry_list *L, int32_t layer, int which, int is_b, const tk_tensor_ref *t) {
    if (L->n == L->cap) {
        int64_t cap = L->cap ? L->cap * 2 : 64;
        entry *e = tk_realloc(L->e, (size_t)cap * sizeof *e);
        if (!e) return TK_ERR_NOMEM;
        L->e = e;
        L->cap = cap;
    }
    L->e[L->n++] = (entry){layer, which, is_b, t};
    return TK_OK;
}

static int entry_cmp(const void *a, const void *b) {
    const entry *x = a, *y = b;
    if (x->layer != y->layer) return x->layer < y->layer ? -1 : 1;
    if (x->which != y->which) return x->which < y->which ? -1 : 1;
    return x->is_b - y->is_b;
}

/* Parses a decimal layer index (no sign, no leading zeros) at *s, advancing it. */
static bool parse_layer(const char **s, int32_t *layer) {
    const char *p = *s;
    if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] >= '0' && p[1] <= '9')) return false;
    long v = 0;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (*p++ - '0');
        if (v > MAX_LAYER) return false;
    }
    *layer = (int32_t)v;
    *s = p;
    return true;
}

static bool eat(const char **s, const char *lit) {
    size_t n = strlen(lit);
    if (strncmp(*s, lit, n)) return false;
    *s += n;
    return true;
}

/* "base_model.model.model.layers.{i}.{self_attn|mlp}.{x}_proj.lora_{A|B}[.<adapter>].weight" */
static bool parse_peft_key(const char *name, int32_t *layer, int *which, int *is_b) {
    const char *s = name;
    if (!eat(&s, "base_model.model.model.layers.") || !parse_layer(&s, layer) || !eat(&s, ".")) return false;
    int w = -1;
    for (int k = 0; k < TK_LIN_COUNT && w < 0; k++) {
        const char *p = s;
        if (eat(&p, module_group((tk_linear_id)k)) && eat(&p, ".") && eat(&p, tk_linear_name((tk_linear_id)k)) && *p == '.') {
            w = k;
            s = p;
            break;
        }
        p = s; /* a fused module (Phi-3); its shape is checked against the model's weight when applied */
        if (fused_peft_name(k) && eat(&p, module_group((tk_linear_id)k)) && eat(&p, ".") && eat(&p, fused_peft_name(k)) && *p == '.') {
            w = k;
            s = p;
        }
    }
    if (w < 0) return false;
    if (eat(&s, ".lora_A")) *is_b = 0;
    else if (eat(&s, ".lora_B")) *is_b = 1;
    else return false;
    if (!strcmp(s, ".weight")) { *which = w; return true; }
    /* an adapter name left in the key (saved from the module's state_dict, not save_pretrained) */
    if (*s++ != '.') return false;
    const char *dot = strchr(s, '.');
    if (!dot || dot == s || strcmp(dot, ".weight")) return false;
    *which = w;
    return true;
}

/* "blk.{i}.{attn_q|…}.weight.lora_{a|b}" */
static bool parse_gguf_key(const char *name, int32_t *layer, int *which, int *is_b) {
    const char *s = name;
    if (!eat(&s, "blk.") || !parse_layer(&s, layer) || !eat(&s, ".")) return false;
    for (int k = 0; k < TK_LIN_COUNT; k++) {
        const char *p = s, *p2 = s;
        if ((eat(&p, k_gguf_base[k]) && eat(&p, ".weight.lora_")) ||
            (fused_gguf_name(k) && eat(&p2, fused_gguf_name(k)) && eat(&p2, ".weight.lora_") && (p = p2))) {
            if (!strcmp(p, "a")) *is_b = 0;
            else if (!strcmp(p, "b")) *is_b = 1;
            else return false;
            *which = k;
            return true;
        }
    }
    return false;
}

/* Checks the entries (pairs, ranks, shapes, dtypes) and copies them into a->mods as f32. */
static tk_status build_modules(tk_adapter *a, entry_list *L, const char *file) {
    if (L->n == 0) return tk_fail(TK_ERR_FORMAT, "%s: no LoRA tensors", file);
    qsort(L->e, (size_t)L->n, sizeof *L->e, entry_cmp);
    for (int64_t i = 0; i < L->n; i++) {
        const entry *e = &L->e[i];
        if (i + 1 < L->n && !entry_cmp(e, &L->e[i + 1]))
            return tk_fail(TK_ERR_FORMAT, "%s: tensor '%s' duplicates '%s'", file, L->e[i + 1].t->name, e->t->name);
        bool paired = e->is_b ? (i > 0 && L->e[i - 1].layer == e->layer && L->e[i - 1].which == e->which)
                              : (i + 1 < L->n && L->e[i + 1].layer == e->layer && L->e[i + 1].which == e->which);
        if (!paired)
            return tk_fail(TK_ERR_FORMAT, "%s: tensor '%s' has no lora_%s partner", file, e->t->name, e->is_b ? "A" : "B");
        const tk_tensor_ref *t = e->t;
        if (t->dtype != TK_F32 && t->dtype != TK_F16 && t->dtype != TK_BF16 && t->dtype != TK_Q8_0)
            return tk_fail(TK_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s (f32, f16, bf16, q8_0 are read)", file, t->name,
                           tk_dtype_name(t->dtype));
        if (t->n_dims != 2 || t->ne[0] <= 0 || t->ne[1] <= 0)
            return tk_fail(TK_ERR_FORMAT, "%s: tensor '%s' must be a matrix", file, t->name);
        int64_t rank = e->is_b ? t->ne[0] : t->ne[1];
        if (a->r == 0) a->r = (int32_t)(rank > 4096 ? 4097 : rank);
        if (rank != a->r)
            return tk_fail(a->r > 4096 ? TK_ERR_RANGE : TK_ERR_UNSUPPORTED,
                           "%s: tensor '%s' has rank %lld, expected %d (one rank for every module; rank patterns are not supported)",
                           file, t->name, (long long)rank, a->r);
    }
    if (a->r > 4096) return tk_fail(TK_ERR_RANGE, "%s: rank %d is above 4096", file, a->r);
    a->n_mods = L->n / 2;
    a->mods = tk_calloc((size_t)a->n_mods, sizeof *a->mods);
    if (!a->mods) return TK_ERR_NOMEM;
    a->min_layer = L->e[0].layer;
    a->max_layer = L->e[L->n - 1].layer;
    for (int64_t j = 0; j < a->n_mods; j++) {
        const entry *ea = &L->e[2 * j], *eb = &L->e[2 * j + 1];
        tk_adapter_module *md = &a->mods[j];
        md->layer = ea->layer;
        md->which = (tk_linear_id)ea->which;
        md->K = ea->t->ne[0];
        md->N = eb->t->ne[1];
        a->targets |= 1u << ea->which;
        size_t na, nb;
        if (!tk_mul_ok((size_t)md->K, (size_t)a->r, &na) || !tk_mul_ok((size_t)md->N, (size_t)a->r, &nb))
            return tk_fail(TK_ERR_FORMAT, "%s: tensor '%s' is too large", file, ea->t->name);
        md->A = tk_malloc(na * sizeof(float));
        md->B = tk_malloc(nb * sizeof(float));
        if (!md->A || !md->B) return TK_ERR_NOMEM;
        tk_status st;
        if ((st = tk_dequantize(ea->t->dtype, ea->t->data, md->A, (int64_t)na)) ||
            (st = tk_dequantize(eb->t->dtype, eb->t->data, md->B, (int64_t)nb)))
            return tk_fail_ctx(st, "%s: tensor '%s': ", file, ea->t->name);
        for (size_t k = 0; k < na; k++)
            if (!isfinite(md->A[k])) return tk_fail(TK_ERR_FORMAT, "%s: tensor '%s' holds a non-finite value", file, ea->t->name);
        for (size_t k = 0; k < nb; k++)
            if (!isfinite(md->B[k])) return tk_fail(TK_ERR_FORMAT, "%s: tensor '%s' holds a non-finite value", file, eb->t->name);
    }
    return TK_OK;
}

static const cJSON *jget(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

/* A JSON value that is absent, null, false, empty object/array, or a string equal to ok. */
static bool j_off(const cJSON *v) {
    return !v || cJSON_IsNull(v) || cJSON_IsFalse(v) || ((cJSON_IsObject(v) || cJSON_IsArray(v)) && !v->child);
}

static tk_status parse_peft_config(tk_adapter *a, const char *json, size_t len, const char *file) {
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) return tk_fail(TK_ERR_FORMAT, "%s: not valid JSON", file);
    tk_status st = TK_OK;
    const cJSON *v;
    if (!cJSON_IsObject(root)) { st = tk_fail(TK_ERR_FORMAT, "%s: expected a JSON object", file); goto done; }
    v = jget(root, "peft_type");
    if (!cJSON_IsString(v) || strcmp(v->valuestring, "LORA")) {
        st = tk_fail(cJSON_IsString(v) ? TK_ERR_UNSUPPORTED : TK_ERR_FORMAT, "%s: \"peft_type\" must be \"LORA\"%s%s", file,
                     cJSON_IsString(v) ? ", not " : "", cJSON_IsString(v) ? v->valuestring : "");
        goto done;
    }
    v = jget(root, "r");
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 1 || v->valuedouble > 4096) {
        st = tk_fail(TK_ERR_FORMAT, "%s: \"r\" must be an integer in [1, 4096]", file);
        goto done;
    }
    int32_t r = (int32_t)v->valuedouble;
    v = jget(root, "lora_alpha");
    if (!cJSON_IsNumber(v) || !(v->valuedouble > 0) || !isfinite(v->valuedouble)) {
        st = tk_fail(TK_ERR_FORMAT, "%s: \"lora_alpha\" must be a positive number", file);
        goto done;
    }
    a->alpha = (float)v->valuedouble;
    v = jget(root, "lora_dropout");
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble < 1)) {
            st = tk_fail(TK_ERR_FORMAT, "%s: \"lora_dropout\" must be a number in [0, 1)", file);
            goto done;
        }
        a->dropout = (float)v->valuedouble;
    }
    v = jget(root, "use_rslora");
    if (v && !cJSON_IsNull(v) && !cJSON_IsBool(v)) { st = tk_fail(TK_ERR_FORMAT, "%s: \"use_rslora\" must be true or false", file); goto done; }
    a->rslora = cJSON_IsTrue(v);
    static const char *const off_keys[] = {"use_dora", "fan_in_fan_out", "rank_pattern", "alpha_pattern", "layer_replication",
                                           "use_qalora", "lora_bias", "target_parameters", "trainable_token_indices",
                                           "alora_invocation_tokens"};
    for (size_t i = 0; i < sizeof off_keys / sizeof off_keys[0]; i++)
        if (!j_off(jget(root, off_keys[i]))) {
            st = tk_fail(TK_ERR_UNSUPPORTED, "%s: \"%s\" is set; takumi reads plain LoRA adapters only", file, off_keys[i]);
            goto done;
        }
    v = jget(root, "bias");
    if (v && !cJSON_IsNull(v) && !(cJSON_IsString(v) && !strcmp(v->valuestring, "none"))) {
        st = tk_fail(TK_ERR_UNSUPPORTED, "%s: \"bias\" must be \"none\" (trained biases are not supported)", file);
        goto done;
    }
    v = jget(root, "modules_to_save");
    if (!j_off(v)) {
        st = tk_fail(TK_ERR_UNSUPPORTED, "%s: \"modules_to_save\" is set (fully trained extra modules are not supported)", file);
        goto done;
    }
    v = jget(root, "base_model_name_or_path");
    a->base_model = tk_strdup(cJSON_IsString(v) ? v->valuestring : "");
    if (!a->base_model) st = TK_ERR_NOMEM;
    a->r = r;
done:
    cJSON_Delete(root);
    return st;
}

static bool is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* The PEFT adapter from its config text and its opened safetensors (names for messages). */
static tk_status peft_from(tk_adapter *a, const char *json, size_t len, const char *cfg_name, const tk_safetensors *sf,
                           const char *st_name) {
    entry_list L = {0};
    tk_status st = parse_peft_config(a, json, len, cfg_name);
    if (st) return st;
    int32_t r_cfg = a->r;
    a->r = 0;
    for (int64_t i = 0; i < tk_st_n_tensors(sf) && !st; i++) {
        const tk_tensor_ref *t = tk_st_tensor(sf, i);
        int32_t layer;
        int which, is_b;
        if (!parse_peft_key(t->name, &layer, &which, &is_b)) {
            st = tk_fail(TK_ERR_UNSUPPORTED, "%s: tensor '%s' is not a LoRA A/B weight of a Llama-family linear "
                                             "(base_model.model.model.layers.N.{self_attn,mlp}.X_proj.lora_{A,B}.weight)",
                         st_name, t->name);
            break;
        }
        st = entries_push(&L, layer, which, is_b, t);
    }
    if (!st) st = build_modules(a, &L, st_name);
    if (!st && a->r != r_cfg)
        st = tk_fail(TK_ERR_FORMAT, "%s: the tensors have rank %d but %s says r = %d", st_name, a->r, cfg_name, r_cfg);
    a->format = "peft";
    a->scale = a->r ? (a->rslora ? a->alpha / sqrtf((float)a->r) : a->alpha / (float)a->r) : 0;
    a->qk_permuted = false;
    free(L.e);
    return st;
}

static tk_status load_peft(tk_adapter *a, const char *path) {
    /* path: the folder, or one of its two files */
    char *dir;
    if (is_dir(path)) dir = tk_strdup(path);
    else {
        const char *slash = strrchr(path, '/');
        dir = slash ? tk_strndup(path, (size_t)(slash - path)) : tk_strdup(".");
    }
    if (!dir) return TK_ERR_NOMEM;
    char *cfg_path = tk_path_join(dir, "adapter_config.json"), *st_path = tk_path_join(dir, "adapter_model.safetensors");
    char *json = NULL;
    size_t len = 0;
    tk_safetensors *sf = NULL;
    tk_status st = TK_OK;
    if (!cfg_path || !st_path) { st = TK_ERR_NOMEM; goto done; }
    if (access(cfg_path, F_OK) != 0) {
        st = tk_fail(TK_ERR_NOT_FOUND, "%s: no adapter_config.json (an adapter is a PEFT folder or a GGUF adapter file)", path);
        goto done;
    }
    if ((st = tk_read_file(cfg_path, &json, &len))) goto done;
    if (access(st_path, F_OK) != 0) {
        char *bin = tk_path_join(dir, "adapter_model.bin");
        bool has_bin = bin && access(bin, F_OK) == 0;
        free(bin);
        /* a bad config is the better message when there is one */
        tk_adapter probe = {0};
        if ((st = parse_peft_config(&probe, json, len, cfg_path))) { free(probe.base_model); goto done; }
        free(probe.base_model);
        st = has_bin ? tk_fail(TK_ERR_UNSUPPORTED, "%s: only adapter_model.bin (a pickle) is there; save the adapter with "
                                                   "safe_serialization=True (adapter_model.safetensors)", dir)
                     : tk_fail(TK_ERR_NOT_FOUND, "%s: missing adapter_model.safetensors", dir);
        goto done;
    }
    if ((st = tk_st_open(st_path, &sf))) goto done;
    st = peft_from(a, json, len, cfg_path, sf, st_path);
done:
    tk_st_close(sf);
    free(json);
    free(cfg_path);
    free(st_path);
    free(dir);
    return st;
}

static tk_status gguf_from(tk_adapter *a, const tk_gguf *g) {
    const char *path = tk_gguf_path(g);
    entry_list L = {0};
    tk_status st = TK_OK;
    const char *s;
    size_t n;
    if (!tk_gguf_get_str(g, "general.type", &s, &n) || strcmp(s, "adapter")) {
        st = tk_fail(TK_ERR_FORMAT, "%s: general.type is not \"adapter\" (this GGUF is a model, not a LoRA adapter)", path);
        goto done;
    }
    if (!tk_gguf_get_str(g, "adapter.type", &s, &n) || strcmp(s, "lora")) {
        st = tk_fail(TK_ERR_UNSUPPORTED, "%s: adapter.type must be \"lora\"", path);
        goto done;
    }
    if (!tk_gguf_get_str(g, "general.architecture", &s, &n)) {
        st = tk_fail(TK_ERR_FORMAT, "%s: missing general.architecture", path);
        goto done;
    }
    snprintf(a->arch, sizeof a->arch, "%s", s);
    bool perm = false;
    if (!tk_adapter_gguf_arch(a->arch, &perm)) {
        st = tk_fail(TK_ERR_UNSUPPORTED, "%s: adapter for architecture '%s' (takumi runs llama and qwen2)", path, a->arch);
        goto done;
    }
    double alpha = 0;
    if (tk_gguf_find_key(g, "adapter.lora.alpha") >= 0 && !tk_gguf_get_f64(g, "adapter.lora.alpha", &alpha)) {
        st = tk_fail(TK_ERR_FORMAT, "%s: adapter.lora.alpha must be a float", path);
        goto done;
    }
    if (!(alpha >= 0) || !isfinite(alpha)) { st = tk_fail(TK_ERR_RANGE, "%s: adapter.lora.alpha %g is not allowed", path, alpha); goto done; }
    a->alpha = (float)alpha;
    a->base_model = tk_strdup(tk_gguf_get_str(g, "general.name", &s, &n) ? s : "");
    if (!a->base_model) { st = TK_ERR_NOMEM; goto done; }
    for (int64_t i = 0; i < tk_gguf_n_tensors(g) && !st; i++) {
        const tk_tensor_ref *t = tk_gguf_tensor(g, i);
        int32_t layer;
        int which, is_b;
        if (!parse_gguf_key(t->name, &layer, &which, &is_b)) {
            st = tk_fail(TK_ERR_UNSUPPORTED, "%s: tensor '%s' is not a LoRA weight of a Llama-family linear "
                                             "(blk.N.{attn_q,attn_k,attn_v,attn_output,ffn_gate,ffn_up,ffn_down}.weight.lora_{a,b})",
                         path, t->name);
            break;
        }
        st = entries_push(&L, layer, which, is_b, t);
    }
    if (!st) st = build_modules(a, &L, path);
    a->format = "gguf";
    /* llama.cpp: scale = alpha / rank, and alpha 0 means scale 1 */
    a->scale = alpha > 0 ? a->alpha / (float)a->r : 1.0f;
    a->qk_permuted = perm;
done:
    free(L.e);
    return st;
}

static tk_status load_gguf(tk_adapter *a, const char *path) {
    tk_gguf *g = NULL;
    tk_status st = tk_gguf_open(path, &g);
    if (!st) st = gguf_from(a, g);
    tk_gguf_close(g);
    return st;
}

static tk_adapter *adapter_new(const char *name) {
    tk_adapter *a = tk_calloc(1, sizeof *a);
    if (a && !(a->path = tk_strdup(name))) { free(a); a = NULL; }
    return a;
}

tk_status tk_adapter_from_gguf(const tk_gguf *g, tk_adapter **out) {
    *out = NULL;
    if (!g) return tk_fail(TK_ERR_ARG, "adapter: NULL GGUF handle");
    tk_adapter *a = adapter_new(tk_gguf_path(g));
    if (!a) return TK_ERR_NOMEM;
    tk_status st = gguf_from(a, g);
    if (st) { tk_adapter_free(a); return st; }
    *out = a;
    return TK_OK;
}

tk_status tk_adapter_from_peft(const char *config_json, size_t len, const tk_safetensors *sf, const char *name, tk_adapter **out) {
    *out = NULL;
    if (!config_json || !sf || !name) return tk_fail(TK_ERR_ARG, "adapter: NULL argument");
    tk_adapter *a = adapter_new(name);
    if (!a) return TK_ERR_NOMEM;
    tk_status st = peft_from(a, config_json, len, name, sf, name);
    if (st) { tk_adapter_free(a); return st; }
    *out = a;
    return TK_OK;
}

tk_status tk_adapter_load(const char *path, tk_adapter **out) {
    *out = NULL;
    if (!path) return tk_fail(TK_ERR_ARG, "adapter: NULL path");
    tk_adapter *a = adapter_new(path);
    if (!a) return TK_ERR_NOMEM;
    bool gguf = false;
    if (!is_dir(path) && !tk_ends_with(path, ".json") && !tk_ends_with(path, ".safetensors")) {
        FILE *f = fopen(path, "rb");
        if (!f) { tk_status st = tk_fail(TK_ERR_IO, "%s: cannot open: %s", path, strerror(errno)); tk_adapter_free(a); return st; }
        char magic[4] = {0};
        gguf = fread(magic, 1, 4, f) == 4 && !memcmp(magic, "GGUF", 4);
        fclose(f);
        if (!gguf) {
            tk_adapter_free(a);
            return tk_fail(TK_ERR_FORMAT, "%s: neither a GGUF adapter nor a PEFT folder (adapter_config.json)", path);
        }
    }
    tk_status st = gguf ? load_gguf(a, path) : load_peft(a, path);
    if (st) { tk_adapter_free(a); return st; }
    *out = a;
    return TK_OK;
}

void tk_adapter_free(tk_adapter *a) {
    if (!a) return;
    for (int64_t i = 0; i < a->n_mods; i++) { free(a->mods[i].A); free(a->mods[i].B); }
    free(a->mods);
    free(a->base_model);
    free(a->path);
    free(a);
}

/* ---- attaching ---------------------------------------------------------------------------- */

tk_status tk_adapter_attach(const tk_adapter *a, tk_model *m, tk_param_set *ps, tk_lora **out) {
    *out = NULL;
    if (!a || !m || !ps) return tk_fail(TK_ERR_ARG, "adapter: NULL argument");
    const tk_model_config *mc = tk_model_get_config(m);
    if (a->max_layer >= mc->n_layers)
        return tk_fail(TK_ERR_ARG, "%s: the adapter has layer %d but the model %s has %d layers", a->path, a->max_layer,
                       tk_model_path(m) ? tk_model_path(m) : mc->name, mc->n_layers);
    if (a->arch[0]) {
        const char *ga = tk_adapter_gguf_arch(mc->arch, NULL);
        if (!ga || strcmp(ga, a->arch))
            return tk_fail(TK_ERR_ARG, "%s: adapter for architecture '%s', but the model is '%s'", a->path, a->arch, mc->arch);
    }
    tk_lora_config c = tk_lora_default_config();
    c.r = a->r;
    c.dropout = a->dropout;
    c.targets = a->targets;
    c.first_layer = a->min_layer;
    if (!strcmp(a->format, "gguf")) {
        c.rslora = false;
        c.alpha = a->scale * (float)a->r;
    } else {
        c.rslora = a->rslora;
        c.alpha = a->alpha;
    }
    tk_lora *l;
    tk_status st = tk_lora_new(m, &c, ps, &l);
    if (st) return tk_fail_ctx(st, "%s: ", a->path);
    bool perm = tk_lora_qk_permuted(l);
    /* start from zero everywhere: modules the file lacks then add nothing */
    for (int32_t i = 0; i < mc->n_layers; i++)
        for (int k = 0; k < TK_LIN_COUNT; k++) {
            tk_param *A, *B;
            if (!tk_lora_module(l, i, (tk_linear_id)k, &A, &B)) continue;
            memset(A->w, 0, (size_t)A->n * sizeof(float));
            memset(B->w, 0, (size_t)B->n * sizeof(float));
        }
    for (int64_t j = 0; j < a->n_mods; j++) {
        const tk_adapter_module *md = &a->mods[j];
        tk_param *A, *B;
        const tk_tensor_ref *wt = tk_model_linear(m, md->layer, md->which);
        if (!tk_lora_module(l, md->layer, md->which, &A, &B) || !wt) { st = tk_fail(TK_ERR_INTERNAL, "adapter: module missing"); break; }
        if (md->K != wt->ne[0] || md->N != wt->ne[1]) {
            st = tk_fail(TK_ERR_ARG, "%s: layer %d %s: the adapter maps %lld -> %lld but the model's weight is %lld -> %lld "
                                     "(an adapter for another model?)", a->path, md->layer, tk_linear_name(md->which),
                         (long long)md->K, (long long)md->N, (long long)wt->ne[0], (long long)wt->ne[1]);
            break;
        }
        if ((md->which == TK_LIN_Q || md->which == TK_LIN_K) && (md->N % mc->head_dim)) {
            st = tk_fail(TK_ERR_ARG, "%s: layer %d %s: %lld rows are not whole heads", a->path, md->layer,
                         tk_linear_name(md->which), (long long)md->N);
            break;
        }
        memcpy(A->w, md->A, (size_t)A->n * sizeof(float));
        convert_b(B->w, md->B, md->which, mc, md->N, a->r, a->qk_permuted, perm);
    }
    if (st) { tk_lora_free(l); return st; }
    *out = l;
    return TK_OK;
}

struct tk_adapter_handle {
    tk_param_set ps;
    tk_lora *lora;
};

tk_status tk_adapter_apply_loaded(tk_model *m, const tk_adapter *a, tk_adapter_handle **out) {
    *out = NULL;
    if (!m || !a) return tk_fail(TK_ERR_ARG, "adapter: NULL argument");
    tk_adapter_handle *h = tk_calloc(1, sizeof *h);
    if (!h) return TK_ERR_NOMEM;
    tk_status st = tk_adapter_attach(a, m, &h->ps, &h->lora);
    if (st) { tk_params_free(&h->ps); free(h); return st; }
    *out = h;
    return TK_OK;
}

tk_status tk_adapter_apply(tk_model *m, const char *path, tk_adapter_handle **out) {
    *out = NULL;
    tk_adapter *a;
    tk_status st = tk_adapter_load(path, &a);
    if (st) return st;
    st = tk_adapter_apply_loaded(m, a, out);
    tk_adapter_free(a);
    return st;
}

void tk_adapter_detach(tk_model *m, tk_adapter_handle *h) {
    (void)m;
    if (!h) return;
    tk_lora_free(h->lora);
    tk_params_free(&h->ps);
    free(h);
}

tk_lora *tk_adapter_handle_lora(tk_adapter_handle *h) { return h ? h->lora : NULL; }
const tk_peft *tk_adapter_handle_peft(tk_adapter_handle *h) { return h ? tk_lora_peft(h->lora) : NULL; }
