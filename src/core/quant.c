/* Dequantization and quantization of ggml block types (the scalar reference).
 *
 * Every converter here is the portable reference: the SIMD versions in
 * quant_avx2.c are tested against these element for element. The arithmetic order
 * follows ggml's dequantize_row_* (e.g. (d*sc)*q - dmin*m, never fused), so that
 * results equal the `gguf` Python package's numpy dequantizer bit for bit.
 * Quantizers follow ggml's quantize_row_*_ref rounding rules exactly.
 * Block fields are read with memcpy, so src needs no alignment. */
#include "core/core.h"
#include "core/quant.h"
#include "core/nf4.h"
#include <math.h>
#include <float.h>

/* Never fuse a*b+c: the references multiply and add separately (GCC in ISO C mode
 * already does not contract; clang does unless told). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

static inline uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline float rdh(const uint8_t *p) { return tk_f16_to_f32(rd16(p)); }
static inline void wr16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }

/* ---- plain types ------------------------------------------------------------ */

static void deq_f32(const void *src, float *dst, int64_t n) { memcpy(dst, src, (size_t)n * 4); }
static void deq_f16(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) dst[i] = rdh(p + 2 * i);
}
static void deq_bf16(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) dst[i] = tk_bf16_to_f32(rd16(p + 2 * i));
}
static void deq_f64(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) { double v; memcpy(&v, p + 8 * i, 8); dst[i] = (float)v; }
}
#define DEQ_INT(name, T) \
    static void name(const void *src, float *dst, int64_t n) { \
        const uint8_t *p = src; \
        for (int64_t i = 0; i < n; i++) { T v; memcpy(&v, p + sizeof(T) * i, sizeof(T)); dst[i] = (float)v; } \
    }
DEQ_INT(deq_i8, int8_t)
DEQ_INT(deq_i16, int16_t)
DEQ_INT(deq_i32, int32_t)
DEQ_INT(deq_i64, int64_t)

/* ---- 32-element block types ---------------------------------------------------- */

static void deq_q4_0(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / TK_QK; i++, b += 18, y += TK_QK) {
        const float d = rdh(b);
        const uint8_t *qs = b + 2;
        for (int j = 0; j < 16; j++) {
            y[j] = (float)((qs[j] & 0xF) - 8) * d;
            y[j + 16] = (float)((qs[j] >> 4) - 8) * d;
        }
    }
}

static void deq_q4_1(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / TK_QK; i++, b += 20, y += TK_QK) {
        const float d = rdh(b), m = rdh(b + 2);
        const uint8_t *qs = b + 4;
        for (int j = 0; j < 16; j++) {
            y[j] = (float)(qs[j] & 0xF) * d + m;
            y[j + 16] = (float)(qs[j] >> 4) * d + m;
        }
    }
}

static void deq_q5_0(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / TK_QK; i++, b += 22, y += TK_QK) {
        const float d = rdh(b);
        const uint32_t qh = rd32(b + 2);
        const uint8_t *qs = b + 6;
        for (int j = 0; j < 16; j++) {
            const int h0 = (int)((qh >> j) & 1) << 4, h1 = (int)((qh >> (j + 16)) & 1) << 4;
            y[j] = (float)(((qs[j] & 0xF) | h0) - 16) * d;
            y[j + 16] = (float)(((qs[j] >> 4) | h1) - 16) * d;
        }
    }
}

static void deq_q5_1(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / TK_QK; i++, b += 24, y += TK_QK) {
        const float d = rdh(b), m = rdh(b + 2);
        const uint32_t qh = rd32(b + 4);
        const uint8_t *qs = b + 8;
        for (int j = 0; j < 16; j++) {
            const int h0 = (int)((qh >> j) & 1) << 4, h1 = (int)((qh >> (j + 16)) & 1) << 4;
            y[j] = (float)((qs[j] & 0xF) | h0) * d + m;
            y[j + 16] = (float)((qs[j] >> 4) | h1) * d + m;
        }
    }
}

