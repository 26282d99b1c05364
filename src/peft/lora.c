/* LoRA (see lora.h): per adapted linear, A [r x K] and B [N x r] f32 parameters; the
 * forward adds scale * (dropout(x) A^T) B^T through the PEFT method table (per workspace) and, in
 * training mode, keeps u = dropout(x) A^T [n x r] for the backward:
 *   dB += scale * dy^T u,   dA += scale * (dy B)^T dropout(x),   dx += scale * mask ⊙ ((dy B) A)
 * Dropout masks are drawn in the forward from a counter hash of (seed, counter, layer,
 * linear, row, column) — so threads can draw rows in any order and a recomputed forward
 * draws the same mask — at 16-bit resolution (p is rounded to a multiple of 1/65536),
 * and kept as bits for the backward. Memory per training forward: L x 7 x n x r floats
 * of saved u plus n x K bits of mask per adapted linear — small next to the activations. */
#include "peft/lora.h"
#include "peft/lora_io.h"
#include "peft/lora_init.h"
#include "model/llama.h"
#include "core/core.h"
#include "backend/backend.h"
#include <math.h>
#include <stdio.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif

typedef struct lora_mod {
    int64_t ia, ib;   /* param indices of A and B in ps; -1 = no adapter */
    int64_t K, N;     /* in, out */
    float *A0, *B0;   /* PiSSA/OLoRA: the initial pair whose product is subtracted [r x K], [N x r]; else NULL */
} lora_mod;

struct tk_lora {
    tk_peft peft;            /* {&k_lora_method, this} */
    tk_model *m;
    tk_param_set *ps;
    tk_lora_config cfg;
    float scale;
    bool qk_permuted;
    int32_t L;
    lora_mod *mods;          /* [L x TK_LIN_COUNT] */
    int64_t max_K;
    bool training;
    uint64_t counter;
    /* growable buffers (capacity cap_T tokens) */
    int64_t cap_T;
    float *u;                /* [L x 7 x cap_T x r] saved products (training) */
    uint64_t *mask;          /* [cap_T x mask_words] dropout keep-bits of one linear (training with dropout): the
                                bits are a function of (seed, counter, layer, linear, row), so the backward redraws
                                them instead of keeping every linear's (41 MiB for SmolLM2 at 1024 tokens) */
    int64_t mask_words;      /* 64-bit words per row: ceil(max_K / 64) */
    int64_t mask_n;          /* rows the slot holds (0: none) for mask_layer, mask_which at mask_counter */
    int32_t mask_layer;
    tk_linear_id mask_which;
    uint64_t mask_counter;
    uint32_t p16;            /* dropout probability in 1/65536 units */
    float *ubuf;             /* [cap_T x r] u when not training; (dy B) in the backward */
    float *xd;               /* [cap_T x max_K] dropped-out input */
    float *tmp;              /* [cap_T x max_K] (dy B) A before masking */
};

tk_lora_config tk_lora_default_config(void) {
    tk_lora_config c = {.r = 8, .alpha = 16.0f, .dropout = 0.05f, .rslora = false, .targets = 0, .first_layer = 0, .seed = 0};
    return c;
}

static const tk_peft_method k_lora_method;

static const char *module_path(tk_linear_id which) {
    return which <= TK_LIN_O ? "self_attn" : "mlp";
}

/* PiSSA/OLoRA of (layer, which): W dequantized to f32 with q/k rows in HF order, decomposed
 * (lora_init.c), A0/B0 kept (B0 rows back in the model's order) and copied into A and B. */
