/* Bottleneck adapters (see bottleneck.h): the method table on the block seam. Per adapted site,
 * with u the site's input [n x C], z = u Wd^T + bd [n x R], a = f(z), o = a Wu^T + bu:
 *   forward   u' = u + s o
 *   backward  g = dL/du':  dWu += s g^T a,  dbu += s sum_t g,  dz = s (g Wu) ⊙ f'(z),
 *             dWd += dz^T u,  dbd += sum_t dz,  dL/du = g + dz Wd
 * A training forward keeps u per site (cap_T x C each); the backward recomputes z and a. */
#include "peft/bottleneck.h"
#include "backend/backend.h"
#include "core/core.h"
#include <math.h>
#include <stdio.h>

struct tk_bottleneck {
    tk_peft peft;
    tk_model *m;
    tk_param_set *ps;
    tk_bottleneck_config cfg;
    int32_t L;
    int64_t C, R;
    int64_t *ip;       /* [L x TK_BLOCK_COUNT] index of the site's down.weight in ps (then down.bias, up.weight, up.bias); -1 = none */
    int32_t *slot;     /* [L x TK_BLOCK_COUNT] its slot in saved; -1 = none */
    int32_t n_slots;
    bool training;
    int64_t cap_T;
    float *saved;      /* [n_slots x cap_T x C] the sites' inputs of the last training forward */
    float *work;       /* [cap_T x 2R] the backward's z / a and dz */
};

static const tk_peft_method k_bn_method;

tk_bottleneck_config tk_bottleneck_default_config(void) {
    tk_bottleneck_config c = {.placement = TK_BN_PFEIFFER, .reduction = 16, .act = TK_BN_ACT_AUTO, .first_layer = 0, .seed = 42};
    return c;
}

const char *tk_bn_placement_name(int p) { return p == TK_BN_PFEIFFER ? "pfeiffer" : p == TK_BN_HOULSBY ? "houlsby" : NULL; }
const char *tk_bn_act_name(int a) { return a == TK_BN_RELU ? "relu" : a == TK_BN_SWISH ? "swish" : a == TK_BN_GELU ? "gelu" : NULL; }
int tk_bn_placement_parse(const char *s) { return !s ? -1 : !strcmp(s, "pfeiffer") ? TK_BN_PFEIFFER : !strcmp(s, "houlsby") ? TK_BN_HOULSBY : -1; }
int tk_bn_act_parse(const char *s) {
    return !s ? -1 : !strcmp(s, "relu") ? TK_BN_RELU : !strcmp(s, "swish") || !strcmp(s, "silu") ? TK_BN_SWISH : !strcmp(s, "gelu") ? TK_BN_GELU : -1;
}

/* The sites a placement adapts. */
static bool placed(int placement, tk_block_site site) {
    return placement == TK_BN_PFEIFFER ? site == TK_BLOCK_LAYER : site == TK_BLOCK_ATTN || site == TK_BLOCK_MLP;
}

tk_status tk_bottleneck_new(tk_model *m, const tk_bottleneck_config *cfg, tk_param_set *ps, tk_bottleneck **out) {
    *out = NULL;
    if (!m || !cfg || !ps) return tk_fail(TK_ERR_ARG, "adapter: NULL argument");
    tk_bottleneck_config c = *cfg;
    const tk_model_config *mc = tk_model_get_config(m);
    if (!tk_bn_placement_name(c.placement)) return tk_fail(TK_ERR_ARG, "adapter: unknown placement %d (pfeiffer or houlsby)", c.placement);
    if (c.reduction <= 0) c.reduction = 16;
    if (c.act == TK_BN_ACT_AUTO) c.act = c.placement == TK_BN_PFEIFFER ? TK_BN_RELU : TK_BN_SWISH;
    if (!tk_bn_act_name(c.act)) return tk_fail(TK_ERR_ARG, "adapter: unknown nonlinearity %d (relu, swish or gelu)", c.act);
    if (c.reduction > mc->dim)
        return tk_fail(TK_ERR_ARG, "adapter: reduction factor %d is larger than the model's width %d", c.reduction, mc->dim);
    if (c.first_layer < 0 || c.first_layer >= mc->n_layers)
        return tk_fail(TK_ERR_ARG, "adapter: first layer %d outside [0, %d)", c.first_layer, mc->n_layers);
    tk_bottleneck *b = tk_calloc(1, sizeof *b);
    if (!b) return TK_ERR_NOMEM;
    b->peft = (tk_peft){&k_bn_method, b};
    b->m = m;
    b->ps = ps;
    b->cfg = c;
    b->L = mc->n_layers;
    b->C = mc->dim;
    b->R = mc->dim / c.reduction > 0 ? mc->dim / c.reduction : 1;   /* AdapterHub: hidden_size // reduction_factor, at least 1 */
    size_t nsite = (size_t)b->L * TK_BLOCK_COUNT;
    b->ip = tk_malloc(nsite * sizeof *b->ip);
    b->slot = tk_malloc(nsite * sizeof *b->slot);
    if (!b->ip || !b->slot) { tk_bottleneck_free(b); return TK_ERR_NOMEM; }
    tk_rng rng;
    tk_rng_seed(&rng, c.seed ^ 0xb0771e5eca5ull);
    tk_status st = TK_OK;
    for (int32_t i = 0; i < b->L && !st; i++)
        for (int s = 0; s < TK_BLOCK_COUNT && !st; s++) {
            size_t k = (size_t)i * TK_BLOCK_COUNT + (size_t)s;
            b->ip[k] = -1;
            b->slot[k] = -1;
            if (i < c.first_layer || !placed(c.placement, (tk_block_site)s)) continue;
            static const char *const part[4] = {"adapter_down.weight", "adapter_down.bias", "adapter_up.weight", "adapter_up.bias"};
            const int64_t ne[4][2] = {{b->C, b->R}, {b->R, 1}, {b->R, b->C}, {b->C, 1}}; /* ggml order of [R, C], [R], [C, R], [C] */
            for (int j = 0; j < 4 && !st; j++) {
                char name[160];
                snprintf(name, sizeof name, "model.layers.%d.%s.%s", i, s == TK_BLOCK_ATTN ? "attention_adapters" : "output_adapters", part[j]);
                tk_param *p;
                if ((st = tk_params_add(ps, name, j % 2 ? 1 : 2, ne[j], NULL, j % 2 == 0, &p))) break;
                if (j == 0) b->ip[k] = ps->n - 1;
                if (j % 2 == 0)   /* weights N(0, 0.02) (AdapterHub's init_bert_weights); biases stay zero */
                    for (int64_t e = 0; e < p->n; e++) p->w[e] = 0.02f * tk_rng_normal(&rng);
            }
            b->slot[k] = b->n_slots++;
        }
    if (st) { tk_bottleneck_free(b); return st; }
    *out = b;
    return TK_OK;
}

