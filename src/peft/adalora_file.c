/* AdaLoRA as an HF PEFT folder (adalora.h), as PEFT 0.21 saves it: adapter_config.json with
 * peft_type "ADALORA", init_r, target_r, the schedule and rank_pattern ({"model.layers.{i}.{grp}.{x}_proj.lora_E":
 * [kept, ...]} after an allocation, else null), and adapter_model.safetensors with
 * "base_model.model.model.layers.{i}.{grp}.{x}_proj.lora_{A,E,B}" cut to the kept triplets
 * (resize_state_dict_by_rank_pattern): A [r_i x in], E [r_i x 1], B [out x r_i], q/k rows of B in HF order.
 * PEFT loads it with ranknum = init_r, so the scale stays lora_alpha / (init_r + 1e-5). */
#include "peft/adalora_state.h"
#include "peft/lora_io.h"
#include "peft/peft_targets.h"
#include "core/core.h"
#include <cJSON.h>
#include <math.h>
#include <stdio.h>

typedef struct ada_file_mod {
    int32_t layer;
    int which;
    int64_t r, K, N;           /* kept triplets, in, out */
    const tk_tensor_ref *t[3]; /* A, E, B while reading */
    float *A, *E, *B;          /* f32 copies (B rows in HF order) */
    uint8_t *keep;             /* [init_r] */
} ada_file_mod;

typedef struct ada_file {
    tk_adalora_config cfg;
    bool has_pattern;
    char *base_model;
    ada_file_mod *mods;
    int64_t n_mods;
    int32_t min_layer, max_layer;
} ada_file;

static const char *group(int w) { return w <= TK_LIN_O ? "self_attn" : "mlp"; }

void tk_adalora_file_free(void *file) {
    ada_file *f = file;
    if (!f) return;
    for (int64_t i = 0; i < f->n_mods; i++) { free(f->mods[i].A); free(f->mods[i].E); free(f->mods[i].B); free(f->mods[i].keep); }
    free(f->mods);
    free(f->base_model);
    free(f);
}

/* An integer / number field of the config (absent: the default). */
static tk_status num_field(const cJSON *cfg, const char *key, const char *file, double lo, double hi, bool integer, double *v) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (!j || cJSON_IsNull(j)) return TK_OK;
    if (!cJSON_IsNumber(j) || !(j->valuedouble >= lo && j->valuedouble <= hi) || (integer && j->valuedouble != floor(j->valuedouble)))
        return tk_fail(TK_ERR_FORMAT, "%s: \"%s\" must be %s in [%g, %g]", file, key, integer ? "an integer" : "a number", lo, hi);
    *v = j->valuedouble;
    return TK_OK;
}

