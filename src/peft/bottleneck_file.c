/* Bottleneck adapters as files (bottleneck.h): takumi's own layout in a folder, as HF PEFT has no
 * bottleneck adapters (and AdapterHub's pytorch_adapter.bin is a pickle):
 *   adapter_config.json  {"peft_type": "TAKUMI_BOTTLENECK" (not a PEFT PeftType: PEFT refuses the
 *                         folder), "architecture": "pfeiffer"|"houlsby", "reduction_factor": N,
 *                         "non_linearity": "relu"|"swish"|"gelu", "hidden_size": C, "bottleneck_size": R,
 *                         "num_hidden_layers": L, "base_model_name_or_path", "init_weights": "bert", "note",
 *                         "task_type": "CAUSAL_LM" (a classifier: "SEQ_CLS", the head in "modules_to_save")}
 *   adapter_model.safetensors  "model.layers.{i}.{attention|output}_adapters.adapter_{down|up}.{weight|bias}"
 *                         torch [R, C], [R], [C, R], [C] for every adapted site of layers first..L-1
 * (AdapterHub's parameter names without its adapter name and Sequential index). No GGUF layout. */
#include "peft/bottleneck.h"
#include "peft/lora_io.h"
#include "peft/prompt_learning.h"
#include "core/core.h"
#include <cJSON.h>
#include <math.h>
#include <stdio.h>

static const char *const k_part[4] = {"adapter_down.weight", "adapter_down.bias", "adapter_up.weight", "adapter_up.bias"};

typedef struct bn_file {
    int32_t placement, act, reduction, C, R, L;   /* L = 0 when the config does not say */
    int32_t min_layer, max_layer;
    char *base_model;
    int32_t n_layers_cap;
    float **t;                                    /* [n_layers_cap x TK_BLOCK_COUNT x 4] tensors (NULL = absent) */
    int64_t n_tensors;
} bn_file;

void tk_bottleneck_file_free(void *file) {
    bn_file *f = file;
    if (!f) return;
    for (int64_t i = 0; f->t && i < (int64_t)f->n_layers_cap * TK_BLOCK_COUNT * 4; i++) free(f->t[i]);
    free(f->t);
    free(f->base_model);
    free(f);
}

static tk_status str_field(const cJSON *cfg, const char *key, const char *file, int (*parse)(const char *), const char *choices, int32_t *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    int k = cJSON_IsString(v) ? parse(v->valuestring) : -1;
    if (k < 0)
        return tk_fail(TK_ERR_FORMAT, "%s: \"%s\" must be one of %s (%s)", file, key, choices,
                       cJSON_IsString(v) ? v->valuestring : v ? "not a string" : "missing");
    *out = k;
    return TK_OK;
}

static tk_status read_config(bn_file *f, const cJSON *cfg, const char *file) {
    tk_status st;
    if ((st = str_field(cfg, "architecture", file, tk_bn_placement_parse, "pfeiffer, houlsby", &f->placement)) ||
        (st = str_field(cfg, "non_linearity", file, tk_bn_act_parse, "relu, swish, gelu", &f->act)) ||
        (st = tk_pl_int_field(cfg, "reduction_factor", file, 1, &f->reduction)) || (st = tk_pl_int_field(cfg, "hidden_size", file, 1, &f->C)) ||
        (st = tk_pl_int_field(cfg, "bottleneck_size", file, 1, &f->R)))
        return st;
    int32_t want = f->C / f->reduction > 0 ? f->C / f->reduction : 1;
    if (f->R != want)
        return tk_fail(TK_ERR_FORMAT, "%s: \"bottleneck_size\" is %d, but hidden_size %d / reduction_factor %d gives %d", file, f->R, f->C,
                       f->reduction, want);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, "num_hidden_layers");
    if (v && !cJSON_IsNull(v) && (st = tk_pl_int_field(cfg, "num_hidden_layers", file, 1, &f->L))) return st;
    v = cJSON_GetObjectItemCaseSensitive(cfg, "base_model_name_or_path");
    return (f->base_model = tk_strdup(cJSON_IsString(v) ? v->valuestring : "")) ? TK_OK : TK_ERR_NOMEM;
}

