/* The Llama-family forward: embedding -> L x [RMSNorm, q/k/v (+bias, +adapter), RoPE,
 * causal GQA attention with packing/padding masks, o-proj, residual, RMSNorm, SwiGLU
 * MLP, residual] -> RMSNorm -> LM head, for batches [B x T] flattened, with no KV cache,
 * one (a session) or one per row (batched decode, tk_llama_forward_kvs). fp32 activations;
 * all buffers live in tk_acts, allocated once per shape
 * (the layer loop itself allocates nothing; some ops keep small per-call scratch).
 *
 * Quantized weights: never expanded at load. Every product goes through tk_matmul_ex on
 * the weight in its stored dtype (mmap'd, not copied): for 8+ rows (prefill, training)
 * panels of weight rows are dequantized per block into an L2-sized scratch and fed to
 * sgemm; for fewer rows (decode) fused kernels dequantize each block in registers and
 * dot it with f32 activations (TK_MATMUL_EXACT, the default everywhere), or, when a
 * session opts in (tk_session_set_exact(s, false), `generate --fast`), with activations
 * quantized to 8 bits per 32-block as llama.cpp does.
 *
 * SmolLM2-135M-Instruct Q4_1 (measured 2026-11-23 on the shared 2-core dev machine while
 * other jobs kept 8-15 threads runnable, so wall-clock rates are understated and CPU time
 * per token is the stable figure): model memory 96.6 MB mapped weights + 2.1 MB owned
 * (RoPE tables); peak RSS of `takumi generate` with a 375-token prompt 141 MB (KV cache
 * 46 KB/token, grown by doubling). One thread, CPU time: prefill ~255 tok/s (375-token
 * prompt), decode ~40 tok/s with f32 activations, ~46 tok/s with int8 activations; decode
 * time is 82% the fused matmul kernels, prefill 84% sgemm. Two threads (`generate
 * --threads 2 --verbose`, load ~8): prefill 126 tok/s, decode 14 tok/s with
 * OMP_WAIT_POLICY=passive, but 23 / 0.2 tok/s with libgomp's default active spinning: on
 * an oversubscribed machine the spin-waits of the many small parallel regions of decode
 * starve the thread that still has work. */
#include "model/llama.h"
#include "backend/backend.h"
#include "core/core.h"
#include <stdio.h>
#include <math.h>

#define ALIGN_FLOATS 16 /* 64-byte alignment of every carved buffer */


/* Adds n floats of size elements each to *total, overflow-checked. */
static bool add_sz(size_t *total, size_t a, size_t b) {
    size_t n;
    if (!tk_mul_ok(a, b, &n)) return false;
    return tk_add_ok(*total, tk_round_up(n, ALIGN_FLOATS), total);
}