static tk_status init_from_weight(tk_lora *l, int32_t layer, tk_linear_id which, lora_mod *md) {
    const tk_model_config *mc = &l->m->cfg;
    const tk_tensor_ref *wt = tk_model_linear(l->m, layer, which);
    int64_t r = l->cfg.r, N = md->N, K = md->K;
    const char *what = l->cfg.init == TK_LORA_INIT_PISSA ? "PiSSA" : "OLoRA";
    if (r > (N < K ? N : K))
        return tk_fail(TK_ERR_ARG, "lora: %s needs a rank <= min(out, in) = %lld of layer %d %s, not %lld", what,
                       (long long)(N < K ? N : K), layer, tk_linear_name(which), (long long)r);
    size_t nw;
    if (!tk_mul_ok((size_t)N, (size_t)K, &nw)) return tk_fail(TK_ERR_NOMEM, "lora: weight too large");
    float *W = tk_malloc(nw * sizeof(float)), *Wh = tk_malloc(nw * sizeof(float)), *Bh = tk_malloc((size_t)(N * r) * sizeof(float));
    md->A0 = tk_malloc((size_t)(r * K) * sizeof(float));
    md->B0 = tk_malloc((size_t)(N * r) * sizeof(float));
    tk_status st = TK_OK;
    if (!W || !Wh || !Bh || !md->A0 || !md->B0) st = tk_fail(TK_ERR_NOMEM, "lora: out of memory for the %s decomposition", what);
    if (!st) st = tk_dequantize(wt->dtype, wt->data, W, (int64_t)nw);
    if (!st) {
        tk_lora_convert_b(Wh, W, which, mc, N, K, l->qk_permuted, false);
        st = l->cfg.init == TK_LORA_INIT_PISSA ? tk_lora_pissa(Wh, N, K, r, l->scale, md->A0, Bh)
                                               : tk_lora_olora(Wh, N, K, r, l->scale, md->A0, Bh);
    }
    if (!st) {
        tk_lora_convert_b(md->B0, Bh, which, mc, N, r, false, l->qk_permuted);
        memcpy(l->ps->p[md->ia].w, md->A0, (size_t)(r * K) * sizeof(float));
        memcpy(l->ps->p[md->ib].w, md->B0, (size_t)(N * r) * sizeof(float));
    }
    free(W); free(Wh); free(Bh);
    return st ? tk_fail_ctx(st, "lora: %s of layer %d %s: ", what, layer, tk_linear_name(which)) : TK_OK;
}