void tk_bottleneck_free(tk_bottleneck *b) {
    if (!b) return;
    free(b->ip);
    free(b->slot);
    free(b->saved);
    free(b->work);
    free(b);
}

static int64_t site_ip(const tk_bottleneck *b, int32_t layer, tk_block_site site) {
    if (layer < 0 || layer >= b->L || (unsigned)site >= TK_BLOCK_COUNT) return -1;
    return b->ip[(size_t)layer * TK_BLOCK_COUNT + site];
}

tk_param *tk_bottleneck_param(tk_bottleneck *b, int32_t layer, tk_block_site site, int k) {
    int64_t ip = site_ip(b, layer, site);
    return ip >= 0 && k >= 0 && k < 4 ? &b->ps->p[ip + k] : NULL;
}

/* Room for n tokens per slot; what the slots hold is kept (a forward's first site may grow it). */
static tk_status reserve(tk_bottleneck *b, int64_t n) {
    if (n <= b->cap_T) return TK_OK;
    size_t ns, nw;
    if (!tk_mul_ok((size_t)n, (size_t)b->C * (size_t)b->n_slots, &ns) || !tk_mul_ok((size_t)n, (size_t)(2 * b->R), &nw))
        return tk_fail(TK_ERR_NOMEM, "adapter: buffers for %lld tokens overflow", (long long)n);
    float *s = tk_malloc(ns * sizeof(float)), *w = tk_malloc(nw * sizeof(float));
    if (!s || !w) { free(s); free(w); return tk_fail(TK_ERR_NOMEM, "adapter: out of memory for %lld tokens", (long long)n); }
    for (int32_t k = 0; k < b->n_slots && b->saved; k++)
        memcpy(s + (size_t)k * (size_t)n * (size_t)b->C, b->saved + (size_t)k * (size_t)b->cap_T * (size_t)b->C,
               (size_t)(b->cap_T * b->C) * sizeof(float));
    free(b->saved);
    free(b->work);
    b->saved = s;
    b->work = w;
    b->cap_T = n;
    return TK_OK;
}

/* a = f(z) over n values (a may be z). */
static void act_fwd(int act, const float *z, float *a, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float x = z[i];
        a[i] = act == TK_BN_RELU ? (x > 0.0f ? x : 0.0f) : act == TK_BN_SWISH ? x / (1.0f + expf(-x)) : 0.5f * x * (1.0f + erff(x * (float)M_SQRT1_2));
    }
}

/* g *= f'(z) over n values. */
static void act_bwd(int act, const float *z, float *g, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float x = z[i], d;
        if (act == TK_BN_RELU) d = x > 0.0f ? 1.0f : 0.0f;
        else if (act == TK_BN_SWISH) { float sg = 1.0f / (1.0f + expf(-x)); d = sg * (1.0f + x * (1.0f - sg)); }
        else d = 0.5f * (1.0f + erff(x * (float)M_SQRT1_2)) + x * expf(-0.5f * x * x) * (float)(0.5 * M_2_SQRTPI * M_SQRT1_2);
        g[i] *= d;
    }
}

/* z = u Wd^T + bd [n x R]. */
static void down(const tk_bottleneck *b, const tk_param *p, const float *u, float *z, int64_t n) {
    const int64_t R = b->R, C = b->C;
    tk_sgemm(false, true, n, R, C, 1.0f, u, C, p[0].w, C, 0.0f, z, R);
    for (int64_t t = 0; t < n; t++)
        for (int64_t r = 0; r < R; r++) z[t * R + r] += p[1].w[r];
}

