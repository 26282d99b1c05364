/* The AVX-512 VNNI variant of tk_cpu_qdot (the "avx512vnni" row of the table in qdot.c): two
 * 32-element blocks per zmm, u8 x s8 products summed into int32 lanes by one vpdpbusd (instead of
 * vpmaddubsw + vpmaddwd), one fp32 scale per block, for Q4_0, Q4_1 and Q6_K (and Q8_0 in the multi-row form); the other types run the avx2
 * kernels (faster there, see tk_cpu_qdot_avx512vnni). The weights are read exactly as by the avx2 variant;
 * only the instruction count per block drops. Every function carries its target
 * attribute, so the file compiles on any x86-64 build and qdot.c calls it only where CPUID allows
 * (AVX-512F/BW/VL + AVX512-VNNI: Zen 4, Ice Lake and later). */
#include "backend/cpu/kernels.h"
#include "core/quant.h"
#include <stddef.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

VNNI static inline float f16h(uint16_t h) { return _cvtsh_ss(h); }
VNNI static inline float f16at(const uint8_t *p) { /* an fp16 at any alignment */
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return _cvtsh_ss(h);
}

/* Activation blocks a and b as one zmm: a's 32 bytes low, b's high. */
VNNI static inline __m512i x2(const tk_q8x *a, const tk_q8x *b) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)a->q)),
                              _mm256_loadu_si256((const __m256i *)b->q), 1);
}
/* 16 lanes: sa in the low 8 (block a), sb in the high 8 (block b). */
VNNI static inline __m512 scale2(float sa, float sb) {
    return _mm512_mask_blend_ps((__mmask16)0xFF00, _mm512_set1_ps(sa), _mm512_set1_ps(sb));
}
/* The 16 nibble bytes of two 32-blocks -> 64 u8 in element order: [a lo | a hi | b lo | b hi]
 * (low nibbles are elements 0..15 of a block, high ones 16..31). */
VNNI static inline __m512i nib2(const uint8_t *qa, const uint8_t *qb) {
    __m256i r = _mm256_set_m128i(_mm_loadu_si128((const __m128i *)qb), _mm_loadu_si128((const __m128i *)qa));
    __m512i z = _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 1, 0, 1, 2, 3, 2, 3), _mm512_castsi256_si512(r));
    z = _mm512_srlv_epi64(z, _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4));
    return _mm512_and_si512(z, _mm512_set1_epi8(0x0F));
}
VNNI static inline __m512i dp(__m512i u, __m512i s) { return _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, s); }

/* [d0, m0, d1, m1, d2, m2, d3, m3] of four blocks bsz bytes apart as f32: Q4_1 keeps d and m as adjacent fp16
 * (one 32-bit load per block); Q4_0 has m = -8d. */
VNNI static inline __m256 dm4(const uint8_t *b, size_t bsz, bool has_m, float mmul) {
    uint32_t v[4];
    for (int k = 0; k < 4; k++) memcpy(&v[k], b + (size_t)k * bsz, sizeof v[k]);
    __m256 f = _mm256_cvtph_ps(_mm_setr_epi32((int)v[0], (int)v[1], (int)v[2], (int)v[3]));
    if (has_m) return f;
    __m256 d = _mm256_moveldup_ps(f);
    return _mm256_blend_ps(d, _mm256_mul_ps(d, _mm256_set1_ps(mmul)), 0xAA);
}
/* [x0.d, x0.s, x1.d, x1.s, x2.d, x2.s, x3.d, x3.s] (d and s are adjacent in tk_q8x). */
VNNI static inline __m256 xds4(const tk_q8x *x) {
    __m128 a = _mm_loadh_pi(_mm_loadl_pi(_mm_setzero_ps(), (const __m64 *)&x[0].d), (const __m64 *)&x[1].d);
    __m128 b = _mm_loadh_pi(_mm_loadl_pi(_mm_setzero_ps(), (const __m64 *)&x[2].d), (const __m64 *)&x[3].d);
    return _mm256_set_m128(b, a);
}

/* Q4_0, Q4_1: w = d*q + m, m the fp16 next to d (has_m) or mmul*d (Q4_0: -8); sum(m * x) = m * x.s. Four blocks per step: their
 * (d*x.d, m*x.s) products in one ymm, the d*x.d lanes spread over each zmm's two blocks by a permute,
 * the m*x.s lanes summed at the end. An odd last block runs in the low half (its partner's lanes are
 * zero in both operands). */