tk_status tk_lora_new(tk_model *m, const tk_lora_config *cfg, tk_param_set *ps, tk_lora **out) {
    *out = NULL;
    if (!m || !cfg || !ps) return tk_fail(TK_ERR_ARG, "lora: NULL argument");
    const tk_model_config *mc = &m->cfg;
    if (cfg->r <= 0 || cfg->r > 4096) return tk_fail(TK_ERR_ARG, "lora: rank %d must be in [1, 4096]", cfg->r);
    if (!(cfg->alpha > 0) || !isfinite(cfg->alpha)) return tk_fail(TK_ERR_ARG, "lora: alpha %g must be positive", (double)cfg->alpha);
    if (!(cfg->dropout >= 0 && cfg->dropout < 1)) return tk_fail(TK_ERR_ARG, "lora: dropout %g must be in [0, 1)", (double)cfg->dropout);
    if (cfg->targets & ~TK_LORA_ALL_TARGETS) return tk_fail(TK_ERR_ARG, "lora: unknown target bits 0x%x", (unsigned)cfg->targets);
    if (cfg->init < TK_LORA_INIT_KAIMING || cfg->init > TK_LORA_INIT_OLORA) return tk_fail(TK_ERR_ARG, "lora: unknown init %d", (int)cfg->init);
    if (!tk_lora_init_available(cfg->init))
        return tk_fail(TK_ERR_UNSUPPORTED, "lora: the PiSSA initialisation needs LAPACK's SVD: this build has no OpenBLAS (build with BLAS=1)");
    if (!(cfg->plus_ratio >= 0 && cfg->plus_ratio <= 1e6)) return tk_fail(TK_ERR_ARG, "lora: LoRA+ ratio %g must be in [0, 1e6]", (double)cfg->plus_ratio);
    if (cfg->first_layer < 0 || cfg->first_layer >= mc->n_layers)
        return tk_fail(TK_ERR_ARG, "lora: first layer %d outside [0, %d)", cfg->first_layer, mc->n_layers);
    tk_lora *l = tk_calloc(1, sizeof *l);
    if (!l) return TK_ERR_NOMEM;
    l->peft.method = &k_lora_method;
    l->peft.state = l;
    l->m = m;
    l->ps = ps;
    l->cfg = *cfg;
    if (!l->cfg.targets) l->cfg.targets = TK_LORA_ALL_TARGETS;
    l->scale = cfg->rslora ? cfg->alpha / sqrtf((float)cfg->r) : cfg->alpha / (float)cfg->r;
    l->qk_permuted = mc->rope_interleaved != 0;
    l->L = mc->n_layers;
    l->mods = tk_calloc((size_t)l->L * TK_LIN_COUNT, sizeof *l->mods);
    if (!l->mods) { free(l); return TK_ERR_NOMEM; }
    /* A ~ U(-1/sqrt(K), 1/sqrt(K)) (PEFT: kaiming_uniform_ with a = sqrt(5)) or, "gaussian",
     * N(0, (1/r)^2), drawn in (layer, linear) order from one stream; B = 0 */
    tk_rng rng;
    tk_rng_seed(&rng, cfg->seed);
    int64_t r = cfg->r;
    tk_status st = TK_OK;
    for (int32_t i = 0; i < l->L && !st; i++)
        for (int w = 0; w < TK_LIN_COUNT && !st; w++) {
            lora_mod *md = &l->mods[(size_t)i * TK_LIN_COUNT + w];
            md->ia = md->ib = -1;
            const tk_tensor_ref *wt = tk_model_linear(m, i, (tk_linear_id)w);
            md->K = wt->ne[0];
            md->N = wt->ne[1];
            /* a family without this linear (Phi-3's k/v/gate live in its fused weights) adapts none */
            if (i < cfg->first_layer || !(l->cfg.targets & (1u << w)) || !wt->data) continue;
            char name[160];
            const char *lin = tk_model_linear_name(m, (tk_linear_id)w);
            int64_t neA[2] = {md->K, r}, neB[2] = {r, md->N};
            tk_param *p;
            snprintf(name, sizeof name, "base_model.model.model.layers.%d.%s.%s.lora_A.weight", i, module_path((tk_linear_id)w), lin);
            if ((st = tk_params_add(ps, name, 2, neA, NULL, true, &p))) break;
            md->ia = ps->n - 1;
            float bound = 1.0f / sqrtf((float)md->K);
            if (cfg->init == TK_LORA_INIT_GAUSSIAN)
                for (int64_t j = 0; j < p->n; j++) p->w[j] = tk_rng_normal(&rng) / (float)r;
            else if (cfg->init == TK_LORA_INIT_KAIMING)
                for (int64_t j = 0; j < p->n; j++) p->w[j] = (2.0f * tk_rng_uniform(&rng) - 1.0f) * bound;
            snprintf(name, sizeof name, "base_model.model.model.layers.%d.%s.%s.lora_B.weight", i, module_path((tk_linear_id)w), lin);
            if ((st = tk_params_add(ps, name, 2, neB, NULL, true, &p))) break;
            md->ib = ps->n - 1;
            if (cfg->plus_ratio > 0) p->lr_mult = cfg->plus_ratio;
            if ((cfg->init == TK_LORA_INIT_PISSA || cfg->init == TK_LORA_INIT_OLORA) && (st = init_from_weight(l, i, (tk_linear_id)w, md)))
                break;
            if (md->K > l->max_K) l->max_K = md->K;
        }
    if (st) { tk_lora_free(l); return st; }
    l->mask_words = (l->max_K + 63) / 64;
    l->p16 = (uint32_t)lrint((double)cfg->dropout * 65536.0);
    if (cfg->dropout > 0 && l->p16 == 0) l->p16 = 1;
    if (l->p16 > 65535) l->p16 = 65535;
    *out = l;
    return TK_OK;
}

void tk_lora_free(tk_lora *l) {
    if (!l) return;
    for (int64_t i = 0; l->mods && i < (int64_t)l->L * TK_LIN_COUNT; i++) {
        free(l->mods[i].A0);
        free(l->mods[i].B0);
    }
    free(l->mods);
    free(l->u);
    free(l->ubuf);
    free(l->xd);
    free(l->tmp);
    free(l->mask);
    free(l);
}

