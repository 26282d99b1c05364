/* DoRA (see dora.h): the method table over a LoRA direction (lora.c) and magnitude vectors.
 *
 * Row norms ||W + s B A||_j: ||W_j||^2 is read once at creation (rows dequantized one at a time
 * through the core dequantizer, never the whole matrix), then each call expands
 *   ||W_j + s B_j A||^2 = ||W_j||^2 + 2 s B_j·(A W_j^T) + s^2 B_j (A A^T) B_j^T
 * with P = A W^T [r x N] from the backend's matmul on the stored dtype (r rows, exact mode) and
 * G = A A^T [r x r]: no dense W is ever formed. A training forward computes them per linear
 * and keeps them for its backward; inference computes them per call in the workspace scratch.
 *
 * Backward (the norm detached as in PEFT, weight_norm.detach()): with v = base + s·lora kept
 * from the forward,
 *   dm_j += sum_t dy_tj v_tj / norm_j,   LoRA's backward with dy' = mns ⊙ dy (dA, dB, dx),
 *   dx  += dropout_bwd(((mns - 1) ⊙ dy) W).
 * Memory per training forward: the saved v (tokens x out per adapted linear) besides LoRA's. */
#include "peft/dora.h"
#include "backend/backend.h"
#include "model/llama.h"
#include "core/core.h"
#include <math.h>
#include <stdio.h>

typedef struct dora_mod {
    int64_t im;      /* param index of the magnitude; -1 = no adapter */
    int64_t N, K, off;  /* out, in; offset of its rows in w2 / norm */
} dora_mod;

struct tk_dora {
    tk_peft peft;
    tk_model *m;
    tk_param_set *ps;
    tk_lora *l;
    int32_t L, r;
    dora_mod *mods;     /* [L x TK_LIN_COUNT] */
    int64_t sum_N, max_N, max_K;
    double *w2;         /* [sum_N] ||W_j||^2 */
    float *norm;        /* [sum_N] norms of the last training forward */
    bool training, hold;
    int64_t cap_T;
    float *v;           /* [cap_T x sum_N] base + s lora of the last training forward, per linear */
    float *work;        /* [cap_T x (2 max_N + max_K)] */
};

static const tk_peft_method k_dora_method;

static dora_mod *find_mod(tk_dora *d, int32_t layer, tk_linear_id which) {
    if (layer < 0 || layer >= d->L || (unsigned)which >= TK_LIN_COUNT) return NULL;
    dora_mod *md = &d->mods[(size_t)layer * TK_LIN_COUNT + which];
    return md->im >= 0 ? md : NULL;
}

/* ||W_j||^2 of every row of w, one dequantized row at a time. */
static tk_status row_sq(const tk_tensor_ref *w, double *out) {
    size_t rb;
    tk_status st = tk_matmul_check(w, 0, &rb);
    if (st) return st;
    int64_t K = w->ne[0], N = w->ne[1];
    float *row = tk_malloc((size_t)K * sizeof(float));
    if (!row) return TK_ERR_NOMEM;
    for (int64_t j = 0; j < N && !st; j++) {
        st = tk_dequantize(w->dtype, (const char *)w->data + (size_t)j * rb, row, K);
        double s = 0;
        for (int64_t k = 0; k < K; k++) s += (double)row[k] * row[k];
        out[j] = s;
    }
    free(row);
    return st;
}

/* norm[N] = ||W_j + s B_j A|| (see the top); tmp holds r*N + r*r floats. */
static tk_status row_norms(const tk_dora *d, const dora_mod *md, const tk_tensor_ref *w, float s, const float *A, const float *B,
                           float *tmp, float *norm) {
    int64_t r = d->r, N = md->N, K = md->K;
    float *P = tmp, *G = tmp + r * N;
    tk_status st = tk_matmul_ex(P, A, w, r, false, TK_MATMUL_EXACT);
    if (st) return st;
    tk_sgemm(false, true, r, r, K, 1.0f, A, K, A, K, 0.0f, G, r);
    const double *w2 = d->w2 + md->off;
    #pragma omp parallel for schedule(static) if (N * r * r > 65536)
    for (int64_t j = 0; j < N; j++) {
        const float *b = B + j * r;
        double cross = 0, quad = 0;
        for (int64_t i = 0; i < r; i++) {
            cross += (double)b[i] * P[i * N + j];
            double gi = 0;
            for (int64_t k = 0; k < r; k++) gi += (double)G[i * r + k] * b[k];
            quad += (double)b[i] * gi;
        }
        double v = w2[j] + 2.0 * s * cross + (double)s * s * quad;
        norm[j] = (float)sqrt(v > 0 ? v : 0);
    }
    return TK_OK;
}

