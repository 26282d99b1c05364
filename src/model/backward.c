/* The Llama-family backward pass, mirroring tk_llama_forward (src/model/llama.c) op by
 * op in reverse: LM head + cross-entropy (chunked, src/ops/xent.c), final RMSNorm, then
 * per layer from the top: SwiGLU MLP (down, gate/up, ffn_norm) and attention (o-proj,
 * causal GQA attention with packing/padding masks, RoPE, q/k/v with biases, attn_norm),
 * and finally the embedding. Frozen weights get no gradient, but the input gradient
 * still flows through them via tk_matmul_dx (any dtype, quantized included: per-block
 * dequantization inside the product). Adapters (LoRA…) receive each linear's input and
 * output gradient through tk_adapter_bwd (and block-output and attention-prefix gradients
 * when adapters act there). The backward stops at the lowest trainable
 * layer: nothing below it needs an input gradient.
 *
 * Memory: the residual gradient, one norm gradient and one layer's q/k/v/attention and
 * MLP gradients ([T x (3C + 2 H*D + 2 KH*D + 3F)] floats) — the activations themselves
 * are the forward's (tk_acts, kept per layer). */
#include "model/backward.h"
#include "backend/backend.h"
#include "core/core.h"
#include <math.h>

#define ALIGN_FLOATS 16


tk_status tk_bwd_ws_init(tk_bwd_ws *ws, const tk_model *m, int64_t max_T) {
    memset(ws, 0, sizeof *ws);
    if (max_T <= 0 || max_T > (1 << 28)) return tk_fail(TK_ERR_ARG, "backward workspace: %lld tokens is not a usable size", (long long)max_T);
    const tk_model_config *c = &m->cfg;
    size_t T = (size_t)max_T, C = c->dim, QD = (size_t)c->n_heads * c->head_dim, KD = (size_t)c->n_kv_heads * c->head_dim,
           F = c->hidden_dim;
    struct { float **p; size_t n; } plan[] = {
        {&ws->dres, C}, {&ws->dxn, C}, {&ws->dnorm, C}, {&ws->dq, QD}, {&ws->dattn, QD},
        {&ws->dk, KD}, {&ws->dv, KD}, {&ws->dgate, F}, {&ws->dup, F}, {&ws->dffh, F},
        {&ws->dfused, c->fused_qkv || c->fused_gate_up ? (QD + 2 * KD > 2 * F ? QD + 2 * KD : 2 * F) : 0},
    };
    size_t np = sizeof plan / sizeof plan[0], total = 0;
    for (size_t i = 0; i < np; i++) {
        size_t n;
        if (!tk_mul_ok(T, plan[i].n, &n) || !tk_add_ok(total, tk_round_up(n, ALIGN_FLOATS), &total))
            return tk_fail(TK_ERR_NOMEM, "backward workspace for %lld tokens overflows", (long long)max_T);
    }
    size_t bytes;
    if (!tk_mul_ok(total, sizeof(float), &bytes)) return tk_fail(TK_ERR_NOMEM, "backward workspace overflows");
    float *base = NULL;
    if (posix_memalign((void **)&base, 64, bytes) != 0)
        return tk_fail(TK_ERR_NOMEM, "out of memory for the backward workspace (%zu MB)", bytes >> 20);
    size_t off = 0;
    for (size_t i = 0; i < np; i++) {
        *plan[i].p = plan[i].n ? base + off : NULL;
        off += tk_round_up(T * plan[i].n, ALIGN_FLOATS);
    }
    ws->base = base;
    ws->bytes = bytes;
    ws->max_T = max_T;
    return TK_OK;
}

void tk_bwd_ws_free(tk_bwd_ws *ws) {
    if (ws->vws) tk_bwd_ws_free(ws->vws);
    free(ws->vws);
    tk_scratch_free(&ws->dvt);
    tk_scratch_free(&ws->dpfx);
    free(ws->base);
    memset(ws, 0, sizeof *ws);
}

