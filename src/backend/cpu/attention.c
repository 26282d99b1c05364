/* Causal grouped-query attention with segment (packing) and padding masks.
 * Per head h (kv group g = h / (H/KH)) and block of query rows:
 *   P = softmax_masked(scale * Q_h K_g^T),  O_h = P V_g      (two sgemms + a masked softmax)
 * Backward, with dS = P * (dP - rowsum(P * dP)) and dP = dO_h V_g^T:
 *   dQ_h = scale * dS K_g,  dK_g += scale * dS^T Q_h,  dV_g += P^T dO_h.
 * Heads run in parallel (OpenMP); the sgemms inside run single-threaded (no nesting).
 * dK/dV are summed over the heads of a group in a fixed order, so results do not
 * depend on the thread count. Default positions when pos_q/pos_k are NULL: keys
 * 0..S-1 and queries S-Tq..S-1 (the KV-cache layout).
 * Prefix (tk_attn_args.P > 0): P extra key/value rows every non-padding query sees, scored
 * in the same softmax (columns 0..P-1 of each probability row); their products run after
 * the sequence keys' so that P = 0 is bit-identical to attention without a prefix.
 * Soft-capping (tk_attn_args.softcap = c > 0): each score becomes y = c * tanh(s / c) before
 * the mask and softmax; the backward recomputes y (only the probabilities are kept) and
 * multiplies dS by dy/ds = 1 - (y / c)^2. */
#include "backend/backend.h"
#include "core/core.h"
#include "backend/cpu/kernels.h"
#include <math.h>

#define QB 64 /* query rows per task */
#define FEW_Q 2 /* at most this many query rows in a block (decode): direct loops instead of sgemm */

static inline int32_t posq(const tk_attn_args *a, int64_t t) { return a->pos_q ? a->pos_q[t] : (int32_t)(a->S - a->Tq + t); }
static inline int32_t posk(const tk_attn_args *a, int64_t s) { return a->pos_k ? a->pos_k[s] : (int32_t)s; }
static inline int32_t segq(const tk_attn_args *a, int64_t t) { return a->seg_q ? a->seg_q[t] : 0; }
static inline int32_t segk(const tk_attn_args *a, int64_t s) { return a->seg_k ? a->seg_k[s] : 0; }
/* Key s is visible to a query of segment sq at position pq (causal, same segment, within the window). */
static inline bool visible(const tk_attn_args *a, int32_t sq, int32_t pq, int64_t s) {
    int32_t pk = posk(a, s);
    return segk(a, s) == sq && pk <= pq && (a->window <= 0 || (int64_t)pq - pk < a->window);
}

static tk_status check_args(const tk_attn_args *a) {
    if (!a || a->Tq < 0 || a->S < 0 || a->H <= 0 || a->KH <= 0 || a->D <= 0 || a->H % a->KH)
        return tk_fail(TK_ERR_ARG, "attention: bad shape (Tq %lld, S %lld, H %lld, KH %lld, D %lld); H must be a multiple of KH",
                       a ? (long long)a->Tq : 0, a ? (long long)a->S : 0, a ? (long long)a->H : 0,
                       a ? (long long)a->KH : 0, a ? (long long)a->D : 0);
    return TK_OK;
}

/* Key range [lo, hi) that any query row of [t0, t0+qb) may see: the products outside it
 * are all masked, so the sgemms skip them (causal halves the work; packing skips the
 * other examples). Returns hi <= lo when nothing is visible. */
