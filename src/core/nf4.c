/* NF4 quantization as bitsandbytes defines it (see nf4.h) and the TK_NF4 row dequantizer.
 * The tables are the definitions of the two data types, as f32 values (tests/test_nf4.c
 * checks them, and everything else here, against bitsandbytes: tools/make_nf4_reference.py). */
#include "core/core.h"
#include "core/nf4.h"
#include <math.h>
#include <float.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* The 16 NF4 levels (QLoRA, appendix E; bitsandbytes get_4bit_type("nf4")). */
const float tk_nf4_code[16] = {
    -0x1p+0f, -0x1.647362p-1f, -0x1.0cd66p-1f, -0x1.94654p-2f, -0x1.23449ap-2f, -0x1.7a6a7ep-3f, -0x1.74f0e2p-4f, 0.0f, 0x1.45f5fep-4f, 0x1.4995c6p-3f, 0x1.f809bap-3f, 0x1.5a0674p-2f, 0x1.c3497p-2f, 0x1.200f56p-1f, 0x1.722766p-1f, 0x1p+0f
};

/* bitsandbytes' signed 8-bit dynamic map (create_dynamic_map(signed=True, max_exponent_bits=7)),
 * sorted: 127 negative levels, 0, 127 positive levels and 1. */
const float tk_nf4_dq_code[256] = {
    -0x1.fc6666p-1f, -0x1.f53334p-1f, -0x1.eep-1f, -0x1.e6ccccp-1f, -0x1.df999ap-1f, -0x1.d86666p-1f, -0x1.d13334p-1f, -0x1.cap-1f,
    -0x1.c2ccccp-1f, -0x1.bb999ap-1f, -0x1.b46666p-1f, -0x1.ad3334p-1f, -0x1.a6p-1f, -0x1.9eccccp-1f, -0x1.97999ap-1f, -0x1.906666p-1f,
    -0x1.893334p-1f, -0x1.82p-1f, -0x1.7accccp-1f, -0x1.73999ap-1f, -0x1.6c6668p-1f, -0x1.653334p-1f, -0x1.5ep-1f, -0x1.56ccccp-1f,
    -0x1.4f999ap-1f, -0x1.486668p-1f, -0x1.413334p-1f, -0x1.3ap-1f, -0x1.32ccccp-1f, -0x1.2b999ap-1f, -0x1.246668p-1f, -0x1.1d3334p-1f,
    -0x1.16p-1f, -0x1.0eccccp-1f, -0x1.079998p-1f, -0x1.006666p-1f, -0x1.f26664p-2f, -0x1.e4p-2f, -0x1.d59998p-2f, -0x1.c73334p-2f,
    -0x1.b8ccccp-2f, -0x1.aa6666p-2f, -0x1.9cp-2f, -0x1.8d9998p-2f, -0x1.7f3334p-2f, -0x1.70ccccp-2f, -0x1.626666p-2f, -0x1.54p-2f,
    -0x1.459998p-2f, -0x1.373334p-2f, -0x1.28ccccp-2f, -0x1.1a6668p-2f, -0x1.0cp-2f, -0x1.fb3332p-3f, -0x1.de6666p-3f, -0x1.c1999ap-3f,
    -0x1.a4ccccp-3f, -0x1.88p-3f, -0x1.6b3334p-3f, -0x1.4e6666p-3f, -0x1.31999ap-3f, -0x1.14ccccp-3f, -0x1.fp-4f, -0x1.b66668p-4f,
    -0x1.93d70ap-4f, -0x1.8851eep-4f, -0x1.7ccccep-4f, -0x1.7147aep-4f, -0x1.65c29p-4f, -0x1.5a3d7p-4f, -0x1.4eb854p-4f, -0x1.433334p-4f,
    -0x1.37ae14p-4f, -0x1.2c28f6p-4f, -0x1.20a3d6p-4f, -0x1.151ebap-4f, -0x1.09999ap-4f, -0x1.fc28f6p-5f, -0x1.e51ebap-5f, -0x1.ce147ap-5f,
    -0x1.b70a3ep-5f, -0x1.ap-5f, -0x1.88f5c2p-5f, -0x1.71eb86p-5f, -0x1.5ae146p-5f, -0x1.43d70ap-5f, -0x1.2ccccep-5f, -0x1.15c29p-5f,
    -0x1.fd70a4p-6f, -0x1.cf5c2ap-6f, -0x1.a147aep-6f, -0x1.733334p-6f, -0x1.451ebap-6f, -0x1.170a3ep-6f, -0x1.d1eb86p-7f, -0x1.75c29p-7f,
    -0x1.3e76c8p-7f, -0x1.2c083p-7f, -0x1.19999ap-7f, -0x1.072b02p-7f, -0x1.e978d4p-8f, -0x1.c49ba6p-8f, -0x1.9fbe76p-8f, -0x1.7ae148p-8f,
    -0x1.56041ap-8f, -0x1.3126e8p-8f, -0x1.0c49bap-8f, -0x1.ced914p-9f, -0x1.851eb8p-9f, -0x1.3b645ap-9f, -0x1.e353f8p-10f, -0x1.4fdf3ap-10f,
    -0x1.eecbfep-11f, -0x1.b3d07cp-11f, -0x1.78d5p-11f, -0x1.3dd982p-11f, -0x1.02de02p-11f, -0x1.8fc506p-12f, -0x1.19ce0ap-12f, -0x1.47ae16p-13f,
    -0x1.743e96p-14f, -0x1.15df66p-14f, -0x1.6f0068p-15f, -0x1.64840cp-16f, -0x1.040bfep-17f, -0x1.b43528p-19f, -0x1.27476ep-21f, 0x0.0p+0f,
    0x1.27476ep-21f, 0x1.b43528p-19f, 0x1.040bfep-17f, 0x1.64840cp-16f, 0x1.6f0068p-15f, 0x1.15df66p-14f, 0x1.743e96p-14f, 0x1.47ae16p-13f,
    0x1.19ce0ap-12f, 0x1.8fc506p-12f, 0x1.02de02p-11f, 0x1.3dd982p-11f, 0x1.78d5p-11f, 0x1.b3d07cp-11f, 0x1.eecbfep-11f, 0x1.4fdf3ap-10f,
    0x1.e353f8p-10f, 0x1.3b645ap-9f, 0x1.851eb8p-9f, 0x1.ced914p-9f, 0x1.0c49bap-8f, 0x1.3126e8p-8f, 0x1.56041ap-8f, 0x1.7ae148p-8f,
    0x1.9fbe76p-8f, 0x1.c49ba6p-8f, 0x1.e978d4p-8f, 0x1.072b02p-7f, 0x1.19999ap-7f, 0x1.2c083p-7f, 0x1.3e76c8p-7f, 0x1.75c29p-7f,
    0x1.d1eb86p-7f, 0x1.170a3ep-6f, 0x1.451ebap-6f, 0x1.733334p-6f, 0x1.a147aep-6f, 0x1.cf5c2ap-6f, 0x1.fd70a4p-6f, 0x1.15c29p-5f,
    0x1.2ccccep-5f, 0x1.43d70ap-5f, 0x1.5ae146p-5f, 0x1.71eb86p-5f, 0x1.88f5c2p-5f, 0x1.ap-5f, 0x1.b70a3ep-5f, 0x1.ce147ap-5f,
    0x1.e51ebap-5f, 0x1.fc28f6p-5f, 0x1.09999ap-4f, 0x1.151ebap-4f, 0x1.20a3d6p-4f, 0x1.2c28f6p-4f, 0x1.37ae14p-4f, 0x1.433334p-4f,
    0x1.4eb854p-4f, 0x1.5a3d7p-4f, 0x1.65c29p-4f, 0x1.7147aep-4f, 0x1.7ccccep-4f, 0x1.8851eep-4f, 0x1.93d70ap-4f, 0x1.b66668p-4f,
    0x1.fp-4f, 0x1.14ccccp-3f, 0x1.31999ap-3f, 0x1.4e6666p-3f, 0x1.6b3334p-3f, 0x1.88p-3f, 0x1.a4ccccp-3f, 0x1.c1999ap-3f,
    0x1.de6666p-3f, 0x1.fb3332p-3f, 0x1.0cp-2f, 0x1.1a6668p-2f, 0x1.28ccccp-2f, 0x1.373334p-2f, 0x1.459998p-2f, 0x1.54p-2f,
    0x1.626666p-2f, 0x1.70ccccp-2f, 0x1.7f3334p-2f, 0x1.8d9998p-2f, 0x1.9cp-2f, 0x1.aa6666p-2f, 0x1.b8ccccp-2f, 0x1.c73334p-2f,
    0x1.d59998p-2f, 0x1.e4p-2f, 0x1.f26664p-2f, 0x1.006666p-1f, 0x1.079998p-1f, 0x1.0eccccp-1f, 0x1.16p-1f, 0x1.1d3334p-1f,
    0x1.246668p-1f, 0x1.2b999ap-1f, 0x1.32ccccp-1f, 0x1.3ap-1f, 0x1.413334p-1f, 0x1.486668p-1f, 0x1.4f999ap-1f, 0x1.56ccccp-1f,
    0x1.5ep-1f, 0x1.653334p-1f, 0x1.6c6668p-1f, 0x1.73999ap-1f, 0x1.7accccp-1f, 0x1.82p-1f, 0x1.893334p-1f, 0x1.906666p-1f,
    0x1.97999ap-1f, 0x1.9eccccp-1f, 0x1.a6p-1f, 0x1.ad3334p-1f, 0x1.b46666p-1f, 0x1.bb999ap-1f, 0x1.c2ccccp-1f, 0x1.cap-1f,
    0x1.d13334p-1f, 0x1.d86666p-1f, 0x1.df999ap-1f, 0x1.e6ccccp-1f, 0x1.eep-1f, 0x1.f53334p-1f, 0x1.fc6666p-1f, 0x1p+0f,
};