/* Backward of one linear y = x W^T (+ b) (+ adapter): dx (= or += when dx_acc; NULL = not
 * needed), dW and db (+=, NULL = frozen), then the adapter's share. */
static tk_status lin_bwd(const tk_adapter_bwd *ad, int32_t layer, tk_linear_id which, float *dx, bool dx_acc, float *dw,
                         float *db, const float *dy, const float *x, const tk_tensor_ref *w, int64_t T) {
    int64_t K = w->ne[0], N = w->ne[1];
    tk_status st;
    if (dx && (st = tk_matmul_dx(dx, dy, w, T, dx_acc))) return st;
    if (dw) tk_matmul_dw(dw, dy, x, T, N, K);
    if (db) {
        /* each thread owns a range of outputs and sums over t in order: deterministic */
        #pragma omp parallel for schedule(static) if (T * N > 65536)
        for (int64_t n = 0; n < N; n++) {
            double s = 0;
            for (int64_t t = 0; t < T; t++) s += dy[t * N + n];
            db[n] += (float)s;
        }
    }
    if (ad && ad->linear && (st = ad->linear(ad->ctx, layer, which, x, dy, dx, T)))
        return tk_fail_ctx(st, "adapter backward on layer %d %s", layer, tk_linear_name(which));
    return TK_OK;
}

/* The output gradient a block's last linear sees: dres itself, or, when adapters act on the
 * block output, their backward applied to a copy in scratch (dres stays the residual gradient). */
static tk_status block_dy(const tk_adapter_bwd *ad, int32_t layer, tk_block_site site, const float *dres, float *scratch,
                          int64_t n, int64_t C, const float **dy) {
    *dy = dres;
    if (!ad || !ad->block) return TK_OK;
    memcpy(scratch, dres, (size_t)(n * C) * sizeof(float));
    tk_status st = ad->block(ad->ctx, layer, site, scratch, n);
    if (st) return tk_fail_ctx(st, "adapter backward on layer %d %s block", layer, tk_block_site_name(site));
    *dy = scratch;
    return TK_OK;
}

static void add_into(float *dst, const float *src, int64_t n) {
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) dst[i] += src[i];
}

/* Gathers per-part gradients into the rows of a fused product's gradient y[T x (n0+n1+n2)]. */
static void join_rows(float *y, int64_t T, const float *g0, int64_t n0, const float *g1, int64_t n1, const float *g2, int64_t n2) {
    int64_t N = n0 + n1 + n2;
    #pragma omp parallel for schedule(static) if (T * N > 65536)
    for (int64_t t = 0; t < T; t++) {
        memcpy(y + t * N, g0 + t * n0, (size_t)n0 * sizeof(float));
        memcpy(y + t * N + n0, g1 + t * n1, (size_t)n1 * sizeof(float));
        if (n2) memcpy(y + t * N + n0 + n1, g2 + t * n2, (size_t)n2 * sizeof(float));
    }
}

tk_status tk_llama_backward(tk_model *m, tk_acts *a, tk_bwd_ws *ws, const tk_batch *b, const int32_t *target,
                            const float *weight, float grad_scale, const tk_model_grads *g, const tk_adapter_bwd *ad,
                            const tk_recompute_hook *rc, double *loss_sum, double *weight_sum, double *head_s) {
    const tk_weights *w = &m->w;
    if (!b || !b->ids || b->n_rows <= 0 || b->n_cols <= 0 || !g || !target)
        return tk_fail(TK_ERR_ARG, "backward: empty batch or no targets");
    const int64_t T = (int64_t)b->n_rows * b->n_cols;
    if (T > ws->max_T) return tk_fail(TK_ERR_ARG, "backward: batch %d x %d exceeds the workspace", b->n_rows, b->n_cols);

    /* LM head + loss: dh = d(grad_scale * loss_sum)/dhn, head gradient when trainable */
    double t0 = tk_time_s();
    double ls = 0, wsum = 0;
    const tk_lm_head head = {&w->output, m->cfg.final_softcap};
    tk_status st = tk_lmhead_xent(a->hn, &head, target, weight, T, grad_scale, &ls, &wsum, ws->dxn, g->output);
    if (head_s) *head_s = tk_time_s() - t0;
    if (st) return st;
    if (loss_sum) *loss_sum = ls;
    if (weight_sum) *weight_sum = wsum;
    return tk_llama_backward_hidden(m, a, ws, b, ws->dxn, g, ad, rc);
}