/* Grows the per-token buffers to hold n tokens. */
static tk_status reserve(tk_lora *l, int64_t n) {
    if (n <= l->cap_T) return TK_OK;
    size_t r = (size_t)l->cfg.r, nu, nx;
    if (!tk_mul_ok((size_t)n, r, &nu) || !tk_mul_ok((size_t)n, (size_t)l->max_K, &nx))
        return tk_fail(TK_ERR_NOMEM, "lora: buffers for %lld tokens overflow", (long long)n);
    size_t nall;
    if (!tk_mul_ok(nu, (size_t)l->L * TK_LIN_COUNT, &nall)) return tk_fail(TK_ERR_NOMEM, "lora: buffers overflow");
    size_t nmask = 0;
    if (l->cfg.dropout > 0 &&
        !tk_mul_ok((size_t)n, (size_t)l->mask_words, &nmask))
        return tk_fail(TK_ERR_NOMEM, "lora: dropout masks overflow");
    free(l->u); free(l->ubuf); free(l->xd); free(l->tmp); free(l->mask);
    l->mask = nmask ? tk_malloc(nmask * sizeof(uint64_t)) : NULL;
    l->mask_n = 0;
    l->u = tk_malloc(nall * sizeof(float));
    l->ubuf = tk_malloc(nu * sizeof(float));
    l->xd = tk_malloc(nx * sizeof(float));
    l->tmp = tk_malloc(nx * sizeof(float));
    if (!l->u || !l->ubuf || !l->xd || !l->tmp || (nmask && !l->mask)) {
        free(l->u); free(l->ubuf); free(l->xd); free(l->tmp); free(l->mask);
        l->u = l->ubuf = l->xd = l->tmp = NULL;
        l->mask = NULL;
        l->cap_T = 0;
        return tk_fail(TK_ERR_NOMEM, "lora: out of memory for %lld tokens", (long long)n);
    }
    l->cap_T = n;
    return TK_OK;
}

/* Dropout mask row seed: a function of (seed, counter, layer, linear, row) only. */
static uint64_t row_seed(const tk_lora *l, int32_t layer, tk_linear_id which, int64_t row) {
    uint64_t h = tk_mix64(l->cfg.seed ^ 0x4c6f5241ull);
    h = tk_mix64(h ^ l->counter);
    h = tk_mix64(h ^ ((uint64_t)(uint32_t)layer << 8 | (uint64_t)which));
    return tk_mix64(h ^ (uint64_t)row);
}

/* Draws the keep-bits of n rows of K inputs into the slot (bit j of a row set = input j kept):
 * 16-bit draws d, four per hash, kept when d >= p16. */
static void draw_masks(tk_lora *l, int32_t layer, tk_linear_id which, int64_t n, int64_t K) {
    uint64_t *mk = l->mask;
    int64_t nw = l->mask_words;
    uint32_t p16 = l->p16;
    #pragma omp parallel for schedule(static) if (n * K > 65536)
    for (int64_t t = 0; t < n; t++) {
        uint64_t s = row_seed(l, layer, which, t), *row = mk + t * nw;
        memset(row, 0, (size_t)nw * sizeof(uint64_t));
        for (int64_t j = 0; j < K; j += 4) {
            uint64_t h = tk_mix64(s + (uint64_t)j);
            for (int64_t k = 0; k < 4 && j + k < K; k++)
                if ((uint32_t)((h >> (16 * k)) & 0xffff) >= p16) row[(j + k) >> 6] |= 1ull << ((j + k) & 63);
        }
    }
    l->mask_n = n;
    l->mask_layer = layer;
    l->mask_which = which;
    l->mask_counter = l->counter;
}

/* The keep-bits of n rows of one linear (K inputs) at the current counter: the slot's, drawn
 * again when it holds another linear's, an older step's or fewer rows. */
static const uint64_t *mask_of(tk_lora *l, int32_t layer, tk_linear_id which, int64_t n, int64_t K) {
    if (l->mask_n < n || l->mask_layer != layer || l->mask_which != which || l->mask_counter != l->counter)
        draw_masks(l, layer, which, n, K);
    return l->mask;
}