tk_status tk_dora_new(tk_model *m, const tk_lora_config *cfg, tk_param_set *ps, tk_dora **out) {
    *out = NULL;
    if (cfg && (cfg->init == TK_LORA_INIT_PISSA || cfg->init == TK_LORA_INIT_OLORA))
        return tk_fail(TK_ERR_UNSUPPORTED, "dora: the PiSSA/OLoRA initialisations are LoRA only (PEFT's DoRA would take its norms "
                                           "on the residual base, which takumi does not form)");
    tk_lora *l;
    tk_status st = tk_lora_new(m, cfg, ps, &l);
    if (st) return st;
    tk_dora *d = tk_calloc(1, sizeof *d);
    if (!d) { tk_lora_free(l); return TK_ERR_NOMEM; }
    d->peft = (tk_peft){&k_dora_method, d};
    d->m = m;
    d->ps = ps;
    d->l = l;
    d->L = m->cfg.n_layers;
    d->r = tk_lora_get_config(l)->r;
    d->mods = tk_malloc((size_t)d->L * TK_LIN_COUNT * sizeof *d->mods);
    if (!d->mods) { tk_dora_free(d); return TK_ERR_NOMEM; }
    for (int32_t i = 0; i < d->L; i++)
        for (int w = 0; w < TK_LIN_COUNT; w++) {
            dora_mod *md = &d->mods[(size_t)i * TK_LIN_COUNT + w];
            const tk_tensor_ref *wt = tk_model_linear(m, i, (tk_linear_id)w);
            md->im = -1;
            md->K = wt->ne[0];
            md->N = wt->ne[1];
            md->off = d->sum_N;
            if (!tk_lora_module(l, i, (tk_linear_id)w, NULL, NULL)) continue;
            d->sum_N += md->N;
            if (md->N > d->max_N) d->max_N = md->N;
            if (md->K > d->max_K) d->max_K = md->K;
        }
    d->w2 = tk_malloc((size_t)(d->sum_N ? d->sum_N : 1) * sizeof(double));
    d->norm = tk_malloc((size_t)(d->sum_N ? d->sum_N : 1) * sizeof(float));
    if (!d->w2 || !d->norm) { tk_dora_free(d); return TK_ERR_NOMEM; }
    for (int32_t i = 0; i < d->L && !st; i++)
        for (int w = 0; w < TK_LIN_COUNT && !st; w++) {
            dora_mod *md = &d->mods[(size_t)i * TK_LIN_COUNT + w];
            tk_param *A;
            if (!tk_lora_module(l, i, (tk_linear_id)w, &A, NULL)) continue;
            if ((st = row_sq(tk_model_linear(m, i, (tk_linear_id)w), d->w2 + md->off))) break;
            char name[200];
            snprintf(name, sizeof name, "%.*slora_magnitude_vector", (int)(strlen(A->name) - strlen("lora_A.weight")), A->name);
            tk_param *p;
            int64_t ne[1] = {md->N};
            if ((st = tk_params_add(ps, name, 1, ne, NULL, false, &p))) break;
            md->im = ps->n - 1;
            if (cfg->plus_ratio > 0) p->lr_mult = cfg->plus_ratio; /* PEFT's LoRA+ puts 1-D parameters in the B group */
            /* m = ||W + s B A||_row with B = 0 (PEFT: dora_init's weight norm) */
            for (int64_t j = 0; j < md->N; j++) p->w[j] = (float)sqrt(d->w2[md->off + j]);
        }
    if (st) { tk_dora_free(d); return st; }
    *out = d;
    return TK_OK;
}

void tk_dora_free(tk_dora *d) {
    if (!d) return;
    tk_lora_free(d->l);
    free(d->mods);
    free(d->w2);
    free(d->norm);
    free(d->v);
    free(d->work);
    free(d);
}

static tk_status reserve(tk_dora *d, int64_t n) {
    if (n <= d->cap_T) return TK_OK;
    size_t nv, nw;
    if (!tk_mul_ok((size_t)n, (size_t)d->sum_N, &nv) || !tk_mul_ok((size_t)n, (size_t)(2 * d->max_N + d->max_K), &nw))
        return tk_fail(TK_ERR_NOMEM, "dora: buffers for %lld tokens overflow", (long long)n);
    free(d->v);
    free(d->work);
    d->v = tk_malloc(nv * sizeof(float));
    d->work = tk_malloc(nw * sizeof(float));
    if (!d->v || !d->work) {
        free(d->v); free(d->work);
        d->v = d->work = NULL;
        d->cap_T = 0;
        return tk_fail(TK_ERR_NOMEM, "dora: out of memory for %lld tokens", (long long)n);
    }
    d->cap_T = n;
    return TK_OK;
}