static void key_range(const tk_attn_args *a, int64_t t0, int64_t qb, int64_t *lo, int64_t *hi) {
    int64_t S = a->S;
    if (!a->seg_q && !a->seg_k && !a->pos_q && !a->pos_k && a->window <= 0) { /* KV-cache layout: keys 0 .. last query */
        *lo = 0;
        *hi = S - a->Tq + t0 + qb;
        if (*hi > S) *hi = S;
        return;
    }
    int64_t l = S, h = 0;
    for (int64_t i = 0; i < qb; i++) {
        int32_t sq = segq(a, t0 + i), pq = posq(a, t0 + i);
        if (sq < 0) continue;
        int64_t s = 0;
        while (s < l && !visible(a, sq, pq, s)) s++;
        if (s < l) l = s;
        s = S - 1;
        while (s >= h && !visible(a, sq, pq, s)) s--;
        if (s + 1 > h) h = s + 1;
    }
    *lo = l;
    *hi = h;
}

/* [lo, hi) pairs for every block of QB query rows; NULL when out of memory (message set). */
static int64_t *key_ranges(const tk_attn_args *a, int64_t nqb) {
    int64_t *r = tk_malloc((size_t)(nqb ? nqb : 1) * 2 * sizeof(int64_t));
    if (!r) return NULL;
    for (int64_t b = 0; b < nqb; b++) {
        int64_t t0 = b * QB, qb = a->Tq - t0 < QB ? a->Tq - t0 : QB;
        key_range(a, t0, qb, &r[2 * b], &r[2 * b + 1]);
    }
    return r;
}

/* Scores (scale * q.k, soft-capped when a->softcap > 0, not masked) for rows [t0, t0+qb) of
 * head h into P [qb x W] (row stride W = a->P + S: the prefix columns, then key s at column
 * a->P + s), on the prefix and keys [lo, hi) only; key entries outside stay untouched. */
static void attn_scores(float *P, const float *q, const float *k, const tk_attn_args *a, int64_t h, int64_t t0, int64_t qb,
                        int64_t lo, int64_t hi) {
    int64_t S = a->S, NP = a->P, W = NP + S, H = a->H, KH = a->KH, D = a->D, g = h / (H / KH), n = hi - lo;
    if (n < 0) n = 0;
    if (n == 0 && NP == 0) return;
    float *Ps = P + NP; /* key s of row i at Ps[i * W + s] */
    if (n > 0 && qb <= FEW_Q) /* decode: plain dots; sgemm would re-pack the keys on every call */
        for (int64_t i = 0; i < qb; i++) {
            const float *qr = q + (t0 + i) * H * D + h * D;
            float *p = Ps + i * W;
            int64_t s = lo;
            for (; s + 4 <= hi; s += 4) { /* four keys at once: independent accumulator chains */
                const float *k0 = k + s * KH * D + g * D, *k1 = k0 + KH * D, *k2 = k1 + KH * D, *k3 = k2 + KH * D;
                float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
                #pragma omp simd reduction(+ : a0, a1, a2, a3)
                for (int64_t d = 0; d < D; d++) {
                    a0 += qr[d] * k0[d];
                    a1 += qr[d] * k1[d];
                    a2 += qr[d] * k2[d];
                    a3 += qr[d] * k3[d];
                }
                p[s] = a->scale * a0;
                p[s + 1] = a->scale * a1;
                p[s + 2] = a->scale * a2;
                p[s + 3] = a->scale * a3;
            }
            for (; s < hi; s++) {
                const float *kr = k + s * KH * D + g * D;
                float acc = 0;
                #pragma omp simd reduction(+ : acc)
                for (int64_t d = 0; d < D; d++) acc += qr[d] * kr[d];
                p[s] = a->scale * acc;
            }
        }
    else if (n > 0)
        tk_sgemm(false, true, qb, n, D, a->scale, q + t0 * H * D + h * D, H * D, k + lo * KH * D + g * D, KH * D, 0.0f, Ps + lo, W);
    if (NP > 0) { /* prefix scores into columns [0, NP) */
        if (qb <= FEW_Q)
            for (int64_t i = 0; i < qb; i++) {
                const float *qr = q + (t0 + i) * H * D + h * D;
                for (int64_t j = 0; j < NP; j++) {
                    const float *kr = a->pk + j * KH * D + g * D;
                    float acc = 0;
                    #pragma omp simd reduction(+ : acc)
                    for (int64_t d = 0; d < D; d++) acc += qr[d] * kr[d];
                    P[i * W + j] = a->scale * acc;
                }
            }
        else tk_sgemm(false, true, qb, NP, D, a->scale, q + t0 * H * D + h * D, H * D, a->pk + g * D, KH * D, 0.0f, P, W);
    }
    if (a->softcap > 0) {
        const float c = a->softcap, ic = 1.0f / c;
        for (int64_t i = 0; i < qb; i++) {
            for (int64_t s = lo; s < hi; s++) Ps[i * W + s] = c * tanhf(Ps[i * W + s] * ic);
            for (int64_t j = 0; j < NP; j++) P[i * W + j] = c * tanhf(P[i * W + j] * ic);
        }
    }
}