static tk_status read_config(ada_file *f, const cJSON *cfg, const char *file) {
    tk_adalora_config *c = &f->cfg;
    *c = tk_adalora_default_config();
    double v[10] = {c->init_r, c->target_r, c->tinit, c->tfinal, c->delta_t, 0, c->beta1, c->beta2, c->orth_reg, c->alpha};
    static const char *const keys[10] = {"init_r", "target_r", "tinit", "tfinal", "deltaT", "total_step", "beta1", "beta2", "orth_reg_weight", "lora_alpha"};
    tk_status st = TK_OK;
    static const double hi[10] = {4096, 4096, 1e9, 1e9, 1e9, 1e15, 1, 1, 1e6, 1e6};   /* ranks as takumi creates them */
    for (int i = 0; i < 10 && !st; i++) st = num_field(cfg, keys[i], file, 0, hi[i], i < 6, &v[i]);
    double dr = 0;
    if (!st) st = num_field(cfg, "lora_dropout", file, 0, 0.999999, false, &dr);
    if (st) return st;
    if (!cJSON_GetObjectItemCaseSensitive(cfg, "init_r")) return tk_fail(TK_ERR_FORMAT, "%s: \"init_r\" is missing", file);
    c->init_r = (int32_t)v[0]; c->target_r = (int32_t)v[1]; c->tinit = (int32_t)v[2]; c->tfinal = (int32_t)v[3]; c->delta_t = (int32_t)v[4];
    c->total_step = (int64_t)v[5]; c->beta1 = (float)v[6]; c->beta2 = (float)v[7]; c->orth_reg = (float)v[8]; c->alpha = (float)v[9];
    c->dropout = (float)dr;
    if (c->init_r < 1) return tk_fail(TK_ERR_FORMAT, "%s: \"init_r\" must be >= 1", file);
    if (!(c->alpha > 0)) return tk_fail(TK_ERR_UNSUPPORTED, "%s: \"lora_alpha\" 0 (PEFT then scales by r) is not supported", file);
    static const char *const off[] = {"use_rslora", "use_dora", "fan_in_fan_out"};
    for (int i = 0; i < 3; i++)
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cfg, off[i])))
            return tk_fail(TK_ERR_UNSUPPORTED, "%s: \"%s\" is set, which AdaLoRA files do not use", file, off[i]);
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(cfg, "bias");
    if (j && cJSON_IsString(j) && strcmp(j->valuestring, "none"))
        return tk_fail(TK_ERR_UNSUPPORTED, "%s: \"bias\" is \"%s\" (trained biases are not supported)", file, j->valuestring);
    j = cJSON_GetObjectItemCaseSensitive(cfg, "modules_to_save");
    if (j && !cJSON_IsNull(j) && !(cJSON_IsArray(j) && !j->child))
        return tk_fail(TK_ERR_UNSUPPORTED, "%s: \"modules_to_save\" is set (fully trained extra modules are not supported)", file);
    j = cJSON_GetObjectItemCaseSensitive(cfg, "rank_pattern");
    if (j && !cJSON_IsNull(j) && !cJSON_IsObject(j)) return tk_fail(TK_ERR_FORMAT, "%s: \"rank_pattern\" must be an object or null", file);
    f->has_pattern = j && cJSON_IsObject(j) && j->child;
    j = cJSON_GetObjectItemCaseSensitive(cfg, "base_model_name_or_path");
    return (f->base_model = tk_strdup(cJSON_IsString(j) ? j->valuestring : "")) ? TK_OK : TK_ERR_NOMEM;
}

static int mod_cmp(const void *x, const void *y) {
    const ada_file_mod *a = x, *b = y;
    return a->layer != b->layer ? (a->layer < b->layer ? -1 : 1) : a->which - b->which;
}

/* The module's keep[init_r] from rank_pattern (all kept without one); its count must be the tensors' rank. */
static tk_status read_keep(ada_file *f, ada_file_mod *md, const cJSON *cfg, const char *file) {
    int64_t R = f->cfg.init_r;
    if (!(md->keep = tk_malloc((size_t)R))) return TK_ERR_NOMEM;
    memset(md->keep, 1, (size_t)R);
    int64_t kept = R;
    if (f->has_pattern) {
        char key[160];
        snprintf(key, sizeof key, "model.layers.%d.%s.%s.lora_E", md->layer, group(md->which), tk_linear_name((tk_linear_id)md->which));
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cfg, "rank_pattern"), key), *e;
        if (!cJSON_IsArray(p) || cJSON_GetArraySize(p) != R)
            return tk_fail(TK_ERR_FORMAT, "%s: \"rank_pattern\" needs \"%s\": a list of init_r = %lld booleans", file, key, (long long)R);
        kept = 0;
        int64_t j = 0;
        cJSON_ArrayForEach(e, p) {
            if (!cJSON_IsBool(e)) return tk_fail(TK_ERR_FORMAT, "%s: \"rank_pattern\" \"%s\" holds a non-boolean", file, key);
            md->keep[j++] = cJSON_IsTrue(e);
            kept += cJSON_IsTrue(e);
        }
    }
    if (md->r != kept)
        return tk_fail(TK_ERR_FORMAT, "%s: layer %d %s has %lld triplets but its rank_pattern keeps %lld", file, md->layer,
                       tk_linear_name((tk_linear_id)md->which), (long long)md->r, (long long)kept);
    return TK_OK;
}