/* Index of the nearest entry of the ascending table c[0..n) to v; ties go to the lower index. */
static int nearest(const float *c, int n, float v) {
    int lo = 0, hi = n - 1;
    while (hi - lo > 1) { /* c[lo] <= v < c[hi] once v is inside */
        int mid = (lo + hi) / 2;
        if (c[mid] <= v) lo = mid;
        else hi = mid;
    }
    if (v <= c[lo]) return lo;
    if (v >= c[hi]) return hi;
    return fabsf(v - c[hi]) < fabsf(v - c[lo]) ? hi : lo;
}

/* The 4-bit code of v (already scaled into [-1, 1]): bitsandbytes rounds by bucketizing
 * against the midpoints of adjacent levels, a value on a midpoint taking the lower level. */
static uint8_t nf4_code(float v) {
    static float mid[15];
    static int ready; /* benign race: every thread computes the same values */
    if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) {
        for (int i = 0; i < 15; i++) mid[i] = (tk_nf4_code[i] + tk_nf4_code[i + 1]) / 2;
        __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
    }
    int q = mid[7] < v ? 8 : 0; /* the number of midpoints below v, by binary search */
    if (mid[q + 3] < v) q += 4;
    if (mid[q + 1] < v) q += 2;
    if (mid[q] < v) q += 1;
    return (uint8_t)q;
}

