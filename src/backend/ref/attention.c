/* The reference backend's attention: tk_attn_args (backend/backend.h) one query row and head at
 * a time. Column j of a row is prefix key j for j < P, else sequence key s = j - P. Score
 * y_j = scale * q.k_j, soft-capped to c tanh(y_j / c) when softcap = c > 0; a query of segment
 * >= 0 sees every prefix column and each key of its segment at a position <= its own (and within
 * the window); p = softmax over the visible columns, out = sum_j p_j v_j. Backward, with
 * dp_j = dout.v_j: dy_j = p_j (dp_j - sum_i p_i dp_i), times 1 - tanh^2 under a cap, times scale
 * gives d score: dq += ds_j k_j, dk_j += ds_j q, dv_j += p_j dout. The backward recomputes p from
 * q and k (att, when given, holds the same numbers). */
#include "backend/ref/ref.h"
#include "core/core.h"
#include <math.h>

/* Can query row t see column j? */
static bool sees(const tk_attn_args *a, int64_t t, int64_t j) {
    int32_t sq = a->seg_q ? a->seg_q[t] : 0;
    if (sq < 0) return false;
    if (j < a->P) return true;
    int64_t s = j - a->P;
    int32_t pq = a->pos_q ? a->pos_q[t] : (int32_t)(a->S - a->Tq + t), pk = a->pos_k ? a->pos_k[s] : (int32_t)s;
    int32_t sk = a->seg_k ? a->seg_k[s] : 0;
    return sk == sq && pk <= pq && (a->window <= 0 || (int64_t)pq - pk < a->window);
}

/* Row of key (kv = 0) or value (kv = 1) column j for kv head g. */
static const float *kv_row(const tk_attn_args *a, const float *k, const float *v, int kv, int64_t j, int64_t g) {
    const float *base = j < a->P ? (kv ? a->pv : a->pk) : (kv ? v : k);
    int64_t r = j < a->P ? j : j - a->P;
    return base + (r * a->KH + g) * a->D;
}

/* p[W] = the probabilities of query t, head h (all 0 when it sees nothing); dcap[W] = d capped / d score. */
static void probs(const tk_attn_args *a, const float *q, const float *k, int64_t t, int64_t h, double *p, double *dcap) {
    int64_t W = a->P + a->S, D = a->D, g = h / (a->H / a->KH);
    const float *qr = q + (t * a->H + h) * D;
    double mx = -INFINITY, sum = 0;
    for (int64_t j = 0; j < W; j++) {
        dcap[j] = 1.0;
        if (!sees(a, t, j)) continue;
        const float *kr = kv_row(a, k, NULL, 0, j, g);
        double y = 0;
        for (int64_t d = 0; d < D; d++) y += (double)qr[d] * kr[d];
        y *= a->scale;
        if (a->softcap > 0) {
            double th = tanh(y / a->softcap);
            y = a->softcap * th;
            dcap[j] = 1.0 - th * th;
        }
        p[j] = y;
        mx = fmax(mx, y);
    }
    for (int64_t j = 0; j < W; j++) {
        p[j] = sees(a, t, j) ? exp(p[j] - mx) : 0.0;
        sum += p[j];
    }
    for (int64_t j = 0; j < W && sum > 0; j++) p[j] /= sum;
}

static tk_status check(const tk_attn_args *a, const void *o, const void *q, const void *k, const void *v, const char *what) {
    if (!a || a->Tq < 0 || a->S < 0 || a->H <= 0 || a->KH <= 0 || a->D <= 0 || a->H % a->KH || a->P < 0)
        return tk_fail(TK_ERR_ARG, "%s: bad shape (Tq, S, P >= 0; H, KH, D > 0; H a multiple of KH)", what);
    if (a->P > 0 && (!a->pk || !a->pv)) return tk_fail(TK_ERR_ARG, "%s: %lld prefix keys without their tensors", what, (long long)a->P);
    if (!o || !q || (a->S > 0 && (!k || !v))) return tk_fail(TK_ERR_ARG, "%s: NULL tensor", what);
    return TK_OK;
}