/* The layers' backward of tk_llama_backward_hidden. Two extra uses, for virtual tokens (a->vt):
 * with vt set (the sequence's backward), their share of each layer's attention-prefix gradients
 * goes to vt->dkv; with inj (their own backward, dh NULL: their outputs have no loss), inj
 * [L][2][T x KH*D] is added to each layer's key/value gradients, and dx0 [T x C] receives the
 * gradient of the layer-0 input. */
static tk_status backward_layers(tk_model *m, tk_acts *a, tk_bwd_ws *ws, const tk_batch *b, const float *dh,
                                 const tk_model_grads *g, const tk_adapter_bwd *ad, const tk_recompute_hook *rc, tk_vtoks *vt,
                                 const float *inj, float *dx0) {
    const tk_model_config *c = &m->cfg;
    const tk_weights *w = &m->w;
    if (!b || !b->ids || b->n_rows <= 0 || b->n_cols <= 0 || !g || (!dh && !inj))
        return tk_fail(TK_ERR_ARG, "backward: empty batch or no hidden-state gradient");
    const int64_t B = b->n_rows, Tc = b->n_cols, T = B * Tc, L = c->n_layers;
    const int64_t C = c->dim, H = c->n_heads, KH = c->n_kv_heads, D = c->head_dim, F = c->hidden_dim;
    const int64_t QD = H * D, KD = KH * D;
    if (T > ws->max_T || B > a->max_rows || Tc > a->max_cols)
        return tk_fail(TK_ERR_ARG, "backward: batch %lld x %lld exceeds the workspace", (long long)B, (long long)Tc);
    if ((!a->keep || (a->s_c == 0 && L > 1)) && !(rc && rc->layer))
        return tk_fail(TK_ERR_ARG, "backward: the forward kept no per-layer activations (TK_FWD_KEEP_ACTS) and nothing recomputes them");
    int64_t stop = g->stop_layer < 0 ? 0 : g->stop_layer > L ? L : g->stop_layer;
    bool embd = (g->tok_embd || dx0) && stop == 0;
    tk_status st;

    /* final norm (virtual tokens: no loss on their outputs) */
    const float *xL = TK_ACT(a, x, L, s_x);
    bool need_dres = stop < L || embd;
    if (inj) memset(ws->dres, 0, (size_t)(T * C) * sizeof(float));
    else tk_rmsnorm_backward(need_dres ? ws->dres : NULL, g->out_norm, dh, xL, w->out_norm.data, a->rstdf, T, C);
    if (!need_dres) return TK_OK;
    const int64_t Pv = vt ? vt->P : 0; /* the virtual tokens' keys are the last Pv of each layer's prefix */

    const int32_t *pos = a->pos, *seg = b->seg;
    const float scale = c->attn_scale > 0 ? c->attn_scale : 1.0f / sqrtf((float)D);
    for (int64_t l = L - 1; l >= stop; l--) {
        if (rc && rc->layer && (st = rc->layer(rc->ctx, (int32_t)l))) return st;
        const tk_layer_weights *y = &w->layers[l];
        const tk_layer_grads *gl = g->layers ? &g->layers[l] : NULL;
        static const tk_layer_grads none;
        if (!gl) gl = &none;
        bool below = l > stop || embd; /* does anything below this layer need its input gradient? */
        const float *xin = TK_ACT(a, x, l, s_x), *xmid = TK_ACT(a, xmid, l, s_c);
        const float *xn1 = TK_ACT(a, xn1, l, s_c), *xn2 = TK_ACT(a, xn2, l, s_c);
        const float *q = TK_ACT(a, q, l, s_h), *k = TK_ACT(a, k, l, s_kv), *v = TK_ACT(a, v, l, s_kv);
        const float *attn = TK_ACT(a, attn, l, s_h);
        const float *gate = TK_ACT(a, gate, l, s_f), *up = TK_ACT(a, up, l, s_f), *ffh = TK_ACT(a, ffh, l, s_f);
        const float *rstd1 = TK_ACT(a, rstd1, l, s_t), *rstd2 = TK_ACT(a, rstd2, l, s_t);
        int32_t li = (int32_t)l;
        bool sliding = tk_layer_sliding(c, li);
        const tk_rope *rope = sliding && m->rope_local.half ? &m->rope_local : &m->rope;

        /* the layer's output: xout = [adapters](xmid + MLP) (TK_BLOCK_LAYER), dres turned into the gradient of the sum */
        if (ad && ad->block && (st = ad->block(ad->ctx, li, TK_BLOCK_LAYER, ws->dres, T)))
            return tk_fail_ctx(st, "adapter backward on layer %d %s block", li, tk_block_site_name(TK_BLOCK_LAYER));
        /* MLP: xout = xmid + [adapters]([post_ffw_norm](down(act(gate(xn2)) * up(xn2)))), xn2 = rmsnorm(xmid) */
        const float *dmlp; /* adapters on the block output first (into dxn, free until gate/up write it), then the post norm */
        if ((st = block_dy(ad, li, TK_BLOCK_MLP, ws->dres, ws->dxn, T, C, &dmlp))) return st;
        if (c->sandwich_norm) {
            tk_rmsnorm_backward(ws->dnorm, gl->post_ffn_norm, dmlp, TK_ACT(a, fo, l, s_c), y->post_ffn_norm.data,
                                TK_ACT(a, rstdpf, l, s_t), T, C);
            dmlp = ws->dnorm;
        }
        if ((st = lin_bwd(ad, li, TK_LIN_DOWN, ws->dffh, false, gl->w_down, NULL, dmlp, ffh, &y->w_down, T))) return st;
        if (c->act == TK_ACT_GELU_TANH) tk_geglu_backward(ws->dgate, ws->dup, ws->dffh, gate, up, T * F);
        else tk_swiglu_backward(ws->dgate, ws->dup, ws->dffh, gate, up, T * F);
        if (c->fused_gate_up) {
            join_rows(ws->dfused, T, ws->dgate, F, ws->dup, F, NULL, 0);
            if ((st = lin_bwd(ad, li, TK_LIN_UP, ws->dxn, false, gl->w_up, NULL, ws->dfused, xn2, &y->w_up, T))) return st;
        } else if ((st = lin_bwd(ad, li, TK_LIN_GATE, ws->dxn, false, gl->w_gate, NULL, ws->dgate, xn2, &y->w_gate, T)) ||
                   (st = lin_bwd(ad, li, TK_LIN_UP, ws->dxn, true, gl->w_up, NULL, ws->dup, xn2, &y->w_up, T)))
            return st;
        tk_rmsnorm_backward(ws->dnorm, gl->ffn_norm, ws->dxn, xmid, y->ffn_norm.data, rstd2, T, C);
        add_into(ws->dres, ws->dnorm, T * C); /* dres is now d(xmid) */

        /* attention: xmid = xin + [adapters]([post_attention_norm](o(attn(rope(q), rope(k), v))), q/k/v from xn1 = rmsnorm(xin),
         * q/k through their per-head norms when the family has them */
        const float *dao; /* adapters on the block output first (into dxn, free until q/k/v write it), then the post norm */
        if ((st = block_dy(ad, li, TK_BLOCK_ATTN, ws->dres, ws->dxn, T, C, &dao))) return st;
        if (c->sandwich_norm) {
            tk_rmsnorm_backward(ws->dnorm, gl->post_attn_norm, dao, TK_ACT(a, ao, l, s_c), y->post_attn_norm.data,
                                TK_ACT(a, rstdpa, l, s_t), T, C);
            dao = ws->dnorm;
        }
        if ((st = lin_bwd(ad, li, TK_LIN_O, ws->dattn, false, gl->wo, NULL, dao, attn, &y->wo, T))) return st;
        /* the adapters' attention prefix (as in the forward); its gradients go to them after the rows */
        const float *pk, *pv;
        int64_t np;
        if ((st = tk_acts_prefix(a, li, KD, &pk, &pv, &np))) return st;
        float *dpk = NULL, *dpv = NULL;
        if (np > 0 && ((ad && ad->attn_prefix && np > Pv) || Pv)) {
            if (!(dpk = tk_scratch_get(&ws->dpfx, (size_t)(2 * np * KD))))
                return tk_fail(TK_ERR_NOMEM, "backward: out of memory for the attention prefix gradients");
            dpv = dpk + np * KD;
            memset(dpk, 0, (size_t)(2 * np * KD) * sizeof(float));
        }
        float *att = a->att && np == 0 ? a->att + l * a->s_att : NULL; /* with a prefix the forward kept none */
        int32_t window = sliding ? c->sliding_window : 0;
        for (int64_t r = 0; r < B; r++) {
            const int32_t *pr = pos + r * Tc, *sr = seg ? seg + r * Tc : NULL;
            tk_attn_args aa = {.Tq = Tc, .S = Tc, .H = H, .KH = KH, .D = D,
                               .pos_q = pr, .pos_k = pr, .seg_q = sr, .seg_k = sr, .scale = scale, .window = window, .softcap = c->attn_softcap,
                               .pk = pk, .pv = pv, .P = np, .dpk = dpk, .dpv = dpv};
            if ((st = tk_attention_backward(ws->dq + r * Tc * QD, ws->dk + r * Tc * KD, ws->dv + r * Tc * KD,
                                            ws->dattn + r * Tc * QD, att ? att + r * H * Tc * Tc : NULL,
                                            q + r * Tc * QD, k + r * Tc * KD, v + r * Tc * KD, &aa)))
                return st;
        }
        if (dpk && np > Pv && ad && ad->attn_prefix && (st = ad->attn_prefix(ad->ctx, li, dpk, dpv, np - Pv)))
            return tk_fail_ctx(st, "adapter backward on layer %d attention prefix", li);
        if (Pv) {
            float *dkv = vt->dkv + l * 2 * Pv * KD;
            memcpy(dkv, dpk + (np - Pv) * KD, (size_t)(Pv * KD) * sizeof(float));
            memcpy(dkv + Pv * KD, dpv + (np - Pv) * KD, (size_t)(Pv * KD) * sizeof(float));
        }
        if (inj) {
            add_into(ws->dk, inj + l * 2 * T * KD, T * KD);
            add_into(ws->dv, inj + l * 2 * T * KD + T * KD, T * KD);
        }
        /* q and k were rotated after their linear (and adapter, and norm): un-rotate the gradients */
        tk_rope_backward(ws->dq, pos, T, H, D, rope);
        tk_rope_backward(ws->dk, pos, T, KH, D, rope);
        if (c->qk_norm) { /* in place: the norm backward reads each row whole before writing it */
            tk_rmsnorm_backward(ws->dq, gl->q_norm, ws->dq, TK_ACT(a, qr, l, s_h), y->q_norm.data,
                                a->rstdq + l * a->s_t * H, T * H, D);
            tk_rmsnorm_backward(ws->dk, gl->k_norm, ws->dk, TK_ACT(a, kr, l, s_kv), y->k_norm.data,
                                a->rstdk + l * a->s_t * KH, T * KH, D);
        }
        bool need_dxn1 = below || gl->attn_norm;
        float *dxn1 = need_dxn1 ? ws->dxn : NULL;
        if (c->fused_qkv) {
            join_rows(ws->dfused, T, ws->dq, QD, ws->dk, KD, ws->dv, KD);
            if ((st = lin_bwd(ad, li, TK_LIN_Q, dxn1, false, gl->wq, NULL, ws->dfused, xn1, &y->wq, T))) return st;
        } else if ((st = lin_bwd(ad, li, TK_LIN_Q, dxn1, false, gl->wq, y->bq.data ? gl->bq : NULL, ws->dq, xn1, &y->wq, T)) ||
                   (st = lin_bwd(ad, li, TK_LIN_K, dxn1, true, gl->wk, y->bk.data ? gl->bk : NULL, ws->dk, xn1, &y->wk, T)) ||
                   (st = lin_bwd(ad, li, TK_LIN_V, dxn1, true, gl->wv, y->bv.data ? gl->bv : NULL, ws->dv, xn1, &y->wv, T)))
            return st;
        if (need_dxn1) tk_rmsnorm_backward(below ? ws->dnorm : NULL, gl->attn_norm, ws->dxn, xin, y->attn_norm.data, rstd1, T, C);
        if (below) add_into(ws->dres, ws->dnorm, T * C); /* dres is now d(xin) */
        if (rc && rc->done && (st = rc->done(rc->ctx, (int32_t)l))) return st;
    }
    if (dx0) {
        memcpy(dx0, ws->dres, (size_t)(T * C) * sizeof(float));
        return TK_OK;
    }
    if (embd) {
        if (c->embed_scale > 0) { /* x0 = embedding * scale */
            const float es = c->embed_scale;
            for (int64_t i = 0; i < T * C; i++) ws->dres[i] *= es;
        }
        tk_embedding_backward(g->tok_embd, ws->dres, b->ids, T, C);
    }
    return TK_OK;
}

