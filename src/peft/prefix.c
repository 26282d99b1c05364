/* Prefix tuning (see prefix.h): the method table. A layer's prefix is computed from the
 * parameters at every call (cheap: P rows), so it always reflects the current weights:
 *   raw_l [P x 2*KH*D] = E[:, l-slice]                        (no projection)
 *                      = tanh(E W1^T + b1) W2_l^T + b2_l      (projection; W2_l: the layer's rows)
 *   keys = R(-P) perm(raw_l[:, :KH*D]),  values = raw_l[:, KH*D:]
 * (perm: HF's q/k order to the model's RoPE layout; R(-P): the layer's RoPE at position -P).
 * Training calls write into the adapter's per-layer buffers (the backward asks for the same
 * layer again); inference calls write into the workspace's scratch (thread-safe). The backward
 * maps d keys back through R(-P)^T and perm^-1 and then through the projection. */
#include "peft/prefix.h"
#include "model/llama.h"
#include "model/hfconfig.h"
#include "core/core.h"
#include <math.h>

struct tk_prefix {
    tk_peft peft;
    tk_model *m;
    tk_param_set *ps;
    tk_prefix_config cfg;
    int32_t L, KH, D;
    int64_t P, kvd, W, C, Eh;   /* C: the embedding's width (W, or kvd with the projection) */
    int64_t ie, iw1, ib1, iw2, ib2;  /* parameter indices (-1 = none) */
    bool training;
    int32_t *pos;               /* [P] all -P */
    float *kv;                  /* [L x 2 x P x kvd] the training forward's prefixes */
    float *hid;                 /* [P x Eh] tanh(E W1^T + b1) (projection) */
    float *tmp;                 /* [P x 3 kvd] work */
};

static const tk_peft_method k_prefix_method;

tk_prefix_config tk_prefix_default_config(void) {
    tk_prefix_config c = {.num_virtual_tokens = TK_PREFIX_DEFAULT_TOKENS, .projection = false, .encoder_hidden_size = 0, .seed = 42};
    return c;
}

/* torch [rows, cols], or [cols] when rows is 0 (biases, not decayed) */
static tk_status add_param(tk_prefix *a, const char *name, int64_t rows, int64_t cols, int64_t *idx) {
    int64_t ne[2] = {cols, rows};
    tk_param *p;
    tk_status st = tk_params_add(a->ps, name, rows ? 2 : 1, ne, NULL, rows != 0, &p);
    if (!st) *idx = a->ps->n - 1;
    return st;
}

static void fill_uniform(float *w, int64_t n, float bound, tk_rng *rng) {
    for (int64_t i = 0; i < n; i++) w[i] = (2.0f * tk_rng_uniform(rng) - 1.0f) * bound;
}