/* Probabilities for rows [t0, t0+qb) of head h into P [qb x W] (layout as attn_scores): the
 * scores, masked, through one softmax over prefix + keys [lo, hi); key entries outside stay
 * untouched (callers zero them or never read them). */
static void attn_probs(float *P, const float *q, const float *k, const tk_attn_args *a, int64_t h, int64_t t0, int64_t qb,
                       int64_t lo, int64_t hi) {
    int64_t S = a->S, NP = a->P, W = NP + S, n = hi - lo;
    if (n < 0) n = 0;
    if (n == 0 && NP == 0) return;
    attn_scores(P, q, k, a, h, t0, qb, lo, hi);
    float *Ps = P + NP;
    for (int64_t i = 0; i < qb; i++) {
        int64_t t = t0 + i;
        float *p = Ps + i * W, *pp = P + i * W;
        int32_t sq = segq(a, t), pq = posq(a, t);
        float mx = -INFINITY;
        for (int64_t s = lo; s < hi; s++) {
            bool ok = sq >= 0 && visible(a, sq, pq, s);
            if (!ok) p[s] = -INFINITY;
            else if (p[s] > mx) mx = p[s];
        }
        if (sq >= 0)
            for (int64_t j = 0; j < NP; j++)
                if (pp[j] > mx) mx = pp[j];
        if (mx == -INFINITY) { /* a padding query, or nothing visible: no attention at all */
            if (n > 0) memset(p + lo, 0, (size_t)n * sizeof(float));
            if (NP > 0) memset(pp, 0, (size_t)NP * sizeof(float));
            continue;
        }
        float sum = n > 0 ? tk_cpu_vexp_sum(p + lo, p + lo, mx, n) : 0.0f;
        if (NP > 0) sum += tk_cpu_vexp_sum(pp, pp, mx, NP);
        float inv = 1.0f / sum;
        for (int64_t s = lo; s < hi; s++) p[s] *= inv;
        for (int64_t j = 0; j < NP; j++) pp[j] *= inv;
    }
}

static tk_status check_prefix(const tk_attn_args *a) {
    if (a->P < 0 || (a->P > 0 && (!a->pk || !a->pv)))
        return tk_fail(TK_ERR_ARG, "attention: prefix of %lld keys without keys/values", (long long)a->P);
    return TK_OK;
}