static void deq_q8_0(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / TK_QK; i++, b += 34, y += TK_QK) {
        const float d = rdh(b);
        const int8_t *qs = (const int8_t *)(b + 2);
        for (int j = 0; j < TK_QK; j++) y[j] = (float)qs[j] * d;
    }
}

static void deq_q8_1(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / TK_QK; i++, b += 36, y += TK_QK) {
        const float d = rdh(b);
        const int8_t *qs = (const int8_t *)(b + 4);
        for (int j = 0; j < TK_QK; j++) y[j] = (float)qs[j] * d;
    }
}

/* ---- K types (256-element super-blocks) --------------------------------------- */

/* Q2_K: 16 sub-blocks of 16; scales[i] low nibble = scale, high nibble = min. Each
 * 32-byte run of qs holds 4 x 32 two-bit values (bit pairs 0-1, 2-3, 4-5, 6-7). */
static void deq_q2_k(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / TK_QK_K; i++, b += 84) {
        const uint8_t *sc = b, *q = b + 16;
        const float d = rdh(b + 80), dmin = rdh(b + 82);
        int is = 0;
        for (int half = 0; half < 2; half++, q += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int k = 0; k < 2; k++) {
                    const uint8_t s = sc[is++];
                    const float dl = d * (float)(s & 0xF), ml = dmin * (float)(s >> 4);
                    for (int l = 0; l < 16; l++) *y++ = dl * (float)((q[16 * k + l] >> shift) & 3) - ml;
                }
            }
        }
    }
}

/* Q3_K: 16 sub-blocks of 16 with signed 6-bit scales (low 4 bits in scales[0..7]
 * nibbles, high 2 bits in scales[8..11]); a value's 3rd bit comes from hmask, and a
 * CLEAR bit means "subtract 4". */
static void deq_q3_k(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / TK_QK_K; i++, b += 110) {
        const uint8_t *hm = b, *q = b + 32, *s = b + 96;
        const float d = rdh(b + 108);
        int8_t scales[16];
        for (int k = 0; k < 16; k++) {
            const int lo = k < 8 ? (s[k] & 0xF) : (s[k - 8] >> 4);
            const int hi = (s[8 + (k & 3)] >> (2 * (k >> 2))) & 3;
            scales[k] = (int8_t)((lo | (hi << 4)) - 32);
        }
        int is = 0;
        uint8_t m = 1;
        for (int half = 0; half < 2; half++, q += 32) {
            for (int shift = 0; shift < 8; shift += 2, m = (uint8_t)(m << 1)) {
                for (int k = 0; k < 2; k++) {
                    const float dl = d * (float)scales[is++];
                    for (int l = 16 * k; l < 16 * k + 16; l++) {
                        const int v = ((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4);
                        *y++ = dl * (float)v;
                    }
                }
            }
        }
    }
}

/* Q4_K: 8 sub-blocks of 32 with 6-bit scales and mins; each 32-byte run of qs holds
 * two sub-blocks (low nibbles, then high nibbles). */