tk_status tk_prefix_new(tk_model *m, const tk_prefix_config *cfg, tk_param_set *ps, tk_prefix **out) {
    *out = NULL;
    if (!m || !cfg || !ps) return tk_fail(TK_ERR_ARG, "prefix: NULL argument");
    tk_prefix_config c = *cfg;
    if (!c.num_virtual_tokens) c.num_virtual_tokens = TK_PREFIX_DEFAULT_TOKENS;
    const tk_model_config *mc = &m->cfg;
    if (c.num_virtual_tokens < 1) return tk_fail(TK_ERR_ARG, "prefix: %d virtual tokens (at least 1)", c.num_virtual_tokens);
    if (mc->max_seq > 0 && c.num_virtual_tokens >= mc->max_seq)
        return tk_fail(TK_ERR_ARG, "prefix: %d virtual tokens do not fit the model's context of %d tokens (PEFT places the sequence "
                                   "after them)", c.num_virtual_tokens, mc->max_seq);
    if (c.encoder_hidden_size < 0) return tk_fail(TK_ERR_ARG, "prefix: encoder hidden size %d", c.encoder_hidden_size);
    tk_prefix *a = tk_calloc(1, sizeof *a);
    if (!a) return TK_ERR_NOMEM;
    a->peft = (tk_peft){&k_prefix_method, a};
    a->m = m;
    a->ps = ps;
    a->L = mc->n_layers;
    a->KH = mc->n_kv_heads;
    a->D = mc->head_dim;
    a->P = c.num_virtual_tokens;
    a->kvd = (int64_t)a->KH * a->D;
    a->W = (int64_t)a->L * 2 * a->kvd;
    if (!c.encoder_hidden_size) c.encoder_hidden_size = (int32_t)a->kvd;
    a->Eh = c.projection ? c.encoder_hidden_size : 0;
    a->C = c.projection ? a->kvd : a->W;
    a->cfg = c;
    a->ie = a->iw1 = a->ib1 = a->iw2 = a->ib2 = -1;
    a->pos = tk_malloc((size_t)a->P * sizeof *a->pos);
    a->kv = tk_malloc((size_t)(a->L * 2 * a->P * a->kvd) * sizeof(float));
    a->tmp = tk_malloc((size_t)(a->P * 3 * a->kvd) * sizeof(float));
    a->hid = c.projection ? tk_malloc((size_t)(a->P * a->Eh) * sizeof(float)) : NULL;
    tk_status st = TK_OK;
    if (!a->pos || !a->kv || !a->tmp || (c.projection && !a->hid)) st = tk_fail(TK_ERR_NOMEM, "prefix: out of memory");
    for (int64_t p = 0; p < a->P; p++) a->pos[p] = -(int32_t)a->P;
    if (!st) st = add_param(a, "prompt_encoder.embedding.weight", a->P, a->C, &a->ie);
    if (!st && c.projection) {
        if (!(st = add_param(a, "prompt_encoder.transform.0.weight", a->Eh, a->kvd, &a->iw1)) &&
            !(st = add_param(a, "prompt_encoder.transform.0.bias", 0, a->Eh, &a->ib1)) &&
            !(st = add_param(a, "prompt_encoder.transform.2.weight", a->W, a->Eh, &a->iw2)))
            st = add_param(a, "prompt_encoder.transform.2.bias", 0, a->W, &a->ib2);
    }
    if (st) { tk_prefix_free(a); return st; }
    tk_rng rng;
    tk_rng_seed(&rng, c.seed);
    tk_param *e = &ps->p[a->ie];
    for (int64_t i = 0; i < e->n; i++) e->w[i] = tk_rng_normal(&rng); /* nn.Embedding: N(0, 1) */
    if (c.projection) { /* nn.Linear: weight and bias U(-1/sqrt(in), 1/sqrt(in)) */
        fill_uniform(ps->p[a->iw1].w, ps->p[a->iw1].n, 1.0f / sqrtf((float)a->kvd), &rng);
        fill_uniform(ps->p[a->ib1].w, ps->p[a->ib1].n, 1.0f / sqrtf((float)a->kvd), &rng);
        fill_uniform(ps->p[a->iw2].w, ps->p[a->iw2].n, 1.0f / sqrtf((float)a->Eh), &rng);
        fill_uniform(ps->p[a->ib2].w, ps->p[a->ib2].n, 1.0f / sqrtf((float)a->Eh), &rng);
    }
    *out = a;
    return TK_OK;
}

void tk_prefix_free(tk_prefix *a) {
    if (!a) return;
    free(a->pos);
    free(a->kv);
    free(a->hid);
    free(a->tmp);
    free(a);
}

/* hid[P x Eh] = tanh(E W1^T + b1). */
static void hidden(const tk_prefix *a, float *hid) {
    const float *E = a->ps->p[a->ie].w, *W1 = a->ps->p[a->iw1].w, *b1 = a->ps->p[a->ib1].w;
    for (int64_t p = 0; p < a->P; p++)
        for (int64_t e = 0; e < a->Eh; e++) {
            double s = b1[e];
            for (int64_t k = 0; k < a->kvd; k++) s += (double)E[p * a->kvd + k] * W1[e * a->kvd + k];
            hid[p * a->Eh + e] = (float)tanh(s);
        }
}

/* raw[P x 2 kvd]: layer l's slice of the (projected) embedding, PEFT's layout (hid: the projection's hidden). */
static void raw_layer(const tk_prefix *a, int32_t l, const float *hid, float *raw) {
    int64_t n = 2 * a->kvd, off = (int64_t)l * n;
    const float *E = a->ps->p[a->ie].w;
    if (!a->cfg.projection) {
        for (int64_t p = 0; p < a->P; p++) memcpy(raw + p * n, E + p * a->W + off, (size_t)n * sizeof(float));
        return;
    }
    const float *W2 = a->ps->p[a->iw2].w, *b2 = a->ps->p[a->ib2].w;
    for (int64_t p = 0; p < a->P; p++)
        for (int64_t j = 0; j < n; j++) {
            double s = b2[off + j];
            const float *w = W2 + (off + j) * a->Eh;
            for (int64_t e = 0; e < a->Eh; e++) s += (double)hid[p * a->Eh + e] * w[e];
            raw[p * n + j] = (float)s;
        }
}