/* q4 and q4_rows: block k's bytes, d, m and the nibbles of blocks a, b (names of the functions' parameters); the
 * permutes spreading [d0m0 d1m1 | d2m2 d3m3] products over blocks 0|1 and 2|3. */
#define BLK(k) (base + (size_t)(k) * bsz)
#define D(k) f16at(BLK(k))
#define M(k) (has_m ? f16at(BLK(k) + 2) : mmul * D(k))
#define Q(a, b) nib2(BLK(a) + qoff, BLK(b) + qoff)
#define Q4_LO2 _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2)
#define Q4_HI2 _mm512_setr_epi32(4, 4, 4, 4, 4, 4, 4, 4, 6, 6, 6, 6, 6, 6, 6, 6)
VNNI static inline __attribute__((always_inline)) float q4(const void *w, size_t bsz, size_t qoff, bool has_m, float mmul,
                                                           const tk_q8x *x, int64_t nb) {
    const uint8_t *base = w;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    __m256 mv = _mm256_setzero_ps();
    const __m512i lo2 = Q4_LO2, hi2 = Q4_HI2;
    float macc = 0;
    int64_t i = 0;
    for (; i + 3 < nb; i += 4) {
        __m512i p0 = dp(Q(i, i + 1), x2(&x[i], &x[i + 1]));
        __m512i p1 = dp(Q(i + 2, i + 3), x2(&x[i + 2], &x[i + 3]));
        __m256 sc = _mm256_mul_ps(dm4(BLK(i), bsz, has_m, mmul), xds4(&x[i]));
        __m512 sz = _mm512_castps256_ps512(sc);
        acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p0), _mm512_permutexvar_ps(lo2, sz), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p1), _mm512_permutexvar_ps(hi2, sz), acc1);
        mv = _mm256_add_ps(mv, sc);
    }
    for (; i < nb; i += 2) {
        bool two = i + 1 < nb;
        __m512i u = Q(i, two ? i + 1 : i), s = x2(&x[i], &x[two ? i + 1 : i]);
        if (!two) s = _mm512_maskz_mov_epi64((__mmask8)0x0F, s);
        __m512i p = dp(u, s);
        acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), scale2(D(i) * x[i].d, two ? D(i + 1) * x[i + 1].d : 0.0f), acc0);
        macc += M(i) * x[i].s + (two ? M(i + 1) * x[i + 1].s : 0.0f);
    }
    mv = _mm256_blend_ps(_mm256_setzero_ps(), mv, 0xAA); /* the m*x.s lanes */
    __m128 m4 = _mm_add_ps(_mm256_castps256_ps128(mv), _mm256_extractf128_ps(mv, 1));
    m4 = _mm_add_ps(m4, _mm_movehl_ps(m4, m4));
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) + macc + _mm_cvtss_f32(_mm_shuffle_ps(m4, m4, 1));
}

VNNI static float q4_0(const void *w, const tk_q8x *x, int64_t nb) {
    return q4(w, sizeof(tk_block_q4_0), offsetof(tk_block_q4_0, qs), false, -8.0f, x, nb);
}
VNNI static float q4_1(const void *w, const tk_q8x *x, int64_t nb) {
    return q4(w, sizeof(tk_block_q4_1), offsetof(tk_block_q4_1, qs), true, 0, x, nb);
}


/* Q6_K: per half of 128, ql's 64 bytes [l0 | l1] give groups 0|1 (low nibbles, qh bits 0-1 | 2-3)
 * and 2|3 (high nibbles, qh bits 4-5 | 6-7); q - 32 as q u8 x s8 minus 32 * sum(x). Each 16
 * elements have their own int8 scale: lanes 4k..4k+3 take scale k of the pair of groups. */
