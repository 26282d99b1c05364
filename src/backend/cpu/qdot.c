/* Fused quantized-weight x quantized-activation dot products for few-row products
 * (decode). The activation row is quantized once per matmul to 32-element int8 blocks
 * (tk_q8x); each weight block is dotted in integers and scaled once, as llama.cpp
 * does, so the weights are read exactly once, straight from the mapped file.
 * Every SIMD kernel has a scalar reference below it (tests/test_matmul.c checks both). */
#include "backend/cpu/kernels.h"
#include "core/core.h"
#include "core/quant.h"
#include <math.h>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define TK_QDOT_AVX2 1
#endif

static inline float f16(uint16_t h) {
#ifdef __F16C__
    return _cvtsh_ss(h);
#else
    return tk_f16_to_f32(h);
#endif
}

void tk_cpu_quantize_q8x_ref(const float *x, tk_q8x *out, int64_t n) {
    for (int64_t b = 0; b < n / 32; b++) {
        const float *xb = x + b * 32;
        float amax = 0;
        for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(xb[i]));
        float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
        int sum = 0;
        for (int i = 0; i < 32; i++) {
            int q = (int)lrintf(xb[i] * id);
            q = q > 127 ? 127 : q < -127 ? -127 : q;
            out[b].q[i] = (int8_t)q;
            sum += q;
        }
        out[b].d = d;
        out[b].s = d * (float)sum;
    }
}

/* The AVX2 quantizer gives bit-identical blocks to the reference: same amax, same d and
 * 1/d, cvtps rounds to nearest even as lrintf does in the default rounding mode (decode
 * quantizes ~10 rows per layer, so the scalar version with libm calls was ~6% of a token). */
void tk_cpu_quantize_q8x(const float *x, tk_q8x *out, int64_t n) {
#if defined(__AVX2__) && defined(__FMA__)
    const __m256 sign = _mm256_set1_ps(-0.0f), lim = _mm256_set1_ps(127.0f), nlim = _mm256_set1_ps(-127.0f);
    for (int64_t b = 0; b < n / 32; b++) {
        const float *xb = x + b * 32;
        __m256 v[4], m = _mm256_setzero_ps();
        for (int j = 0; j < 4; j++) {
            v[j] = _mm256_loadu_ps(xb + 8 * j);
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[j]));
        }
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        float amax = _mm_cvtss_f32(h);
        float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
        __m256 vid = _mm256_set1_ps(id);
        __m256i qi[4];
        for (int j = 0; j < 4; j++) /* clamp in float: same result as clamping the rounded int */
            qi[j] = _mm256_cvtps_epi32(_mm256_min_ps(lim, _mm256_max_ps(nlim, _mm256_mul_ps(v[j], vid))));
        __m256i s32 = _mm256_add_epi32(_mm256_add_epi32(qi[0], qi[1]), _mm256_add_epi32(qi[2], qi[3]));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s32), _mm256_extracti128_si256(s32, 1));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
        int sum = _mm_cvtsi128_si32(s4);
        /* int32 -> int8 keeping element order: packs work per 128-bit lane, then fix lanes */
        __m256i p16a = _mm256_packs_epi32(qi[0], qi[1]), p16b = _mm256_packs_epi32(qi[2], qi[3]);
        __m256i p8 = _mm256_packs_epi16(p16a, p16b);
        p8 = _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)out[b].q, p8);
        out[b].d = d;
        out[b].s = d * (float)sum;
    }
#else
    tk_cpu_quantize_q8x_ref(x, out, n);
#endif
}

bool tk_cpu_has_qdot(tk_dtype t) {
    return t == TK_Q4_0 || t == TK_Q4_1 || t == TK_Q8_0 || t == TK_Q4_K || t == TK_Q6_K;
}

/* ---------------------------------------------------------------- scalar references */

