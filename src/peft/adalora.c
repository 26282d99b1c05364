/* AdaLoRA (see adalora.h): the method table. Inference computes u = x A^T, u ⊙= E, y += s u B^T in
 * the workspace's scratch. A training forward copies A' = E ⊙ A and B into the inner plain LoRA of
 * the same rank and scale and runs its forward (dropout masks, saved products); the backward runs
 * the inner LoRA's backward (dA', dB, the input gradient) and maps it back:
 *   dA_ik += E_i dA'_ik,   dE_i += sum_k dA'_ik A_ik,   dB += dB'. */
#include "peft/adalora_state.h"
#include "peft/lora_io.h"
#include "backend/backend.h"
#include "model/llama.h"
#include "core/core.h"
#include <math.h>
#include <stdio.h>

static const tk_peft_method k_adalora_method;

tk_adalora_config tk_adalora_default_config(void) {
    tk_adalora_config c = {.init_r = 12, .target_r = 8, .tinit = 0, .tfinal = 0, .delta_t = 1, .total_step = 0, .beta1 = 0.85f,
                           .beta2 = 0.85f, .orth_reg = 0.5f, .alpha = 8.0f, .dropout = 0.0f, .targets = 0, .first_layer = 0, .seed = 0};
    return c;
}

static const char *group(tk_linear_id w) { return w <= TK_LIN_O ? "self_attn" : "mlp"; }

ada_mod *tk_adalora_mod(tk_adalora *a, int32_t layer, tk_linear_id which) {
    if (layer < 0 || layer >= a->L || (unsigned)which >= TK_LIN_COUNT) return NULL;
    ada_mod *md = &a->mods[(size_t)layer * TK_LIN_COUNT + which];
    return md->ia >= 0 ? md : NULL;
}

/* PEFT's checks (AdaLoraConfig.__post_init__, LoraLayer.update_layer) with takumi's option names. */
static tk_status check_config(const tk_adalora_config *c, int32_t n_layers) {
    if (c->init_r < 1 || c->init_r > 4096) return tk_fail(TK_ERR_ARG, "adalora: --adalora-init-r %d must be in [1, 4096]", c->init_r);
    if (c->target_r < 0 || c->target_r > c->init_r)
        return tk_fail(TK_ERR_ARG, "adalora: --adalora-target-r %d must be in [0, --adalora-init-r %d] (the budget only shrinks)", c->target_r,
                       c->init_r);
    if (c->delta_t < 1) return tk_fail(TK_ERR_ARG, "adalora: --adalora-delta-t %d must be >= 1", c->delta_t);
    if (c->tinit < 0 || c->tfinal < 0) return tk_fail(TK_ERR_ARG, "adalora: --adalora-tinit and --adalora-tfinal must be >= 0");
    if (c->total_step <= 0) return tk_fail(TK_ERR_ARG, "adalora: the run's step count (total_step) must be > 0");
    if (c->tinit >= c->total_step - c->tfinal)
        return tk_fail(TK_ERR_ARG, "adalora: --adalora-tinit %d and --adalora-tfinal %d leave no budgeting phase in %lld steps (PEFT needs "
                                   "tinit < total_step - tfinal): lower them or train longer", c->tinit, c->tfinal, (long long)c->total_step);
    if (!(c->beta1 > 0 && c->beta1 < 1 && c->beta2 > 0 && c->beta2 < 1)) return tk_fail(TK_ERR_ARG, "adalora: beta1 and beta2 must be in (0, 1)");
    if (!(c->orth_reg >= 0) || !isfinite(c->orth_reg)) return tk_fail(TK_ERR_ARG, "adalora: --adalora-orth-reg %g must be >= 0", (double)c->orth_reg);
    if (!(c->alpha > 0) || !isfinite(c->alpha)) return tk_fail(TK_ERR_ARG, "adalora: alpha %g must be positive", (double)c->alpha);
    if (!(c->dropout >= 0 && c->dropout < 1)) return tk_fail(TK_ERR_ARG, "adalora: dropout %g must be in [0, 1)", (double)c->dropout);
    if (c->targets & ~TK_LORA_ALL_TARGETS) return tk_fail(TK_ERR_ARG, "adalora: unknown target bits 0x%x", (unsigned)c->targets);
    if (c->first_layer < 0 || c->first_layer >= n_layers)
        return tk_fail(TK_ERR_ARG, "adalora: first layer %d outside [0, %d)", c->first_layer, n_layers);
    return TK_OK;
}

