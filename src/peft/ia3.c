/* IA3 (see ia3.h): the method table. Output-scaled linears keep their unscaled output of the
 * training forward for the backward (tokens x out); feed-forward ones keep nothing (the backward
 * recomputes dy W):
 *   output-scaled:  dl_j += sum_t dy_tj y_tj,        dx += ((l - 1) ⊙ dy) W
 *   feed-forward:   g = dy W,  dl_k += sum_t x_tk g_tk,  dx += (l - 1) ⊙ g
 * (the model's own backward adds dy W for the base product). */
#include "peft/ia3.h"
#include "backend/backend.h"
#include "model/llama.h"
#include "core/core.h"
#include <stdio.h>

typedef struct ia3_mod {
    int64_t ip;      /* param index; -1 = none */
    bool ff;
    int64_t K, N, off;  /* off: of its saved output in y (output-scaled only) */
} ia3_mod;

struct tk_ia3 {
    tk_peft peft;
    tk_model *m;
    tk_param_set *ps;
    tk_ia3_config cfg;
    int32_t L;
    ia3_mod *mods;
    int64_t sum_N, max_W;  /* sum of out over output-scaled linears; max(in, out) */
    bool training;
    int64_t cap_T;
    float *y;              /* [cap_T x sum_N] unscaled outputs of the last training forward */
    float *work;           /* [cap_T x max_W] */
};

static const tk_peft_method k_ia3_method;

tk_ia3_config tk_ia3_default_config(void) {
    tk_ia3_config c = {.targets = 1u << TK_LIN_K | 1u << TK_LIN_V | 1u << TK_LIN_DOWN, .feedforward = 1u << TK_LIN_DOWN, .first_layer = 0};
    return c;
}

static const char *group(tk_linear_id w) { return w <= TK_LIN_O ? "self_attn" : "mlp"; }

tk_status tk_ia3_new(tk_model *m, const tk_ia3_config *cfg, tk_param_set *ps, tk_ia3 **out) {
    *out = NULL;
    if (!m || !cfg || !ps) return tk_fail(TK_ERR_ARG, "ia3: NULL argument");
    tk_ia3_config c = *cfg;
    if (!c.targets) { c = tk_ia3_default_config(); c.first_layer = cfg->first_layer; }
    if (c.targets & ~((1u << TK_LIN_COUNT) - 1u)) return tk_fail(TK_ERR_ARG, "ia3: unknown target bits 0x%x", (unsigned)c.targets);
    if (c.feedforward & ~c.targets) return tk_fail(TK_ERR_ARG, "ia3: the feed-forward linears must be among the targets");
    if (c.first_layer < 0 || c.first_layer >= m->cfg.n_layers)
        return tk_fail(TK_ERR_ARG, "ia3: first layer %d outside [0, %d)", c.first_layer, m->cfg.n_layers);
    tk_ia3 *a = tk_calloc(1, sizeof *a);
    if (!a) return TK_ERR_NOMEM;
    a->peft = (tk_peft){&k_ia3_method, a};
    a->m = m;
    a->ps = ps;
    a->cfg = c;
    a->L = m->cfg.n_layers;
    a->mods = tk_malloc((size_t)a->L * TK_LIN_COUNT * sizeof *a->mods);
    if (!a->mods) { free(a); return TK_ERR_NOMEM; }
    tk_status st = TK_OK;
    for (int32_t i = 0; i < a->L && !st; i++)
        for (int w = 0; w < TK_LIN_COUNT && !st; w++) {
            ia3_mod *md = &a->mods[(size_t)i * TK_LIN_COUNT + w];
            const tk_tensor_ref *wt = tk_model_linear(m, i, (tk_linear_id)w);
            md->ip = -1;
            md->K = wt->ne[0];
            md->N = wt->ne[1];
            md->ff = (c.feedforward >> w) & 1u;
            if (i < c.first_layer || !((c.targets >> w) & 1u) || !wt->data) continue;
            char name[160];
            snprintf(name, sizeof name, "base_model.model.model.layers.%d.%s.%s.ia3_l", i, group((tk_linear_id)w),
                     tk_model_linear_name(m, (tk_linear_id)w));
            int64_t ne[2] = {md->ff ? md->K : 1, md->ff ? 1 : md->N}; /* torch [1, in] / [out, 1] */
            tk_param *p;
            if ((st = tk_params_add(ps, name, 2, ne, NULL, false, &p))) break;
            md->ip = ps->n - 1;
            for (int64_t j = 0; j < p->n; j++) p->w[j] = 1.0f;
            if (!md->ff) { md->off = a->sum_N; a->sum_N += md->N; }
            int64_t mw = md->K > md->N ? md->K : md->N;
            if (mw > a->max_W) a->max_W = mw;
        }
    if (st) { tk_ia3_free(a); return st; }
    *out = a;
    return TK_OK;
}