tk_status tk_cpu_attention_forward(float *out, float *att, const float *q, const float *k, const float *v, const tk_attn_args *a) {
    tk_status st = check_args(a);
    if (!st) st = check_prefix(a);
    if (st) return st;
    if (!out || !q || (a->S && (!k || !v))) return tk_fail(TK_ERR_ARG, "attention: NULL tensor");
    int64_t Tq = a->Tq, S = a->S, H = a->H, KH = a->KH, D = a->D, NP = a->P, W = NP + S;
    if (Tq == 0) return TK_OK;
    if (W == 0) {
        memset(out, 0, (size_t)(Tq * H * D) * sizeof(float));
        return TK_OK;
    }
    int64_t nqb = (Tq + QB - 1) / QB, tasks = H * nqb;
    int64_t *rng = key_ranges(a, nqb); /* the same for every head: computed once */
    if (!rng) return TK_ERR_NOMEM;
    tk_status err = TK_OK;
    #pragma omp parallel if (tasks > 1 && Tq * W * H * D > 32768)
    {
        float *scratch = att ? NULL : malloc((size_t)QB * W * sizeof(float));
        if (!att && !scratch) {
            #pragma omp atomic write
            err = TK_ERR_NOMEM;
        }
        #pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks; task++) {
            if (!att && !scratch) continue;
            int64_t h = task / nqb, t0 = (task % nqb) * QB, qb = Tq - t0 < QB ? Tq - t0 : QB, g = h / (H / KH);
            float *P = att ? att + (h * Tq + t0) * W : scratch, *Ps = P + NP;
            int64_t lo = rng[2 * (t0 / QB)], hi = rng[2 * (t0 / QB) + 1];
            if (hi < lo) hi = lo;
            if (att) /* the saved probabilities are whole rows: zero what the range skips */
                for (int64_t i = 0; i < qb; i++) {
                    memset(Ps + i * W, 0, (size_t)lo * sizeof(float));
                    memset(Ps + i * W + hi, 0, (size_t)(S - hi) * sizeof(float));
                }
            attn_probs(P, q, k, a, h, t0, qb, lo, hi);
            float *o = out + t0 * H * D + h * D;
            if (hi > lo && qb <= FEW_Q)
                for (int64_t i = 0; i < qb; i++) {
                    float *orow = o + i * H * D;
                    const float *p = Ps + i * W;
                    memset(orow, 0, (size_t)D * sizeof(float));
                    int64_t s = lo;
                    for (; s + 4 <= hi; s += 4) { /* four keys per pass over the output row */
                        const float *v0 = v + s * KH * D + g * D, *v1 = v0 + KH * D, *v2 = v1 + KH * D, *v3 = v2 + KH * D;
                        float p0 = p[s], p1 = p[s + 1], p2 = p[s + 2], p3 = p[s + 3];
                        #pragma omp simd
                        for (int64_t d = 0; d < D; d++) orow[d] += p0 * v0[d] + p1 * v1[d] + p2 * v2[d] + p3 * v3[d];
                    }
                    for (; s < hi; s++) {
                        const float *vr = v + s * KH * D + g * D;
                        float ps = p[s];
                        #pragma omp simd
                        for (int64_t d = 0; d < D; d++) orow[d] += ps * vr[d];
                    }
                }
            else if (hi > lo) tk_sgemm(false, false, qb, D, hi - lo, 1.0f, Ps + lo, W, v + lo * KH * D + g * D, KH * D, 0.0f, o, H * D);
            else for (int64_t i = 0; i < qb; i++) memset(o + i * H * D, 0, (size_t)D * sizeof(float));
            if (NP > 0) { /* the prefix's share, added after the sequence's */
                if (qb <= FEW_Q)
                    for (int64_t i = 0; i < qb; i++) {
                        float *orow = o + i * H * D;
                        const float *pp = P + i * W;
                        for (int64_t j = 0; j < NP; j++) {
                            const float *vr = a->pv + j * KH * D + g * D;
                            float pj = pp[j];
                            #pragma omp simd
                            for (int64_t d = 0; d < D; d++) orow[d] += pj * vr[d];
                        }
                    }
                else tk_sgemm(false, false, qb, D, NP, 1.0f, P, W, a->pv + g * D, KH * D, 1.0f, o, H * D);
            }
        }
        free(scratch);
    }
    free(rng);
    return err ? tk_fail(err, "attention: out of memory for scores (%lld keys)", (long long)W) : TK_OK;
}