static tk_status bn_block_fwd(void *state, const tk_peft_call *c, int32_t layer, tk_block_site site, float *h, int64_t n) {
    tk_bottleneck *b = state;
    int64_t ip = site_ip(b, layer, site);
    if (ip < 0 || n <= 0) return TK_OK;
    const tk_param *p = &b->ps->p[ip];
    const int64_t R = b->R, C = b->C;
    if (c->training) {
        if (!b->training) return tk_fail(TK_ERR_ARG, "adapter: a training forward without set_training");
        tk_status st = reserve(b, n);
        if (st) return st;
        memcpy(b->saved + (size_t)b->slot[(size_t)layer * TK_BLOCK_COUNT + site] * (size_t)b->cap_T * (size_t)C, h, (size_t)(n * C) * sizeof(float));
    }
    float *z = tk_scratch_get(c->scratch, (size_t)(n * (R + C)));
    if (!z) return tk_fail(TK_ERR_NOMEM, "adapter: out of memory for %lld tokens", (long long)n);
    float *o = z + n * R;
    down(b, p, h, z, n);
    act_fwd(b->cfg.act, z, z, n * R);
    tk_sgemm(false, true, n, C, R, 1.0f, z, R, p[2].w, R, 0.0f, o, C);   /* o = a Wu^T + bu */
    const float s = c->scale;
    for (int64_t t = 0; t < n; t++)
        for (int64_t j = 0; j < C; j++) h[t * C + j] += s * (o[t * C + j] + p[3].w[j]);
    return TK_OK;
}

static tk_status bn_block_bwd(void *state, const tk_peft_call *c, int32_t layer, tk_block_site site, float *dh, int64_t n) {
    tk_bottleneck *b = state;
    int64_t ip = site_ip(b, layer, site);
    if (ip < 0 || n <= 0) return TK_OK;
    if (n > b->cap_T) return tk_fail(TK_ERR_ARG, "adapter: backward of %lld tokens without their training forward", (long long)n);
    tk_param *p = &b->ps->p[ip];
    const int64_t R = b->R, C = b->C;
    const float s = c->scale;
    const float *u = b->saved + (size_t)b->slot[(size_t)layer * TK_BLOCK_COUNT + site] * (size_t)b->cap_T * (size_t)C;
    float *z = b->work, *dz = b->work + n * R, *a = dz;   /* a lives in dz until dz is computed */
    down(b, p, u, z, n);
    act_fwd(b->cfg.act, z, a, n * R);
    tk_sgemm(true, false, C, R, n, s, dh, C, a, R, 1.0f, p[2].g, R);    /* dWu += s g^T a */
    for (int64_t j = 0; j < C; j++) {                                    /* dbu += s sum_t g, in token order */
        double acc = 0;
        for (int64_t t = 0; t < n; t++) acc += dh[t * C + j];
        p[3].g[j] += s * (float)acc;
    }
    tk_sgemm(false, false, n, R, C, s, dh, C, p[2].w, R, 0.0f, dz, R);  /* s g Wu */
    act_bwd(b->cfg.act, z, dz, n * R);                                  /* dz = s (g Wu) ⊙ f'(z) */
    tk_sgemm(true, false, R, C, n, 1.0f, dz, R, u, C, 1.0f, p[0].g, C); /* dWd += dz^T u */
    for (int64_t r = 0; r < R; r++) {
        double acc = 0;
        for (int64_t t = 0; t < n; t++) acc += dz[t * R + r];
        p[1].g[r] += (float)acc;
    }
    tk_sgemm(false, false, n, C, R, 1.0f, dz, R, p[0].w, C, 1.0f, dh, C); /* dL/du = g + dz Wd */
    return TK_OK;
}

static bool bn_has_block(const void *state, int32_t layer, tk_block_site site) { return site_ip(state, layer, site) >= 0; }

static void bn_set_training(void *state, bool on, uint64_t counter) {
    (void)counter;
    ((tk_bottleneck *)state)->training = on;
}

static tk_status bn_save(void *state, const tk_model *m, const char *dir, const char *base_model) {
    return tk_bottleneck_save(state, m, dir, base_model);
}

/* no merge_linear (the nonlinearity: not a weight change) and no save_gguf (llama.cpp has no bottleneck adapters) */
static const tk_peft_method k_bn_method = {
    .name = "bottleneck",
    .has_block = bn_has_block,
    .block_fwd = bn_block_fwd,
    .block_bwd = bn_block_bwd,
    .set_training = bn_set_training,
    .save_peft = bn_save,
};

const tk_peft *tk_bottleneck_peft(tk_bottleneck *b) { return &b->peft; }
tk_bottleneck *tk_bottleneck_of(const tk_peft *p) { return p && p->method == &k_bn_method ? p->state : NULL; }
const tk_bottleneck_config *tk_bottleneck_get_config(const tk_bottleneck *b) { return &b->cfg; }
int64_t tk_bottleneck_width(const tk_bottleneck *b) { return b->R; }