VNNI static float q6_k(const void *w, const tk_q8x *x, int64_t nsb) {
    const tk_block_q6_k *b = w;
    const __m512i m4 = _mm512_set1_epi8(0x0F), m2 = _mm512_set1_epi8(3), k32 = _mm512_set1_epi8(32);
    const __m512i sh01 = _mm512_setr_epi64(0, 0, 0, 0, 2, 2, 2, 2), sh23 = _mm512_setr_epi64(4, 4, 4, 4, 6, 6, 6, 6);
    const __m128i rep0 = _mm_setr_epi8(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    const __m128i rep1 = _mm_setr_epi8(4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    for (int64_t i = 0; i < nsb; i++) {
        float d = f16h(b[i].d);
        for (int h = 0; h < 2; h++) {
            const tk_q8x *xb = x + i * 8 + h * 4;
            __m512i l = _mm512_loadu_si512((const void *)(b[i].ql + 64 * h));
            __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(b[i].qh + 32 * h)));
            __m512i q01 = _mm512_or_si512(_mm512_and_si512(l, m4), _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi64(qh, sh01), m2), 4));
            __m512i q23 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
                                          _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi64(qh, sh23), m2), 4));
            __m512i x01 = x2(&xb[0], &xb[1]), x23 = x2(&xb[2], &xb[3]);
            __m512i p01 = _mm512_sub_epi32(dp(q01, x01), dp(k32, x01)), p23 = _mm512_sub_epi32(dp(q23, x23), dp(k32, x23));
            __m128i sc8 = _mm_loadl_epi64((const __m128i *)(b[i].scales + 8 * h));
            __m512 sc01 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_shuffle_epi8(sc8, rep0)));
            __m512 sc23 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_shuffle_epi8(sc8, rep1)));
            sc01 = _mm512_mul_ps(sc01, scale2(d * xb[0].d, d * xb[1].d));
            sc23 = _mm512_mul_ps(sc23, scale2(d * xb[2].d, d * xb[3].d));
            acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p01), sc01, acc0);
            acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p23), sc23, acc1);
        }
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

/* ---------------------------------------------------------------- multi-row forms
 * q4 and q6_k above with the weight work (nibble unpacking, fp16 scales, Q6_K's scale bytes) hoisted out of a loop
 * over R activation rows (R a compile-time 1..4, accumulators in registers); per row the float operations and their
 * order are the one-row kernel's, so every value is bit-identical to it. */
#define RMAX TK_QDOT_GROUP
#define ROWS_LOOP _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)

VNNI static inline __attribute__((always_inline)) void q4_rows(const void *w, size_t bsz, size_t qoff, bool has_m, float mmul,
                                                               const tk_q8x *x, int64_t xs, int64_t nb, int R, float *out) {
    const uint8_t *base = w;
    __m512 acc0[RMAX], acc1[RMAX];
    __m256 mv[RMAX];
    float macc[RMAX];
    ROWS_LOOP { acc0[r] = acc1[r] = _mm512_setzero_ps(); mv[r] = _mm256_setzero_ps(); macc[r] = 0; }
    const __m512i lo2 = Q4_LO2, hi2 = Q4_HI2;
    int64_t i = 0;
    for (; i + 3 < nb; i += 4) {
        __m512i u0 = Q(i, i + 1), u1 = Q(i + 2, i + 3);
        __m256 dm = dm4(BLK(i), bsz, has_m, mmul);
        ROWS_LOOP {
            const tk_q8x *xr = x + r * xs;
            __m512i p0 = dp(u0, x2(&xr[i], &xr[i + 1]));
            __m512i p1 = dp(u1, x2(&xr[i + 2], &xr[i + 3]));
            __m256 sc = _mm256_mul_ps(dm, xds4(&xr[i]));
            __m512 sz = _mm512_castps256_ps512(sc);
            acc0[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p0), _mm512_permutexvar_ps(lo2, sz), acc0[r]);
            acc1[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p1), _mm512_permutexvar_ps(hi2, sz), acc1[r]);
            mv[r] = _mm256_add_ps(mv[r], sc);
        }
    }
    for (; i < nb; i += 2) {
        bool two = i + 1 < nb;
        __m512i u = Q(i, two ? i + 1 : i);
        float d0 = D(i), d1 = two ? D(i + 1) : 0.0f, m0 = M(i), m1 = two ? M(i + 1) : 0.0f;
        ROWS_LOOP {
            const tk_q8x *xr = x + r * xs;
            __m512i s = x2(&xr[i], &xr[two ? i + 1 : i]);
            if (!two) s = _mm512_maskz_mov_epi64((__mmask8)0x0F, s);
            __m512i p = dp(u, s);
            acc0[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), scale2(d0 * xr[i].d, two ? d1 * xr[i + 1].d : 0.0f), acc0[r]);
            macc[r] += m0 * xr[i].s + (two ? m1 * xr[i + 1].s : 0.0f);
        }
    }
    ROWS_LOOP {
        __m256 mvr = _mm256_blend_ps(_mm256_setzero_ps(), mv[r], 0xAA); /* the m*x.s lanes */
        __m128 m4 = _mm_add_ps(_mm256_castps256_ps128(mvr), _mm256_extractf128_ps(mvr, 1));
        m4 = _mm_add_ps(m4, _mm_movehl_ps(m4, m4));
        out[r] = _mm512_reduce_add_ps(_mm512_add_ps(acc0[r], acc1[r])) + macc[r] + _mm_cvtss_f32(_mm_shuffle_ps(m4, m4, 1));
    }
}