/* dst[j] (+)= bit j of keep ? s * src[j] : 0 over one row of K (AVX2: 8 lanes per mask byte). */
static void mask_row(float *dst, const float *src, const uint64_t *keep, int64_t K, float s, bool acc) {
    int64_t j = 0;
#ifdef __AVX2__
    const uint8_t *kb = (const uint8_t *)keep; /* little-endian: byte j/8 holds bits j..j+7 */
    const __m256i lanes = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    const __m256 vs = _mm256_set1_ps(s);
    for (; j + 8 <= K; j += 8) {
        __m256i b = _mm256_set1_epi32(kb[j >> 3]);
        __m256 m = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(b, lanes), lanes));
        __m256 v = _mm256_and_ps(m, _mm256_mul_ps(_mm256_loadu_ps(src + j), vs));
        if (acc) v = _mm256_add_ps(v, _mm256_loadu_ps(dst + j));
        _mm256_storeu_ps(dst + j, v);
    }
#endif
    for (; j < K; j++) {
        float v = (keep[j >> 6] >> (j & 63)) & 1 ? s * src[j] : 0.0f;
        dst[j] = acc ? dst[j] + v : v;
    }
}

/* xd = x ⊙ keep / (1 - p) for n rows from the stored bits (training with dropout), else x itself. */
static const float *dropped(tk_lora *l, int32_t layer, tk_linear_id which, const float *x, int64_t n, int64_t K) {
    if (!l->training || !l->p16) return x;
    const uint64_t *mk = mask_of(l, layer, which, n, K);
    int64_t nw = l->mask_words;
    float *xd = l->xd, s = 65536.0f / (float)(65536u - l->p16);
    #pragma omp parallel for schedule(static) if (n * K > 65536)
    for (int64_t t = 0; t < n; t++) mask_row(xd + t * K, x + t * K, mk + t * nw, K, s, false);
    return xd;
}

static lora_mod *find_mod(tk_lora *l, int32_t layer, tk_linear_id which) {
    if (layer < 0 || layer >= l->L || (unsigned)which >= TK_LIN_COUNT) return NULL;
    lora_mod *md = &l->mods[(size_t)layer * TK_LIN_COUNT + which];
    return md->ia >= 0 ? md : NULL;
}

static float *saved_u(tk_lora *l, int32_t layer, tk_linear_id which) {
    return l->u + ((size_t)layer * TK_LIN_COUNT + which) * (size_t)l->cap_T * (size_t)l->cfg.r;
}

/* The method's linear forward: y[n x N] += call scale * scale * (dropout(x) A^T) B^T. A training
 * forward draws dropout masks and keeps u = dropout(x) A^T for the backward (in the adapter);
 * inference uses the workspace's scratch only, so concurrent workspaces may share the adapter. */
static tk_status lora_linear_fwd(void *state, const tk_peft_call *c, int32_t layer, tk_linear_id which, const tk_tensor_ref *w,
                                 const float *x, float *y, int64_t n) {
    (void)w;
    tk_lora *l = state;
    lora_mod *md = find_mod(l, layer, which);
    if (!md || n <= 0) return TK_OK;
    const tk_param *A = &l->ps->p[md->ia], *B = &l->ps->p[md->ib];
    int64_t r = l->cfg.r, K = md->K, N = md->N;
    const float *xin = x;
    float *u, *u0 = NULL;
    if (c->training) {
        if (!l->training) return tk_fail(TK_ERR_ARG, "lora: a training forward without tk_lora_set_training");
        tk_status st = reserve(l, n);
        if (st) return st;
        if (l->p16) draw_masks(l, layer, which, n, K); /* always fresh: a recomputed forward draws the same bits */
        xin = dropped(l, layer, which, x, n, K);
        u = saved_u(l, layer, which);
        u0 = l->ubuf;
    } else {
        size_t nu;
        if (!tk_mul_ok((size_t)n, (size_t)r * 2, &nu) || !(u = tk_scratch_get(c->scratch, nu)))
            return tk_fail(TK_ERR_NOMEM, "lora: out of memory for %lld tokens", (long long)n);
        u0 = u + n * r;
    }
    tk_sgemm(false, true, n, r, K, 1.0f, xin, K, A->w, K, 0.0f, u, r);
    tk_sgemm(false, true, n, N, r, l->scale * c->scale, u, r, B->w, r, 1.0f, y, N);
    if (md->A0) { /* PiSSA/OLoRA: the residual base, W x - s B0 A0 x, on the input as the base sees it */
        tk_sgemm(false, true, n, r, K, 1.0f, x, K, md->A0, K, 0.0f, u0, r);
        tk_sgemm(false, true, n, N, r, -l->scale * c->scale, u0, r, md->B0, r, 1.0f, y, N);
    }
    return TK_OK;
}