tk_status tk_llama_backward_hidden(tk_model *m, tk_acts *a, tk_bwd_ws *ws, const tk_batch *b, const float *dh,
                                   const tk_model_grads *g, const tk_adapter_bwd *ad, const tk_recompute_hook *rc) {
    tk_vtoks *vt = a->vt.a && a->vt.live && a->vt.dkv && ad && ad->embed_prefix ? &a->vt : NULL;
    if (!vt) return backward_layers(m, a, ws, b, dh, g, ad, rc, NULL, NULL, NULL);
    /* the sequence first (collecting the virtual tokens' key/value gradients), then the virtual tokens */
    const tk_model_config *c = &m->cfg;
    size_t kvn = (size_t)c->n_layers * 2 * (size_t)vt->P * (size_t)c->n_kv_heads * (size_t)c->head_dim;
    memset(vt->dkv, 0, kvn * sizeof(float)); /* layers below the stop layer get none */
    tk_status st = backward_layers(m, a, ws, b, dh, g, ad, rc, vt, NULL, NULL);
    if (st) return st;
    if (!ws->vws) {
        if (!(ws->vws = tk_calloc(1, sizeof *ws->vws))) return TK_ERR_NOMEM;
        if ((st = tk_bwd_ws_init(ws->vws, m, vt->P))) { free(ws->vws); ws->vws = NULL; return st; }
    }
    if (ws->vws->max_T < vt->P) return tk_fail(TK_ERR_ARG, "backward: the virtual tokens grew from %lld to %lld", (long long)ws->vws->max_T,
                                               (long long)vt->P);
    float *de = tk_scratch_get(&ws->dvt, (size_t)(vt->P * c->dim));
    if (!de) return tk_fail(TK_ERR_NOMEM, "backward: out of memory for the virtual tokens' gradient");
    const tk_batch vb = {.n_rows = 1, .n_cols = (int32_t)vt->P, .ids = vt->ids};
    const tk_model_grads none = {.stop_layer = 0};
    if ((st = backward_layers(m, vt->a, ws->vws, &vb, NULL, &none, NULL, NULL, NULL, vt->dkv, de)))
        return tk_fail_ctx(st, "backward of the virtual tokens");
    if ((st = ad->embed_prefix(ad->ctx, de, vt->P))) return tk_fail_ctx(st, "adapter backward of the input-embedding prefix");
    return TK_OK;
}