static float ref_q4_0(const void *w, const tk_q8x *x, int64_t nb) {
    const tk_block_q4_0 *b = w;
    double acc = 0;
    for (int64_t i = 0; i < nb; i++) {
        int isum = 0;
        for (int j = 0; j < 16; j++)
            isum += (b[i].qs[j] & 0xF) * x[i].q[j] + (b[i].qs[j] >> 4) * x[i].q[j + 16];
        float d = f16(b[i].d);
        acc += (double)(d * x[i].d) * isum - 8.0 * d * x[i].s;
    }
    return (float)acc;
}

static float ref_q4_1(const void *w, const tk_q8x *x, int64_t nb) {
    const tk_block_q4_1 *b = w;
    double acc = 0;
    for (int64_t i = 0; i < nb; i++) {
        int isum = 0;
        for (int j = 0; j < 16; j++)
            isum += (b[i].qs[j] & 0xF) * x[i].q[j] + (b[i].qs[j] >> 4) * x[i].q[j + 16];
        acc += (double)(f16(b[i].d) * x[i].d) * isum + (double)f16(b[i].m) * x[i].s;
    }
    return (float)acc;
}

static float ref_q8_0(const void *w, const tk_q8x *x, int64_t nb) {
    const tk_block_q8_0 *b = w;
    double acc = 0;
    for (int64_t i = 0; i < nb; i++) {
        int isum = 0;
        for (int j = 0; j < 32; j++) isum += b[i].qs[j] * x[i].q[j];
        acc += (double)(f16(b[i].d) * x[i].d) * isum;
    }
    return (float)acc;
}

static float ref_q4_k(const void *w, const tk_q8x *x, int64_t nsb) {
    const tk_block_q4_k *b = w;
    double acc = 0;
    for (int64_t i = 0; i < nsb; i++) {
        float d = f16(b[i].d), dmin = f16(b[i].dmin);
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            tk_q4k_scale_min(j, b[i].scales, &sc, &m);
            const uint8_t *q = b[i].qs + (j / 2) * 32;
            const tk_q8x *xb = x + i * 8 + j;
            int isum = 0;
            for (int l = 0; l < 32; l++) isum += ((j & 1) ? q[l] >> 4 : q[l] & 0xF) * xb->q[l];
            acc += (double)(d * sc * xb->d) * isum - (double)(dmin * m) * xb->s;
        }
    }
    return (float)acc;
}

static float ref_q6_k(const void *w, const tk_q8x *x, int64_t nsb) {
    const tk_block_q6_k *b = w;
    double acc = 0;
    for (int64_t i = 0; i < nsb; i++) {
        float d = f16(b[i].d);
        for (int h = 0; h < 2; h++) {           /* two halves of 128 */
            const uint8_t *ql = b[i].ql + h * 64, *qh = b[i].qh + h * 32;
            const int8_t *sc = b[i].scales + h * 8;
            for (int g = 0; g < 4; g++) {       /* 32-element groups */
                const tk_q8x *xb = x + i * 8 + h * 4 + g;
                int s0 = 0, s1 = 0;
                for (int l = 0; l < 32; l++) {
                    int lo = (g & 1) ? ql[l + 32] : ql[l];
                    int q = ((g & 2) ? lo >> 4 : lo & 0xF) | (((qh[l] >> (2 * g)) & 3) << 4);
                    if (l < 16) s0 += (q - 32) * xb->q[l];
                    else s1 += (q - 32) * xb->q[l];
                }
                acc += (double)(d * xb->d) * ((double)sc[2 * g] * s0 + (double)sc[2 * g + 1] * s1);
            }
        }
    }
    return (float)acc;
}

float tk_cpu_qdot_ref(tk_dtype t, const void *w, const tk_q8x *x, int64_t n) {
    switch (t) {
    case TK_Q4_0: return ref_q4_0(w, x, n / 32);
    case TK_Q4_1: return ref_q4_1(w, x, n / 32);
    case TK_Q8_0: return ref_q8_0(w, x, n / 32);
    case TK_Q4_K: return ref_q4_k(w, x, n / 256);
    case TK_Q6_K: return ref_q6_k(w, x, n / 256);
    default: return 0.0f;
    }
}