tk_status tk_adalora_new(tk_model *m, const tk_adalora_config *cfg, tk_param_set *ps, tk_adalora **out) {
    *out = NULL;
    if (!m || !cfg || !ps) return tk_fail(TK_ERR_ARG, "adalora: NULL argument");
    tk_status st = check_config(cfg, m->cfg.n_layers);
    if (st) return st;
    tk_adalora *a = tk_calloc(1, sizeof *a);
    if (!a) return TK_ERR_NOMEM;
    a->peft = (tk_peft){&k_adalora_method, a};
    a->m = m;
    a->ps = ps;
    a->cfg = *cfg;
    if (!a->cfg.targets) a->cfg.targets = TK_LORA_ALL_TARGETS;
    a->r = cfg->init_r;
    a->scale = cfg->alpha / ((float)cfg->init_r + 1e-5f);
    a->L = m->cfg.n_layers;
    a->mods = tk_calloc((size_t)a->L * TK_LIN_COUNT, sizeof *a->mods);
    if (!a->mods) { free(a); return TK_ERR_NOMEM; }
    /* the inner LoRA: same rank, targets, layers, dropout and seed; alpha so that its scale is s */
    tk_lora_config lc = tk_lora_default_config();
    lc.r = a->r;
    lc.alpha = a->scale * (float)a->r;
    lc.dropout = cfg->dropout;
    lc.targets = a->cfg.targets;
    lc.first_layer = cfg->first_layer;
    lc.seed = cfg->seed;
    if ((st = tk_lora_new(m, &lc, &a->inner_ps, &a->inner))) { tk_adalora_free(a); return st; }
    tk_rng rng;
    tk_rng_seed(&rng, cfg->seed);
    int64_t r = a->r;
    for (int32_t i = 0; i < a->L && !st; i++)
        for (int w = 0; w < TK_LIN_COUNT && !st; w++) {
            ada_mod *md = &a->mods[(size_t)i * TK_LIN_COUNT + w];
            md->ia = md->ie = md->ib = -1;
            const tk_tensor_ref *wt = tk_model_linear(m, i, (tk_linear_id)w);
            md->K = wt->ne[0];
            md->N = wt->ne[1];
            if (!tk_lora_module(a->inner, i, (tk_linear_id)w, NULL, NULL)) continue;
            char name[160];
            const char *lin = tk_model_linear_name(m, (tk_linear_id)w);
            int64_t neA[2] = {md->K, r}, neE[2] = {1, r}, neB[2] = {r, md->N};
            tk_param *p;
            /* PEFT: E = 0, A and B ~ N(0, 0.02^2) */
            snprintf(name, sizeof name, "base_model.model.model.layers.%d.%s.%s.lora_A", i, group((tk_linear_id)w), lin);
            if ((st = tk_params_add(ps, name, 2, neA, NULL, true, &p))) break;
            md->ia = ps->n - 1;
            for (int64_t j = 0; j < p->n; j++) p->w[j] = 0.02f * tk_rng_normal(&rng);
            snprintf(name, sizeof name, "base_model.model.model.layers.%d.%s.%s.lora_E", i, group((tk_linear_id)w), lin);
            if ((st = tk_params_add(ps, name, 2, neE, NULL, false, &p))) break;
            md->ie = ps->n - 1;
            snprintf(name, sizeof name, "base_model.model.model.layers.%d.%s.%s.lora_B", i, group((tk_linear_id)w), lin);
            if ((st = tk_params_add(ps, name, 2, neB, NULL, true, &p))) break;
            md->ib = ps->n - 1;
            for (int64_t j = 0; j < p->n; j++) p->w[j] = 0.02f * tk_rng_normal(&rng);
            a->n_extra += 2 * (r * md->K + r + md->N * r) + r;
            a->n_mods++;
        }
    if (!st && !a->n_mods) st = tk_fail(TK_ERR_ARG, "adalora: no linear to adapt");
    /* the rank allocator's state, one array (checkpoints save it): per module ema_ipt, ema_unc, keep; then the flag */
    a->n_extra++;
    if (!st && !(a->extra = tk_calloc((size_t)a->n_extra, sizeof(float)))) st = tk_fail(TK_ERR_NOMEM, "adalora: out of memory");
    for (int64_t i = 0, at = 0; !st && i < (int64_t)a->L * TK_LIN_COUNT; i++) {
        ada_mod *md = &a->mods[i];
        if (md->ia < 0) continue;
        int64_t ne = r * md->K + r + md->N * r;
        md->ema_ipt = a->extra + at;
        md->ema_unc = md->ema_ipt + ne;
        md->keep = md->ema_unc + ne;
        for (int64_t j = 0; j < r; j++) md->keep[j] = 1.0f;
        at += 2 * ne + r;
    }
    if (!st) a->has_pattern = a->extra + a->n_extra - 1;
    if (st) { tk_adalora_free(a); return st; }
    *out = a;
    return TK_OK;
}