tk_status tk_ref_attention_forward(float *out, float *att, const float *q, const float *k, const float *v, const tk_attn_args *a) {
    tk_status st = check(a, out, q, k, v, "attention");
    if (st) return st;
    int64_t W = a->P + a->S, D = a->D;
    double *p = tk_calloc((size_t)(2 * W + D), sizeof(double)), *dcap = p + W, *o = dcap + W;
    if (!p) return TK_ERR_NOMEM;
    for (int64_t t = 0; t < a->Tq; t++)
        for (int64_t h = 0; h < a->H; h++) {
            probs(a, q, k, t, h, p, dcap);
            memset(o, 0, (size_t)D * sizeof(double));
            for (int64_t j = 0; j < W; j++) {
                const float *vr = kv_row(a, k, v, 1, j, h / (a->H / a->KH));
                for (int64_t d = 0; d < D; d++) o[d] += p[j] * vr[d];
            }
            for (int64_t d = 0; d < D; d++) out[(t * a->H + h) * D + d] = (float)o[d];
            for (int64_t j = 0; att && j < W; j++) att[(h * a->Tq + t) * W + j] = (float)p[j];
        }
    free(p);
    return TK_OK;
}

tk_status tk_ref_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *att, const float *q,
                                    const float *k, const float *v, const tk_attn_args *a) {
    tk_status st = check(a, dq, q, k, v, "attention backward");
    if (st) return st;
    if (!dout || (a->S > 0 && (!dk || !dv))) return tk_fail(TK_ERR_ARG, "attention backward: NULL gradient");
    int64_t W = a->P + a->S, D = a->D, KH = a->KH, G = a->H / KH, n = W * KH * D;
    /* double sums: [W x KH x D] key gradients, the same for values, then p, dcap, dp [W] and dq [D] of one row */
    double *dkv = tk_calloc((size_t)(2 * n + 3 * W + D), sizeof(double));
    if (!dkv) return TK_ERR_NOMEM;
    double *p = dkv + 2 * n, *dcap = p + W, *dp = dcap + W, *dqr = dp + W;
    for (int64_t t = 0; t < a->Tq; t++)
        for (int64_t h = 0; h < a->H; h++) {
            const float *qr = q + (t * a->H + h) * D, *gr = dout + (t * a->H + h) * D;
            probs(a, q, k, t, h, p, dcap);
            double pdp = 0;
            for (int64_t j = 0; j < W; j++) {
                const float *vr = kv_row(a, k, v, 1, j, h / G);
                dp[j] = 0;
                for (int64_t d = 0; d < D; d++) dp[j] += (double)gr[d] * vr[d];
                pdp += p[j] * dp[j];
            }
            memset(dqr, 0, (size_t)D * sizeof(double));
            for (int64_t j = 0; j < W; j++) {
                double ds = p[j] * (dp[j] - pdp) * dcap[j] * a->scale;
                const float *kr = kv_row(a, k, v, 0, j, h / G);
                double *dkr = dkv + (j * KH + h / G) * D, *dvr = dkr + n;
                for (int64_t d = 0; d < D; d++) {
                    dqr[d] += ds * kr[d];
                    dkr[d] += ds * qr[d];
                    dvr[d] += p[j] * gr[d];
                }
            }
            for (int64_t d = 0; d < D; d++) dq[(t * a->H + h) * D + d] = (float)dqr[d];
        }
    for (int64_t i = 0; i < n; i++) { /* prefix rows accumulate where wanted, key rows are written */
        bool prefix = i < a->P * KH * D;
        float *dkd = prefix ? a->dpk : dk, *dvd = prefix ? a->dpv : dv;
        int64_t r = prefix ? i : i - a->P * KH * D;
        if (dkd) dkd[r] = (float)((prefix ? dkd[r] : 0.0f) + dkv[i]);
        if (dvd) dvd[r] = (float)((prefix ? dvd[r] : 0.0f) + dkv[n + i]);
    }
    free(dkv);
    return TK_OK;
}