/* ---------------------------------------------------------------- AVX2 */
#ifdef TK_QDOT_AVX2
static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
/* 16 bytes of nibbles -> 32 u8: low nibbles in the low 128 bits (elements 0..15), high in the top (16..31). */
static inline __m256i nibbles32(const uint8_t *qs) {
    __m128i raw = _mm_loadu_si128((const __m128i *)qs), m = _mm_set1_epi8(0x0F);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(raw, 4), m), _mm_and_si128(raw, m));
}
/* u8 x s8 -> 8 int32 partial sums, lane i = elements 4i..4i+3. With AVX512-VNNI (Zen 4,
 * Ice Lake+) one vpdpbusd on ymm replaces maddubs + madd; the result is identical because
 * no pair sum here can saturate int16 (|u| <= 128, |s| <= 127: 2*128*127 < 32768). */
static inline __m256i dot_us(__m256i u, __m256i s) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}

/* Q4_0 and Q4_1 share the loop: w = d*q + m with m = -8d for Q4_0. */
static float avx2_q4_0(const void *w, const tk_q8x *x, int64_t nb) {
    const tk_block_q4_0 *b = w;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    float macc = 0;
    int64_t i = 0;
    for (; i + 1 < nb; i += 2) {
        float d0 = f16(b[i].d), d1 = f16(b[i + 1].d);
        __m256i p0 = dot_us(nibbles32(b[i].qs), _mm256_loadu_si256((const __m256i *)x[i].q));
        __m256i p1 = dot_us(nibbles32(b[i + 1].qs), _mm256_loadu_si256((const __m256i *)x[i + 1].q));
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(d0 * x[i].d), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), _mm256_set1_ps(d1 * x[i + 1].d), acc1);
        macc -= 8.0f * (d0 * x[i].s + d1 * x[i + 1].s);
    }
    for (; i < nb; i++) {
        float d0 = f16(b[i].d);
        __m256i p0 = dot_us(nibbles32(b[i].qs), _mm256_loadu_si256((const __m256i *)x[i].q));
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(d0 * x[i].d), acc0);
        macc -= 8.0f * d0 * x[i].s;
    }
    return hsum8(_mm256_add_ps(acc0, acc1)) + macc;
}

static float avx2_q4_1(const void *w, const tk_q8x *x, int64_t nb) {
    const tk_block_q4_1 *b = w;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    float macc = 0;
    int64_t i = 0;
    for (; i + 1 < nb; i += 2) {
        __m256i p0 = dot_us(nibbles32(b[i].qs), _mm256_loadu_si256((const __m256i *)x[i].q));
        __m256i p1 = dot_us(nibbles32(b[i + 1].qs), _mm256_loadu_si256((const __m256i *)x[i + 1].q));
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(f16(b[i].d) * x[i].d), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), _mm256_set1_ps(f16(b[i + 1].d) * x[i + 1].d), acc1);
        macc += f16(b[i].m) * x[i].s + f16(b[i + 1].m) * x[i + 1].s;
    }
    for (; i < nb; i++) {
        __m256i p0 = dot_us(nibbles32(b[i].qs), _mm256_loadu_si256((const __m256i *)x[i].q));
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(f16(b[i].d) * x[i].d), acc0);
        macc += f16(b[i].m) * x[i].s;
    }
    return hsum8(_mm256_add_ps(acc0, acc1)) + macc;
}

static inline __m256i dot_ss(__m256i a, __m256i s) { /* s8 x s8 via |a| and sign(s, a) */
    return dot_us(_mm256_sign_epi8(a, a), _mm256_sign_epi8(s, a));
}

static float avx2_q8_0(const void *w, const tk_q8x *x, int64_t nb) {
    const tk_block_q8_0 *b = w;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 1 < nb; i += 2) {
        __m256i p0 = dot_ss(_mm256_loadu_si256((const __m256i *)b[i].qs), _mm256_loadu_si256((const __m256i *)x[i].q));
        __m256i p1 = dot_ss(_mm256_loadu_si256((const __m256i *)b[i + 1].qs), _mm256_loadu_si256((const __m256i *)x[i + 1].q));
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(f16(b[i].d) * x[i].d), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), _mm256_set1_ps(f16(b[i + 1].d) * x[i + 1].d), acc1);
    }
    for (; i < nb; i++) {
        __m256i p0 = dot_ss(_mm256_loadu_si256((const __m256i *)b[i].qs), _mm256_loadu_si256((const __m256i *)x[i].q));
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(f16(b[i].d) * x[i].d), acc0);
    }
    return hsum8(_mm256_add_ps(acc0, acc1));
}