tk_status tk_acts_init(tk_acts *a, const tk_model *m, int32_t rows, int32_t cols, int flags) {
    memset(a, 0, sizeof *a);
    /* recompute: only the layer inputs x are kept per layer; one slot of everything else */
    bool recompute = (flags & TK_ACTS_RECOMPUTE) != 0;
    bool keep = (flags & TK_FWD_KEEP_ACTS) != 0 || recompute, keep_att = keep && !recompute && (flags & TK_FWD_KEEP_ATT_PROBS);
    if (rows <= 0 || cols <= 0 || (int64_t)rows * cols > (1 << 28))
        return tk_fail(TK_ERR_ARG, "forward workspace: %d x %d tokens is not a usable shape", rows, cols);
    const tk_model_config *c = &m->cfg;
    size_t T = (size_t)rows * (size_t)cols, C = c->dim, QD = (size_t)c->n_heads * c->head_dim,
           KD = (size_t)c->n_kv_heads * c->head_dim, F = c->hidden_dim, L = c->n_layers, nl = keep && !recompute ? L : 1;
    a->m = m;
    a->max_rows = rows;
    a->max_cols = cols;
    a->max_T = (int64_t)T;
    a->keep = keep;
    /* Sizes in floats; the att probabilities only when kept (backward). */
    size_t s_att = 0;
    bool ok = true;
    if (keep_att) ok = tk_mul_ok((size_t)rows * c->n_heads, (size_t)cols * (size_t)cols, &s_att);
    size_t total = 0;
    struct { float **p; size_t n, per; } plan[] = {
        {&a->x, keep ? L + 1 : 1, T * C}, {&a->xmid, nl, T * C}, {&a->xn1, nl, T * C}, {&a->rstd1, nl, T},
        {&a->q, nl, T * QD}, {&a->k, nl, T * KD}, {&a->v, nl, T * KD}, {&a->att, keep_att ? L : 0, s_att},
        {&a->attn, nl, T * QD}, {&a->xn2, nl, T * C}, {&a->rstd2, nl, T}, {&a->gate, nl, T * F},
        {&a->up, nl, T * F}, {&a->ffh, nl, T * F}, {&a->hn, 1, T * C}, {&a->rstdf, 1, T},
        {&a->tmp, 1, T * C}, {&a->gather, 1, T * C},
        {&a->qr, c->qk_norm ? nl : 0, T * QD}, {&a->kr, c->qk_norm ? nl : 0, T * KD},
        {&a->rstdq, c->qk_norm ? nl : 0, T * c->n_heads}, {&a->rstdk, c->qk_norm ? nl : 0, T * c->n_kv_heads},
        {&a->ao, c->sandwich_norm ? nl : 0, T * C}, {&a->fo, c->sandwich_norm ? nl : 0, T * C},
        {&a->rstdpa, c->sandwich_norm ? nl : 0, T}, {&a->rstdpf, c->sandwich_norm ? nl : 0, T},
        {&a->fused, c->fused_qkv || c->fused_gate_up ? 1 : 0, T * (QD + 2 * KD > 2 * F ? QD + 2 * KD : 2 * F)},
    };
    size_t np = sizeof plan / sizeof plan[0];
    for (size_t i = 0; i < np && ok; i++) {
        size_t n;
        ok = tk_mul_ok(plan[i].n, plan[i].per, &n) && add_sz(&total, n, 1);
    }
    size_t bytes;
    if (!ok || !tk_mul_ok(total, sizeof(float), &bytes))
        return tk_fail(TK_ERR_NOMEM, "forward workspace for %d x %d tokens overflows", rows, cols);
    /* One allocation carved into named buffers (the first pointer owns it). */
    float *base = NULL;
    if (posix_memalign((void **)&base, 64, bytes ? bytes : 64) != 0)
        return tk_fail(TK_ERR_NOMEM, "out of memory for the forward workspace (%zu MB)", bytes >> 20);
    size_t off = 0;
    for (size_t i = 0; i < np; i++) {
        size_t n = plan[i].n * plan[i].per;
        *plan[i].p = n ? base + off : NULL;
        off += tk_round_up(n, ALIGN_FLOATS);
    }
    a->pos = tk_malloc(T * sizeof(int32_t));
    a->seg = tk_malloc(T * sizeof(int32_t));
    a->s_x = (int64_t)(T * C);
    a->s_c = nl > 1 ? (int64_t)(T * C) : 0; /* stride 0: every layer uses the one slot */
    a->s_h = nl > 1 ? (int64_t)(T * QD) : 0;
    a->s_kv = nl > 1 ? (int64_t)(T * KD) : 0;
    a->s_f = nl > 1 ? (int64_t)(T * F) : 0;
    a->s_t = nl > 1 ? (int64_t)T : 0;
    a->s_att = (int64_t)s_att;
    a->base = base;
    a->bytes = bytes;
    if (!a->pos || !a->seg) { tk_acts_free(a); return TK_ERR_NOMEM; }
    return TK_OK;
}

void tk_acts_free(tk_acts *a) {
    tk_vtoks_free(&a->vt);
    tk_scratch_free(&a->scratch);
    tk_scratch_free(&a->pfx);
    free(a->base);
    free(a->pos);
    free(a->seg);
    memset(a, 0, sizeof *a);
}

/* With TK_MATMUL_ROWWISE the adapters run one token row at a time (rows of `per` tokens), so a row's
 * result does not depend on the batch (their products are sgemms whose rounding may depend on M). */
static int64_t adapter_rows(const tk_acts *a, int64_t T) { return a->mm_flags & TK_MATMUL_ROWWISE ? T : 1; }

/* Adapters ads[0..n) on linear `which` of `layer` for rows [r0, r1) of `per` tokens (output y of input x). */
static tk_status adapt_linear_rows(const tk_acts *a, const tk_adapter_use *ads, int n, int32_t layer, tk_linear_id which,
                                   const tk_tensor_ref *w, const float *x, float *y, int64_t r0, int64_t r1, int64_t per) {
    const int64_t K = w->ne[0], N = w->ne[1];
    for (int i = 0; i < n; i++) {
        const tk_peft *p = ads[i].peft;
        const tk_peft_method *md = p->method;
        if (!md->linear_fwd || (md->has_linear && !md->has_linear(p->state, layer, which))) continue;
        tk_peft_call c = {.scale = ads[i].scale, .training = a->training, .scratch = (tk_scratch *)&a->scratch};
        for (int64_t r = r0; r < r1; r++) {
            tk_status st = md->linear_fwd(p->state, &c, layer, which, w, x + r * per * K, y + r * per * N, per);
            if (st) return tk_fail_ctx(st, "adapter %d (%s) on layer %d %s", i, md->name, layer, tk_linear_name(which));
        }
    }
    return TK_OK;
}