static void deq_q4_k(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / TK_QK_K; i++, b += 144) {
        const float d = rdh(b), dmin = rdh(b + 2);
        const uint8_t *scales = b + 4, *q = b + 16;
        for (int j = 0; j < 8; j += 2, q += 32) {
            uint8_t sc, m;
            tk_q4k_scale_min(j, scales, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            tk_q4k_scale_min(j + 1, scales, &sc, &m);
            const float d2 = d * (float)sc, m2 = dmin * (float)m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (float)(q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (float)(q[l] >> 4) - m2;
        }
    }
}

/* Q5_K: as Q4_K plus a 5th bit per value from qh (bit 2j / 2j+1 for sub-blocks j, j+1). */
static void deq_q5_k(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / TK_QK_K; i++, b += 176) {
        const float d = rdh(b), dmin = rdh(b + 2);
        const uint8_t *scales = b + 4, *qh = b + 16, *ql = b + 48;
        uint8_t u1 = 1, u2 = 2;
        for (int j = 0; j < 8; j += 2, ql += 32, u1 = (uint8_t)(u1 << 2), u2 = (uint8_t)(u2 << 2)) {
            uint8_t sc, m;
            tk_q4k_scale_min(j, scales, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            tk_q4k_scale_min(j + 1, scales, &sc, &m);
            const float d2 = d * (float)sc, m2 = dmin * (float)m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (float)((ql[l] & 0xF) + ((qh[l] & u1) ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (float)((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
        }
    }
}

/* Q6_K: 16 sub-blocks of 16 with int8 scales; 4 low bits in ql, 2 high bits in qh,
 * values offset by 32. Each 128-element half uses 64 bytes of ql and 32 of qh. */
static void deq_q6_k(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / TK_QK_K; i++, b += 210) {
        const float d = rdh(b + 208);
        const uint8_t *ql = b, *qh = b + 128;
        const int8_t *sc = (const int8_t *)(b + 192);
        for (int half = 0; half < 2; half++, y += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l + 0] = d * (float)sc[is + 0] * (float)q1;
                y[l + 32] = d * (float)sc[is + 2] * (float)q2;
                y[l + 64] = d * (float)sc[is + 4] * (float)q3;
                y[l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
        }
    }
}

static void deq_q8_k(const void *src, float *y, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / TK_QK_K; i++, b += 292, y += TK_QK_K) {
        float d;
        memcpy(&d, b, 4);
        const int8_t *qs = (const int8_t *)(b + 4);
        for (int j = 0; j < TK_QK_K; j++) y[j] = d * (float)qs[j];
    }
}

/* ---- quantizers (ggml quantize_row_*_ref) -------------------------------------- */

static void q_f32(const float *x, void *dst, int64_t n) { memcpy(dst, x, (size_t)n * 4); }
static void q_f16(const float *x, void *dst, int64_t n) {
    uint8_t *p = dst;
    for (int64_t i = 0; i < n; i++) wr16(p + 2 * i, tk_f32_to_f16(x[i]));
}
static void q_bf16(const float *x, void *dst, int64_t n) {
    uint8_t *p = dst;
    for (int64_t i = 0; i < n; i++) wr16(p + 2 * i, tk_f32_to_bf16(x[i]));
}

/* The value of largest magnitude (first one on ties), sign kept. */
static float signed_absmax(const float *x, int n) {
    float amax = 0, max = 0;
    for (int j = 0; j < n; j++) {
        if (amax < fabsf(x[j])) { amax = fabsf(x[j]); max = x[j]; }
    }
    return max;
}

static void q_q4_0(const float *x, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / TK_QK; i++, x += TK_QK, b += 18) {
        const float d = signed_absmax(x, TK_QK) / -8;
        const float id = d != 0 ? 1.0f / d : 0.0f;
        wr16(b, tk_f32_to_f16(d));
        for (int j = 0; j < 16; j++) {
            const int8_t a = (int8_t)(x[j] * id + 8.5f), c = (int8_t)(x[j + 16] * id + 8.5f);
            const uint8_t xa = (uint8_t)(a < 15 ? a : 15), xc = (uint8_t)(c < 15 ? c : 15);
            b[2 + j] = (uint8_t)(xa | (xc << 4));
        }
    }
}

static void minmax(const float *x, int n, float *mn, float *mx) {
    float lo = FLT_MAX, hi = -FLT_MAX;
    for (int j = 0; j < n; j++) {
        if (x[j] < lo) lo = x[j];
        if (x[j] > hi) hi = x[j];
    }
    *mn = lo; *mx = hi;
}

static void q_q4_1(const float *x, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / TK_QK; i++, x += TK_QK, b += 20) {
        float mn, mx;
        minmax(x, TK_QK, &mn, &mx);
        const float d = (mx - mn) / 15, id = d != 0 ? 1.0f / d : 0.0f;
        wr16(b, tk_f32_to_f16(d));
        wr16(b + 2, tk_f32_to_f16(mn));
        for (int j = 0; j < 16; j++) {
            const int8_t a = (int8_t)((x[j] - mn) * id + 0.5f), c = (int8_t)((x[j + 16] - mn) * id + 0.5f);
            const uint8_t xa = (uint8_t)(a < 15 ? a : 15), xc = (uint8_t)(c < 15 ? c : 15);
            b[4 + j] = (uint8_t)(xa | (xc << 4));
        }
    }
}

static void q_q5_0(const float *x, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / TK_QK; i++, x += TK_QK, b += 22) {
        const float d = signed_absmax(x, TK_QK) / -16;
        const float id = d != 0 ? 1.0f / d : 0.0f;
        wr16(b, tk_f32_to_f16(d));
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            const int8_t a = (int8_t)(x[j] * id + 16.5f), c = (int8_t)(x[j + 16] * id + 16.5f);
            const uint8_t xa = (uint8_t)(a < 31 ? a : 31), xc = (uint8_t)(c < 31 ? c : 31);
            b[6 + j] = (uint8_t)((xa & 0xF) | ((xc & 0xF) << 4));
            qh |= (uint32_t)(xa >> 4) << j;
            qh |= (uint32_t)(xc >> 4) << (j + 16);
        }
        memcpy(b + 2, &qh, 4);
    }
}