static const tk_rope *layer_rope(const tk_prefix *a, int32_t l) {
    return tk_layer_sliding(&a->m->cfg, l) && a->m->rope_local.half ? &a->m->rope_local : &a->m->rope;
}

/* k, v [P x kvd] of layer l from raw [P x 2 kvd]. */
static void keys_values(const tk_prefix *a, int32_t l, const float *raw, float *k, float *v) {
    int64_t n = 2 * a->kvd;
    bool perm = a->m->cfg.rope_interleaved != 0;
    for (int64_t p = 0; p < a->P; p++) {
        if (perm) tk_permute_qk_rows_from_hf(k + p * a->kvd, raw + p * n, a->KH, a->D, sizeof(float));
        else memcpy(k + p * a->kvd, raw + p * n, (size_t)a->kvd * sizeof(float));
        memcpy(v + p * a->kvd, raw + p * n + a->kvd, (size_t)a->kvd * sizeof(float));
    }
    tk_rope_forward(k, a->pos, a->P, a->KH, a->D, layer_rope(a, l));
}

static int64_t prefix_attn(void *state, const tk_peft_call *c, int32_t layer, const float **k, const float **v) {
    tk_prefix *a = state;
    if (layer < 0 || layer >= a->L || c->scale == 0.0f) return 0;
    if (c->scale != 1.0f) {
        tk_fail(TK_ERR_UNSUPPORTED, "prefix tuning has no strength to scale: use the adapter with scale 1 (or 0 to switch it off), not %g",
                (double)c->scale);
        return -1;
    }
    int64_t n = a->P * a->kvd;
    float *kb, *vb, *raw, *hid = NULL;
    if (c->training) {
        if (!a->training) { tk_fail(TK_ERR_ARG, "prefix: a training forward without set_training"); return -1; }
        kb = a->kv + (size_t)layer * 2 * n;
        raw = a->tmp;
        hid = a->hid;
    } else {
        float *s = tk_scratch_get(c->scratch, (size_t)(4 * n + a->P * a->Eh));
        if (!s) { tk_fail(TK_ERR_NOMEM, "prefix: out of memory"); return -1; }
        kb = s;
        raw = s + 2 * n;
        if (a->cfg.projection) hid = s + 4 * n;
    }
    vb = kb + n;
    if (a->cfg.projection) hidden(a, hid);
    raw_layer(a, layer, hid, raw);
    keys_values(a, layer, raw, kb, vb);
    *k = kb;
    *v = vb;
    return a->P;
}