/* The workspace's adapters (or each row's, a->row_ads) on linear `which` of `layer` (output y[T x N] of input x). */
static tk_status adapt_linear(const tk_acts *a, int32_t layer, tk_linear_id which, const tk_tensor_ref *w, const float *x,
                              float *y, int64_t T) {
    if (!a->row_ads) {
        const int64_t rows = adapter_rows(a, T);
        return adapt_linear_rows(a, a->ads, a->n_ads, layer, which, w, x, y, 0, rows, T / rows);
    }
    for (int64_t r = 0; r < T; r++) {
        tk_status st = adapt_linear_rows(a, a->row_ads[r].ads, a->row_ads[r].n, layer, which, w, x, y, r, r + 1, 1);
        if (st) return tk_fail_ctx(st, "decode row %lld", (long long)r);
    }
    return TK_OK;
}

/* Adapters ads[0..n) on block output `site` of `layer` for rows [r0, r1) of `per` tokens (h in place). */
static tk_status adapt_block_rows(const tk_acts *a, const tk_adapter_use *ads, int n, int32_t layer, tk_block_site site,
                                  float *h, int64_t r0, int64_t r1, int64_t per, int64_t C) {
    for (int i = 0; i < n; i++) {
        const tk_peft *p = ads[i].peft;
        const tk_peft_method *md = p->method;
        if (!md->block_fwd || !md->has_block || !md->has_block(p->state, layer, site)) continue;
        tk_peft_call c = {.scale = ads[i].scale, .training = a->training, .scratch = (tk_scratch *)&a->scratch};
        for (int64_t r = r0; r < r1; r++) {
            tk_status st = md->block_fwd(p->state, &c, layer, site, h + r * per * C, per);
            if (st) return tk_fail_ctx(st, "adapter %d (%s) on layer %d %s block", i, md->name, layer, tk_block_site_name(site));
        }
    }
    return TK_OK;
}

/* The workspace's adapters (or each row's) on block output `site` of `layer` (h[T x C], in place). */
static tk_status adapt_block(const tk_acts *a, int32_t layer, tk_block_site site, float *h, int64_t T, int64_t C) {
    if (!a->row_ads) {
        const int64_t rows = adapter_rows(a, T);
        return adapt_block_rows(a, a->ads, a->n_ads, layer, site, h, 0, rows, T / rows, C);
    }
    for (int64_t r = 0; r < T; r++) {
        tk_status st = adapt_block_rows(a, a->row_ads[r].ads, a->row_ads[r].n, layer, site, h, r, r + 1, 1, C);
        if (st) return tk_fail_ctx(st, "decode row %lld", (long long)r);
    }
    return TK_OK;
}

tk_status tk_acts_prefix(tk_acts *a, int32_t layer, int64_t kvd, const float **pk, const float **pv, int64_t *P) {
    *pk = *pv = NULL;
    *P = 0;
    int n_with = 0;
    int64_t total = 0;
    for (int pass = 0; pass < 2; pass++) { /* pass 0: sizes (and the one adapter's memory); pass 1: concatenate */
        int64_t off = 0;
        for (int i = 0; i <= a->n_ads; i++) { /* i == n_ads: the virtual tokens (tk_vtoks) */
            const float *k = NULL, *v = NULL;
            int64_t n;
            if (i == a->n_ads) n = tk_vtoks_prefix(a, layer, &k, &v);
            else {
                const tk_peft *p = a->ads[i].peft;
                const tk_peft_method *md = p->method;
                if (!md->attn_prefix) continue;
                tk_peft_call c = {.scale = a->ads[i].scale, .training = a->training, .scratch = &a->scratch};
                n = md->attn_prefix(p->state, &c, layer, &k, &v);
                if (n < 0) return tk_fail_ctx(TK_ERR_ARG, "adapter %d (%s) on layer %d attention prefix", i, md->name, layer);
                if (n > 0 && (!k || !v))
                    return tk_fail(TK_ERR_ARG, "adapter %d (%s) on layer %d: a prefix of %lld keys without keys/values", i,
                                   md->name, layer, (long long)n);
            }
            if (n == 0) continue;
            if (pass == 0) {
                n_with++;
                total += n;
                *pk = k;
                *pv = v;
                continue;
            }
            float *buf = a->pfx.p;
            memcpy(buf + off * kvd, k, (size_t)(n * kvd) * sizeof(float));
            memcpy(buf + (total + off) * kvd, v, (size_t)(n * kvd) * sizeof(float));
            off += n;
        }
        if (pass == 0 && n_with <= 1) break;
        if (pass == 0 && !tk_scratch_get(&a->pfx, (size_t)(2 * total * kvd)))
            return tk_fail(TK_ERR_NOMEM, "out of memory for an attention prefix of %lld keys", (long long)total);
        if (pass == 1 && off != total)
            return tk_fail(TK_ERR_ARG, "layer %d: the adapters' attention prefixes changed between two calls", layer);
    }
    if (n_with > 1) {
        *pk = a->pfx.p;
        *pv = a->pfx.p + total * kvd;
    }
    *P = total;
    return TK_OK;
}