#undef BLK
#undef D
#undef M
#undef Q
#undef Q4_LO2
#undef Q4_HI2

VNNI static inline __attribute__((always_inline)) void q6_k_rows(const void *w, const tk_q8x *x, int64_t xs, int64_t nsb, int R,
                                                                 float *out) {
    const tk_block_q6_k *b = w;
    const __m512i m4 = _mm512_set1_epi8(0x0F), m2 = _mm512_set1_epi8(3), k32 = _mm512_set1_epi8(32);
    const __m512i sh01 = _mm512_setr_epi64(0, 0, 0, 0, 2, 2, 2, 2), sh23 = _mm512_setr_epi64(4, 4, 4, 4, 6, 6, 6, 6);
    const __m128i rep0 = _mm_setr_epi8(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    const __m128i rep1 = _mm_setr_epi8(4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7);
    __m512 acc0[RMAX], acc1[RMAX];
    ROWS_LOOP acc0[r] = acc1[r] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nsb; i++) {
        float d = f16h(b[i].d);
        for (int h = 0; h < 2; h++) {
            __m512i l = _mm512_loadu_si512((const void *)(b[i].ql + 64 * h));
            __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(b[i].qh + 32 * h)));
            __m512i q01 = _mm512_or_si512(_mm512_and_si512(l, m4), _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi64(qh, sh01), m2), 4));
            __m512i q23 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
                                          _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi64(qh, sh23), m2), 4));
            __m128i sc8 = _mm_loadl_epi64((const __m128i *)(b[i].scales + 8 * h));
            __m512 sc01 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_shuffle_epi8(sc8, rep0)));
            __m512 sc23 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_shuffle_epi8(sc8, rep1)));
            ROWS_LOOP {
                const tk_q8x *xb = x + r * xs + i * 8 + h * 4;
                __m512i x01 = x2(&xb[0], &xb[1]), x23 = x2(&xb[2], &xb[3]);
                __m512i p01 = _mm512_sub_epi32(dp(q01, x01), dp(k32, x01)), p23 = _mm512_sub_epi32(dp(q23, x23), dp(k32, x23));
                __m512 s01 = _mm512_mul_ps(sc01, scale2(d * xb[0].d, d * xb[1].d));
                __m512 s23 = _mm512_mul_ps(sc23, scale2(d * xb[2].d, d * xb[3].d));
                acc0[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p01), s01, acc0[r]);
                acc1[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p23), s23, acc1[r]);
            }
        }
    }
    ROWS_LOOP out[r] = _mm512_reduce_add_ps(_mm512_add_ps(acc0[r], acc1[r]));
}

/* Q8_0 (the one-row dot is avx2_q8_0: even blocks into acc0, odd into acc1, lane i = elements 4i..4i+3, the odd last
 * block into acc0): blocks i, i+1 in one zmm whose halves are acc0 | acc1, so each half takes the same fma as the
 * avx2 kernel's ymm. |w| u8 x (x negated where w < 0) s8 by one vpdpbusd gives the same exact int32 lanes as
 * vpsignb + vpmaddubsw + vpmaddwd (no pair sum saturates: 2 * 128 * 127 < 32768). */