/* The quantization of n values into n/64 blocks at blk, with no allocation: bitsandbytes'
 * codes (x * (1 / max(absmax, 1e-38)), clamped to [-1, 1], bucketized), then the double
 * quantization of the block absmax values (parked in blk[b].d meanwhile): offset = their
 * mean (f32), then (absmax - offset) in groups of 256, each divided by the group's largest
 * magnitude and rounded to the nearest level of the dynamic map; blk[b].d becomes the
 * resolved scale map[q] * absmax2 + offset. absmax_q / absmax2 (optional) receive the
 * 8-bit codes and the group scales. */
static inline float rdf(const uint8_t *p) { float v; memcpy(&v, p, 4); return v; }

/* The f32 sum of n values at base, base + stride, ... in the order of PyTorch's CPU reduction
 * (at::sum of a contiguous float tensor: 8-lane vectors, 4 interleaved vector accumulators
 * through a 4-level cascade, then the remaining vectors, the scalar tail and the lanes), so
 * that the offset equals bitsandbytes' absmax.mean() bit for bit. */
static float torch_sum(const uint8_t *base, size_t stride, int64_t n) {
    enum { W = 8, ILP = 4, LEVELS = 4 };
    const int64_t vec_size = n / W, size = vec_size / ILP;
    float acc[LEVELS][ILP][W];
    memset(acc, 0, sizeof acc);
    int64_t cl2 = 1;
    while (((int64_t)1 << cl2) < size) cl2++;
    const int64_t power = cl2 / LEVELS > 4 ? cl2 / LEVELS : 4, step = (int64_t)1 << power, mask = step - 1;
    int64_t i = 0;
#define ROW(r) \
    for (int k = 0; k < ILP; k++) \
        for (int l = 0; l < W; l++) acc[0][k][l] += rdf(base + (size_t)(((r) * ILP + k) * W + l) * stride)
    while (i + step <= size) {
        for (int64_t j = 0; j < step; j++, i++) ROW(i);
        for (int j = 1; j < LEVELS; j++) {
            for (int k = 0; k < ILP; k++)
                for (int l = 0; l < W; l++) { acc[j][k][l] += acc[j - 1][k][l]; acc[j - 1][k][l] = 0; }
            if (i & (mask << (j * power))) break;
        }
    }
    for (; i < size; i++) ROW(i);
#undef ROW
    for (int j = 1; j < LEVELS; j++)
        for (int k = 0; k < ILP; k++)
            for (int l = 0; l < W; l++) acc[0][k][l] += acc[j][k][l];
    for (int64_t v = size * ILP; v < vec_size; v++)
        for (int l = 0; l < W; l++) acc[0][0][l] += rdf(base + (size_t)(v * W + l) * stride);
    for (int k = 1; k < ILP; k++)
        for (int l = 0; l < W; l++) acc[0][0][l] += acc[0][k][l];
    float sum = 0;
    for (int64_t e = vec_size * W; e < n; e++) sum += rdf(base + (size_t)e * stride);
    for (int l = 0; l < W; l++) sum += acc[0][0][l];
    return sum;
}