static tk_status lora_linear_bwd(void *state, const tk_peft_call *c, int32_t layer, tk_linear_id which, const tk_tensor_ref *w,
                                 const float *x, const float *dy, float *dx, int64_t n) {
    (void)w;
    if (c->scale != 1.0f) return tk_fail(TK_ERR_UNSUPPORTED, "lora: training with a request scale other than 1");
    return tk_lora_backward_linear(state, layer, which, x, dy, dx, n);
}

static bool lora_has_linear(const void *state, int32_t layer, tk_linear_id which) {
    return find_mod((tk_lora *)state, layer, which) != NULL;
}

static void lora_set_training(void *state, bool on, uint64_t counter) { tk_lora_set_training(state, on, counter); }

/* W[N x K] += scale * lora scale * B[N x r] A[r x K] (q/k rows in the model's order, as W's). */
static tk_status lora_merge_linear(const void *state, int32_t layer, tk_linear_id which, float *W, int64_t N, int64_t K, float scale) {
    tk_lora *l = (tk_lora *)state;
    lora_mod *md = find_mod(l, layer, which);
    if (!md) return TK_OK;
    if (md->K != K || md->N != N) return tk_fail(TK_ERR_ARG, "lora merge: layer %d %s is %lld x %lld, the weight %lld x %lld", layer,
                                                 tk_linear_name(which), (long long)md->N, (long long)md->K, (long long)N, (long long)K);
    const tk_param *A = &l->ps->p[md->ia], *B = &l->ps->p[md->ib];
    int64_t r = l->cfg.r;
    tk_sgemm(false, false, N, K, r, l->scale * scale, B->w, r, A->w, K, 1.0f, W, K);
    if (md->A0) tk_sgemm(false, false, N, K, r, -l->scale * scale, md->B0, r, md->A0, K, 1.0f, W, K);
    return TK_OK;
}

static tk_status lora_save_peft(void *state, const tk_model *m, const char *dir, const char *base_model) {
    return tk_adapter_save_peft(state, m, dir, base_model);
}
static tk_status lora_save_gguf(void *state, const tk_model *m, const char *path) { return tk_adapter_save_gguf(state, m, path); }

static const tk_peft_method k_lora_method = {
    .name = "lora",
    .has_linear = lora_has_linear,
    .linear_fwd = lora_linear_fwd,
    .linear_bwd = lora_linear_bwd,
    .set_training = lora_set_training,
    .merge_linear = lora_merge_linear,
    .save_peft = lora_save_peft,
    .save_gguf = lora_save_gguf,
};

const tk_peft *tk_lora_peft(tk_lora *l) { return &l->peft; }
tk_lora *tk_lora_of(const tk_peft *p) { return p && p->method == &k_lora_method ? p->state : NULL; }

void tk_lora_set_training(tk_lora *l, bool on, uint64_t counter) {
    l->training = on;
    l->counter = counter;
}