VNNI static inline __attribute__((always_inline)) void q8_0_rows(const void *w, const tk_q8x *x, int64_t xs, int64_t nb, int R,
                                                                 float *out) {
    const tk_block_q8_0 *b = w;
    __m512 acc[RMAX];
    ROWS_LOOP acc[r] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 1 < nb; i += 2) {
        __m512i a = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)b[i].qs)),
                                       _mm256_loadu_si256((const __m256i *)b[i + 1].qs), 1);
        __m512i u = _mm512_abs_epi8(a);
        __mmask64 neg = _mm512_movepi8_mask(a);
        float d0 = f16h(b[i].d), d1 = f16h(b[i + 1].d);
        ROWS_LOOP {
            const tk_q8x *xr = x + r * xs + i;
            __m512i xv = x2(&xr[0], &xr[1]);
            __m512i p = dp(u, _mm512_mask_sub_epi8(xv, neg, _mm512_setzero_si512(), xv));
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), scale2(d0 * xr[0].d, d1 * xr[1].d), acc[r]);
        }
    }
    for (; i < nb; i++) { /* the odd last block: the low half (acc0) only */
        __m256i a = _mm256_loadu_si256((const __m256i *)b[i].qs), u = _mm256_abs_epi8(a);
        float d0 = f16h(b[i].d);
        ROWS_LOOP {
            const tk_q8x *xr = x + r * xs + i;
            __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)xr->q), a));
            __m256 lo = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(d0 * xr->d), _mm512_castps512_ps256(acc[r]));
            acc[r] = _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(acc[r]), _mm256_castps_pd(lo), 0));
        }
    }
    ROWS_LOOP { /* avx2 hsum8(acc0 + acc1) */
        __m256 v = _mm256_add_ps(_mm512_castps512_ps256(acc[r]), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[r]), 1)));
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        s = _mm_add_ss(s, _mm_movehdup_ps(s));
        out[r] = _mm_cvtss_f32(s);
    }
}

#define Q40_CALL(R) q4_rows(w, sizeof(tk_block_q4_0), offsetof(tk_block_q4_0, qs), false, -8.0f, x + t0 * xs, xs, nb, R, out + t0)
VNNI static void q4_0_rows(const void *w, const tk_q8x *x, int64_t xs, int64_t nb, int64_t T, float *out) { TK_QDOT_ROW_GROUPS(T, t0, Q40_CALL); }
#define Q41_CALL(R) q4_rows(w, sizeof(tk_block_q4_1), offsetof(tk_block_q4_1, qs), true, 0, x + t0 * xs, xs, nb, R, out + t0)
VNNI static void q4_1_rows(const void *w, const tk_q8x *x, int64_t xs, int64_t nb, int64_t T, float *out) { TK_QDOT_ROW_GROUPS(T, t0, Q41_CALL); }
#define Q80_CALL(R) q8_0_rows(w, x + t0 * xs, xs, nb, R, out + t0)
VNNI static void q8_0_rows_all(const void *w, const tk_q8x *x, int64_t xs, int64_t nb, int64_t T, float *out) { TK_QDOT_ROW_GROUPS(T, t0, Q80_CALL); }
#define Q6K_CALL(R) q6_k_rows(w, x + t0 * xs, xs, nsb, R, out + t0)
VNNI static void q6_k_rows_all(const void *w, const tk_q8x *x, int64_t xs, int64_t nsb, int64_t T, float *out) { TK_QDOT_ROW_GROUPS(T, t0, Q6K_CALL); }

void tk_cpu_qdot_rows_avx512vnni(tk_dtype t, const void *w, const tk_q8x *x, int64_t xs, int64_t n, int64_t T, float *out) {
    switch (t) {
    case TK_Q4_0: q4_0_rows(w, x, xs, n / 32, T, out); return;
    case TK_Q4_1: q4_1_rows(w, x, xs, n / 32, T, out); return;
    case TK_Q6_K: q6_k_rows_all(w, x, xs, n / 256, T, out); return;
    case TK_Q8_0: q8_0_rows_all(w, x, xs, n / 32, T, out); return;
    default: tk_cpu_qdot_rows_avx2(t, w, x, xs, n, T, out); /* as tk_cpu_qdot_avx512vnni: the avx2 kernels */
    }
}

float tk_cpu_qdot_avx512vnni(tk_dtype t, const void *w, const tk_q8x *x, int64_t n) {
    switch (t) {
    case TK_Q4_0: return q4_0(w, x, n / 32);
    case TK_Q4_1: return q4_1(w, x, n / 32);
    case TK_Q6_K: return q6_k(w, x, n / 256);
    /* Q5_0, Q5_1, Q8_0, Q4_K: zmm versions (fifth bits by a mask move; w + 128 with a second vpdpbusd;
     * two sub-blocks per zmm) measured no faster than the avx2 kernels on Zen 4 (L2-resident rows, 1 thread,
     * loaded: Q5_0 6.1 vs 13.0 GB/s, Q8_0 31.0 vs 32.4, Q4_K 10.2 vs 11.4), so this variant runs those. */
    default: return tk_cpu_qdot_avx2(t, w, x, n);
    }
}
#endif
