/* The LoRA file object (lora_io.h): the checks both readers share, turning a file's tensor
 * list into f32 modules; attaching one to a model as a tk_lora; describing and freeing it. */
#include "peft/lora_io.h"
#include "peft/adapter_io.h"
#include "model/hfconfig.h"
#include "core/core.h"
#include <math.h>

/* Layers above this are not a real model: a guard against absurd indices in names. */
#define MAX_LAYER 100000

void tk_lora_convert_b(float *dst, const float *src, tk_linear_id which, const tk_model_config *mc, int64_t N, int64_t r,
                       bool from_perm, bool to_perm) {
    if ((which != TK_LIN_Q && which != TK_LIN_K) || from_perm == to_perm) {
        memcpy(dst, src, (size_t)(N * r) * sizeof(float));
        return;
    }
    int heads = which == TK_LIN_Q ? mc->n_heads : mc->n_kv_heads;
    if (from_perm) tk_permute_qk_rows_to_hf(dst, src, heads, mc->head_dim, (size_t)r * sizeof(float));
    else tk_permute_qk_rows_from_hf(dst, src, heads, mc->head_dim, (size_t)r * sizeof(float));
}

/* ---- reading ------------------------------------------------------------------------------ */

tk_status tk_lora_entries_push(tk_lora_entries *L, int32_t layer, int which, int is_b, const tk_tensor_ref *t) {
    if (L->n == L->cap) {
        int64_t cap = L->cap ? L->cap * 2 : 64;
        tk_lora_entry *e = tk_realloc(L->e, (size_t)cap * sizeof *e);
        if (!e) return TK_ERR_NOMEM;
        L->e = e;
        L->cap = cap;
    }
    L->e[L->n++] = (tk_lora_entry){layer, which, is_b, t};
    return TK_OK;
}

static int entry_cmp(const void *a, const void *b) {
    const tk_lora_entry *x = a, *y = b;
    if (x->layer != y->layer) return x->layer < y->layer ? -1 : 1;
    if (x->which != y->which) return x->which < y->which ? -1 : 1;
    return x->is_b - y->is_b;
}