void tk_ia3_free(tk_ia3 *a) {
    if (!a) return;
    free(a->mods);
    free(a->y);
    free(a->work);
    free(a);
}

static ia3_mod *find_mod(tk_ia3 *a, int32_t layer, tk_linear_id which) {
    if (layer < 0 || layer >= a->L || (unsigned)which >= TK_LIN_COUNT) return NULL;
    ia3_mod *md = &a->mods[(size_t)layer * TK_LIN_COUNT + which];
    return md->ip >= 0 ? md : NULL;
}

static tk_status reserve(tk_ia3 *a, int64_t n) {
    if (n <= a->cap_T) return TK_OK;
    size_t ny, nw;
    if (!tk_mul_ok((size_t)n, (size_t)(a->sum_N ? a->sum_N : 1), &ny) || !tk_mul_ok((size_t)n, (size_t)a->max_W, &nw))
        return tk_fail(TK_ERR_NOMEM, "ia3: buffers for %lld tokens overflow", (long long)n);
    free(a->y);
    free(a->work);
    a->y = tk_malloc(ny * sizeof(float));
    a->work = tk_malloc(nw * sizeof(float));
    if (!a->y || !a->work) {
        free(a->y); free(a->work);
        a->y = a->work = NULL;
        a->cap_T = 0;
        return tk_fail(TK_ERR_NOMEM, "ia3: out of memory for %lld tokens", (long long)n);
    }
    a->cap_T = n;
    return TK_OK;
}

static tk_status ia3_linear_fwd(void *state, const tk_peft_call *c, int32_t layer, tk_linear_id which, const tk_tensor_ref *w,
                                const float *x, float *y, int64_t n) {
    tk_ia3 *a = state;
    ia3_mod *md = find_mod(a, layer, which);
    if (!md || n <= 0) return TK_OK;
    const float *l = a->ps->p[md->ip].w;
    float s = c->scale;
    int64_t K = md->K, N = md->N;
    tk_status st;
    if (c->training) {
        if (!a->training) return tk_fail(TK_ERR_ARG, "ia3: a training forward without set_training");
        if ((st = reserve(a, n))) return st;
    }
    if (!md->ff) {
        if (c->training) memcpy(a->y + md->off * a->cap_T, y, (size_t)(n * N) * sizeof(float));
        #pragma omp parallel for schedule(static) if (n * N > 65536)
        for (int64_t t = 0; t < n; t++)
            for (int64_t j = 0; j < N; j++) y[t * N + j] *= 1.0f + s * (l[j] - 1.0f);
        return TK_OK;
    }
    /* y = (x ⊙ l) W^T = x W^T + ((l - 1) ⊙ x) W^T */
    float *xs = c->training ? a->work : tk_scratch_get(c->scratch, (size_t)(n * K));
    if (!xs) return tk_fail(TK_ERR_NOMEM, "ia3: out of memory for %lld tokens", (long long)n);
    #pragma omp parallel for schedule(static) if (n * K > 65536)
    for (int64_t t = 0; t < n; t++)
        for (int64_t k = 0; k < K; k++) xs[t * K + k] = s * (l[k] - 1.0f) * x[t * K + k];
    return tk_matmul_ex(y, xs, w, n, true, c->training ? TK_MATMUL_EXACT : 0);
}