/* "model.layers.{i}.{attention|output}_adapters.{part}" -> layer, site (output: the placement's), part; false when not one. */
static bool parse_name(const char *name, int placement, int32_t *layer, tk_block_site *site, int *part) {
    int i = -1, n = 0;
    if (sscanf(name, "model.layers.%d.%n", &i, &n) != 1 || n == 0 || i < 0) return false;
    const char *r = name + n;
    if (!strncmp(r, "attention_adapters.", 19)) { *site = TK_BLOCK_ATTN; r += 19; }
    else if (!strncmp(r, "output_adapters.", 16)) { *site = placement == TK_BN_PFEIFFER ? TK_BLOCK_LAYER : TK_BLOCK_MLP; r += 16; }
    else return false;
    for (int k = 0; k < 4; k++)
        if (!strcmp(r, k_part[k])) { *layer = i; *part = k; return true; }
    return false;
}

static tk_status read_tensors(bn_file *f, const tk_safetensors *sf, const char *st_name, const char *cfg_name) {
    int64_t n = tk_st_n_tensors(sf);
    if (n == 0) return tk_fail(TK_ERR_FORMAT, "%s: no adapter tensors", st_name);
    f->min_layer = INT32_MAX;
    f->max_layer = -1;
    for (int64_t i = 0; i < n; i++) {   /* names first: the layer range */
        const tk_tensor_ref *t = tk_st_tensor(sf, i);
        int32_t layer;
        tk_block_site site;
        int part;
        if (!parse_name(t->name, f->placement, &layer, &site, &part) || layer >= 100000)
            return tk_fail(TK_ERR_FORMAT, "%s: tensor '%s' is not part of a bottleneck adapter "
                                          "(model.layers.N.{attention,output}_adapters.adapter_{down,up}.{weight,bias})", st_name, t->name);
        if (site == TK_BLOCK_ATTN && f->placement == TK_BN_PFEIFFER)
            return tk_fail(TK_ERR_FORMAT, "%s: tensor '%s' is an attention adapter, but %s says architecture \"pfeiffer\" (output adapters only)",
                           st_name, t->name, cfg_name);
        if (layer < f->min_layer) f->min_layer = layer;
        if (layer > f->max_layer) f->max_layer = layer;
    }
    f->n_layers_cap = f->max_layer + 1;
    if (!(f->t = tk_calloc((size_t)f->n_layers_cap * TK_BLOCK_COUNT * 4, sizeof *f->t))) return TK_ERR_NOMEM;
    for (int64_t i = 0; i < n; i++) {
        const tk_tensor_ref *t = tk_st_tensor(sf, i);
        int32_t layer;
        tk_block_site site;
        int part;
        parse_name(t->name, f->placement, &layer, &site, &part);
        float **slot = &f->t[((size_t)layer * TK_BLOCK_COUNT + site) * 4 + (size_t)part];
        if (*slot) return tk_fail(TK_ERR_FORMAT, "%s: tensor '%s' appears twice", st_name, t->name);
        /* torch [R, C], [R], [C, R], [C] = ggml ne {C, R}, {R}, {R, C}, {C} */
        int64_t e0 = part == 0 || part == 3 ? f->C : f->R, e1 = part == 0 ? f->R : part == 2 ? f->C : 1;
        int nd = part % 2 ? 1 : 2;
        if (t->n_dims != nd || t->ne[0] != e0 || (nd == 2 && t->ne[1] != e1))
            return tk_fail(TK_ERR_FORMAT, "%s: tensor '%s' must have torch shape %s (hidden_size %d, bottleneck_size %d of %s)", st_name, t->name,
                           part == 0 ? "[bottleneck_size, hidden_size]" : part == 1 ? "[bottleneck_size]" : part == 2 ? "[hidden_size, bottleneck_size]"
                                                                                                                   : "[hidden_size]",
                           f->C, f->R, cfg_name);
        if (t->dtype != TK_F32 && t->dtype != TK_F16 && t->dtype != TK_BF16)
            return tk_fail(TK_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s (f32, f16, bf16 are read)", st_name, t->name, tk_dtype_name(t->dtype));
        int64_t ne = e0 * e1;
        if (!(*slot = tk_malloc((size_t)ne * sizeof(float)))) return TK_ERR_NOMEM;
        tk_status st = tk_dequantize(t->dtype, t->data, *slot, ne);
        if (st) return tk_fail_ctx(st, "%s: tensor '%s': ", st_name, t->name);
        for (int64_t k = 0; k < ne; k++)
            if (!isfinite((*slot)[k])) return tk_fail(TK_ERR_FORMAT, "%s: tensor '%s' holds a non-finite value", st_name, t->name);
        f->n_tensors++;
    }
    /* every layer from the first adapted one holds every site of the placement, each with its four tensors */
    for (int32_t l = f->min_layer; l <= f->max_layer; l++)
        for (int s = 0; s < TK_BLOCK_COUNT; s++) {
            bool want = f->placement == TK_BN_PFEIFFER ? s == TK_BLOCK_LAYER : s != TK_BLOCK_LAYER;
            for (int k = 0; want && k < 4; k++)
                if (!f->t[((size_t)l * TK_BLOCK_COUNT + (size_t)s) * 4 + (size_t)k])
                    return tk_fail(TK_ERR_FORMAT, "%s: no tensor 'model.layers.%d.%s_adapters.%s' (a %s adapter has one for every layer from "
                                                  "its first, %d)", st_name, l, s == TK_BLOCK_ATTN ? "attention" : "output", k_part[k],
                                   tk_bn_placement_name(f->placement), f->min_layer);
        }
    return TK_OK;
}

tk_status tk_bottleneck_read_peft(const cJSON *cfg, const char *cfg_name, const tk_safetensors *sf, const char *st_name, void **file) {
    *file = NULL;
    bn_file *f = tk_calloc(1, sizeof *f);
    if (!f) return TK_ERR_NOMEM;
    tk_status st = read_config(f, cfg, cfg_name);
    if (!st && sf) st = read_tensors(f, sf, st_name, cfg_name);
    if (st || !sf) { tk_bottleneck_file_free(f); return st; }
    *file = f;
    return TK_OK;
}

tk_status tk_bottleneck_attach_file(const void *file, const char *name, tk_model *m, tk_param_set *ps, tk_peft **out) {
    *out = NULL;
    const bn_file *f = file;
    if (!f || !m || !ps) return tk_fail(TK_ERR_ARG, "adapter: NULL argument");
    const tk_model_config *mc = tk_model_get_config(m);
    if (f->C != mc->dim || (f->L && f->L != mc->n_layers) || f->max_layer != mc->n_layers - 1)
        return tk_fail(TK_ERR_ARG, "%s: the adapter is for a model of width %d with %d layers (adapters on layers %d..%d), the model has width "
                                   "%d and %d layers (an adapter for another model?)", name, f->C, f->L ? f->L : f->max_layer + 1, f->min_layer,
                       f->max_layer, mc->dim, mc->n_layers);
    tk_bottleneck_config c = {.placement = f->placement, .reduction = f->reduction, .act = f->act, .first_layer = f->min_layer};
    tk_bottleneck *b;
    tk_status st = tk_bottleneck_new(m, &c, ps, &b);
    if (st) return tk_fail_ctx(st, "%s: ", name);
    for (int32_t l = f->min_layer; l <= f->max_layer; l++)
        for (int s = 0; s < TK_BLOCK_COUNT; s++)
            for (int k = 0; k < 4; k++) {
                tk_param *p = tk_bottleneck_param(b, l, (tk_block_site)s, k);
                const float *v = f->t[((size_t)l * TK_BLOCK_COUNT + (size_t)s) * 4 + (size_t)k];
                if (!p != !v) { tk_bottleneck_free(b); return tk_fail(TK_ERR_INTERNAL, "%s: layer %d: adapter sites differ", name, l); }
                if (p) memcpy(p->w, v, (size_t)p->n * sizeof(float));
            }
    *out = (tk_peft *)tk_bottleneck_peft(b);
    return TK_OK;
}

void tk_bottleneck_describe_file(const void *file, tk_adapter_info *i) {
    const bn_file *f = file;
    i->base_model = f->base_model ? f->base_model : "";
    i->arch = "";
    i->r = f->R;       /* the bottleneck width */
    i->targets = 0;    /* no linears: block outputs */
    i->min_layer = f->min_layer;
    i->max_layer = f->max_layer;
    i->n_modules = f->n_tensors / 4;
}

/* ---- writing -------------------------------------------------------------------------------- */

tk_status tk_bottleneck_save(tk_bottleneck *b, const tk_model *m, const char *dir, const char *base_model) {
    if (!b || !m || !dir) return tk_fail(TK_ERR_ARG, "adapter: NULL argument");
    const tk_bottleneck_config *cfg = tk_bottleneck_get_config(b);
    const tk_model_config *mc = tk_model_get_config(m);
    tk_status st = tk_mkdir_p(dir);
    if (st) return st;
    tk_st_writer *w = tk_st_writer_new();
    char *st_path = tk_path_join(dir, "adapter_model.safetensors"), *cfg_path = tk_path_join(dir, "adapter_config.json");
    cJSON *root = NULL;
    if (!w || !st_path || !cfg_path) { st = TK_ERR_NOMEM; goto done; }
    for (int32_t l = 0; l < mc->n_layers && !st; l++)
        for (int s = 0; s < TK_BLOCK_COUNT && !st; s++)
            for (int k = 0; k < 4 && !st; k++) {
                tk_param *p = tk_bottleneck_param(b, l, (tk_block_site)s, k);
                if (p) st = tk_st_add(w, p->name, TK_F32, p->n_dims, p->ne, p->w);
            }
    if (st || (st = tk_st_set_metadata(w, "format", "pt")) || (st = tk_st_write(w, st_path))) goto done;
    if (!(root = cJSON_CreateObject())) { st = TK_ERR_NOMEM; goto done; }
    cJSON_AddStringToObject(root, "peft_type", TK_BOTTLENECK_TYPE);
    cJSON_AddStringToObject(root, "note", "takumi's bottleneck-adapter layout (AdapterHub SeqBnConfig = pfeiffer, DoubleSeqBnConfig = "
                                          "houlsby, on Llama-family layers); not an HF PEFT type: HF PEFT cannot load it");
    cJSON_AddStringToObject(root, "architecture", tk_bn_placement_name(cfg->placement));
    cJSON_AddNumberToObject(root, "reduction_factor", cfg->reduction);
    cJSON_AddStringToObject(root, "non_linearity", tk_bn_act_name(cfg->act));
    cJSON_AddNumberToObject(root, "hidden_size", mc->dim);
    cJSON_AddNumberToObject(root, "bottleneck_size", (double)tk_bottleneck_width(b));
    cJSON_AddNumberToObject(root, "num_hidden_layers", mc->n_layers);
    cJSON_AddStringToObject(root, "init_weights", "bert");
    cJSON_AddStringToObject(root, "task_type", "CAUSAL_LM");   /* a classifier run makes these SEQ_CLS / its head (classify_out.c) */
    cJSON_AddNullToObject(root, "modules_to_save");
    const char *bm = base_model ? base_model : tk_model_path(m);
    if (bm) cJSON_AddStringToObject(root, "base_model_name_or_path", bm);
    else cJSON_AddNullToObject(root, "base_model_name_or_path");
    st = tk_peft_write_json(cfg_path, root);
done:
    cJSON_Delete(root);
    free(st_path);
    free(cfg_path);
    tk_st_writer_free(w);
    return st ? tk_fail_ctx(st, "writing the adapter %s: ", dir) : TK_OK;
}