void tk_adalora_free(tk_adalora *a) {
    if (!a) return;
    free(a->extra);
    free(a->mods);
    tk_lora_free(a->inner);
    tk_params_free(&a->inner_ps);
    free(a);
}

/* The inner LoRA's A' = E ⊙ A and B of one module, from the current parameters. */
static void refresh_inner(tk_adalora *a, int32_t layer, tk_linear_id which, const ada_mod *md) {
    tk_param *A2, *B2;
    tk_lora_module(a->inner, layer, which, &A2, &B2);
    const float *A = a->ps->p[md->ia].w, *E = a->ps->p[md->ie].w;
    for (int64_t i = 0; i < a->r; i++)
        for (int64_t k = 0; k < md->K; k++) A2->w[i * md->K + k] = E[i] * A[i * md->K + k];
    memcpy(B2->w, a->ps->p[md->ib].w, (size_t)(md->N * a->r) * sizeof(float));
}

static tk_status ada_linear_fwd(void *state, const tk_peft_call *c, int32_t layer, tk_linear_id which, const tk_tensor_ref *w,
                                const float *x, float *y, int64_t n) {
    tk_adalora *a = state;
    ada_mod *md = tk_adalora_mod(a, layer, which);
    if (!md || n <= 0) return TK_OK;
    if (c->training) {
        refresh_inner(a, layer, which, md);
        const tk_peft *lp = tk_lora_peft(a->inner);
        return lp->method->linear_fwd(lp->state, c, layer, which, w, x, y, n);
    }
    int64_t r = a->r, K = md->K, N = md->N;
    size_t nu;
    float *u;
    if (!tk_mul_ok((size_t)n, (size_t)r, &nu) || !(u = tk_scratch_get(c->scratch, nu)))
        return tk_fail(TK_ERR_NOMEM, "adalora: out of memory for %lld tokens", (long long)n);
    const float *A = a->ps->p[md->ia].w, *E = a->ps->p[md->ie].w, *B = a->ps->p[md->ib].w;
    tk_sgemm(false, true, n, r, K, 1.0f, x, K, A, K, 0.0f, u, r);
    for (int64_t t = 0; t < n; t++)
        for (int64_t i = 0; i < r; i++) u[t * r + i] *= E[i];
    tk_sgemm(false, true, n, N, r, a->scale * c->scale, u, r, B, r, 1.0f, y, N);
    return TK_OK;
}

static tk_status ada_linear_bwd(void *state, const tk_peft_call *c, int32_t layer, tk_linear_id which, const tk_tensor_ref *w,
                                const float *x, const float *dy, float *dx, int64_t n) {
    (void)w;
    tk_adalora *a = state;
    ada_mod *md = tk_adalora_mod(a, layer, which);
    if (!md || n <= 0) return TK_OK;
    if (c->scale != 1.0f) return tk_fail(TK_ERR_UNSUPPORTED, "adalora: training with a request scale other than 1");
    tk_param *A2, *B2;
    tk_lora_module(a->inner, layer, which, &A2, &B2);
    int64_t r = a->r, K = md->K, N = md->N;
    memset(A2->g, 0, (size_t)(r * K) * sizeof(float));
    memset(B2->g, 0, (size_t)(N * r) * sizeof(float));
    tk_status st = tk_lora_backward_linear(a->inner, layer, which, x, dy, dx, n);
    if (st) return st;
    tk_param *A = &a->ps->p[md->ia], *E = &a->ps->p[md->ie], *B = &a->ps->p[md->ib];
    for (int64_t i = 0; i < r; i++) {
        double de = 0;
        for (int64_t k = 0; k < K; k++) {
            float g = A2->g[i * K + k];
            de += (double)g * A->w[i * K + k];
            A->g[i * K + k] += E->w[i] * g;
        }
        E->g[i] += (float)de;
    }
    for (int64_t j = 0; j < N * r; j++) B->g[j] += B2->g[j];
    return TK_OK;
}

static bool ada_has_linear(const void *state, int32_t layer, tk_linear_id which) {
    return tk_adalora_mod((tk_adalora *)state, layer, which) != NULL;
}

