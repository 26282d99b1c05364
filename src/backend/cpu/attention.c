/* Causal grouped-query attention with segment (packing) and padding masks.
 * Per head h (kv group g = h / (H/KH)) and block of query rows:
 *   P = softmax_masked(scale * Q_h K_g^T),  O_h = P V_g      (two sgemms + a masked softmax)
 * Backward, with dS = P * (dP - rowsum(P * dP)) and dP = dO_h V_g^T:
 *   dQ_h = scale * dS K_g,  dK_g += scale * dS^T Q_h,  dV_g += P^T dO_h.
 * Heads run in parallel (OpenMP); the sgemms inside run single-threaded (no nesting).
 * dK/dV are summed over the heads of a group in a fixed order, so results do not
 * depend on the thread count. Default positions when pos_q/pos_k are NULL: keys
 * 0..S-1 and queries S-Tq..S-1 (the KV-cache layout). */
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

/* Probabilities for rows [t0, t0+qb) of head h into P [qb x S] (row stride S), computed on
 * keys [lo, hi) only; entries outside stay untouched (callers zero them or never read them). */
static void attn_probs(float *P, const float *q, const float *k, const tk_attn_args *a, int64_t h, int64_t t0, int64_t qb,
                       int64_t lo, int64_t hi) {
    int64_t S = a->S, H = a->H, KH = a->KH, D = a->D, g = h / (H / KH), n = hi - lo;
    if (n <= 0) return;
    if (qb <= FEW_Q) /* decode: plain dots; sgemm would re-pack the keys on every call */
        for (int64_t i = 0; i < qb; i++) {
            const float *qr = q + (t0 + i) * H * D + h * D;
            float *p = P + i * S;
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
    else
        tk_sgemm(false, true, qb, n, D, a->scale, q + t0 * H * D + h * D, H * D, k + lo * KH * D + g * D, KH * D, 0.0f, P + lo, S);
    for (int64_t i = 0; i < qb; i++) {
        int64_t t = t0 + i;
        float *p = P + i * S;
        int32_t sq = segq(a, t), pq = posq(a, t);
        float mx = -INFINITY;
        for (int64_t s = lo; s < hi; s++) {
            bool ok = sq >= 0 && visible(a, sq, pq, s);
            if (!ok) p[s] = -INFINITY;
            else if (p[s] > mx) mx = p[s];
        }
        if (mx == -INFINITY) { /* a padding query, or nothing visible: no attention at all */
            memset(p + lo, 0, (size_t)n * sizeof(float));
            continue;
        }
        float inv = 1.0f / tk_cpu_vexp_sum(p + lo, p + lo, mx, n);
        for (int64_t s = lo; s < hi; s++) p[s] *= inv;
    }
}

tk_status tk_cpu_attention_forward(float *out, float *att, const float *q, const float *k, const float *v, const tk_attn_args *a) {
    tk_status st = check_args(a);
    if (st) return st;
    if (!out || !q || !k || !v) return tk_fail(TK_ERR_ARG, "attention: NULL tensor");
    int64_t Tq = a->Tq, S = a->S, H = a->H, KH = a->KH, D = a->D;
    if (Tq == 0) return TK_OK;
    if (S == 0) {
        memset(out, 0, (size_t)(Tq * H * D) * sizeof(float));
        return TK_OK;
    }
    int64_t nqb = (Tq + QB - 1) / QB, tasks = H * nqb;
    int64_t *rng = key_ranges(a, nqb); /* the same for every head: computed once */
    if (!rng) return TK_ERR_NOMEM;
    tk_status err = TK_OK;
    #pragma omp parallel if (tasks > 1 && Tq * S * H * D > 32768)
    {
        float *scratch = att ? NULL : malloc((size_t)QB * S * sizeof(float));
        if (!att && !scratch) {
            #pragma omp atomic write
            err = TK_ERR_NOMEM;
        }
        #pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks; task++) {
            if (!att && !scratch) continue;
            int64_t h = task / nqb, t0 = (task % nqb) * QB, qb = Tq - t0 < QB ? Tq - t0 : QB, g = h / (H / KH);
            float *P = att ? att + (h * Tq + t0) * S : scratch;
            int64_t lo = rng[2 * (t0 / QB)], hi = rng[2 * (t0 / QB) + 1];
            if (hi < lo) hi = lo;
            if (att) /* the saved probabilities are whole rows: zero what the range skips */
                for (int64_t i = 0; i < qb; i++) {
                    memset(P + i * S, 0, (size_t)lo * sizeof(float));
                    memset(P + i * S + hi, 0, (size_t)(S - hi) * sizeof(float));
                }
            attn_probs(P, q, k, a, h, t0, qb, lo, hi);
            float *o = out + t0 * H * D + h * D;
            if (hi > lo && qb <= FEW_Q)
                for (int64_t i = 0; i < qb; i++) {
                    float *orow = o + i * H * D;
                    const float *p = P + i * S;
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
            else if (hi > lo) tk_sgemm(false, false, qb, D, hi - lo, 1.0f, P + lo, S, v + lo * KH * D + g * D, KH * D, 0.0f, o, H * D);
            else for (int64_t i = 0; i < qb; i++) memset(o + i * H * D, 0, (size_t)D * sizeof(float));
        }
        free(scratch);
    }
    free(rng);
    return err ? tk_fail(err, "attention: out of memory for scores (%lld keys)", (long long)S) : TK_OK;
}

tk_status tk_cpu_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *att,
                                const float *q, const float *k, const float *v, const tk_attn_args *a) {
    tk_status st = check_args(a);
    if (st) return st;
    if (!dq || !dk || !dv || !dout || !q || !k || !v) return tk_fail(TK_ERR_ARG, "attention backward: NULL tensor");
    int64_t Tq = a->Tq, S = a->S, H = a->H, KH = a->KH, D = a->D, G = H / KH;
    memset(dk, 0, (size_t)(S * KH * D) * sizeof(float));
    memset(dv, 0, (size_t)(S * KH * D) * sizeof(float));
    if (Tq == 0) return TK_OK;
    if (S == 0) {
        memset(dq, 0, (size_t)(Tq * H * D) * sizeof(float));
        return TK_OK;
    }
    /* Per-head private dK/dV [S x D], summed per group afterwards in head order. */
    size_t per = (size_t)S * D;
    float *priv = tk_calloc((size_t)H * 2, per * sizeof(float));
    int64_t *rng = key_ranges(a, (Tq + QB - 1) / QB);
    if (!priv || !rng) {
        free(priv);
        free(rng);
        return tk_fail(TK_ERR_NOMEM, "attention backward: out of memory");
    }
    tk_status err = TK_OK;
    #pragma omp parallel if (H > 1 && Tq * S * H * D > 32768)
    {
        float *Pbuf = att ? NULL : malloc((size_t)QB * S * sizeof(float));
        float *dP = malloc((size_t)QB * S * sizeof(float));
        if ((!att && !Pbuf) || !dP) {
            #pragma omp atomic write
            err = TK_ERR_NOMEM;
        }
        #pragma omp for schedule(dynamic, 1)
        for (int64_t h = 0; h < H; h++) {
            if ((!att && !Pbuf) || !dP) continue;
            int64_t g = h / G;
            float *dKh = priv + (size_t)h * 2 * per, *dVh = dKh + per;
            const float *Kg = k + g * D, *Vg = v + g * D;
            for (int64_t t0 = 0; t0 < Tq; t0 += QB) {
                int64_t qb = Tq - t0 < QB ? Tq - t0 : QB, lo = rng[2 * (t0 / QB)], hi = rng[2 * (t0 / QB) + 1];
                float *dQ = dq + t0 * H * D + h * D;
                if (hi <= lo) { /* nothing visible from this block: no gradient */
                    for (int64_t i = 0; i < qb; i++) memset(dQ + i * H * D, 0, (size_t)D * sizeof(float));
                    continue;
                }
                int64_t n = hi - lo;
                const float *P;
                if (att) P = att + (h * Tq + t0) * S;
                else {
                    attn_probs(Pbuf, q, k, a, h, t0, qb, lo, hi);
                    P = Pbuf;
                }
                const float *dOh = dout + t0 * H * D + h * D, *Qh = q + t0 * H * D + h * D;
                tk_sgemm(true, false, n, D, qb, 1.0f, P + lo, S, dOh, H * D, 1.0f, dVh + lo * D, D);
                tk_sgemm(false, true, qb, n, D, 1.0f, dOh, H * D, Vg + lo * KH * D, KH * D, 0.0f, dP + lo, S);
                for (int64_t i = 0; i < qb; i++) {
                    const float *p = P + i * S;
                    float *d = dP + i * S;
                    double dot = 0;
                    for (int64_t s = lo; s < hi; s++) dot += (double)p[s] * d[s];
                    float fd = (float)dot;
                    for (int64_t s = lo; s < hi; s++) d[s] = p[s] * (d[s] - fd);
                }
                tk_sgemm(false, false, qb, D, n, a->scale, dP + lo, S, Kg + lo * KH * D, KH * D, 0.0f, dQ, H * D);
                tk_sgemm(true, false, n, D, qb, a->scale, dP + lo, S, Qh, H * D, 1.0f, dKh + lo * D, D);
            }
        }
        free(Pbuf);
        free(dP);
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
    }
    free(priv);
    free(rng);
    return err ? tk_fail(err, "attention backward: out of memory") : TK_OK;
}