static float avx2_q4_k(const void *w, const tk_q8x *x, int64_t nsb) {
    const tk_block_q4_k *b = w;
    __m256 acc = _mm256_setzero_ps();
    float macc = 0;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int64_t i = 0; i < nsb; i++) {
        float d = f16(b[i].d), dmin = f16(b[i].dmin);
        const tk_q8x *xb = x + i * 8;
        for (int j = 0; j < 4; j++) {
            uint8_t sc0, m0, sc1, m1;
            tk_q4k_scale_min(2 * j, b[i].scales, &sc0, &m0);
            tk_q4k_scale_min(2 * j + 1, b[i].scales, &sc1, &m1);
            __m256i q = _mm256_loadu_si256((const __m256i *)(b[i].qs + 32 * j));
            __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            __m256i p0 = dot_us(lo, _mm256_loadu_si256((const __m256i *)xb[2 * j].q));
            __m256i p1 = dot_us(hi, _mm256_loadu_si256((const __m256i *)xb[2 * j + 1].q));
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(d * sc0 * xb[2 * j].d), acc);
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), _mm256_set1_ps(d * sc1 * xb[2 * j + 1].d), acc);
            macc -= dmin * (m0 * xb[2 * j].s + m1 * xb[2 * j + 1].s);
        }
    }
    return hsum8(acc) + macc;
}

static float avx2_q6_k(const void *w, const tk_q8x *x, int64_t nsb) {
    const tk_block_q6_k *b = w;
    __m256 acc = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3), k32 = _mm256_set1_epi8(32);
    for (int64_t i = 0; i < nsb; i++) {
        float d = f16(b[i].d);
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = b[i].ql + h * 64, *qhp = b[i].qh + h * 32;
            const int8_t *sc = b[i].scales + h * 8;
            __m256i l0 = _mm256_loadu_si256((const __m256i *)ql), l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
            __m256i qh = _mm256_loadu_si256((const __m256i *)qhp);
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4));
            q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4));
            for (int g = 0; g < 4; g++) {
                const tk_q8x *xb = x + i * 8 + h * 4 + g;
                __m256i xq = _mm256_loadu_si256((const __m256i *)xb->q);
                __m256i p = _mm256_sub_epi32(dot_us(q[g], xq), dot_us(k32, xq)); /* sum((q - 32) * x) per 4 */
                float s0 = d * xb->d * sc[2 * g], s1 = d * xb->d * sc[2 * g + 1];
                __m256 sv = _mm256_setr_ps(s0, s0, s0, s0, s1, s1, s1, s1);
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), sv, acc);
            }
        }
    }
    return hsum8(acc);
}
#endif

float tk_cpu_qdot(tk_dtype t, const void *w, const tk_q8x *x, int64_t n) {
#ifdef TK_QDOT_AVX2
    switch (t) {
    case TK_Q4_0: return avx2_q4_0(w, x, n / 32);
    case TK_Q4_1: return avx2_q4_1(w, x, n / 32);
    case TK_Q8_0: return avx2_q8_0(w, x, n / 32);
    case TK_Q4_K: return avx2_q4_k(w, x, n / 256);
    case TK_Q6_K: return avx2_q6_k(w, x, n / 256);
    default: return 0.0f;
    }
#else
    return tk_cpu_qdot_ref(t, w, x, n);
#endif
}

const char *tk_cpu_qdot_isa(void) {
#if defined(TK_QDOT_AVX2) && defined(__AVX512VNNI__) && defined(__AVX512VL__)
    return "avx2+avx512vnni";
#elif defined(TK_QDOT_AVX2)
    return "avx2";
#else
    return "scalar";
#endif
}