/* y = x W^T (+ b), then the workspace's adapters (which see exactly the linear's output). */
static tk_status linear(tk_model *m, const tk_acts *a, int32_t layer, tk_linear_id which, float *y, const float *x,
                        const tk_tensor_ref *w, const tk_tensor_ref *b, int64_t T) {
    (void)m;
    tk_status st = tk_matmul_ex(y, x, w, T, false, a->mm_flags);
    if (st) return st;
    if (b && b->data) {
        const float *bv = b->data;
        int64_t N = w->ne[1];
        for (int64_t t = 0; t < T; t++)
            for (int64_t n = 0; n < N; n++) y[t * N + n] += bv[n];
    }
    return adapt_linear(a, layer, which, w, x, y, T);
}

/* Several linears on the same input (q/k/v, gate/up): the products run as one group
 * (tk_matmul_multi: one parallel region in decode), then each linear's bias and adapters
 * in order. Same results as separate linear() calls. */
static tk_status linear_group(tk_model *m, const tk_acts *a, int32_t layer, int n, const tk_linear_id *which, float *const *y,
                              const float *x, const tk_tensor_ref *const *w, const tk_tensor_ref *const *b, int64_t T) {
    (void)m;
    tk_status st = tk_matmul_multi(y, x, w, n, T, a->mm_flags);
    if (st) return st;
    for (int i = 0; i < n; i++) {
        if (b[i] && b[i]->data) {
            const float *bv = b[i]->data;
            int64_t N = w[i]->ne[1];
            for (int64_t t = 0; t < T; t++)
                for (int64_t j = 0; j < N; j++) y[i][t * N + j] += bv[j];
        }
        if ((st = adapt_linear(a, layer, which[i], w[i], x, y[i], T))) return st;
    }
    return TK_OK;
}

static tk_status check_adapters(const tk_adapter_use *ads, int n) {
    if (n < 0 || n > TK_MAX_ADAPTERS || (n && !ads))
        return tk_fail(TK_ERR_ARG, "adapters: %d adapters (at most %d at once)", n, TK_MAX_ADAPTERS);
    for (int i = 0; i < n; i++)
        if (!ads[i].peft || !ads[i].peft->method || !isfinite(ads[i].scale))
            return tk_fail(TK_ERR_ARG, "adapters: entry %d has no method or a non-finite scale", i);
    return TK_OK;
}

tk_status tk_acts_set_adapters(tk_acts *a, const tk_adapter_use *ads, int n) {
    tk_status st = check_adapters(ads, n);
    if (st) return st;
    for (int i = 0; i < n; i++) a->ads[i] = ads[i];
    a->n_ads = n;
    a->row_ads = NULL;
    a->n_row_ads = 0;
    return tk_vtoks_setup(a);
}

bool tk_adapters_row_batchable(const tk_adapter_use *ads, int n) {
    for (int i = 0; i < n; i++)
        if (ads[i].peft && ads[i].peft->method && (ads[i].peft->method->attn_prefix || ads[i].peft->method->embed_prefix)) return false;
    return true;
}

tk_status tk_acts_set_row_adapters(tk_acts *a, const tk_row_adapters *rows, int32_t n) {
    if (n < 0 || n > a->max_rows || (n && !rows))
        return tk_fail(TK_ERR_ARG, "row adapters: %d rows for a workspace of %d", n, a->max_rows);
    if (n && !(a->mm_flags & TK_MATMUL_ROWWISE))
        return tk_fail(TK_ERR_ARG, "row adapters: the workspace does not run its rows one by one (TK_MATMUL_ROWWISE)");
    for (int32_t r = 0; r < n; r++) {
        tk_status st = check_adapters(rows[r].ads, rows[r].n);
        if (st) return tk_fail_ctx(st, "row %d", r);
        if (!tk_adapters_row_batchable(rows[r].ads, rows[r].n))
            return tk_fail(TK_ERR_ARG, "row adapters: row %d has an adapter with an attention or embedding prefix (it changes attention: run it alone)", r);
    }
    tk_status st = tk_acts_set_adapters(a, NULL, 0);
    if (st) return st;
    a->row_ads = n ? rows : NULL;
    a->n_row_ads = n;
    return TK_OK;
}

bool tk_acts_same_adapters(const tk_acts *a, const tk_adapter_use *ads, int n) {
    if (a->row_ads || n != a->n_ads) return false;
    for (int i = 0; i < n; i++)
        if (ads[i].peft != a->ads[i].peft || ads[i].scale != a->ads[i].scale) return false;
    return true;
}