/* The linear's bias (Qwen2's q/k/v), or NULL: PEFT's base_result is the product without it. */
static const float *bias_of(tk_dora *d, int32_t layer, tk_linear_id which) {
    const tk_layer_weights *lw = &tk_model_weights(d->m)->layers[layer];
    const tk_tensor_ref *b = which == TK_LIN_Q ? &lw->bq : which == TK_LIN_K ? &lw->bk : which == TK_LIN_V ? &lw->bv : NULL;
    return b && b->data ? b->data : NULL;
}

static tk_status dora_linear_fwd(void *state, const tk_peft_call *c, int32_t layer, tk_linear_id which, const tk_tensor_ref *w,
                                 const float *x, float *y, int64_t n) {
    tk_dora *d = state;
    dora_mod *md = find_mod(d, layer, which);
    if (!md || n <= 0) return TK_OK;
    tk_param *A, *B;
    tk_lora_module(d->l, layer, which, &A, &B);
    const float *mag = d->ps->p[md->im].w;
    int64_t r = d->r, N = md->N, K = md->K;
    float s = tk_lora_scale(d->l) * c->scale;
    size_t need = (size_t)(r * N + r * r + N) + (c->training ? 0 : (size_t)n * (size_t)(r + 2 * N));
    float *tmp = tk_scratch_get(c->scratch, need);
    if (!tmp) return tk_fail(TK_ERR_NOMEM, "dora: out of memory for %lld tokens", (long long)n);
    float *norm, *z, *base;
    tk_status st;
    if (c->training) {
        if (!d->training) return tk_fail(TK_ERR_ARG, "dora: a training forward without set_training");
        if ((st = reserve(d, n))) return st;
        norm = d->norm + md->off;
        if (!d->hold && (st = row_norms(d, md, w, s, A->w, B->w, tmp, norm))) return st;
        z = d->work;
        base = z + n * N;
        memset(z, 0, (size_t)(n * N) * sizeof(float));
        /* LoRA's own training forward: dropout masks drawn and u = dropout(x) A^T kept for its backward */
        const tk_peft *lp = tk_lora_peft(d->l);
        if ((st = lp->method->linear_fwd(lp->state, c, layer, which, w, x, z, n))) return st;
        if (tk_lora_get_config(d->l)->dropout > 0) {
            const float *xd = tk_lora_dropped_input(d->l, layer, which, x, n);
            if ((st = tk_matmul_ex(base, xd, w, n, false, TK_MATMUL_EXACT))) return st;
        } else {
            base = NULL;
        }
    } else {
        norm = tmp + r * N + r * r;
        if ((st = row_norms(d, md, w, s, A->w, B->w, tmp, norm))) return st;
        float *u = norm + N;
        z = u + n * r;
        tk_sgemm(false, true, n, r, K, 1.0f, x, K, A->w, K, 0.0f, u, r);
        tk_sgemm(false, true, n, N, r, s, u, r, B->w, r, 0.0f, z, N);
        base = NULL;
    }
    if (!base) { /* PEFT: base_result = the layer's result minus its bias */
        base = z + n * N;
        const float *b = bias_of(d, layer, which);
        for (int64_t t = 0; t < n; t++)
            for (int64_t j = 0; j < N; j++) base[t * N + j] = b ? y[t * N + j] - b[j] : y[t * N + j];
    }
    float *v = c->training ? d->v + md->off * d->cap_T : NULL;
    #pragma omp parallel for schedule(static) if (n * N > 65536)
    for (int64_t t = 0; t < n; t++)
        for (int64_t j = 0; j < N; j++) {
            float mns = mag[j] / norm[j], bs = base[t * N + j], zz = z[t * N + j];
            y[t * N + j] += (mns - 1.0f) * bs + mns * zz;
            if (v) v[t * N + j] = bs + zz;
        }
    return TK_OK;
}