tk_status tk_lora_backward_linear(tk_lora *l, int32_t layer, tk_linear_id which, const float *x, const float *dy,
                                  float *dx, int64_t n) {
    lora_mod *md = find_mod(l, layer, which);
    if (!md || n <= 0) return TK_OK;
    if (!l->training || n > l->cap_T)
        return tk_fail(TK_ERR_ARG, "lora backward: no training forward of %lld tokens to differentiate", (long long)n);
    tk_param *A = &l->ps->p[md->ia], *B = &l->ps->p[md->ib];
    int64_t r = l->cfg.r, K = md->K, N = md->N;
    const float *u = saved_u(l, layer, which);
    float *v = l->ubuf; /* v = dy B [n x r] */
    tk_sgemm(false, false, n, r, N, 1.0f, dy, N, B->w, r, 0.0f, v, r);
    tk_sgemm(true, false, N, r, n, l->scale, dy, N, u, r, 1.0f, B->g, r);
    const float *xin = dropped(l, layer, which, x, n, K);
    tk_sgemm(true, false, r, K, n, l->scale, v, r, xin, K, 1.0f, A->g, K);
    if (!dx) return TK_OK;
    if (md->A0) { /* the residual's input gradient: dx -= s (dy B0) A0 (no dropout on the base's input) */
        float *v0 = l->tmp;
        tk_sgemm(false, false, n, r, N, 1.0f, dy, N, md->B0, r, 0.0f, v0, r);
        tk_sgemm(false, false, n, K, r, -l->scale, v0, r, md->A0, K, 1.0f, dx, K);
    }
    if (!l->p16) {
        tk_sgemm(false, false, n, K, r, l->scale, v, r, A->w, K, 1.0f, dx, K);
        return TK_OK;
    }
    /* with dropout the input gradient is masked: dx += keep / (1 - p) ⊙ (scale * v A) */
    float *tmp = l->tmp;
    tk_sgemm(false, false, n, K, r, l->scale, v, r, A->w, K, 0.0f, tmp, K);
    const uint64_t *mk = mask_of(l, layer, which, n, K);
    int64_t nw = l->mask_words;
    float s = 65536.0f / (float)(65536u - l->p16);
    #pragma omp parallel for schedule(static) if (n * K > 65536)
    for (int64_t t = 0; t < n; t++) mask_row(dx + t * K, tmp + t * K, mk + t * nw, K, s, true);
    return TK_OK;
}

const float *tk_lora_dropped_input(tk_lora *l, int32_t layer, tk_linear_id which, const float *x, int64_t n) {
    lora_mod *md = find_mod(l, layer, which);
    if (!md || n > l->cap_T) return x;
    return dropped(l, layer, which, x, n, md->K);
}

void tk_lora_dropout_add(tk_lora *l, int32_t layer, tk_linear_id which, float *dx, const float *g, int64_t n) {
    lora_mod *md = find_mod(l, layer, which);
    if (!md) return;
    int64_t K = md->K;
    if (!l->training || !l->p16 || n > l->cap_T) {
        for (int64_t i = 0; i < n * K; i++) dx[i] += g[i];
        return;
    }
    const uint64_t *mk = mask_of(l, layer, which, n, K);
    int64_t nw = l->mask_words;
    float s = 65536.0f / (float)(65536u - l->p16);
    #pragma omp parallel for schedule(static) if (n * K > 65536)
    for (int64_t t = 0; t < n; t++) mask_row(dx + t * K, g + t * K, mk + t * nw, K, s, true);
}

size_t tk_lora_state_bytes(const tk_lora *l) {
    size_t n = sizeof *l + (size_t)l->L * TK_LIN_COUNT * sizeof *l->mods;
    for (int64_t i = 0; i < (int64_t)l->L * TK_LIN_COUNT; i++)
        if (l->mods[i].A0) n += (size_t)(l->cfg.r * (l->mods[i].K + l->mods[i].N)) * sizeof(float);
    if (l->cap_T) {
        size_t r = (size_t)l->cfg.r, T = (size_t)l->cap_T, K = (size_t)l->max_K;
        n += (T * r * (size_t)l->L * TK_LIN_COUNT + T * r + 2 * T * K) * sizeof(float);
        if (l->mask) n += T * (size_t)l->mask_words * sizeof(uint64_t);
    }
    return n;
}

const tk_lora_config *tk_lora_get_config(const tk_lora *l) { return &l->cfg; }
float tk_lora_scale(const tk_lora *l) { return l->scale; }
bool tk_lora_qk_permuted(const tk_lora *l) { return l->qk_permuted; }

bool tk_lora_module(tk_lora *l, int32_t layer, tk_linear_id which, tk_param **A, tk_param **B) {
    lora_mod *md = find_mod(l, layer, which);
    if (!md) return false;
    if (A) *A = &l->ps->p[md->ia];
    if (B) *B = &l->ps->p[md->ib];
    return true;
}

bool tk_lora_init_pair(const tk_lora *l, int32_t layer, tk_linear_id which, const float **A0, const float **B0) {
    lora_mod *md = find_mod((tk_lora *)l, layer, which);
    if (!md || !md->A0) return false;
    if (A0) *A0 = md->A0;
    if (B0) *B0 = md->B0;
    return true;
}