static tk_status ia3_linear_bwd(void *state, const tk_peft_call *c, int32_t layer, tk_linear_id which, const tk_tensor_ref *w,
                                const float *x, const float *dy, float *dx, int64_t n) {
    tk_ia3 *a = state;
    ia3_mod *md = find_mod(a, layer, which);
    if (!md || n <= 0) return TK_OK;
    if (c->scale != 1.0f) return tk_fail(TK_ERR_UNSUPPORTED, "ia3: training with a request scale other than 1");
    if (!a->training || n > a->cap_T)
        return tk_fail(TK_ERR_ARG, "ia3 backward: no training forward of %lld tokens to differentiate", (long long)n);
    tk_param *p = &a->ps->p[md->ip];
    int64_t K = md->K, N = md->N;
    float *g = a->work;
    if (!md->ff) {
        const float *ys = a->y + md->off * a->cap_T;
        #pragma omp parallel for schedule(static) if (n * N > 65536)
        for (int64_t j = 0; j < N; j++) {
            double acc = 0;
            for (int64_t t = 0; t < n; t++) {
                acc += (double)dy[t * N + j] * ys[t * N + j];
                g[t * N + j] = (p->w[j] - 1.0f) * dy[t * N + j];
            }
            p->g[j] += (float)acc;
        }
        return dx ? tk_matmul_dx(dx, g, w, n, true) : TK_OK;
    }
    tk_status st = tk_matmul_dx(g, dy, w, n, false);
    if (st) return st;
    #pragma omp parallel for schedule(static) if (n * K > 65536)
    for (int64_t k = 0; k < K; k++) {
        double acc = 0;
        for (int64_t t = 0; t < n; t++) acc += (double)x[t * K + k] * g[t * K + k];
        p->g[k] += (float)acc;
        if (dx)
            for (int64_t t = 0; t < n; t++) dx[t * K + k] += (p->w[k] - 1.0f) * g[t * K + k];
    }
    return TK_OK;
}

static bool ia3_has_linear(const void *state, int32_t layer, tk_linear_id which) { return find_mod((tk_ia3 *)state, layer, which) != NULL; }

static void ia3_set_training(void *state, bool on, uint64_t counter) {
    (void)counter;
    ((tk_ia3 *)state)->training = on;
}

/* W[N x K]: rows (output-scaled) or columns (feed-forward) times 1 + scale (l - 1), as PEFT merges. */
static tk_status ia3_merge_linear(const void *state, int32_t layer, tk_linear_id which, float *W, int64_t N, int64_t K, float scale) {
    tk_ia3 *a = (tk_ia3 *)state;
    ia3_mod *md = find_mod(a, layer, which);
    if (!md) return TK_OK;
    if (md->K != K || md->N != N) return tk_fail(TK_ERR_ARG, "ia3 merge: layer %d %s is %lld x %lld, the weight %lld x %lld", layer,
                                                 tk_linear_name(which), (long long)md->N, (long long)md->K, (long long)N, (long long)K);
    const tk_layer_weights *lw = &tk_model_weights(a->m)->layers[layer];
    const tk_tensor_ref *b = which == TK_LIN_Q ? &lw->bq : which == TK_LIN_K ? &lw->bk : which == TK_LIN_V ? &lw->bv : NULL;
    if (!md->ff && b && b->data)
        return tk_fail(TK_ERR_UNSUPPORTED, "ia3 merge: layer %d %s has a bias, which IA3 scales too; merging changes weights only "
                                           "(apply the adapter instead of merging it)", layer, tk_linear_name(which));
    const float *l = a->ps->p[md->ip].w;
    for (int64_t j = 0; j < N; j++)
        for (int64_t k = 0; k < K; k++) W[j * K + k] *= 1.0f + scale * ((md->ff ? l[k] : l[j]) - 1.0f);
    return TK_OK;
}

static tk_status ia3_save(void *state, const tk_model *m, const char *dir, const char *base_model) {
    return tk_ia3_save_peft(state, m, dir, base_model);
}

/* no save_gguf: llama.cpp has no IA3 adapters */
static const tk_peft_method k_ia3_method = {
    .name = "ia3",
    .has_linear = ia3_has_linear,
    .linear_fwd = ia3_linear_fwd,
    .linear_bwd = ia3_linear_bwd,
    .set_training = ia3_set_training,
    .merge_linear = ia3_merge_linear,
    .save_peft = ia3_save,
};

const tk_peft *tk_ia3_peft(tk_ia3 *a) { return &a->peft; }
tk_ia3 *tk_ia3_of(const tk_peft *p) { return p && p->method == &k_ia3_method ? p->state : NULL; }
const tk_ia3_config *tk_ia3_get_config(const tk_ia3 *a) { return &a->cfg; }

tk_param *tk_ia3_vector(tk_ia3 *a, int32_t layer, tk_linear_id which) {
    ia3_mod *md = find_mod(a, layer, which);
    return md ? &a->ps->p[md->ip] : NULL;
}