static tk_status dora_linear_bwd(void *state, const tk_peft_call *c, int32_t layer, tk_linear_id which, const tk_tensor_ref *w,
                                 const float *x, const float *dy, float *dx, int64_t n) {
    tk_dora *d = state;
    dora_mod *md = find_mod(d, layer, which);
    if (!md || n <= 0) return TK_OK;
    if (c->scale != 1.0f) return tk_fail(TK_ERR_UNSUPPORTED, "dora: training with a request scale other than 1");
    if (!d->training || n > d->cap_T)
        return tk_fail(TK_ERR_ARG, "dora backward: no training forward of %lld tokens to differentiate", (long long)n);
    tk_param *pm = &d->ps->p[md->im];
    int64_t N = md->N;
    const float *norm = d->norm + md->off, *v = d->v + md->off * d->cap_T;
    float *dy1 = d->work, *g = dy1 + n * N, *gx = g + n * N;
    #pragma omp parallel for schedule(static) if (n * N > 65536)
    for (int64_t j = 0; j < N; j++) {
        double acc = 0;
        float mns = pm->w[j] / norm[j];
        for (int64_t t = 0; t < n; t++) {
            float e = dy[t * N + j];
            acc += (double)e * v[t * N + j];
            dy1[t * N + j] = mns * e;
            g[t * N + j] = (mns - 1.0f) * e;
        }
        pm->g[j] += (float)(acc / norm[j]);
    }
    tk_status st = tk_lora_backward_linear(d->l, layer, which, x, dy1, dx, n);
    if (st || !dx) return st;
    if ((st = tk_matmul_dx(gx, g, w, n, false))) return st;
    tk_lora_dropout_add(d->l, layer, which, dx, gx, n);
    return TK_OK;
}

static bool dora_has_linear(const void *state, int32_t layer, tk_linear_id which) {
    return find_mod((tk_dora *)state, layer, which) != NULL;
}

static void dora_set_training(void *state, bool on, uint64_t counter) {
    tk_dora *d = state;
    d->training = on;
    tk_lora_set_training(d->l, on, counter);
}

/* W[N x K] = m / ||W + s' B A||_row ⊙ (W + s' B A), s' = scale * s (PEFT's merge). */
static tk_status dora_merge_linear(const void *state, int32_t layer, tk_linear_id which, float *W, int64_t N, int64_t K, float scale) {
    tk_dora *d = (tk_dora *)state;
    dora_mod *md = find_mod(d, layer, which);
    if (!md) return TK_OK;
    if (md->K != K || md->N != N) return tk_fail(TK_ERR_ARG, "dora merge: layer %d %s is %lld x %lld, the weight %lld x %lld", layer,
                                                 tk_linear_name(which), (long long)md->N, (long long)md->K, (long long)N, (long long)K);
    tk_param *A, *B;
    tk_lora_module(d->l, layer, which, &A, &B);
    const float *mag = d->ps->p[md->im].w;
    tk_sgemm(false, false, N, K, d->r, tk_lora_scale(d->l) * scale, B->w, d->r, A->w, K, 1.0f, W, K);
    #pragma omp parallel for schedule(static) if (N * K > 65536)
    for (int64_t j = 0; j < N; j++) {
        double s = 0;
        for (int64_t k = 0; k < K; k++) s += (double)W[j * K + k] * W[j * K + k];
        float f = mag[j] / (float)sqrt(s);
        for (int64_t k = 0; k < K; k++) W[j * K + k] *= f;
    }
    return TK_OK;
}

static tk_status dora_save_peft(void *state, const tk_model *m, const char *dir, const char *base_model) {
    return tk_dora_save_peft(state, m, dir, base_model);
}

/* no save_gguf: llama.cpp applies LoRA adapters only (it has no magnitude vectors) */
static const tk_peft_method k_dora_method = {
    .name = "dora",
    .has_linear = dora_has_linear,
    .linear_fwd = dora_linear_fwd,
    .linear_bwd = dora_linear_bwd,
    .set_training = dora_set_training,
    .merge_linear = dora_merge_linear,
    .save_peft = dora_save_peft,
};

const tk_peft *tk_dora_peft(tk_dora *d) { return &d->peft; }
tk_dora *tk_dora_of(const tk_peft *p) { return p && p->method == &k_dora_method ? p->state : NULL; }
tk_lora *tk_dora_lora(tk_dora *d) { return d->l; }
void tk_dora_hold_norms(tk_dora *d, bool hold) { d->hold = hold; }

tk_param *tk_dora_magnitude(tk_dora *d, int32_t layer, tk_linear_id which) {
    dora_mod *md = find_mod(d, layer, which);
    return md ? &d->ps->p[md->im] : NULL;
}