static tk_status read_tensors(ada_file *f, const cJSON *cfg, const char *cfg_name, const tk_safetensors *sf, const char *st_name) {
    int64_t n = tk_st_n_tensors(sf);
    if (!(f->mods = tk_calloc((size_t)(n ? n : 1), sizeof *f->mods))) return TK_ERR_NOMEM;
    static const char *const parts[3] = {".lora_A", ".lora_E", ".lora_B"};
    for (int64_t i = 0; i < n; i++) {
        const tk_tensor_ref *t = tk_st_tensor(sf, i);
        int32_t layer;
        int which, part = -1;
        const char *rest;
        if (tk_peft_module_key(t->name, &layer, &which, &rest))
            for (int k = 0; k < 3; k++) if (!strcmp(rest, parts[k])) part = k;
        if (part < 0)
            return tk_fail(TK_ERR_UNSUPPORTED, "%s: tensor '%s' is not an AdaLoRA tensor of a Llama-family linear "
                                               "(base_model.model.model.layers.N.{self_attn,mlp}.X_proj.lora_{A,E,B})", st_name, t->name);
        char path[160];
        snprintf(path, sizeof path, "model.layers.%d.%s.%s", layer, group(which), tk_linear_name((tk_linear_id)which));
        tk_status st = tk_peft_check_target(cfg, cfg_name, st_name, t->name, path, layer);
        if (st) return st;
        if (t->dtype != TK_F32 && t->dtype != TK_F16 && t->dtype != TK_BF16)
            return tk_fail(TK_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s (f32, f16, bf16 are read)", st_name, t->name, tk_dtype_name(t->dtype));
        if (t->n_dims != 2) return tk_fail(TK_ERR_FORMAT, "%s: tensor '%s' must have 2 dimensions", st_name, t->name);
        ada_file_mod *md = NULL;
        for (int64_t k = 0; k < f->n_mods && !md; k++) if (f->mods[k].layer == layer && f->mods[k].which == which) md = &f->mods[k];
        if (!md) { md = &f->mods[f->n_mods++]; md->layer = layer; md->which = which; }
        if (md->t[part]) return tk_fail(TK_ERR_FORMAT, "%s: tensor '%s' appears twice", st_name, t->name);
        md->t[part] = t;
    }
    if (!f->n_mods) return tk_fail(TK_ERR_FORMAT, "%s: no AdaLoRA tensors", st_name);
    qsort(f->mods, (size_t)f->n_mods, sizeof *f->mods, mod_cmp);
    for (int64_t i = 0; i < f->n_mods; i++) {
        ada_file_mod *md = &f->mods[i];
        const char *lin = tk_linear_name((tk_linear_id)md->which);
        if (!md->t[0] || !md->t[1] || !md->t[2])
            return tk_fail(TK_ERR_FORMAT, "%s: layer %d %s lacks lora_%s", st_name, md->layer, lin, !md->t[0] ? "A" : !md->t[1] ? "E" : "B");
        /* torch A [r, in] = ne {in, r}; E [r, 1] = ne {1, r}; B [out, r] = ne {r, out} */
        md->r = md->t[0]->ne[1];
        md->K = md->t[0]->ne[0];
        md->N = md->t[2]->ne[1];
        if (md->t[1]->ne[0] != 1 || md->t[1]->ne[1] != md->r || md->t[2]->ne[0] != md->r || md->r > f->cfg.init_r)
            return tk_fail(TK_ERR_FORMAT, "%s: layer %d %s: shapes A [%lld, %lld], E [%lld, %lld], B [%lld, %lld] do not form <= init_r = %d "
                                          "triplets", st_name, md->layer, lin, (long long)md->t[0]->ne[1], (long long)md->t[0]->ne[0],
                           (long long)md->t[1]->ne[1], (long long)md->t[1]->ne[0], (long long)md->t[2]->ne[1], (long long)md->t[2]->ne[0],
                           f->cfg.init_r);
        tk_status st = read_keep(f, md, cfg, cfg_name);
        float **dst[3] = {&md->A, &md->E, &md->B};
        for (int k = 0; k < 3 && !st; k++) {
            int64_t ne = tk_tensor_nelems(md->t[k]);
            if (!(*dst[k] = tk_malloc((size_t)(ne ? ne : 1) * sizeof(float)))) return TK_ERR_NOMEM;
            st = tk_dequantize(md->t[k]->dtype, md->t[k]->data, *dst[k], ne);
            for (int64_t j = 0; j < ne && !st; j++)
                if (!isfinite((*dst[k])[j])) st = tk_fail(TK_ERR_FORMAT, "%s: tensor '%s' holds a non-finite value", st_name, md->t[k]->name);
        }
        if (st) return st;
        md->t[0] = md->t[1] = md->t[2] = NULL;   /* the handles are not kept */
    }
    f->min_layer = f->mods[0].layer;
    f->max_layer = f->mods[f->n_mods - 1].layer;
    return TK_OK;
}

tk_status tk_adalora_read_peft(const cJSON *cfg, const char *cfg_name, const tk_safetensors *sf, const char *st_name, void **file) {
    *file = NULL;
    ada_file *f = tk_calloc(1, sizeof *f);
    if (!f) return TK_ERR_NOMEM;
    tk_status st = read_config(f, cfg, cfg_name);
    if (!st && sf) st = read_tensors(f, cfg, cfg_name, sf, st_name);
    if (st || !sf) { tk_adalora_file_free(f); return st; }
    *file = f;
    return TK_OK;
}

tk_status tk_adalora_attach_file(const void *file, const char *name, tk_model *m, tk_param_set *ps, tk_peft **out) {
    *out = NULL;
    const ada_file *f = file;
    if (!f || !m || !ps) return tk_fail(TK_ERR_ARG, "adapter: NULL argument");
    const tk_model_config *mc = tk_model_get_config(m);
    if (f->max_layer >= mc->n_layers)
        return tk_fail(TK_ERR_ARG, "%s: the adapter has layer %d but the model has %d layers", name, f->max_layer, mc->n_layers);
    tk_adalora_config c = f->cfg;
    c.targets = 0;
    for (int64_t i = 0; i < f->n_mods; i++) {
        const ada_file_mod *md = &f->mods[i];
        const tk_tensor_ref *wt = tk_model_linear(m, md->layer, (tk_linear_id)md->which);
        if (!wt->data || wt->ne[0] != md->K || wt->ne[1] != md->N)
            return tk_fail(TK_ERR_ARG, "%s: layer %d %s is %lld x %lld in the adapter but %lld x %lld in the model (an adapter for another "
                                       "model?)", name, md->layer, tk_linear_name((tk_linear_id)md->which), (long long)md->N, (long long)md->K,
                           (long long)(wt->data ? wt->ne[1] : 0), (long long)(wt->data ? wt->ne[0] : 0));
        c.targets |= 1u << md->which;
    }
    c.first_layer = f->min_layer;
    if (c.total_step <= c.tinit + c.tfinal) c.total_step = (int64_t)c.tinit + c.tfinal + 1;   /* inference needs no schedule */
    tk_adalora *a;
    tk_status st = tk_adalora_new(m, &c, ps, &a);
    if (st) return tk_fail_ctx(st, "%s: ", name);
    /* every module of the covered layers starts with E = 0 (no effect); the file's triplets go to their kept slots */
    for (int32_t i = 0; i < mc->n_layers; i++)
        for (int w = 0; w < TK_LIN_COUNT; w++) {
            tk_param *E;
            if (tk_adalora_module(a, i, (tk_linear_id)w, NULL, &E, NULL)) memset(E->w, 0, (size_t)E->n * sizeof(float));
        }
    int64_t R = c.init_r;
    bool perm = mc->rope_interleaved != 0;
    float *Bh = NULL;
    for (int64_t i = 0; i < f->n_mods && !st; i++) {
        const ada_file_mod *md = &f->mods[i];
        tk_param *A, *E, *B;
        tk_adalora_module(a, md->layer, (tk_linear_id)md->which, &A, &E, &B);
        free(Bh);
        if (!(Bh = tk_calloc((size_t)(md->N * R), sizeof(float)))) { st = TK_ERR_NOMEM; break; }
        memset(A->w, 0, (size_t)A->n * sizeof(float));
        for (int64_t j = 0, s = 0; j < R; j++) {
            if (!md->keep[j]) continue;
            memcpy(A->w + j * md->K, md->A + s * md->K, (size_t)md->K * sizeof(float));
            E->w[j] = md->E[s];
            for (int64_t o = 0; o < md->N; o++) Bh[o * R + j] = md->B[o * md->r + s];
            s++;
        }
        tk_lora_convert_b(B->w, Bh, (tk_linear_id)md->which, mc, md->N, R, false, perm);
        float *keep = tk_adalora_keep(a, md->layer, (tk_linear_id)md->which);
        for (int64_t j = 0; j < R; j++) keep[j] = md->keep[j] ? 1.0f : 0.0f;
    }
    free(Bh);
    if (st) { tk_adalora_free(a); return st; }
    tk_adalora_set_has_pattern(a, f->has_pattern);
    *out = (tk_peft *)tk_adalora_peft(a);
    return TK_OK;
}

void tk_adalora_describe_file(const void *file, tk_adapter_info *i) {
    const ada_file *f = file;
    i->base_model = f->base_model ? f->base_model : "";
    i->arch = "";
    i->r = f->cfg.init_r;
    i->alpha = f->cfg.alpha;
    i->scale = f->cfg.alpha / ((float)f->cfg.init_r + 1e-5f);
    i->targets = 0;
    for (int64_t k = 0; k < f->n_mods; k++) i->targets |= 1u << f->mods[k].which;
    i->min_layer = f->min_layer;
    i->max_layer = f->max_layer;
    i->n_modules = f->n_mods;
}

/* ---- writing -------------------------------------------------------------------------------- */

/* The module's kept triplets into the writer (A rows, E, B columns in HF row order) and its rank_pattern entry. */
static tk_status write_module(tk_adalora *a, const tk_model *m, tk_st_writer *w, cJSON *pattern, int32_t i, int k, float *buf) {
    const tk_model_config *mc = tk_model_get_config(m);
    tk_param *A, *E, *B;
    tk_adalora_module(a, i, (tk_linear_id)k, &A, &E, &B);
    const float *keep = tk_adalora_keep(a, i, (tk_linear_id)k);
    const bool pat = tk_adalora_has_pattern(a);
    int64_t R = a->r, K = A->ne[0], N = B->ne[1], r = 0;
    for (int64_t j = 0; j < R; j++) r += !pat || keep[j] != 0.0f;
    float *Bh = buf, *oa = Bh + N * R, *oe = oa + R * K, *ob = oe + R;
    tk_lora_convert_b(Bh, B->w, (tk_linear_id)k, mc, N, R, mc->rope_interleaved != 0, false);
    for (int64_t j = 0, s = 0; j < R; j++) {
        if (pat && keep[j] == 0.0f) continue;
        memcpy(oa + s * K, A->w + j * K, (size_t)K * sizeof(float));
        oe[s] = E->w[j];
        for (int64_t o = 0; o < N; o++) ob[o * r + s] = Bh[o * R + j];
        s++;
    }
    char name[200], key[160];
    snprintf(key, sizeof key, "model.layers.%d.%s.%s", i, group(k), tk_model_linear_name(m, (tk_linear_id)k));
    int64_t neA[2] = {K, r}, neE[2] = {1, r}, neB[2] = {r, N};
    tk_status st;
    snprintf(name, sizeof name, "base_model.model.%s.lora_A", key);
    if ((st = tk_st_add(w, name, TK_F32, 2, neA, oa))) return st;
    snprintf(name, sizeof name, "base_model.model.%s.lora_B", key);
    if ((st = tk_st_add(w, name, TK_F32, 2, neB, ob))) return st;
    snprintf(name, sizeof name, "base_model.model.%s.lora_E", key);
    if ((st = tk_st_add(w, name, TK_F32, 2, neE, oe))) return st;
    if (!pat) return TK_OK;
    cJSON *list = cJSON_CreateArray();
    for (int64_t j = 0; list && j < R; j++) cJSON_AddItemToArray(list, cJSON_CreateBool(keep[j] != 0.0f));
    snprintf(name, sizeof name, "%s.lora_E", key);
    return list && cJSON_AddItemToObject(pattern, name, list) ? TK_OK : TK_ERR_NOMEM;
}

tk_status tk_adalora_save_peft(tk_adalora *a, const tk_model *m, const char *dir, const char *base_model) {
    if (!a || !m || !dir) return tk_fail(TK_ERR_ARG, "adapter: NULL argument");
    const tk_adalora_config *c = &a->cfg;
    const tk_model_config *mc = tk_model_get_config(m);
    tk_status st = tk_mkdir_p(dir);
    if (st) return st;
    tk_st_writer *w = tk_st_writer_new();
    char *st_path = tk_path_join(dir, "adapter_model.safetensors"), *cfg_path = tk_path_join(dir, "adapter_config.json");
    int64_t maxKN = 0;
    for (int64_t i = 0; i < (int64_t)a->L * TK_LIN_COUNT; i++)
        if (a->mods[i].ia >= 0 && a->mods[i].K + a->mods[i].N > maxKN) maxKN = a->mods[i].K + a->mods[i].N;
    float *buf = tk_malloc((size_t)(2 * a->r * maxKN + a->r + 1) * sizeof(float));
    cJSON *root = cJSON_CreateObject(), *pattern = cJSON_CreateObject(), *tm = cJSON_CreateArray();
    int32_t lo = -1, hi = -1;
    if (!w || !st_path || !cfg_path || !buf || !root || !pattern || !tm) { st = TK_ERR_NOMEM; goto done; }
    for (int32_t i = 0; i < mc->n_layers && !st; i++)
        for (int k = 0; k < TK_LIN_COUNT && !st; k++) {
            if (!tk_adalora_module(a, i, (tk_linear_id)k, NULL, NULL, NULL)) continue;
            if (lo < 0) lo = i;
            hi = i;
            st = write_module(a, m, w, pattern, i, k, buf);
        }
    if (st || (st = tk_st_set_metadata(w, "format", "pt")) || (st = tk_st_write(w, st_path))) goto done;
    const char *bm = base_model ? base_model : tk_model_path(m);
    if (bm) cJSON_AddStringToObject(root, "base_model_name_or_path", bm);
    else cJSON_AddNullToObject(root, "base_model_name_or_path");
    cJSON_AddNumberToObject(root, "beta1", tk_peft_tidy(c->beta1));
    cJSON_AddNumberToObject(root, "beta2", tk_peft_tidy(c->beta2));
    cJSON_AddStringToObject(root, "bias", "none");
    cJSON_AddNumberToObject(root, "deltaT", c->delta_t);
    cJSON_AddBoolToObject(root, "fan_in_fan_out", false);
    cJSON_AddBoolToObject(root, "inference_mode", true);
    cJSON_AddBoolToObject(root, "init_lora_weights", true);
    cJSON_AddNumberToObject(root, "init_r", c->init_r);
    cJSON_AddNullToObject(root, "layers_pattern");
    tk_peft_add_layers(root, lo, hi, mc->n_layers);
    cJSON_AddNumberToObject(root, "lora_alpha", tk_peft_tidy(c->alpha));
    cJSON_AddNumberToObject(root, "lora_dropout", tk_peft_tidy(c->dropout));
    cJSON_AddNullToObject(root, "modules_to_save");
    cJSON_AddNumberToObject(root, "orth_reg_weight", tk_peft_tidy(c->orth_reg));
    cJSON_AddStringToObject(root, "peft_type", "ADALORA");
    cJSON_AddNumberToObject(root, "r", 8);   /* LoraConfig's r, unused by AdaLoRA (PEFT warns when it is not 8) */
    if (tk_adalora_has_pattern(a)) { cJSON_AddItemToObject(root, "rank_pattern", pattern); pattern = NULL; }
    else cJSON_AddNullToObject(root, "rank_pattern");
    cJSON_AddNullToObject(root, "revision");
    for (int k = 0; k < TK_LIN_COUNT; k++)
        if ((c->targets & (1u << k)) && tk_model_linear_name(m, (tk_linear_id)k))
            cJSON_AddItemToArray(tm, cJSON_CreateString(tk_model_linear_name(m, (tk_linear_id)k)));
    cJSON_AddItemToObject(root, "target_modules", tm);
    tm = NULL;
    cJSON_AddNumberToObject(root, "target_r", c->target_r);
    cJSON_AddStringToObject(root, "task_type", "CAUSAL_LM");
    cJSON_AddNumberToObject(root, "tfinal", c->tfinal);
    cJSON_AddNumberToObject(root, "tinit", c->tinit);
    cJSON_AddNumberToObject(root, "total_step", (double)c->total_step);
    cJSON_AddBoolToObject(root, "use_dora", false);
    cJSON_AddBoolToObject(root, "use_rslora", false);
    st = tk_peft_write_json(cfg_path, root);
done:
    cJSON_Delete(root);
    cJSON_Delete(pattern);
    cJSON_Delete(tm);
    free(buf);
    free(st_path);
    free(cfg_path);
    tk_st_writer_free(w);
    return st ? tk_fail_ctx(st, "writing the PEFT adapter %s: ", dir) : TK_OK;
}