static void ada_set_training(void *state, bool on, uint64_t counter) { tk_lora_set_training(((tk_adalora *)state)->inner, on, counter); }

/* W[N x K] += scale * s * B (E ⊙ A) (PEFT's get_delta_weight). */
static tk_status ada_merge_linear(const void *state, int32_t layer, tk_linear_id which, float *W, int64_t N, int64_t K, float scale) {
    tk_adalora *a = (tk_adalora *)state;
    ada_mod *md = tk_adalora_mod(a, layer, which);
    if (!md) return TK_OK;
    if (md->K != K || md->N != N) return tk_fail(TK_ERR_ARG, "adalora merge: layer %d %s is %lld x %lld, the weight %lld x %lld", layer,
                                                 tk_linear_name(which), (long long)md->N, (long long)md->K, (long long)N, (long long)K);
    int64_t r = a->r;
    float *EA = tk_malloc((size_t)(r * K) * sizeof(float));
    if (!EA) return TK_ERR_NOMEM;
    const float *A = a->ps->p[md->ia].w, *E = a->ps->p[md->ie].w;
    for (int64_t i = 0; i < r; i++)
        for (int64_t k = 0; k < K; k++) EA[i * K + k] = E[i] * A[i * K + k];
    tk_sgemm(false, false, N, K, r, a->scale * scale, a->ps->p[md->ib].w, r, EA, K, 1.0f, W, K);
    free(EA);
    return TK_OK;
}

static tk_status ada_reg_loss(void *state, bool grad, double *loss) { return tk_adalora_orth_reg(state, grad, loss); }
static tk_status ada_after_update(void *state, int64_t step, float gs) { return tk_adalora_allocate(state, step, gs); }
static float *ada_extra_state(void *state, int64_t *n) {
    tk_adalora *a = state;
    *n = a->n_extra;
    return a->extra;
}
static tk_status ada_save_peft(void *state, const tk_model *m, const char *dir, const char *base_model) {
    return tk_adalora_save_peft(state, m, dir, base_model);
}

/* llama.cpp applies plain LoRA: B (E ⊙ A) at scale s is the LoRA (A' = E ⊙ A, B) of rank init_r and alpha s * init_r,
 * which the inner LoRA holds once refreshed (masked triplets have E = 0, so A' rows of zeros). */
static tk_status ada_save_gguf(void *state, const tk_model *m, const char *path) {
    tk_adalora *a = state;
    for (int32_t i = 0; i < a->L; i++)
        for (int w = 0; w < TK_LIN_COUNT; w++) {
            ada_mod *md = tk_adalora_mod(a, i, (tk_linear_id)w);
            if (md) refresh_inner(a, i, (tk_linear_id)w, md);
        }
    return tk_adapter_save_gguf(a->inner, m, path);
}

static const tk_peft_method k_adalora_method = {
    .name = "adalora",
    .has_linear = ada_has_linear,
    .linear_fwd = ada_linear_fwd,
    .linear_bwd = ada_linear_bwd,
    .set_training = ada_set_training,
    .reg_loss = ada_reg_loss,
    .after_update = ada_after_update,
    .extra_state = ada_extra_state,
    .merge_linear = ada_merge_linear,
    .save_peft = ada_save_peft,
    .save_gguf = ada_save_gguf,
};

const tk_peft *tk_adalora_peft(tk_adalora *a) { return &a->peft; }
tk_adalora *tk_adalora_of(const tk_peft *p) { return p && p->method == &k_adalora_method ? p->state : NULL; }
const tk_adalora_config *tk_adalora_get_config(const tk_adalora *a) { return &a->cfg; }
float tk_adalora_scale(const tk_adalora *a) { return a->scale; }
bool tk_adalora_has_pattern(const tk_adalora *a) { return *a->has_pattern != 0.0f; }
void tk_adalora_set_has_pattern(tk_adalora *a, bool on) { *a->has_pattern = on ? 1.0f : 0.0f; }

bool tk_adalora_module(tk_adalora *a, int32_t layer, tk_linear_id which, tk_param **A, tk_param **E, tk_param **B) {
    ada_mod *md = tk_adalora_mod(a, layer, which);
    if (!md) return false;
    if (A) *A = &a->ps->p[md->ia];
    if (E) *E = &a->ps->p[md->ie];
    if (B) *B = &a->ps->p[md->ib];
    return true;
}

float *tk_adalora_keep(tk_adalora *a, int32_t layer, tk_linear_id which) {
    ada_mod *md = tk_adalora_mod(a, layer, which);
    return md ? md->keep : NULL;
}
