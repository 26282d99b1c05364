/* DoRA as an HF PEFT folder (dora.h): PEFT's LoRA layout with "use_dora": true and one
 * "base_model.model.model.layers.{i}.{self_attn|mlp}.{x}_proj.lora_magnitude_vector" [out]
 * tensor per module (q/k rows in HF order). The LoRA part is read and written by lora_peft.c;
 * this file adds the magnitudes. No GGUF layout: llama.cpp applies plain LoRA only. */
#include "peft/dora.h"
#include "peft/lora_io.h"
#include "core/core.h"
#include <cJSON.h>
#include <math.h>
#include <stdio.h>

typedef struct dora_file {
    tk_lora_file *lf;
    float **mag;        /* [lf->n_mods] magnitudes [N], HF row order */
} dora_file;

bool tk_dora_claims(const cJSON *cfg) { return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cfg, "use_dora")); }

void tk_dora_file_free(void *file) {
    dora_file *f = file;
    if (!f) return;
    for (int64_t i = 0; f->mag && i < f->lf->n_mods; i++) free(f->mag[i]);
    free(f->mag);
    tk_lora_file_free(f->lf);
    free(f);
}

/* The magnitude tensors of sf into f->mag, one per LoRA module, each [N] of that module. */
static tk_status read_mags(dora_file *f, const tk_safetensors *sf, const char *st_name) {
    const tk_lora_file *lf = f->lf;
    if (!(f->mag = tk_calloc((size_t)lf->n_mods, sizeof *f->mag))) return TK_ERR_NOMEM;
    for (int64_t i = 0; i < tk_st_n_tensors(sf); i++) {
        const tk_tensor_ref *t = tk_st_tensor(sf, i);
        if (!tk_ends_with(t->name, ".lora_magnitude_vector")) continue;
        int32_t layer;
        int which;
        const char *rest;
        if (!tk_peft_module_key(t->name, &layer, &which, &rest) || strcmp(rest, ".lora_magnitude_vector"))
            return tk_fail(TK_ERR_UNSUPPORTED, "%s: tensor '%s' is not a DoRA magnitude of a Llama-family linear", st_name, t->name);
        int64_t j = 0;
        while (j < lf->n_mods && !(lf->mods[j].layer == layer && (int)lf->mods[j].which == which)) j++;
        if (j == lf->n_mods) return tk_fail(TK_ERR_FORMAT, "%s: tensor '%s' has no lora_A/lora_B of its module", st_name, t->name);
        if (f->mag[j]) return tk_fail(TK_ERR_FORMAT, "%s: tensor '%s' appears twice", st_name, t->name);
        int64_t N = lf->mods[j].N;
        if (tk_tensor_nelems(t) != N || t->n_dims != 1)
            return tk_fail(TK_ERR_FORMAT, "%s: tensor '%s' must be a vector of %lld (the module's outputs)", st_name, t->name, (long long)N);
        if (t->dtype != TK_F32 && t->dtype != TK_F16 && t->dtype != TK_BF16)
            return tk_fail(TK_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s (f32, f16, bf16 are read)", st_name, t->name, tk_dtype_name(t->dtype));
        if (!(f->mag[j] = tk_malloc((size_t)N * sizeof(float)))) return TK_ERR_NOMEM;
        tk_status st = tk_dequantize(t->dtype, t->data, f->mag[j], N);
        if (st) return tk_fail_ctx(st, "%s: tensor '%s': ", st_name, t->name);
        for (int64_t k = 0; k < N; k++)
            if (!isfinite(f->mag[j][k])) return tk_fail(TK_ERR_FORMAT, "%s: tensor '%s' holds a non-finite value", st_name, t->name);
    }
    for (int64_t j = 0; j < lf->n_mods; j++)
        if (!f->mag[j])
            return tk_fail(TK_ERR_FORMAT, "%s: layer %d %s has lora_A/lora_B but no lora_magnitude_vector (use_dora is set)", st_name,
                           lf->mods[j].layer, tk_linear_name(lf->mods[j].which));
    return TK_OK;
}

tk_status tk_dora_read_peft(const cJSON *cfg, const char *cfg_name, const tk_safetensors *sf, const char *st_name, void **file) {
    *file = NULL;
    void *lf = NULL;
    tk_status st = tk_lora_read_peft_ex(cfg, cfg_name, sf, st_name, true, &lf);
    if (st || !sf) return st;
    dora_file *f = tk_calloc(1, sizeof *f);
    if (!f) { tk_lora_file_free(lf); return TK_ERR_NOMEM; }
    f->lf = lf;
    if ((st = read_mags(f, sf, st_name))) { tk_dora_file_free(f); return st; }
    *file = f;
    return TK_OK;
}

tk_status tk_dora_attach_file(const void *file, const char *name, tk_model *m, tk_param_set *ps, tk_peft **out) {
    *out = NULL;
    const dora_file *f = file;
    if (!f || !m || !ps) return tk_fail(TK_ERR_ARG, "adapter: NULL argument");
    tk_lora_config c;
    tk_status st = tk_lora_file_config(f->lf, name, m, &c);
    if (st) return st;
    tk_dora *d;
    if ((st = tk_dora_new(m, &c, ps, &d))) return tk_fail_ctx(st, "%s: ", name);
    if ((st = tk_lora_file_fill(f->lf, name, m, tk_dora_lora(d)))) { tk_dora_free(d); return st; }
    const tk_model_config *mc = tk_model_get_config(m);
    bool perm = tk_lora_qk_permuted(tk_dora_lora(d));
    for (int64_t j = 0; j < f->lf->n_mods; j++) {
        const tk_lora_file_module *md = &f->lf->mods[j];
        tk_param *pm = tk_dora_magnitude(d, md->layer, md->which);
        if (!pm) { tk_dora_free(d); return tk_fail(TK_ERR_INTERNAL, "%s: DoRA module missing", name); }
        /* a magnitude is a column of one value per output row: converted like lora_B's rows with r = 1 */
        tk_lora_convert_b(pm->w, f->mag[j], md->which, mc, md->N, 1, false, perm);
    }
    *out = (tk_peft *)tk_dora_peft(d);
    return TK_OK;
}

void tk_dora_describe_file(const void *file, tk_adapter_info *info) {
    const dora_file *f = file;
    tk_lora_describe_file(f->lf, info);
}

/* ---- writing -------------------------------------------------------------------------------- */

typedef struct save_ctx { tk_dora *d; const tk_model_config *mc; bool perm; float *tmp; } save_ctx;

static tk_status add_mag(void *ud, tk_st_writer *w, const char *prefix, int32_t layer, tk_linear_id which) {
    save_ctx *c = ud;
    tk_param *pm = tk_dora_magnitude(c->d, layer, which);
    if (!pm) return tk_fail(TK_ERR_INTERNAL, "dora: no magnitude for layer %d %s", layer, tk_linear_name(which));
    free(c->tmp);
    if (!(c->tmp = tk_malloc((size_t)pm->n * sizeof(float)))) return TK_ERR_NOMEM;
    tk_lora_convert_b(c->tmp, pm->w, which, c->mc, pm->n, 1, c->perm, false);
    char name[200];
    snprintf(name, sizeof name, "%s.lora_magnitude_vector", prefix);
    return tk_st_add(w, name, TK_F32, 1, pm->ne, c->tmp);
}

tk_status tk_dora_save_peft(tk_dora *d, const tk_model *m, const char *dir, const char *base_model) {
    save_ctx c = {d, tk_model_get_config(m), tk_lora_qk_permuted(tk_dora_lora(d)), NULL};
    tk_lora_peft_extra ex = {.use_dora = true, .add = add_mag, .ud = &c};
    tk_status st = tk_lora_write_peft(tk_dora_lora(d), m, dir, base_model, &ex);
    free(c.tmp);
    return st;
}