static void add_rows(float *out, const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

/* Copies rows of a fused product y[T x (n0 + n1 + n2)] into separate buffers (n2 may be 0). */
static void split_rows(const float *y, int64_t T, float *o0, int64_t n0, float *o1, int64_t n1, float *o2, int64_t n2) {
    int64_t N = n0 + n1 + n2;
    #pragma omp parallel for schedule(static) if (T * N > 65536)
    for (int64_t t = 0; t < T; t++) {
        memcpy(o0 + t * n0, y + t * N, (size_t)n0 * sizeof(float));
        memcpy(o1 + t * n1, y + t * N + n0, (size_t)n1 * sizeof(float));
        if (n2) memcpy(o2 + t * n2, y + t * N + n0 + n1, (size_t)n2 * sizeof(float));
    }
}

/* Attention of row r (Tc queries at attn/q + r * Tc * H*D, positions pos + r * Tc) over layer l
 * of its cache kv, whose first kv->n + Tc slots hold the keys/values; head sizes, scale, window,
 * softcap and prefix from base. */
static tk_status kv_attention(float *attn, const float *q, const tk_kv_cache *kv, int32_t l, const int32_t *pos, int64_t r,
                              int64_t Tc, const tk_attn_args *base) {
    const int64_t KD = kv->kvd, QD = base->H * base->D;
    tk_attn_args aa = *base;
    aa.Tq = Tc;
    aa.S = kv->n + Tc;
    aa.pos_q = pos + r * Tc;
    aa.pos_k = kv->pos;
    return tk_attention_forward(attn + r * Tc * QD, NULL, q + r * Tc * QD, kv->k + (int64_t)l * kv->cap * KD,
                                kv->v + (int64_t)l * kv->cap * KD, &aa);
}

/* Layers [l0, l1) of the forward: x[l0] -> x[l1] (a->x slots), with positions pos and
 * segments seg (NULL = one per row) already set up by tk_llama_forward. With kvs, row r
 * continues the sequence of cache kvs[r]. The block is the one described in
 * src/model/arch.h; cfg's feature flags switch its optional parts. */
static tk_status run_layers(tk_model *m, tk_acts *a, const tk_batch *b, tk_kv_cache *const *kvs, const int32_t *pos,
                            const int32_t *seg, int32_t l0, int32_t l1) {
    const tk_model_config *c = &m->cfg;
    const tk_weights *w = &m->w;
    const int64_t B = b->n_rows, Tc = b->n_cols, T = B * Tc;
    const int64_t C = c->dim, H = c->n_heads, KH = c->n_kv_heads, D = c->head_dim, F = c->hidden_dim;
    const int64_t QD = H * D, KD = KH * D;
    tk_status st;
    const float scale = c->attn_scale > 0 ? c->attn_scale : 1.0f / sqrtf((float)D);
    for (int32_t l = l0; l < l1; l++) {
        const tk_layer_weights *y = &w->layers[l];
        float *xin = TK_ACT(a, x, l, s_x), *xout = TK_ACT(a, x, l + 1, s_x);
        float *xmid = TK_ACT(a, xmid, l, s_c), *xn1 = TK_ACT(a, xn1, l, s_c), *xn2 = TK_ACT(a, xn2, l, s_c);
        float *q = TK_ACT(a, q, l, s_h), *k = TK_ACT(a, k, l, s_kv), *v = TK_ACT(a, v, l, s_kv);
        float *attn = TK_ACT(a, attn, l, s_h);
        float *gate = TK_ACT(a, gate, l, s_f), *up = TK_ACT(a, up, l, s_f), *ffh = TK_ACT(a, ffh, l, s_f);
        /* with per-head q/k norms the projections land in qr/kr first */
        float *qp = c->qk_norm ? TK_ACT(a, qr, l, s_h) : q, *kp = c->qk_norm ? TK_ACT(a, kr, l, s_kv) : k;
        bool sliding = tk_layer_sliding(c, l);
        const tk_rope *rope = sliding && m->rope_local.half ? &m->rope_local : &m->rope;

        /* attention block */
        tk_rmsnorm_forward(xn1, TK_ACT(a, rstd1, l, s_t), xin, y->attn_norm.data, T, C, c->rms_eps);
        if (c->fused_qkv) {
            if ((st = linear(m, a, l, TK_LIN_Q, a->fused, xn1, &y->wq, NULL, T))) return st;
            split_rows(a->fused, T, qp, QD, kp, KD, v, KD);
        } else {
            const tk_linear_id ids[3] = {TK_LIN_Q, TK_LIN_K, TK_LIN_V};
            float *const ys[3] = {qp, kp, v};
            const tk_tensor_ref *const ws[3] = {&y->wq, &y->wk, &y->wv}, *const bs[3] = {&y->bq, &y->bk, &y->bv};
            if ((st = linear_group(m, a, l, 3, ids, ys, xn1, ws, bs, T))) return st;
        }
        if (c->qk_norm) {
            tk_rmsnorm_forward(q, a->rstdq + (int64_t)l * a->s_t * H, qp, y->q_norm.data, T * H, D, c->rms_eps);
            tk_rmsnorm_forward(k, a->rstdk + (int64_t)l * a->s_t * KH, kp, y->k_norm.data, T * KH, D, c->rms_eps);
        }
        tk_rope_forward(q, pos, T, H, D, rope);
        tk_rope_forward(k, pos, T, KH, D, rope);
        int32_t window = sliding ? c->sliding_window : 0;
        const float *pk, *pv;
        int64_t np;
        if ((st = tk_acts_prefix(a, l, KD, &pk, &pv, &np))) return st;
        const tk_attn_args aa0 = {.H = H, .KH = KH, .D = D, .scale = scale, .window = window, .softcap = c->attn_softcap,
                                  .pk = pk, .pv = pv, .P = np};
        if (kvs) {
            /* each row's keys/values join its cache; its attention sees that cache + its chunk. Several
             * rows (batched decode) run in parallel, each attention single-threaded inside (the same
             * results: its work is split the same way whichever thread runs it). */
            int64_t bad = -1;
            if (B == 1) {   /* one sequence (sessions, prefill): its attention uses every thread, no enclosing region */
                tk_kv_cache *kv = kvs[0];
                memcpy(kv->k + (int64_t)l * kv->cap * KD + (int64_t)kv->n * KD, k, (size_t)(Tc * KD) * sizeof(float));
                memcpy(kv->v + (int64_t)l * kv->cap * KD + (int64_t)kv->n * KD, v, (size_t)(Tc * KD) * sizeof(float));
                if ((st = kv_attention(attn, q, kv, l, pos, 0, Tc, &aa0))) return st;
            } else
            #pragma omp parallel for schedule(dynamic, 1)
            for (int64_t r = 0; r < B; r++) {
                tk_kv_cache *kv = kvs[r];
                float *kc = kv->k + (int64_t)l * kv->cap * KD, *vc = kv->v + (int64_t)l * kv->cap * KD;
                memcpy(kc + (int64_t)kv->n * KD, k + r * Tc * KD, (size_t)(Tc * KD) * sizeof(float));
                memcpy(vc + (int64_t)kv->n * KD, v + r * Tc * KD, (size_t)(Tc * KD) * sizeof(float));
                if (kv_attention(attn, q, kv, l, pos, r, Tc, &aa0)) {
                    #pragma omp atomic write
                    bad = r;
                }
            }
            /* a failed row again on this thread, for its message */
            if (bad >= 0 && (st = kv_attention(attn, q, kvs[bad], l, pos, bad, Tc, &aa0))) return st;
        } else {
            /* kept probabilities are [H x Tc x Tc] per row: with a prefix the backward recomputes them */
            float *att = a->att && np == 0 ? a->att + (int64_t)l * a->s_att : NULL;
            for (int64_t r = 0; r < B; r++) {
                const int32_t *pr = pos + r * Tc, *sr = seg ? seg + r * Tc : NULL;
                tk_attn_args aa = {.Tq = Tc, .S = Tc, .H = H, .KH = KH, .D = D,
                                   .pos_q = pr, .pos_k = pr, .seg_q = sr, .seg_k = sr, .scale = scale, .window = window, .softcap = c->attn_softcap,
                                   .pk = pk, .pv = pv, .P = np};
                if ((st = tk_attention_forward(attn + r * Tc * QD, att ? att + r * H * Tc * Tc : NULL,
                                               q + r * Tc * QD, k + r * Tc * KD, v + r * Tc * KD, &aa)))
                    return st;
            }
        }
        if (c->sandwich_norm) {
            float *ao = TK_ACT(a, ao, l, s_c);
            if ((st = linear(m, a, l, TK_LIN_O, ao, attn, &y->wo, NULL, T))) return st;
            tk_rmsnorm_forward(a->tmp, TK_ACT(a, rstdpa, l, s_t), ao, y->post_attn_norm.data, T, C, c->rms_eps);
        } else if ((st = linear(m, a, l, TK_LIN_O, a->tmp, attn, &y->wo, NULL, T))) return st;
        if ((st = adapt_block(a, l, TK_BLOCK_ATTN, a->tmp, T, C))) return st;
        add_rows(xmid, xin, a->tmp, T * C);

        /* MLP block */
        tk_rmsnorm_forward(xn2, TK_ACT(a, rstd2, l, s_t), xmid, y->ffn_norm.data, T, C, c->rms_eps);
        if (c->fused_gate_up) {
            if ((st = linear(m, a, l, TK_LIN_UP, a->fused, xn2, &y->w_up, NULL, T))) return st;
            split_rows(a->fused, T, gate, F, up, F, NULL, 0);
        } else {
            const tk_linear_id ids[2] = {TK_LIN_GATE, TK_LIN_UP};
            float *const ys[2] = {gate, up};
            const tk_tensor_ref *const ws[2] = {&y->w_gate, &y->w_up}, *const bs[2] = {NULL, NULL};
            if ((st = linear_group(m, a, l, 2, ids, ys, xn2, ws, bs, T))) return st;
        }
        if (c->act == TK_ACT_GELU_TANH) tk_geglu_forward(ffh, gate, up, T * F);
        else tk_swiglu_forward(ffh, gate, up, T * F);
        if (c->sandwich_norm) {
            float *fo = TK_ACT(a, fo, l, s_c);
            if ((st = linear(m, a, l, TK_LIN_DOWN, fo, ffh, &y->w_down, NULL, T))) return st;
            tk_rmsnorm_forward(a->tmp, TK_ACT(a, rstdpf, l, s_t), fo, y->post_ffn_norm.data, T, C, c->rms_eps);
        } else if ((st = linear(m, a, l, TK_LIN_DOWN, a->tmp, ffh, &y->w_down, NULL, T))) return st;
        if ((st = adapt_block(a, l, TK_BLOCK_MLP, a->tmp, T, C))) return st;
        add_rows(xout, xmid, a->tmp, T * C);
        if ((st = adapt_block(a, l, TK_BLOCK_LAYER, xout, T, C))) return st;
    }
    return TK_OK;
}

/* The forward; kvs NULL (no cache) or one cache per row of b. */
static tk_status forward(tk_model *m, tk_acts *a, const tk_batch *b, tk_kv_cache *const *kvs,
                         const int64_t *out_idx, int64_t n_out, float *logits) {
    const tk_model_config *c = &m->cfg;
    const tk_weights *w = &m->w;
    if (!b || !b->ids || b->n_rows <= 0 || b->n_cols <= 0)
        return tk_fail(TK_ERR_ARG, "forward: empty batch");
    if (b->n_rows > a->max_rows || b->n_cols > a->max_cols)
        return tk_fail(TK_ERR_ARG, "forward: batch %d x %d exceeds the workspace %d x %d",
                       b->n_rows, b->n_cols, a->max_rows, a->max_cols);
    const int64_t B = b->n_rows, Tc = b->n_cols, T = B * Tc, C = c->dim;
    if (a->row_ads && (Tc != 1 || B != a->n_row_ads))
        return tk_fail(TK_ERR_ARG, "forward: per-row adapters for %d rows of one token, the batch is %d x %d", a->n_row_ads,
                       b->n_rows, b->n_cols);
    if (kvs) {
        if (b->seg) return tk_fail(TK_ERR_ARG, "forward: segments are not supported with a KV cache");
        for (int64_t r = 0; r < B; r++) {
            const tk_kv_cache *kv = kvs[r];
            if (!kv) return tk_fail(TK_ERR_ARG, "forward: row %lld has no KV cache", (long long)r);
            if (kv->n + Tc > kv->cap)
                return tk_fail(TK_ERR_RANGE, "forward: KV cache of row %lld full (%d + %lld > %d)", (long long)r, kv->n, (long long)Tc, kv->cap);
            for (int64_t j = 0; j < r; j++)
                if (kvs[j] == kv) return tk_fail(TK_ERR_ARG, "forward: rows %lld and %lld share one KV cache", (long long)j, (long long)r);
        }
    }
    if (n_out < 0 || (n_out > 0 && !logits) || (!out_idx && n_out != 0 && n_out != T))
        return tk_fail(TK_ERR_ARG, "forward: bad logits request (%lld rows)", (long long)n_out);
    if (out_idx)
        for (int64_t i = 0; i < n_out; i++)
            if (out_idx[i] < 0 || out_idx[i] >= T) return tk_fail(TK_ERR_ARG, "forward: logits row %lld outside [0, %lld)", (long long)out_idx[i], (long long)T);
    if (n_out > T && out_idx) return tk_fail(TK_ERR_ARG, "forward: more logits rows than tokens");

    /* positions and segments */
    int32_t *pos = a->pos;
    for (int64_t t = 0; t < T; t++)
        pos[t] = b->pos ? b->pos[t] : (int32_t)((kvs ? kvs[t / Tc]->n : 0) + t % Tc);
    const int32_t *seg = NULL;
    if (b->seg) { memcpy(a->seg, b->seg, (size_t)T * sizeof(int32_t)); seg = a->seg; }
    for (int64_t r = 0; kvs && r < B; r++) {
        tk_kv_cache *kv = kvs[r];
        memcpy(kv->pos + kv->n, pos + r * Tc, (size_t)Tc * sizeof(int32_t));
        memcpy(kv->tokens + kv->n, b->ids + r * Tc, (size_t)Tc * sizeof(int32_t));
    }

    tk_status st = tk_embedding_forward(a->x, b->ids, T, &w->tok_embd);
    if (st) return st;
    if (c->embed_scale > 0) { /* Gemma: embeddings times sqrt(C) (a float32 constant, as in transformers) */
        const float es = c->embed_scale;
        for (int64_t i = 0; i < T * C; i++) a->x[i] *= es;
    }
    if ((st = tk_vtoks_forward(m, a)) || (st = run_layers(m, a, b, kvs, pos, seg, 0, c->n_layers))) return st;
    float *xL = TK_ACT(a, x, c->n_layers, s_x);
    tk_rmsnorm_forward(a->hn, a->rstdf, xL, w->out_norm.data, T, C, c->rms_eps);
    for (int64_t r = 0; kvs && r < B; r++) kvs[r]->n += (int32_t)Tc;
    if (n_out == 0) return TK_OK;
    const tk_lm_head head = {&w->output, c->final_softcap};
    if (!out_idx) return tk_lm_head_logits(logits, a->hn, &head, T, a->mm_flags);
    for (int64_t i = 0; i < n_out; i++) memcpy(a->gather + i * C, a->hn + out_idx[i] * C, (size_t)C * sizeof(float));
    return tk_lm_head_logits(logits, a->gather, &head, n_out, a->mm_flags);
}

tk_status tk_llama_forward(tk_model *m, tk_acts *a, const tk_batch *b, tk_kv_cache *kv,
                           const int64_t *out_idx, int64_t n_out, float *logits) {
    if (kv && b && b->n_rows != 1)
        return tk_fail(TK_ERR_ARG, "forward: a KV cache holds one sequence (batch has %d rows)", b->n_rows);
    return forward(m, a, b, kv ? &kv : NULL, out_idx, n_out, logits);
}

tk_status tk_llama_forward_kvs(tk_model *m, tk_acts *a, const tk_batch *b, tk_kv_cache *const *kvs,
                               const int64_t *out_idx, int64_t n_out, float *logits) {
    if (!kvs) return tk_fail(TK_ERR_ARG, "forward: no KV caches");
    return forward(m, a, b, kvs, out_idx, n_out, logits);
}

tk_status tk_llama_forward_layers(tk_model *m, tk_acts *a, const tk_batch *b, int32_t l0, int32_t l1) {
    if (!b || !b->ids || b->n_rows <= 0 || b->n_cols <= 0 || b->n_rows > a->max_rows || b->n_cols > a->max_cols)
        return tk_fail(TK_ERR_ARG, "forward layers: bad batch");
    if (l0 < 0 || l1 > m->cfg.n_layers || l0 >= l1 || !a->keep)
        return tk_fail(TK_ERR_ARG, "forward layers: [%d, %d) is not a layer range of a kept-input workspace", l0, l1);
    return run_layers(m, a, b, NULL, a->pos, b->seg ? a->seg : NULL, l0, l1);
}

tk_status tk_llama_run_layers(tk_model *m, tk_acts *a, const tk_batch *b, const int32_t *pos, const int32_t *seg, int32_t l0, int32_t l1) {
    return run_layers(m, a, b, NULL, pos, seg, l0, l1);
}

/* ---- public forward workspace ---- */
struct tk_forward {
    tk_model *m;
    tk_acts a;
    int64_t last_T;
};

tk_status tk_forward_new(tk_model *m, int32_t max_rows, int32_t max_cols, int flags, tk_forward **out) {
    *out = NULL;
    tk_forward *f = tk_calloc(1, sizeof *f);
    if (!f) return TK_ERR_NOMEM;
    f->m = m;
    tk_status st = tk_acts_init(&f->a, m, max_rows, max_cols, flags);
    if (st) { free(f); return st; }
    /* batched forwards (training, evaluation) never quantize activations, so results do not
     * depend on how many rows a batch happens to have */
    f->a.mm_flags = TK_MATMUL_EXACT;
    *out = f;
    return TK_OK;
}

void tk_forward_free(tk_forward *f) {
    if (!f) return;
    tk_acts_free(&f->a);
    free(f);
}

tk_status tk_forward_run(tk_forward *f, const tk_batch *b, const int64_t *out_idx, int64_t n_out, float *logits) {
    tk_status st = tk_llama_forward(f->m, &f->a, b, NULL, out_idx, n_out, logits);
    f->last_T = st ? 0 : (int64_t)b->n_rows * b->n_cols;
    return st;
}

const float *tk_forward_hidden(const tk_forward *f) { return f->a.hn; }

tk_status tk_forward_set_adapters(tk_forward *f, const tk_adapter_use *ads, int n) { return tk_acts_set_adapters(&f->a, ads, n); }

tk_status tk_forward_nll(tk_forward *f, const tk_batch *b, const int32_t *target, const float *weight,
                         double *loss_sum, double *weight_sum) {
    tk_status st = tk_forward_run(f, b, NULL, 0, NULL);
    if (st) return st;
    double ls = 0, ws = 0;
    const tk_lm_head head = {&f->m->w.output, f->m->cfg.final_softcap};
    st = tk_lmhead_xent(f->a.hn, &head, target, weight, f->last_T, 0.0f, &ls, &ws, NULL, NULL);
    if (st) return st;
    *loss_sum += ls;
    *weight_sum += ws;
    return TK_OK;
}