static void q_q5_1(const float *x, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / TK_QK; i++, x += TK_QK, b += 24) {
        float mn, mx;
        minmax(x, TK_QK, &mn, &mx);
        const float d = (mx - mn) / 31, id = d != 0 ? 1.0f / d : 0.0f;
        wr16(b, tk_f32_to_f16(d));
        wr16(b + 2, tk_f32_to_f16(mn));
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            const int8_t a = (int8_t)((x[j] - mn) * id + 0.5f), c = (int8_t)((x[j + 16] - mn) * id + 0.5f);
            const uint8_t xa = (uint8_t)(a < 31 ? a : 31), xc = (uint8_t)(c < 31 ? c : 31);
            b[8 + j] = (uint8_t)((xa & 0xF) | ((xc & 0xF) << 4));
            qh |= (uint32_t)(xa >> 4) << j;
            qh |= (uint32_t)(xc >> 4) << (j + 16);
        }
        memcpy(b + 4, &qh, 4);
    }
}

static float absmax(const float *x, int n) {
    float amax = 0;
    for (int j = 0; j < n; j++) amax = fmaxf(amax, fabsf(x[j]));
    return amax;
}

static void q_q8_0(const float *x, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / TK_QK; i++, x += TK_QK, b += 34) {
        const float d = absmax(x, TK_QK) / 127, id = d != 0 ? 1.0f / d : 0.0f;
        wr16(b, tk_f32_to_f16(d));
        for (int j = 0; j < TK_QK; j++) b[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
    }
}

static void q_q8_1(const float *x, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / TK_QK; i++, x += TK_QK, b += 36) {
        const float d = absmax(x, TK_QK) / 127, id = d != 0 ? 1.0f / d : 0.0f;
        int sum = 0;
        for (int j = 0; j < TK_QK; j++) {
            const int8_t q = (int8_t)roundf(x[j] * id);
            b[4 + j] = (uint8_t)q;
            sum += q;
        }
        wr16(b, tk_f32_to_f16(d));
        wr16(b + 2, tk_f32_to_f16((float)sum * d));
    }
}

/* Round to nearest, ties to even, for |f| < 2^22 (ggml's nearest_int). */
static inline int nearest_int(float f) {
    float v = f + 12582912.f;
    int32_t i;
    memcpy(&i, &v, 4);
    return (i & 0x007fffff) - 0x00400000;
}

static void q_q8_k(const float *x, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / TK_QK_K; i++, x += TK_QK_K, b += 292) {
        const float max = signed_absmax(x, TK_QK_K);
        int8_t qs[TK_QK_K];
        int16_t bsums[16];
        float d = 0;
        if (max == 0) {
            memset(qs, 0, sizeof qs);
            memset(bsums, 0, sizeof bsums);
        } else {
            const float iscale = -127.f / max;
            for (int j = 0; j < TK_QK_K; j++) {
                const int v = nearest_int(iscale * x[j]);
                qs[j] = (int8_t)(v < 127 ? v : 127);
            }
            for (int j = 0; j < 16; j++) {
                int s = 0;
                for (int k = 0; k < 16; k++) s += qs[16 * j + k];
                bsums[j] = (int16_t)s;
            }
            d = 1 / iscale;
        }
        memcpy(b, &d, 4);
        memcpy(b + 4, qs, sizeof qs);
        memcpy(b + 4 + TK_QK_K, bsums, sizeof bsums);
    }
}