void tk_nf4_quantize_blocks(const float *x, void *dst, int64_t n) {
    const int64_t nb = n / TK_NF4_BLOCK;
    const size_t bs = sizeof(tk_block_nf4);
    uint8_t *blk = dst; /* block b at blk + b * bs: d (f32), then qs[32]; any alignment */
    (void)nf4_code(0.0f); /* the midpoint table, before the threads */
    #pragma omp parallel for schedule(static) if (nb > 4096)
    for (int64_t b = 0; b < nb; b++) {
        const float *xb = x + b * TK_NF4_BLOCK;
        float am = 0;
        for (int i = 0; i < TK_NF4_BLOCK; i++) am = fmaxf(am, fabsf(xb[i]));
        const float inv = 1.0f / fmaxf(am, 1e-38f);
        for (int i = 0; i < TK_NF4_BLOCK; i += 2) {
            float v0 = fminf(fmaxf(xb[i] * inv, -1.0f), 1.0f), v1 = fminf(fmaxf(xb[i + 1] * inv, -1.0f), 1.0f);
            blk[b * bs + 4 + i / 2] = (uint8_t)(nf4_code(v0) << 4 | nf4_code(v1));
        }
        memcpy(blk + b * bs, &am, 4);
    }
}

/* The second pass (see tk_nf4_resolve_scales), also giving bitsandbytes' state when asked. */
static void resolve_scales(void *dst, int64_t nb, uint8_t *absmax_q, float *absmax2, float *offset) {
    const size_t bs = sizeof(tk_block_nf4);
    uint8_t *blk = dst;
    const float off = torch_sum(blk, bs, nb) / (float)nb;
    *offset = off;
    for (int64_t g = 0; g * TK_NF4_GROUP < nb; g++) {
        int64_t b0 = g * TK_NF4_GROUP, b1 = nb - b0 < TK_NF4_GROUP ? nb : b0 + TK_NF4_GROUP;
        float m = 0;
        for (int64_t b = b0; b < b1; b++) m = fmaxf(m, fabsf(rdf(blk + b * bs) - off));
        if (absmax2) absmax2[g] = m;
        for (int64_t b = b0; b < b1; b++) {
            float v = m > 0 ? (rdf(blk + b * bs) - off) / m : 0.0f;
            uint8_t q = (uint8_t)nearest(tk_nf4_dq_code, 256, v);
            if (absmax_q) absmax_q[b] = q;
            float s = tk_nf4_dq_code[q] * m;
            s = s + off;
            memcpy(blk + b * bs, &s, 4);
        }
    }
}