tk_status tk_cpu_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *att,
                                const float *q, const float *k, const float *v, const tk_attn_args *a) {
    tk_status st = check_args(a);
    if (!st) st = check_prefix(a);
    if (st) return st;
    if (!dq || !dout || !q || (a->S && (!dk || !dv || !k || !v))) return tk_fail(TK_ERR_ARG, "attention backward: NULL tensor");
    int64_t Tq = a->Tq, S = a->S, H = a->H, KH = a->KH, D = a->D, G = H / KH, NP = a->P, W = NP + S;
    if (S) {
        memset(dk, 0, (size_t)(S * KH * D) * sizeof(float));
        memset(dv, 0, (size_t)(S * KH * D) * sizeof(float));
    }
    if (Tq == 0) return TK_OK;
    if (W == 0) {
        memset(dq, 0, (size_t)(Tq * H * D) * sizeof(float));
        return TK_OK;
    }
    bool pgrad = NP > 0 && (a->dpk || a->dpv);
    /* Per-head private dK/dV [S x D] (and prefix dPK/dPV [P x D]), summed per group afterwards in head order. */
    size_t per = (size_t)S * D, pper = (size_t)NP * D;
    float *priv = tk_calloc((size_t)H * 2, (per ? per : 1) * sizeof(float));
    float *ppriv = pgrad ? tk_calloc((size_t)H * 2, pper * sizeof(float)) : NULL;
    int64_t *rng = key_ranges(a, (Tq + QB - 1) / QB);
    if (!priv || !rng || (pgrad && !ppriv)) {
        free(priv);
        free(ppriv);
        free(rng);
        return tk_fail(TK_ERR_NOMEM, "attention backward: out of memory");
    }
    tk_status err = TK_OK;
    #pragma omp parallel if (H > 1 && Tq * W * H * D > 32768)
    {
        float *Pbuf = att ? NULL : malloc((size_t)QB * W * sizeof(float));
        float *dP = malloc((size_t)QB * W * sizeof(float));
        float *Ybuf = a->softcap > 0 ? malloc((size_t)QB * W * sizeof(float)) : NULL; /* capped scores */
        if ((!att && !Pbuf) || !dP || (a->softcap > 0 && !Ybuf)) {
            #pragma omp atomic write
            err = TK_ERR_NOMEM;
        }
        #pragma omp for schedule(dynamic, 1)
        for (int64_t h = 0; h < H; h++) {
            if ((!att && !Pbuf) || !dP || (a->softcap > 0 && !Ybuf)) continue;
            int64_t g = h / G;
            float *dKh = priv + (size_t)h * 2 * per, *dVh = dKh + per;
            float *dPKh = pgrad ? ppriv + (size_t)h * 2 * pper : NULL, *dPVh = pgrad ? dPKh + pper : NULL;
            const float *Kg = k + g * D, *Vg = v + g * D;
            for (int64_t t0 = 0; t0 < Tq; t0 += QB) {
                int64_t qb = Tq - t0 < QB ? Tq - t0 : QB, lo = rng[2 * (t0 / QB)], hi = rng[2 * (t0 / QB) + 1];
                float *dQ = dq + t0 * H * D + h * D;
                if (hi <= lo && NP == 0) { /* nothing visible from this block: no gradient */
                    for (int64_t i = 0; i < qb; i++) memset(dQ + i * H * D, 0, (size_t)D * sizeof(float));
                    continue;
                }
                int64_t n = hi > lo ? hi - lo : 0;
                const float *P;
                if (att) P = att + (h * Tq + t0) * W;
                else {
                    attn_probs(Pbuf, q, k, a, h, t0, qb, lo, hi);
                    P = Pbuf;
                }
                const float *Ps = P + NP;
                float *dPs = dP + NP;
                const float *dOh = dout + t0 * H * D + h * D, *Qh = q + t0 * H * D + h * D;
                if (n > 0) {
                    tk_sgemm(true, false, n, D, qb, 1.0f, Ps + lo, W, dOh, H * D, 1.0f, dVh + lo * D, D);
                    tk_sgemm(false, true, qb, n, D, 1.0f, dOh, H * D, Vg + lo * KH * D, KH * D, 0.0f, dPs + lo, W);
                }
                if (NP > 0) {
                    if (pgrad) tk_sgemm(true, false, NP, D, qb, 1.0f, P, W, dOh, H * D, 1.0f, dPVh, D);
                    tk_sgemm(false, true, qb, NP, D, 1.0f, dOh, H * D, a->pv + g * D, KH * D, 0.0f, dP, W);
                }
                for (int64_t i = 0; i < qb; i++) {
                    const float *p = Ps + i * W, *pp = P + i * W;
                    float *d = dPs + i * W, *dp = dP + i * W;
                    double dot = 0;
                    for (int64_t s = lo; s < hi; s++) dot += (double)p[s] * d[s];
                    for (int64_t j = 0; j < NP; j++) dot += (double)pp[j] * dp[j];
                    float fd = (float)dot;
                    for (int64_t s = lo; s < hi; s++) d[s] = p[s] * (d[s] - fd);
                    for (int64_t j = 0; j < NP; j++) dp[j] = pp[j] * (dp[j] - fd);
                }
                if (Ybuf) { /* through the cap: dS *= 1 - (y / c)^2 */
                    attn_scores(Ybuf, q, k, a, h, t0, qb, lo, hi);
                    const float ic = 1.0f / a->softcap;
                    for (int64_t i = 0; i < qb; i++)
                        for (int64_t j = 0; j < W; j++) {
                            if (j >= NP && (j - NP < lo || j - NP >= hi)) continue;
                            float y = Ybuf[i * W + j] * ic;
                            dP[i * W + j] *= 1.0f - y * y;
                        }
                }
                if (n > 0) tk_sgemm(false, false, qb, D, n, a->scale, dPs + lo, W, Kg + lo * KH * D, KH * D, 0.0f, dQ, H * D);
                if (NP > 0) tk_sgemm(false, false, qb, D, NP, a->scale, dP, W, a->pk + g * D, KH * D, n > 0 ? 1.0f : 0.0f, dQ, H * D);
                if (n > 0) tk_sgemm(true, false, n, D, qb, a->scale, dPs + lo, W, Qh, H * D, 1.0f, dKh + lo * D, D);
                if (pgrad) tk_sgemm(true, false, NP, D, qb, a->scale, dP, W, Qh, H * D, 1.0f, dPKh, D);
            }
        }
        free(Pbuf);
        free(dP);
        free(Ybuf);
    }
    if (!err) {
        #pragma omp parallel for schedule(static) if (S * KH * D > 32768)
        for (int64_t s = 0; s < S; s++)
            for (int64_t h = 0; h < H; h++) {
                const float *dKh = priv + (size_t)h * 2 * per + (size_t)s * D, *dVh = dKh + per;
                float *dk_s = dk + (s * KH + h / G) * D, *dv_s = dv + (s * KH + h / G) * D;
                for (int64_t d = 0; d < D; d++) {
                    dk_s[d] += dKh[d];
                    dv_s[d] += dVh[d];
                }
            }
        if (pgrad) /* prefix gradients: summed over each group's heads in head order, then added (+=) */
            for (int64_t j = 0; j < NP; j++)
                for (int64_t g = 0; g < KH; g++)
                    for (int64_t d = 0; d < D; d++) {
                        float sk = 0, sv = 0;
                        for (int64_t h = g * G; h < (g + 1) * G; h++) {
                            sk += ppriv[(size_t)h * 2 * pper + (size_t)j * D + d];
                            sv += ppriv[(size_t)h * 2 * pper + pper + (size_t)j * D + d];
                        }
                        if (a->dpk) a->dpk[(j * KH + g) * D + d] += sk;
                        if (a->dpv) a->dpv[(j * KH + g) * D + d] += sv;
                    }
    }
    free(priv);
    free(ppriv);
    free(rng);
    return err ? tk_fail(err, "attention backward: out of memory") : TK_OK;
}