/* Q4_K (ggml quantize_row_q4_K_ref): per 32-value sub-block, a scale and a min fitted by
 * make_qkx2_quants (weighted least squares over 21 trial scales, weights av|x| + |x|), then
 * both quantized to 6 bits against the super-block's largest (d, dmin as f16), and the
 * values re-rounded with the quantized scale and min. */
static float make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L, float *the_min,
                              uint8_t *Laux, float rmin, float rdelta, int nstep) {
    float min = x[0], max = x[0], sum_w = weights[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min), scale = 1 / iscale, best_error = 0;
    for (int i = 0; i < n; ++i) {
        int l = nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)(l < 0 ? 0 : l > nmax ? nmax : l);
        float diff = scale * L[i] + min - x[i];
        best_error += weights[i] * (diff * diff);
    }
    for (int is = 0; is <= nstep; ++is) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; ++i) {
            int l = nearest_int(iscale * (x[i] - min));
            l = l < 0 ? 0 : l > nmax ? nmax : l;
            Laux[i] = (uint8_t)l;
            float w = weights[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; ++i) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                cur_error += weights[i] * (diff * diff);
            }
            if (cur_error < best_error) {
                memcpy(L, Laux, (size_t)n);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

static void q_q4_k(const float *x, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / TK_QK_K; i++, x += TK_QK_K, b += 144) {
        uint8_t L[TK_QK_K], Laux[32], sc12[12];
        float weights[32], mins[8], scales[8], max_scale = 0, max_min = 0;
        for (int j = 0; j < 8; ++j) {
            float sum_x2 = 0;
            for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
            const float av_x = sqrtf(sum_x2 / 32);
            for (int l = 0; l < 32; ++l) weights[l] = av_x + fabsf(x[32 * j + l]);
            scales[j] = make_qkx2_quants(32, 15, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -1.f, 0.1f, 20);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f, inv_min = max_min > 0 ? 63.f / max_min : 0.f;
        for (int j = 0; j < 8; ++j) {
            uint8_t ls = (uint8_t)nearest_int(inv_scale * scales[j]), lm = (uint8_t)nearest_int(inv_min * mins[j]);
            ls = ls < 63 ? ls : 63;
            lm = lm < 63 ? lm : 63;
            if (j < 4) {
                sc12[j] = ls;
                sc12[j + 4] = lm;
            } else {
                sc12[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
                sc12[j - 4] |= (uint8_t)((ls >> 4) << 6);
                sc12[j - 0] |= (uint8_t)((lm >> 4) << 6);
            }
        }
        const uint16_t hd = tk_f32_to_f16(max_scale / 63.f), hm = tk_f32_to_f16(max_min / 63.f);
        wr16(b, hd);
        wr16(b + 2, hm);
        memcpy(b + 4, sc12, 12);
        for (int j = 0; j < 8; ++j) {
            uint8_t sc, m;
            tk_q4k_scale_min(j, sc12, &sc, &m);
            const float d = tk_f16_to_f32(hd) * sc;
            if (!d) continue;
            const float dm = tk_f16_to_f32(hm) * m;
            for (int ii = 0; ii < 32; ++ii) {
                int l = nearest_int((x[32 * j + ii] + dm) / d);
                L[32 * j + ii] = (uint8_t)(l < 0 ? 0 : l > 15 ? 15 : l);
            }
        }
        uint8_t *q = b + 16;
        for (int j = 0; j < TK_QK_K; j += 64, q += 32)
            for (int l = 0; l < 32; ++l) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
    }
}

/* ---- dispatch ---------------------------------------------------------------- */

static const tk_dequant_row_fn k_deq_scalar[TK_DTYPE_COUNT] = {
    [TK_F32] = deq_f32, [TK_F16] = deq_f16, [TK_BF16] = deq_bf16, [TK_F64] = deq_f64,
    [TK_I8] = deq_i8, [TK_I16] = deq_i16, [TK_I32] = deq_i32, [TK_I64] = deq_i64,
    [TK_Q8_0] = deq_q8_0, [TK_Q4_0] = deq_q4_0, [TK_Q4_1] = deq_q4_1, [TK_Q5_0] = deq_q5_0,
    [TK_Q5_1] = deq_q5_1, [TK_Q8_1] = deq_q8_1, [TK_Q2_K] = deq_q2_k, [TK_Q3_K] = deq_q3_k,
    [TK_Q4_K] = deq_q4_k, [TK_Q5_K] = deq_q5_k, [TK_Q6_K] = deq_q6_k, [TK_Q8_K] = deq_q8_k,
    [TK_NF4] = tk_nf4_dequant_row_scalar,
};

static const tk_quant_row_fn k_quant[TK_DTYPE_COUNT] = {
    [TK_F32] = q_f32, [TK_F16] = q_f16, [TK_BF16] = q_bf16,
    [TK_Q8_0] = q_q8_0, [TK_Q4_0] = q_q4_0, [TK_Q4_1] = q_q4_1, [TK_Q5_0] = q_q5_0,
    [TK_Q5_1] = q_q5_1, [TK_Q8_1] = q_q8_1, [TK_Q4_K] = q_q4_k, [TK_Q8_K] = q_q8_k,
    [TK_NF4] = tk_nf4_quantize_row,
};

/* Provided by quant_avx2.c: the SIMD row converter for t on this CPU, or NULL. */
tk_dequant_row_fn tk_dequant_row_fn_simd(tk_dtype t);

tk_dequant_row_fn tk_dequant_row_fn_scalar(tk_dtype t) {
    return (unsigned)t < TK_DTYPE_COUNT ? k_deq_scalar[t] : NULL;
}

tk_dequant_row_fn tk_dequant_row_fn_for(tk_dtype t) {
    if ((unsigned)t >= TK_DTYPE_COUNT) return NULL;
    tk_dequant_row_fn f = tk_dequant_row_fn_simd(t);
    return f ? f : k_deq_scalar[t];
}

tk_quant_row_fn tk_quant_row_fn_for(tk_dtype t) {
    return (unsigned)t < TK_DTYPE_COUNT ? k_quant[t] : NULL;
}

void tk_dequant_row(tk_dtype t, const void *src, float *dst, int64_t n) {
    tk_dequant_row_fn_for(t)(src, dst, n);
}

void tk_quant_row(tk_dtype t, const float *src, void *dst, int64_t n) {
    k_quant[t](src, dst, n);
}

static tk_status check_count(tk_dtype t, int64_t n, const char *what) {
    if ((unsigned)t >= TK_DTYPE_COUNT) return tk_fail(TK_ERR_UNSUPPORTED, "%s: unknown dtype %d", what, (int)t);
    if (n < 0) return tk_fail(TK_ERR_ARG, "%s: negative element count %lld", what, (long long)n);
    const int64_t blk = tk_dtype_block_elems(t);
    if (n % blk)
        return tk_fail(TK_ERR_ARG, "%s: %lld elements is not a whole number of %s blocks (%lld)", what,
                       (long long)n, tk_dtype_name(t), (long long)blk);
    return TK_OK;
}

tk_status tk_dequantize(tk_dtype t, const void *src, float *dst, int64_t n) {
    tk_status st = check_count(t, n, "dequantize");
    if (st) return st;
    if (n == 0) return TK_OK;
    if (!src || !dst) return tk_fail(TK_ERR_ARG, "dequantize: NULL buffer");
    tk_dequant_row(t, src, dst, n);
    return TK_OK;
}

tk_status tk_quantize(tk_dtype t, const float *src, void *dst, int64_t n) {
    tk_status st = check_count(t, n, "quantize");
    if (st) return st;
    if (!k_quant[t]) return tk_fail(TK_ERR_UNSUPPORTED, "quantize: takumi cannot quantize to %s", tk_dtype_name(t));
    if (n == 0) return TK_OK;
    if (!src || !dst) return tk_fail(TK_ERR_ARG, "quantize: NULL buffer");
    k_quant[t](src, dst, n);
    return TK_OK;
}