void tk_nf4_resolve_scales(void *dst, int64_t nb) {
    float off;
    if (nb > 0) resolve_scales(dst, nb, NULL, NULL, &off);
}

static void quantize_core(const float *x, int64_t n, void *dst, uint8_t *absmax_q, float *absmax2, float *offset) {
    tk_nf4_quantize_blocks(x, dst, n);
    resolve_scales(dst, n / TK_NF4_BLOCK, absmax_q, absmax2, offset);
}

tk_status tk_nf4_quantize(const float *x, int64_t n, tk_nf4_state *out) {
    memset(out, 0, sizeof *out);
    if (n <= 0 || n % TK_NF4_BLOCK)
        return tk_fail(TK_ERR_ARG, "nf4: %lld values is not a positive multiple of %d", (long long)n, TK_NF4_BLOCK);
    int64_t nb = n / TK_NF4_BLOCK, ng = (nb + TK_NF4_GROUP - 1) / TK_NF4_GROUP;
    tk_block_nf4 *blk = tk_malloc((size_t)nb * sizeof *blk);
    out->n = n;
    out->codes = tk_malloc((size_t)n / 2);
    out->absmax_q = tk_malloc((size_t)nb);
    out->absmax2 = tk_malloc((size_t)ng * sizeof(float));
    if (!blk || !out->codes || !out->absmax_q || !out->absmax2) {
        free(blk);
        tk_nf4_state_free(out);
        return tk_fail(TK_ERR_NOMEM, "nf4: out of memory for %lld values", (long long)n);
    }
    quantize_core(x, n, blk, out->absmax_q, out->absmax2, &out->offset);
    for (int64_t b = 0; b < nb; b++) memcpy(out->codes + b * (TK_NF4_BLOCK / 2), blk[b].qs, TK_NF4_BLOCK / 2);
    free(blk);
    return TK_OK;
}

void tk_nf4_state_free(tk_nf4_state *s) {
    free(s->codes);
    free(s->absmax_q);
    free(s->absmax2);
    memset(s, 0, sizeof *s);
}

float tk_nf4_state_scale(const tk_nf4_state *s, int64_t b) {
    float v = tk_nf4_dq_code[s->absmax_q[b]] * s->absmax2[b / TK_NF4_GROUP];
    return v + s->offset;
}

void tk_nf4_state_to_blocks(const tk_nf4_state *s, void *dst) {
    uint8_t *p = dst;
    for (int64_t b = 0; b < s->n / TK_NF4_BLOCK; b++, p += sizeof(tk_block_nf4)) {
        float d = tk_nf4_state_scale(s, b);
        memcpy(p, &d, sizeof d);
        memcpy(p + 4, s->codes + b * (TK_NF4_BLOCK / 2), TK_NF4_BLOCK / 2);
    }
}

void tk_nf4_quantize_row(const float *x, void *dst, int64_t n) {
    float off;
    if (n > 0) quantize_core(x, n, dst, NULL, NULL, &off);
}

void tk_nf4_dequant_row_scalar(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / TK_NF4_BLOCK; i++, b += sizeof(tk_block_nf4), y += TK_NF4_BLOCK) {
        float d;
        memcpy(&d, b, 4);
        const uint8_t *qs = b + 4;
        for (int j = 0; j < TK_NF4_BLOCK / 2; j++) {
            y[2 * j] = tk_nf4_code[qs[j] >> 4] * d;
            y[2 * j + 1] = tk_nf4_code[qs[j] & 15] * d;
        }
    }
}