bool tk_lora_key_layer(const char **s, int32_t *layer) {
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

bool tk_lora_key_eat(const char **s, const char *lit) {
    size_t n = strlen(lit);
    if (strncmp(*s, lit, n)) return false;
    *s += n;
    return true;
}

tk_status tk_lora_file_build(tk_lora_file *a, tk_lora_entries *L, const char *file) {
    if (L->n == 0) return tk_fail(TK_ERR_FORMAT, "%s: no LoRA tensors", file);
    qsort(L->e, (size_t)L->n, sizeof *L->e, entry_cmp);
    for (int64_t i = 0; i < L->n; i++) {
        const tk_lora_entry *e = &L->e[i];
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
        const tk_lora_entry *ea = &L->e[2 * j], *eb = &L->e[2 * j + 1];
        tk_lora_file_module *md = &a->mods[j];
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

void tk_lora_file_free(void *file) {
    tk_lora_file *a = file;
    if (!a) return;
    for (int64_t i = 0; i < a->n_mods; i++) { free(a->mods[i].A); free(a->mods[i].B); }
    free(a->mods);
    free(a->base_model);
    free(a);
}

void tk_lora_describe_file(const void *file, tk_adapter_info *i) {
    const tk_lora_file *a = file;
    i->r = a->r;
    i->alpha = a->alpha;
    i->scale = a->scale;
    i->rslora = a->rslora;
    i->arch = a->arch;
    i->base_model = a->base_model ? a->base_model : "";
    i->targets = a->targets;
    i->min_layer = a->min_layer;
    i->max_layer = a->max_layer;
    i->n_modules = a->n_mods;
}

/* ---- attaching ---------------------------------------------------------------------------- */

/* Copies the file's modules into l's zeroed parameters, checked against m's weights. */
tk_status tk_lora_file_fill(const tk_lora_file *a, const char *name, tk_model *m, tk_lora *l) {
    const tk_model_config *mc = tk_model_get_config(m);
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
        const tk_lora_file_module *md = &a->mods[j];
        tk_param *A, *B;
        const tk_tensor_ref *wt = tk_model_linear(m, md->layer, md->which);
        if (!wt || !wt->data)
            return tk_fail(TK_ERR_ARG, "%s: layer %d %s: the model has no such linear (its family fuses it into another weight)", name,
                           md->layer, tk_linear_name(md->which));
        if (!tk_lora_module(l, md->layer, md->which, &A, &B)) return tk_fail(TK_ERR_INTERNAL, "adapter: module missing");
        if (md->K != wt->ne[0] || md->N != wt->ne[1])
            return tk_fail(TK_ERR_ARG, "%s: layer %d %s: the adapter maps %lld -> %lld but the model's weight is %lld -> %lld "
                                       "(an adapter for another model?)", name, md->layer, tk_linear_name(md->which),
                           (long long)md->K, (long long)md->N, (long long)wt->ne[0], (long long)wt->ne[1]);
        if ((md->which == TK_LIN_Q || md->which == TK_LIN_K) && (md->N % mc->head_dim))
            return tk_fail(TK_ERR_ARG, "%s: layer %d %s: %lld rows are not whole heads", name, md->layer,
                           tk_linear_name(md->which), (long long)md->N);
        memcpy(A->w, md->A, (size_t)A->n * sizeof(float));
        tk_lora_convert_b(B->w, md->B, md->which, mc, md->N, a->r, a->qk_permuted, perm);
    }
    return TK_OK;
}

tk_status tk_lora_file_config(const tk_lora_file *a, const char *name, const tk_model *m, tk_lora_config *c) {
    const tk_model_config *mc = tk_model_get_config(m);
    if (a->max_layer >= mc->n_layers)
        return tk_fail(TK_ERR_ARG, "%s: the adapter has layer %d but the model %s has %d layers", name, a->max_layer,
                       tk_model_path(m) ? tk_model_path(m) : mc->name, mc->n_layers);
    if (a->arch[0]) {
        const char *ga = tk_adapter_gguf_arch(mc->arch, NULL);
        if (!ga || strcmp(ga, a->arch))
            return tk_fail(TK_ERR_ARG, "%s: adapter for architecture '%s', but the model is '%s'", name, a->arch, mc->arch);
    }
    *c = tk_lora_default_config();
    c->r = a->r;
    c->dropout = a->dropout;
    c->targets = a->targets;
    c->first_layer = a->min_layer;
    c->rslora = a->gguf ? false : a->rslora;
    c->init = a->gguf ? TK_LORA_INIT_KAIMING : a->init; /* PiSSA/OLoRA saved unconverted: A0, B0 from m's weights */
    c->alpha = a->gguf ? a->scale * (float)a->r : a->alpha;
    return TK_OK;
}

static tk_status attach_lora(const tk_lora_file *a, const char *name, tk_model *m, tk_param_set *ps, tk_lora **out) {
    *out = NULL;
    if (!a || !m || !ps) return tk_fail(TK_ERR_ARG, "adapter: NULL argument");
    tk_lora_config c;
    tk_status st = tk_lora_file_config(a, name, m, &c);
    if (st) return st;
    tk_lora *l;
    if ((st = tk_lora_new(m, &c, ps, &l))) return tk_fail_ctx(st, "%s: ", name);
    if ((st = tk_lora_file_fill(a, name, m, l))) { tk_lora_free(l); return st; }
    *out = l;
    return TK_OK;
}

tk_status tk_lora_attach_file(const void *file, const char *name, tk_model *m, tk_param_set *ps, tk_peft **out) {
    *out = NULL;
    tk_lora *l;
    tk_status st = attach_lora(file, name, m, ps, &l);
    if (!st) *out = (tk_peft *)tk_lora_peft(l);
    return st;
}

const tk_lora_file *tk_adapter_lora_file(const tk_adapter *a) {
    return a && a->kind->attach == tk_lora_attach_file ? a->file : NULL;
}

tk_status tk_adapter_attach(const tk_adapter *a, tk_model *m, tk_param_set *ps, tk_lora **out) {
    *out = NULL;
    if (!a) return tk_fail(TK_ERR_ARG, "adapter: NULL argument");
    const tk_lora_file *f = tk_adapter_lora_file(a);
    if (!f) return tk_fail(TK_ERR_ARG, "%s: a %s adapter, not LoRA", a->path, a->kind->name);
    return attach_lora(f, a->path, m, ps, out);
}