static tk_status prefix_attn_bwd(void *state, const tk_peft_call *c, int32_t layer, const float *dk, const float *dv) {
    tk_prefix *a = state;
    if (layer < 0 || layer >= a->L) return TK_OK;
    if (c->scale != 1.0f) return tk_fail(TK_ERR_UNSUPPORTED, "prefix: training with a request scale other than 1");
    if (!a->training) return tk_fail(TK_ERR_ARG, "prefix backward: no training forward to differentiate");
    int64_t kvd = a->kvd, n = 2 * kvd, off = (int64_t)layer * n;
    float *d = a->tmp, *dkr = a->tmp + a->P * n;
    memcpy(dkr, dk, (size_t)(a->P * kvd) * sizeof(float));
    tk_rope_backward(dkr, a->pos, a->P, a->KH, a->D, layer_rope(a, layer));
    bool perm = a->m->cfg.rope_interleaved != 0;
    for (int64_t p = 0; p < a->P; p++) {
        if (perm) tk_permute_qk_rows_to_hf(d + p * n, dkr + p * kvd, a->KH, a->D, sizeof(float));
        else memcpy(d + p * n, dkr + p * kvd, (size_t)kvd * sizeof(float));
        memcpy(d + p * n + kvd, dv + p * kvd, (size_t)kvd * sizeof(float));
    }
    tk_param *E = &a->ps->p[a->ie];
    if (!a->cfg.projection) {
        for (int64_t p = 0; p < a->P; p++)
            for (int64_t j = 0; j < n; j++) E->g[p * a->W + off + j] += d[p * n + j];
        return TK_OK;
    }
    tk_param *W1 = &a->ps->p[a->iw1], *b1 = &a->ps->p[a->ib1], *W2 = &a->ps->p[a->iw2], *b2 = &a->ps->p[a->ib2];
    int64_t Eh = a->Eh, P = a->P;
    float *hid = a->hid;
    hidden(a, hid);
    for (int64_t j = 0; j < n; j++) {
        double sb = 0;
        for (int64_t p = 0; p < P; p++) sb += d[p * n + j];
        b2->g[off + j] += (float)sb;
        float *gw = W2->g + (off + j) * Eh;
        for (int64_t e = 0; e < Eh; e++) {
            double s = 0;
            for (int64_t p = 0; p < P; p++) s += (double)d[p * n + j] * hid[p * Eh + e];
            gw[e] += (float)s;
        }
    }
    /* d_pre[p, e] = (sum_j d[p, j] W2[off + j, e]) (1 - hid^2), in place of hid's row after use */
    for (int64_t p = 0; p < P; p++) {
        for (int64_t e = 0; e < Eh; e++) {
            double s = 0;
            for (int64_t j = 0; j < n; j++) s += (double)d[p * n + j] * W2->w[(off + j) * Eh + e];
            float h = hid[p * Eh + e];
            hid[p * Eh + e] = (float)(s * (1.0 - (double)h * h));
        }
    }
    for (int64_t e = 0; e < Eh; e++) {
        double sb = 0;
        for (int64_t p = 0; p < P; p++) sb += hid[p * Eh + e];
        b1->g[e] += (float)sb;
        for (int64_t k = 0; k < kvd; k++) {
            double s = 0;
            for (int64_t p = 0; p < P; p++) s += (double)hid[p * Eh + e] * E->w[p * kvd + k];
            W1->g[e * kvd + k] += (float)s;
        }
    }
    for (int64_t p = 0; p < P; p++)
        for (int64_t k = 0; k < kvd; k++) {
            double s = 0;
            for (int64_t e = 0; e < Eh; e++) s += (double)hid[p * Eh + e] * W1->w[e * kvd + k];
            E->g[p * kvd + k] += (float)s;
        }
    return TK_OK;
}

static void prefix_set_training(void *state, bool on, uint64_t counter) {
    (void)counter;
    ((tk_prefix *)state)->training = on;
}

tk_status tk_prefix_embeddings(const tk_prefix *a, float *out) {
    if (!a || !out) return tk_fail(TK_ERR_ARG, "prefix: NULL argument");
    int64_t n = 2 * a->kvd;
    float *hid = a->cfg.projection ? tk_malloc((size_t)(a->P * a->Eh) * sizeof(float)) : NULL;
    float *raw = tk_malloc((size_t)(a->P * n) * sizeof(float));
    if (!raw || (a->cfg.projection && !hid)) { free(hid); free(raw); return tk_fail(TK_ERR_NOMEM, "prefix: out of memory"); }
    if (hid) hidden(a, hid);
    for (int32_t l = 0; l < a->L; l++) {
        raw_layer(a, l, hid, raw);
        for (int64_t p = 0; p < a->P; p++) memcpy(out + p * a->W + (int64_t)l * n, raw + p * n, (size_t)n * sizeof(float));
    }
    free(hid);
    free(raw);
    return TK_OK;
}

static tk_status prefix_save(void *state, const tk_model *m, const char *dir, const char *base_model) {
    return tk_prefix_save_peft(state, m, dir, base_model);
}

/* no merge_linear (a prefix is not a weight change) and no save_gguf (llama.cpp has no prefix tuning) */
static const tk_peft_method k_prefix_method = {
    .name = "prefix",
    .attn_prefix = prefix_attn,
    .attn_prefix_bwd = prefix_attn_bwd,
    .set_training = prefix_set_training,
    .save_peft = prefix_save,
};

const tk_peft *tk_prefix_peft(tk_prefix *a) { return &a->peft; }
tk_prefix *tk_prefix_of(const tk_peft *p) { return p && p->method == &k_prefix_method ? p->state : NULL; }
const tk_prefix_config *tk_prefix_get_config(const tk_prefix *a) { return &a->cfg; }
int64_t tk_prefix_width(const tk_prefix *a) { return a->W; }
